"""Paired comparisons of two variants over the same scenarios, within one model; and the
model × variant interaction (does the difference between variants differ between models?).

Guarantees: a comparison never pools models. Given ``model``, it uses that model's rows;
without it, the table must hold one model (or have no ``model`` column), else
``UsageError``. Every estimate, interval and p-value comes from
:func:`~tooltrial.analysis.stats.paired_statistics` on per-scenario differences, with the
same rule for every rate (``intervals``): the headline, every metric row, pass^k and the
interaction give the same interval for the same differences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import polars as pl
from scipy import stats

from tooltrial.analysis.intervals import small_design_warning, stuck_count
from tooltrial.analysis.power import Pilot, pilot_of
from tooltrial.analysis.stats import (
    PairedStatistics,
    VarianceComponents,
    few_differing_warning,
    holm,
    paired_statistics,
    pass_hat_k_per_task,
    sign_flip_min_p,
    split_variance,
    within_floor,
)
from tooltrial.analysis.summary import (
    reliability_counts,
    reliability_ks_of,
    reliability_scenarios,
    success_counts,
)
from tooltrial.analysis.table import is_rate, metric_set
from tooltrial.errors import UsageError

BLOCKED_NOTE = (
    "not tested: these cells ran variant by variant (order blocked), so drift over the run "
    "lands on one variant; run with the default random order to compare it"
)


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
    means = _per_scenario(one_model(table, model), metric, [reference, treatment])
    if not {reference, treatment} <= set(means.columns):  # a variant without any value
        return pl.DataFrame(
            schema={"scenario_id": pl.String, reference: pl.Float64, treatment: pl.Float64}
        )
    return means


def _per_scenario(table: pl.DataFrame, metric: str, variants: Sequence[str]) -> pl.DataFrame:
    """``scenario_id``, then each variant with any value of ``metric`` (in the order
    given): its mean over reps, per scenario. Only the scenarios every one of those
    variants has, sorted by id."""
    means = (
        table.filter(pl.col("variant").is_in(list(variants)))
        .filter(pl.col(metric).is_not_null())
        .group_by("scenario_id", "variant")
        .agg(pl.col(metric).cast(pl.Float64).mean().alias("mean"))
        .pivot(on="variant", index="scenario_id", values="mean")
    )
    present = [v for v in variants if v in means.columns]
    return means.select("scenario_id", *present).drop_nulls().sort("scenario_id")


@dataclass(frozen=True)
class HeadlineRates:
    """Each variant's rate on one metric as the paired tests see it: per scenario the
    mean over its reps, then the mean over ``scenarios`` (each scenario weighs the same,
    however many reps it has)."""

    metric: str
    scenarios: tuple[str, ...]
    """The scenarios every variant with any value of ``metric`` has."""
    rates: dict[str, float | None]
    """Variant → its rate; None for a variant without any value (or no common scenario)."""


def headline_rates(
    table: pl.DataFrame, metric: str, variants: Sequence[str], *, model: str | None = None
) -> HeadlineRates:
    """The headline of one model's variants on ``metric`` (the declared primary metric).

    Guarantee: with two variants (or any number covering the same scenarios) these are
    bit for bit :func:`compare`'s ``reference_mean`` and ``treatment_mean`` for that
    metric, over the same scenarios, so a comparison's difference is the difference of
    these rates (up to the rounding of :data:`~tooltrial.analysis.stats.ROUND_DIGITS`)."""
    means = _per_scenario(one_model(table, model), metric, variants)
    rates: dict[str, float | None] = {
        v: float(means[v].to_numpy().mean()) if v in means.columns and means.height else None
        for v in variants
    }
    return HeadlineRates(metric, tuple(means["scenario_id"].to_list()), rates)


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
    p_value: float | None
    """Paired t-test across scenarios; None for a quantity fixed by design (reported,
    not tested)."""
    p_sign_flip: float | None
    scenarios: int
    primary: bool = False
    """The experiment's declared primary metric: its p-values are not adjusted."""
    p_holm: float | None = None
    """Holm-adjusted p (t-test) over the tested secondary metrics of this comparison."""
    sign_flip_floor: float = 0.0
    """The smallest p the sign-flip test can reach with these differences."""
    warning: str | None = None
    """Said when fewer than 5 scenarios differ at all, when the primary metric has fewer
    than 20 scenarios (``intervals.small_design_warning``), or why it is not tested."""


def compare(
    table: pl.DataFrame,
    reference: str,
    treatment: str,
    metrics: Sequence[str] | None = None,
    seed: int = 0,
    *,
    model: str | None = None,
    primary: str = "exact",
    randomised: bool = True,
) -> list[Difference]:
    """``treatment`` − ``reference`` for each metric, paired over scenarios (one model).

    ``metrics`` defaults to every metric of the table's kind (``table.metric_set``).
    ``primary`` is the declared primary metric; every other tested metric gets a
    Holm-adjusted p over this comparison's secondary metrics (its family). Quantities
    fixed by design (the set's ``fixed_by_design``) are reported without a test, and so
    are time-dependent ones unless the run was ``randomised``."""
    rules = metric_set(table)
    out: list[Difference] = []
    for metric in rules.labels if metrics is None else metrics:
        means = scenario_means(table, metric, reference, treatment, model=model)
        if means.height == 0:
            continue
        ref = means[reference].to_numpy()
        trt = means[treatment].to_numpy()
        d = trt - ref
        rate = is_rate(metric)
        stuck = stuck_count(ref, trt) if rate else 0
        s = paired_statistics(d, seed=seed, stuck=stuck, bound=1.0 if rate else None)
        blocked = not randomised and metric in rules.time_dependent
        tested = metric not in rules.fixed_by_design and not blocked
        notes = [few_differing_warning(d) if tested else None]
        if metric == primary:
            notes.append(small_design_warning(d.size))
        said = [n for n in notes if n]
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
                p_value=s.p_value if tested else None,
                p_sign_flip=s.p_sign_flip if tested else None,
                scenarios=s.scenarios,
                primary=metric == primary,
                sign_flip_floor=sign_flip_min_p(int((d.round(12) != 0).sum())),
                warning=BLOCKED_NOTE if blocked else ("; ".join(said) or None),
            )
        )
    return holm_adjusted(out)


def holm_adjusted(differences: list[Difference]) -> list[Difference]:
    """The same differences, the tested secondary ones with their Holm-adjusted p."""
    family = [i for i, d in enumerate(differences) if not d.primary and d.p_value is not None]
    adjusted = holm([differences[i].p_value or 1.0 for i in family])
    out = list(differences)
    for i, p in zip(family, adjusted, strict=True):
        out[i] = replace(out[i], p_holm=p)
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
    metrics: Sequence[str] | None = None,
    seed: int = 0,
) -> list[Interaction]:
    """Per metric (default: every rate of the table's kind): does ``treatment`` −
    ``reference`` differ between the two models?"""
    out = []
    for metric in metric_set(table).rates if metrics is None else metrics:
        both = _scenario_differences(table, metric, reference, treatment, reference_model).join(
            _scenario_differences(table, metric, reference, treatment, model),
            on="scenario_id",
            suffix="_model",
        )
        if both.height == 0:
            continue
        base, other = both["d"].to_numpy(), both["d_model"].to_numpy()
        rate = is_rate(metric)
        stuck = int((both["stuck"] & both["stuck_model"]).sum()) if rate else 0
        s = paired_statistics(other - base, seed=seed, stuck=stuck, bound=2.0 if rate else None)
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
    """``scenario_id``, ``d`` = treatment − reference mean, and ``stuck`` (both means 0, or
    both 1), for one model."""
    means = scenario_means(table, metric, reference, treatment, model=model)
    ref, trt = pl.col(reference), pl.col(treatment)
    return means.select(
        "scenario_id",
        (trt - ref).alias("d"),
        ((ref == trt) & ref.is_in([0.0, 1.0])).alias("stuck"),
    )


def largest_differences(
    table: pl.DataFrame,
    reference: str,
    treatment: str,
    limit: int = 5,
    *,
    model: str | None = None,
) -> pl.DataFrame:
    """Scenarios whose headline rate (exact match; success for conversations) differs
    most between the two variants."""
    metric = metric_set(table).headline
    means = scenario_means(table, metric, reference, treatment, model=model)
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
            pl.col(metric).cast(pl.Float64).mean().alias("rate"),
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
    # Reps that never disagree estimate the rep-to-rep variance as 0; the floor says
    # what a pilot of this size cannot rule out (rates only).
    floor = within_floor(cells["rate"].to_numpy(), reps) if is_rate(metric) else 0.0
    return split_variance(var_d, within, r0, int(d.size), floor=floor)


@dataclass(frozen=True)
class ReliabilityDifference:
    """Treatment − reference in pass^k (or pass@k) over the scenarios with at least k
    results in every variant: the set each variant's pass^k in the reliability table is
    averaged over, so ``reference_mean`` and ``treatment_mean`` are those values.
    Descriptive: the report shows its interval, never a p-value (the one unadjusted test
    is the primary metric)."""

    k: int
    scenarios: tuple[str, ...]
    excluded: tuple[str, ...]
    """Scenarios with results in either variant left out (fewer than k in some variant)."""
    reference_mean: float
    treatment_mean: float
    statistics: PairedStatistics


def reliability_differences(
    table: pl.DataFrame,
    reference: str,
    treatment: str,
    metric: str,
    seed: int = 0,
    variants: Sequence[str] | None = None,
) -> dict[int, ReliabilityDifference]:
    """k → treatment − reference in pass^k, paired over the scenarios every variant of
    ``variants`` (default: the two) has at least k results for, one model's rows; with
    the same interval as any rate."""
    counts = reliability_counts(table, list(variants or (reference, treatment)), metric)
    if reference not in counts or treatment not in counts:
        return {}
    ref, trt = counts[reference], counts[treatment]
    seen = sorted(ref.keys() | trt.keys())
    out = {}
    for k in reliability_ks_of(counts):
        common = reliability_scenarios(counts, k)
        if not common:
            continue
        a = pass_hat_k_per_task([ref[s] for s in common], k)
        b = pass_hat_k_per_task([trt[s] for s in common], k)
        stats_k = paired_statistics(b - a, seed=seed, stuck=stuck_count(a, b), bound=1.0)
        out[k] = ReliabilityDifference(
            k=k,
            scenarios=tuple(common),
            excluded=tuple(s for s in seen if s not in set(common)),
            reference_mean=float(a.mean()),
            treatment_mean=float(b.mean()),
            statistics=stats_k,
        )
    return out


def pilot(
    table: pl.DataFrame, reference: str, treatment: str, metric: str, *, model: str | None = None
) -> Pilot:
    """One comparison's results on ``metric`` as a power pilot (``analysis.power``)."""
    rows = one_model(table, model)
    ref, trt = success_counts(rows, reference, metric), success_counts(rows, treatment, metric)
    common = sorted(ref.keys() & trt.keys())
    return pilot_of([ref[s] for s in common], [trt[s] for s in common])
