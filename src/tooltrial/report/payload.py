"""The report's payload: an :class:`~tooltrial.analysis.Analysis` as plain JSON-able data.

Every number the Markdown and the HTML show comes from here, so the formats cannot
disagree. Shape:

- one model: the keys of tooltrial report 1, unchanged (``variants``, ``comparisons``,
  ``categories``, ``consistency``, ``scenarios`` at the top level);
- several models: ``reference_model``, ``per_model`` (one section per model, reference
  model first, each with ``model``, ``results``, ``error_lines`` and the same keys as a
  one-model report) and ``interaction`` (does treatment − reference differ between each
  model and the reference model?). The top-level ``scenarios`` then hold no rates.

``sections(data)`` gives (model, section) pairs for either shape, so a reader of the JSON
can write ``data.get("per_model", [data])``.

An agentic experiment's payload (``"agentic": true``) has the same shape; its metrics are
``analysis.AGENTIC``'s (``success`` first), each variant adds ``conversations`` (costs per
conversation and per success, failed verdict parts, stop reasons), per-scenario rates are
keyed ``success`` (not ``exact``) and scenarios have no ``expect``. A single-turn payload
is exactly what it was before agentic experiments.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from tooltrial.analysis import (
    Analysis,
    ConversationCosts,
    MetricSet,
    ModelAnalysis,
    Reliability,
    VariantSummary,
    metric_set,
)

METHOD = {
    "primary": "the experiment's declared primary metric is the headline and is not "
    "adjusted; every other tested metric shows its p-value Holm-adjusted over that "
    "comparison's secondary metrics (p Holm); input tokens differ by design (the "
    "variants' prompts and tool definitions) and are reported, not tested",
    "reliability": "pass^k = C(c,k)/C(n,k), pass@k = 1 − C(n−c,k)/C(n,k) per scenario "
    "(c of n results succeed on the primary metric; errors are not tries), averaged over "
    "scenarios; a scenario with fewer than k results is left out of that k",
    "unit": "scenario (reps are averaged within scenario and variant first)",
    "interval": "95% t-interval on the per-scenario differences (the t-test's own, so "
    "it excludes zero exactly when p < 0.05)",
    "test": "paired t-test on per-scenario differences, two-sided; p (sign-flip): "
    "paired sign-flip permutation test, exact under symmetry, conservative when "
    "outcomes are coarse",
    "clarify_rule": "no tool call and the text contains '?'",
}
AGENTIC_METHOD = {
    **{k: v for k, v in METHOD.items() if k != "clarify_rule"},
    "primary": "success (every part of the recorded verdict held) is the declared primary "
    "metric and the headline, not adjusted; every other tested metric (each verdict part, "
    "turns, tool calls, tool errors, tokens, time) shows its p-value Holm-adjusted over "
    "that comparison's secondary metrics (p Holm). Input tokens are tested here: over a "
    "conversation they grow with every turn and tool result, so they measure the path the "
    "model took, not only the variant's prompt",
    "verdict": "each conversation is judged once, when it ends, on the app's final state "
    "and what was said; the report reads that recorded verdict and never re-judges. A "
    "part a scenario does not declare is not judged (–); a conversation stopped by a "
    "limit fails 'answered'",
    "per_success": "cost per success = the total over all of a variant's conversations "
    "(failed ones included) divided by its successes; – when it has none. Reported, not "
    "tested (the paired tests are on the per-conversation means)",
}
INTERACTION_METHOD = (
    "per scenario, dd_s = (treatment − reference in the model) − (treatment − reference "
    "in the reference model), over the scenarios with results in all four cells; "
    "interval and tests as above, on dd_s; it assumes the scenarios are one sample "
    "shared by both models, so a scenario's difficulty cancels within each model"
)


def payload(analysis: Analysis) -> dict[str, Any]:
    """Everything the report says, as plain JSON-able data."""
    head = _head(analysis)
    method = AGENTIC_METHOD if analysis.experiment.agentic else METHOD
    if len(analysis.models) == 1:
        return {**head, **_section(analysis, analysis.models[0]), "method": method}
    return {
        **head,
        "reference_model": analysis.reference_model,
        "per_model": [
            {
                "model": m.model,
                "results": m.table.height,
                "error_lines": m.errors,
                **_section(analysis, m),
            }
            for m in analysis.models
        ],
        "interaction": _interactions(analysis),
        "scenarios": _scenarios(analysis, _all_variants(analysis)),
        "method": {**method, "interaction": INTERACTION_METHOD},
    }


def sections(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(model, section) for every model; the section holds ``variants``, ``comparisons``,
    ``categories``, ``consistency`` and ``scenarios`` (with rates)."""
    if "per_model" in data:
        return [(s["model"], s) for s in data["per_model"]]
    return [(data["models"][0], data)]


def _head(analysis: Analysis) -> dict[str, Any]:
    loaded = analysis.loaded
    kind = {"agentic": True} if analysis.experiment.agentic else {}
    return {
        **kind,
        "tooltrial_report": 1,
        "experiment": analysis.experiment.name,
        "definition": analysis.experiment.source,
        "fixed_timestamp": analysis.experiment.fixed_timestamp.isoformat(),
        "models": [m.model for m in analysis.models],
        "files": [str(f) for f in loaded.files],
        "results": analysis.table.height,
        "error_lines": loaded.errors,
        "warnings": analysis.warnings,
        "reference": analysis.reference,
        "primary_metric": analysis.experiment.primary_metric,
        "primary_label": metric_set(analysis.table).labels[analysis.experiment.primary_metric],
    }


def _section(analysis: Analysis, m: ModelAnalysis) -> dict[str, Any]:
    return {
        "variants": [_variant(v) for v in m.variants],
        "comparisons": [_comparison(analysis.reference, m, t) for t in m.comparisons],
        "categories": m.categories.drop("model").to_dicts(),
        "consistency": _consistency(m.consistency, metric_set(m.table)),
        "reliability": [_reliability(r) for r in m.reliability],
        "scenarios": _scenarios(analysis, [v.variant for v in m.variants], m.table),
    }


def _variant(v: VariantSummary) -> dict[str, Any]:
    agentic = {"conversations": _costs(v.conversations)} if v.conversations else {}
    return {
        "variant": v.variant,
        "results": v.results,
        "scenarios": v.scenarios,
        "reps": v.reps,
        "rates": v.rates,
        "calls_per_answer": v.calls_per_answer,
        "input_tokens": v.input_tokens,
        "output_tokens": v.output_tokens,
        "latency_s": {"mean": v.latency_mean_s, "p50": v.latency_p50_s, "p95": v.latency_p95_s},
        "tool_footprint": {
            "chars": v.footprint.chars,
            "tokens": v.footprint.tokens,
            "counted_by": v.footprint.counted_by,
        },
        **agentic,
    }


def _costs(c: ConversationCosts) -> dict[str, Any]:
    return {
        "conversations": c.conversations,
        "successes": c.successes,
        "failed": c.failed,
        "mean": c.mean,
        "per_success": c.per_success,
        "failed_checks": c.failed_checks,
        "judged_checks": c.judged_checks,
        "stop_reasons": c.stop_reasons,
    }


def _comparison(reference: str, m: ModelAnalysis, treatment: str) -> dict[str, Any]:
    labels = metric_set(m.table).labels
    return {
        "reference": reference,
        "treatment": treatment,
        "metrics": [{**d.__dict__, "label": labels[d.metric]} for d in m.comparisons[treatment]],
        "reliability_differences": [
            {"k": k, **s.__dict__} for k, s in m.reliability_differences[treatment].items()
        ],
        "largest_differences": m.largest[treatment]
        .rename({reference: "reference", treatment: "treatment"})
        .to_dicts(),
        "power": _power(m, treatment),
    }


def _power(m: ModelAnalysis, treatment: str) -> dict[str, Any]:
    components, plans = m.power[treatment]
    return {
        "metric": m.reliability[0].metric if m.reliability else "exact",
        "between_var": components.between,
        "within_var": components.within,
        "pilot_scenarios": components.pilot_scenarios,
        "pilot_reps": components.pilot_reps,
        "worst_case": components.worst_case,
        "target_power": 0.8,
        "plans": [
            {"difference": delta, "reps": p.reps, "scenarios": p.scenarios}
            for delta, rows in plans.items()
            for p in rows
        ],
    }


def _consistency(table: pl.DataFrame, metrics: MetricSet) -> dict[str, Any]:
    """Per variant agreement and flips (on the headline metric), and flips per rate."""
    per_variant = (
        table.group_by("variant")
        .agg(
            pl.col("agreement").mean().alias("mean_agreement"),
            (pl.col("distinct_answers") == 1).mean().alias("all_reps_agree"),
            pl.col("flips").sum().alias("flipping_scenarios"),
        )
        .sort("variant")
    )
    flips = table.filter(pl.col("flips")).select(
        "scenario_id", "variant", metrics.headline, "agreement"
    )
    by_metric = table.group_by("variant").agg(
        pl.col(f"flips_{metric}").sum().alias(metric) for metric in metrics.rates
    )
    return {
        "per_variant": per_variant.to_dicts(),
        "flips": flips.to_dicts(),
        "flipping_by_metric": {row.pop("variant"): row for row in by_metric.to_dicts()},
    }


def _reliability(r: Reliability) -> dict[str, Any]:
    """k as text keys, as JSON has them."""
    return {
        "variant": r.variant,
        "metric": r.metric,
        "scenarios": r.scenarios,
        "pass_hat": {str(k): v for k, v in r.pass_hat.items()},
        "pass_at": {str(k): v for k, v in r.pass_at.items()},
        "excluded": {str(k): v for k, v in r.excluded.items()},
    }


def _scenarios(
    analysis: Analysis, names: list[str], table: pl.DataFrame | None = None
) -> list[dict[str, Any]]:
    """Every scenario of the definition; with ``table``, its headline rate per variant
    (``exact``; ``success`` for conversations, whose scenarios have no ``expect``)."""
    agentic = analysis.experiment.agentic
    out = [
        {
            "id": s.id,
            "category": s.category,
            "prompt": s.prompt,
            **({} if agentic else {"expect": {v: s.expectation_for(v).kind for v in names}}),
        }
        for s in analysis.experiment.scenarios
    ]
    if table is not None:
        metric = metric_set(table).headline
        rates = table.group_by("scenario_id", "variant").agg(pl.col(metric).cast(pl.Float64).mean())
        lookup = {(s, v): r for s, v, r in rates.iter_rows()}
        for s in out:
            s[metric] = {v: lookup.get((s["id"], v)) for v in names}
    return out


def _all_variants(analysis: Analysis) -> list[str]:
    present = set(analysis.table["variant"])
    return [v.name for v in analysis.experiment.variants if v.name in present]


def _interactions(analysis: Analysis) -> list[dict[str, Any]]:
    labels = metric_set(analysis.table).labels
    return [
        {
            "model": model,
            "reference_model": analysis.reference_model,
            "reference": analysis.reference,
            "treatment": treatment,
            "metrics": [{**i.__dict__, "label": labels[i.metric]} for i in rows],
        }
        for (model, treatment), rows in analysis.interactions.items()
    ]
