"""Paired comparisons of two variants over the same scenarios."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
from scipy import stats

from tooltrial.analysis.stats import (
    VarianceComponents,
    cluster_bootstrap_ci,
    paired_t_test,
    sign_flip_test,
)
from tooltrial.analysis.table import METRICS


def scenario_means(
    table: pl.DataFrame, metric: str, reference: str, treatment: str
) -> pl.DataFrame:
    """Per scenario: the mean of ``metric`` over reps for each variant (both present)."""
    return (
        table.filter(pl.col("variant").is_in([reference, treatment]))
        .filter(pl.col(metric).is_not_null())
        .group_by("scenario_id", "variant")
        .agg(pl.col(metric).cast(pl.Float64).mean().alias("mean"))
        .pivot(on="variant", index="scenario_id", values="mean")
        .drop_nulls()
        .sort("scenario_id")
    )


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
    n_boot: int = 10_000,
    seed: int = 0,
) -> list[Difference]:
    out = []
    for metric in metrics:
        means = scenario_means(table, metric, reference, treatment)
        if means.height == 0:
            continue
        ref = means[reference].to_numpy()
        trt = means[treatment].to_numpy()
        d = trt - ref
        low, high = cluster_bootstrap_ci(d, n_boot=n_boot, seed=seed)
        out.append(
            Difference(
                metric=metric,
                reference=reference,
                treatment=treatment,
                reference_mean=float(ref.mean()),
                treatment_mean=float(trt.mean()),
                difference=float(d.mean()),
                ci_low=low,
                ci_high=high,
                p_value=paired_t_test(d),
                p_sign_flip=sign_flip_test(d, seed=seed),
                scenarios=int(d.size),
            )
        )
    return out


def largest_differences(
    table: pl.DataFrame, reference: str, treatment: str, limit: int = 5
) -> pl.DataFrame:
    """Scenarios whose exact-match rate differs most between the two variants."""
    means = scenario_means(table, "exact", reference, treatment)
    return (
        means.with_columns(difference=pl.col(treatment) - pl.col(reference))
        .filter(pl.col("difference") != 0)
        .sort(pl.col("difference").abs(), "scenario_id", descending=[True, False])
        .head(limit)
    )


def variance_components(
    table: pl.DataFrame, reference: str, treatment: str, metric: str = "exact"
) -> VarianceComponents:
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
