"""Paired comparisons of two variants over the same scenarios, within one model; and the
model × variant interaction (does the difference between variants differ between models?).

Guarantees: a comparison never pools models. Given ``model``, it uses that model's rows;
without it, the table must hold one model (or have no ``model`` column), else
``UsageError``. Every estimate, interval and p-value comes from
:func:`~tooltrial.analysis.stats.paired_statistics` on per-scenario differences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
from scipy import stats

from tooltrial.analysis.stats import VarianceComponents, paired_statistics
from tooltrial.analysis.table import METRICS, RATE_METRICS
from tooltrial.errors import UsageError


def one_model(table: pl.DataFrame, model: str | None = None) -> pl.DataFrame:
    """The rows of ``model``; with None, the table itself, which must hold one model."""
    if "model" not in table.columns:
        return table
    if model is not None:
        return table.filter(pl.col("model") == model)
    models = table["model"].unique().sort().to_list()
    if len(models) > 1:
        raise UsageError(f"the table holds several models ({', '.join(models)}); pass model=")
    return table


def scenario_means(
    table: pl.DataFrame,
    metric: str,
    reference: str,
    treatment: str,
    *,
    model: str | None = None,
) -> pl.DataFrame:
    """Per scenario: the mean of ``metric`` over reps for each variant (both present)."""
    means = (
        one_model(table, model)
        .filter(pl.col("variant").is_in([reference, treatment]))
        .filter(pl.col(metric).is_not_null())
        .group_by("scenario_id", "variant")
        .agg(pl.col(metric).cast(pl.Float64).mean().alias("mean"))
        .pivot(on="variant", index="scenario_id", values="mean")
    )
    if not {reference, treatment} <= set(means.columns):  # a variant without any value
        return pl.DataFrame(
            schema={"scenario_id": pl.String, reference: pl.Float64, treatment: pl.Float64}
        )
    return means.select("scenario_id", reference, treatment).drop_nulls().sort("scenario_id")


@dataclass(frozen=True)
class Difference:
    metric: str
    reference: str
    treatment: str
    reference_mean: float
    treatment_mean: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    """Paired t-test across scenarios."""
    p_sign_flip: float
    scenarios: int


def compare(
    table: pl.DataFrame,
    reference: str,
    treatment: str,
    metrics: Sequence[str] = tuple(METRICS),
    seed: int = 0,
    *,
    model: str | None = None,
) -> list[Difference]:
    """``treatment`` − ``reference`` for each metric, paired over scenarios (one model)."""
    out = []
    for metric in metrics:
        means = scenario_means(table, metric, reference, treatment, model=model)
        if means.height == 0:
            continue
        ref = means[reference].to_numpy()
        trt = means[treatment].to_numpy()
        s = paired_statistics(trt - ref, seed=seed)
        out.append(
            Difference(
                metric=metric,
                reference=reference,
                treatment=treatment,
                reference_mean=float(ref.mean()),
                treatment_mean=float(trt.mean()),
                difference=s.estimate,
                ci_low=s.ci_low,
                ci_high=s.ci_high,
                p_value=s.p_value,
                p_sign_flip=s.p_sign_flip,
                scenarios=s.scenarios,
            )
        )
    return out


@dataclass(frozen=True)
class Interaction:
    """Difference of differences: (treatment − reference) in ``model`` minus the same in
    ``reference_model``, paired over the scenarios present in all four cells."""

    metric: str
    reference: str
    treatment: str
    reference_model: str
    model: str
    reference_model_difference: float
    """Mean of treatment − reference in the reference model, over the common scenarios."""
    model_difference: float
    """The same in ``model``."""
    interaction: float
    """Mean of ``dd_s``: ``model_difference`` − ``reference_model_difference``."""
    ci_low: float
    ci_high: float
    p_value: float
    p_sign_flip: float
    scenarios: int


def interaction(
    table: pl.DataFrame,
    reference: str,
    treatment: str,
    reference_model: str,
    model: str,
    metrics: Sequence[str] = RATE_METRICS,
    seed: int = 0,
) -> list[Interaction]:
    """Per metric: does ``treatment`` − ``reference`` differ between the two models?"""
    out = []
    for metric in metrics:
        both = _scenario_differences(table, metric, reference, treatment, reference_model).join(
            _scenario_differences(table, metric, reference, treatment, model),
            on="scenario_id",
            suffix="_model",
        )
        if both.height == 0:
            continue
        base, other = both["d"].to_numpy(), both["d_model"].to_numpy()
        s = paired_statistics(other - base, seed=seed)
        out.append(
            Interaction(
                metric=metric,
                reference=reference,
                treatment=treatment,
                reference_model=reference_model,
                model=model,
                reference_model_difference=float(base.mean()),
                model_difference=float(other.mean()),
                interaction=s.estimate,
                ci_low=s.ci_low,
                ci_high=s.ci_high,
                p_value=s.p_value,
                p_sign_flip=s.p_sign_flip,
                scenarios=s.scenarios,
            )
        )
    return out


def _scenario_differences(
    table: pl.DataFrame, metric: str, reference: str, treatment: str, model: str
) -> pl.DataFrame:
    """``scenario_id`` and ``d`` = treatment − reference mean, for one model."""
    means = scenario_means(table, metric, reference, treatment, model=model)
    return means.select("scenario_id", (pl.col(treatment) - pl.col(reference)).alias("d"))


def largest_differences(
    table: pl.DataFrame,
    reference: str,
    treatment: str,
    limit: int = 5,
    *,
    model: str | None = None,
) -> pl.DataFrame:
    """Scenarios whose exact-match rate differs most between the two variants."""
    means = scenario_means(table, "exact", reference, treatment, model=model)
    return (
        means.with_columns(difference=pl.col(treatment) - pl.col(reference))
        .filter(pl.col("difference") != 0)
        .sort(pl.col("difference").abs(), "scenario_id", descending=[True, False])
        .head(limit)
    )


def variance_components(
    table: pl.DataFrame,
    reference: str,
    treatment: str,
    metric: str = "exact",
    *,
    model: str | None = None,
) -> VarianceComponents:
    """Between-scenario and rep-to-rep variance of ``d_s`` in one model (a power pilot)."""
    table = one_model(table, model)
    cells = (
        table.filter(pl.col("variant").is_in([reference, treatment]))
        .filter(pl.col(metric).is_not_null())
        .group_by("scenario_id", "variant")
        .agg(
            pl.col(metric).cast(pl.Float64).var(ddof=1).alias("var"),
            pl.len().alias("reps"),
        )
    )
    reps = cells["reps"].to_numpy()
    pooled = cells.filter(pl.col("reps") > 1)["var"].to_numpy()
    within = 2 * float(pooled.mean()) if pooled.size else 0.0
    means = scenario_means(table, metric, reference, treatment)
    d = means[treatment].to_numpy() - means[reference].to_numpy()
    r0 = float(stats.hmean(reps)) if reps.size else 1.0
    var_d = float(d.var(ddof=1)) if d.size > 1 else 0.0
    between = max(0.0, var_d - within / r0)
    if between == 0 and within == 0:
        return VarianceComponents(0.0, 0.5, int(d.size), r0, worst_case=True)
    return VarianceComponents(between, within, int(d.size), r0)
