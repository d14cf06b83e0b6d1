"""Per-(model, variant) summaries: rates, tokens, latency, tool-definition footprint,
consistency, categories; for conversations, what they cost per success and why they
failed.

Guarantee: every aggregate here groups by model as well as variant, so results of
several models in one table are never pooled. Which metrics a table has is
``table.metric_set``'s to say.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from tooltrial.analysis.stats import pass_at_k, pass_hat_k, reliability_ks
from tooltrial.analysis.table import CHECK_COLUMNS, COST_METRICS, MetricSet, metric_set
from tooltrial.definitions import Experiment, Variant
from tooltrial.models.base import ESTIMATED, estimate_tokens


@dataclass(frozen=True)
class Footprint:
    """What the variant's tool definitions cost in each prompt, before any request:
    characters as the model's API takes them, and tokens as ``counted_by`` says."""

    chars: int
    tokens: int
    counted_by: str


FootprintOf = Callable[[str, Variant], Footprint]
"""(model spec, variant) → its footprint (the run records it; ``estimated_footprint``
for files from before it did)."""


def estimated_footprint(model: str, variant: Variant) -> Footprint:
    """The footprint estimated from the tools as JSON (~4 characters a token)."""
    text = json.dumps([t.openai_format() for t in variant.tools], ensure_ascii=False)
    return Footprint(len(text), estimate_tokens(text), ESTIMATED)


@dataclass(frozen=True)
class VariantSummary:
    model: str
    variant: str
    results: int
    scenarios: int
    reps: int
    rates: dict[str, float | None]
    """Metric → share of results (args_correct: of those with the right tool)."""
    calls_per_answer: float
    input_tokens: float
    output_tokens: float
    latency_mean_s: float
    latency_p50_s: float
    latency_p95_s: float
    footprint: Footprint
    conversations: ConversationCosts | None = None
    """Agentic results: costs per success and why conversations failed."""


@dataclass(frozen=True)
class ConversationCosts:
    """What one variant's conversations spent and how they ended.

    ``per_success[m]`` is the total of ``m`` over *all* the variant's conversations
    (failed ones included: their cost was spent too) divided by its successes; None when
    it has none. ``mean[m]`` is the plain mean per conversation."""

    conversations: int
    successes: int
    mean: dict[str, float]
    per_success: dict[str, float | None]
    failed_checks: dict[str, int]
    """Verdict part → conversations that failed it (a conversation can fail several)."""
    judged_checks: dict[str, int]
    """Verdict part → conversations whose scenario judges it."""
    stop_reasons: dict[str, int]

    @property
    def failed(self) -> int:
        return self.conversations - self.successes


def summarize(
    table: pl.DataFrame, experiment: Experiment, footprint: FootprintOf = estimated_footprint
) -> list[VariantSummary]:
    """One summary per (model, variant) with results: models sorted, variants in the
    definition's order."""
    metrics = metric_set(table)
    agg = (
        table.group_by("model", "variant")
        .agg(
            pl.len().alias("results"),
            pl.col("scenario_id").n_unique().alias("scenarios"),
            pl.col("rep").n_unique().alias("reps"),
            *(pl.col(m).cast(pl.Float64).mean().alias(m) for m in metrics.rates),
            pl.col(metrics.calls).mean().alias("calls"),
            pl.col("input_tokens").mean(),
            pl.col("output_tokens").mean(),
            pl.col("latency_s").mean().alias("lat_mean"),
            pl.col("latency_s").quantile(0.5, "linear").alias("lat_p50"),
            pl.col("latency_s").quantile(0.95, "linear").alias("lat_p95"),
        )
        .rows_by_key(["model", "variant"], named=True, unique=True)
    )
    costs = conversation_costs(table) if metrics.kind == "agentic" else {}
    summaries = []
    for model in sorted(table["model"].unique()):
        for variant in experiment.variants:
            row = agg.get((model, variant.name))
            if row is not None:
                summary = _summary(model, variant, row, footprint(model, variant), metrics)
                summaries.append(replace(summary, conversations=costs.get((model, variant.name))))
    return summaries


def conversation_costs(table: pl.DataFrame) -> dict[tuple[str, str], ConversationCosts]:
    """(model, variant) → its conversations' costs, failed parts and stop reasons."""
    parts = CHECK_COLUMNS  # verdict part → its column
    agg = table.group_by("model", "variant").agg(
        pl.len().alias("conversations"),
        pl.col("success").sum().alias("successes"),
        *(pl.col(m).sum().cast(pl.Float64).alias(f"total_{m}") for m in COST_METRICS),
        *(pl.col(c).not_().sum().alias(f"failed_{n}") for n, c in parts.items()),
        *(pl.col(c).is_not_null().sum().alias(f"judged_{n}") for n, c in parts.items()),
        pl.col("stop_reason").value_counts().alias("stops"),
    )
    out = {}
    for row in agg.iter_rows(named=True):
        n, successes = row["conversations"], row["successes"]
        totals = {m: row[f"total_{m}"] for m in COST_METRICS}
        out[(row["model"], row["variant"])] = ConversationCosts(
            conversations=n,
            successes=successes,
            mean={m: total / n for m, total in totals.items()},
            per_success={
                m: total / successes if successes else None for m, total in totals.items()
            },
            failed_checks={name: row[f"failed_{name}"] for name in parts},
            judged_checks={name: row[f"judged_{name}"] for name in parts},
            stop_reasons=_most_first(row["stops"]),
        )
    return out


def _most_first(counts: list[dict[str, Any]]) -> dict[str, int]:
    """Stop reason → count, the most common first (ties by name, so runs agree)."""
    ordered = sorted(counts, key=lambda c: (-c["count"], c["stop_reason"]))
    return {c["stop_reason"]: c["count"] for c in ordered}


def _summary(
    model: str, variant: Variant, row: dict[str, Any], footprint: Footprint, metrics: MetricSet
) -> VariantSummary:
    return VariantSummary(
        model=model,
        variant=variant.name,
        results=row["results"],
        scenarios=row["scenarios"],
        reps=row["reps"],
        rates={m: row[m] for m in metrics.rates},
        calls_per_answer=row["calls"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        latency_mean_s=row["lat_mean"],
        latency_p50_s=row["lat_p50"],
        latency_p95_s=row["lat_p95"],
        footprint=footprint,
    )


def by_category(table: pl.DataFrame) -> pl.DataFrame:
    """The headline rate (exact match; success for conversations) per (model, category,
    variant), in a column named after it."""
    metric = metric_set(table).headline
    return (
        table.group_by("model", "category", "variant")
        .agg(pl.len().alias("results"), pl.col(metric).cast(pl.Float64).mean().alias(metric))
        .sort("model", "category", "variant")
    )


def consistency(table: pl.DataFrame) -> pl.DataFrame:
    """Per model, scenario and variant: do repetitions give the same answer (single
    turn: the same tools and arguments; conversations: the same state change)?

    ``agreement`` is the share of reps that give the most common answer (1.0: all
    agree); ``flips`` is true when the reps are not all right or all wrong on the headline
    metric (exact match; success), and ``flips_<metric>`` the same for every yes/no metric.
    """
    metrics = metric_set(table)
    rates, headline = metrics.rates, metrics.headline
    return (
        table.group_by("model", "scenario_id", "variant")
        .agg(
            pl.len().alias("reps"),
            pl.col("answer").n_unique().alias("distinct_answers"),
            (
                pl.col("answer").value_counts(sort=True).first().struct.field("count") / pl.len()
            ).alias("agreement"),
            *(pl.col(m).cast(pl.Float64).mean().alias(m) for m in rates),
        )
        .with_columns(
            flips=(pl.col(headline) > 0) & (pl.col(headline) < 1),
            **{f"flips_{m}": (pl.col(m) > 0) & (pl.col(m) < 1) for m in rates},
        )
        .sort("model", "scenario_id", "variant")
    )


@dataclass(frozen=True)
class Reliability:
    """How reliably one variant succeeds when the same task is tried again (tau-bench).

    Per scenario with n results of which c succeed on ``metric``: pass^k = C(c,k)/C(n,k)
    (every one of k tries succeeds), pass@k = 1 − C(n−c,k)/C(n,k) (at least one does),
    averaged over the scenarios that have at least k results in *every* variant with
    results (:func:`reliability_scenarios`): each k compares all variants, and their
    paired differences, on one scenario set. Errors are not results, so they never count
    as tries; ``excluded`` names the scenarios left out of each k.
    """

    variant: str
    metric: str
    scenarios: int
    """Scenarios with a result of this variant."""
    pass_hat: dict[int, float]
    pass_at: dict[int, float]
    excluded: dict[int, int]
    """k → how many of this variant's scenarios are left out of that k."""
    excluded_scenarios: dict[int, tuple[str, ...]] = field(default_factory=dict)
    """k → the scenarios left out of that k (fewer than k results in some variant)."""


def success_counts(table: pl.DataFrame, variant: str, metric: str) -> dict[str, tuple[int, int]]:
    """Scenario → (successes, results) on ``metric`` for one variant (one model's rows)."""
    rows = (
        table.filter((pl.col("variant") == variant) & pl.col(metric).is_not_null())
        .group_by("scenario_id")
        .agg(pl.col(metric).cast(pl.Int64).sum().alias("c"), pl.len().alias("n"))
        .sort("scenario_id")
    )
    return {s: (int(c), int(n)) for s, c, n in rows.iter_rows()}


Counts = dict[str, dict[str, tuple[int, int]]]
"""Variant → scenario → (successes, results)."""


def reliability_counts(table: pl.DataFrame, variants: Sequence[str], metric: str) -> Counts:
    """Each variant's (successes, results) per scenario; variants without any left out."""
    counts = {v: success_counts(table, v, metric) for v in variants}
    return {v: c for v, c in counts.items() if c}


def reliability_ks_of(counts: Counts) -> list[int]:
    """The k a report shows: 1 … 8 and the most results any scenario has."""
    most = max((n for per in counts.values() for _, n in per.values()), default=0)
    return reliability_ks(most)


def reliability_scenarios(counts: Counts, k: int) -> list[str]:
    """The scenarios with at least k results in every variant of ``counts``, sorted: the
    one set pass^k and pass@k (and their differences) are averaged over."""
    sets = [{s for s, (_, n) in per.items() if n >= k} for per in counts.values()]
    return sorted(set.intersection(*sets)) if sets else []


def reliability(table: pl.DataFrame, experiment: Experiment, metric: str) -> list[Reliability]:
    """pass^k and pass@k per variant, for k = 1 … 8 and the most reps any scenario has,
    each k over one scenario set shared by every variant."""
    counts = reliability_counts(table, [v.name for v in experiment.variants], metric)
    ks = reliability_ks_of(counts)
    common = {k: reliability_scenarios(counts, k) for k in ks}
    out = []
    for variant, per in counts.items():
        left_out = {k: tuple(s for s in per if s not in set(common[k])) for k in ks}
        out.append(
            Reliability(
                variant=variant,
                metric=metric,
                scenarios=len(per),
                pass_hat={k: pass_hat_k([per[s] for s in common[k]], k) for k in ks},
                pass_at={k: pass_at_k([per[s] for s in common[k]], k) for k in ks},
                excluded={k: len(left_out[k]) for k in ks},
                excluded_scenarios=left_out,
            )
        )
    return out
