"""The report's payload: an :class:`~tooltrial.analysis.Analysis` as a typed
:class:`~tooltrial.report.document.ReportPayload` (see ``document`` for its shape).

Every number the Markdown and the HTML show comes from here, so the formats cannot
disagree. Guarantees:

- the experiment's kind is decided once, by :func:`experiment_kind`; every rule that
  depends on it (metrics, labels, method, per-scenario rate) follows from that value;
- each variant's headline rate is computed once (``analysis.compare.headline_rates``:
  per-scenario means, averaged over the scenarios every variant has); with two variants,
  or any number that cover the same scenarios, the primary comparison pairs those same
  per-scenario means, so its means are these rates and its difference is theirs;
- a footprint is mapped from the analysis in one function, :func:`tool_footprint`.
"""

from __future__ import annotations

import polars as pl

import tooltrial.analysis as an
from tooltrial.analysis import METRIC_SETS, Analysis, MetricSet, ModelAnalysis
from tooltrial.analysis.compare import headline_rates
from tooltrial.analysis.power import TARGET
from tooltrial.definitions import Experiment
from tooltrial.report import document as doc
from tooltrial.tools.diff import diff_tools

METHOD = {
    "primary": "the experiment's declared primary metric is the headline and is not "
    "adjusted; every other tested metric shows its p-value Holm-adjusted over that "
    "comparison's secondary metrics (p Holm); input tokens differ by design (the "
    "variants' prompts and tool definitions) and are reported, not tested",
    "reliability": "pass^k = C(c,k)/C(n,k), pass@k = 1 − C(n−c,k)/C(n,k) per scenario "
    "(c of n results succeed on the primary metric; errors are not tries), averaged over "
    "the scenarios with at least k results in every variant (one set per k, named when "
    "some are left out); the pass^k differences are paired over that same set and are "
    "descriptive: an interval, no p-value",
    "unit": "scenario (reps are averaged within scenario and variant first)",
    "headline": "each variant's headline rate is the mean, over the scenarios every "
    "variant has, of its per-scenario means (each scenario weighs the same however many "
    "reps it has); the paired test compares these same per-scenario means",
    "interval": "95% interval on the per-scenario differences, one rule for every metric: "
    "a t-interval that allows for stuck scenarios (every rep failed, or succeeded, in both "
    "variants: they could be all-or-nothing ones that switch) with a pseudo-scenario of "
    "weight max(1/n, (stuck/n)²), half at +1 and half at −1, and for skewness (half of "
    "Hall's correction), clipped to [−1, 1] for rates; never zero-width for a rate. "
    "Simulated coverage 95 ± 2% at 20 and 50 scenarios (bench/sim_stats.py); wider than "
    "it need be below 20",
    "test": "p (t): the interval's own two-sided test, so the interval excludes zero "
    "exactly when p < 0.05; p (sign-flip): paired sign-flip permutation test, exact under "
    "symmetry, conservative when outcomes are coarse",
    "power": "simulated from these results as a pilot: studies of N scenarios drawn from "
    "the pilot's (all-or-nothing ones stay all-or-nothing), the difference injected as "
    "the same shift of every scenario's rate (failing all-or-nothing scenarios switch), "
    "tested with the report's own interval; the fewest N with 80% power. A 1-rep pilot "
    "cannot tell all-or-nothing scenarios from graded ones and gets a range",
    "verdict": "better or worse when the primary difference's interval excludes zero, "
    "else inconclusive, with the smallest difference this design detects with 80% power",
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


def payload(analysis: Analysis) -> doc.ReportPayload:
    """Everything the report says, typed."""
    kind = experiment_kind(analysis)
    metrics = METRIC_SETS[kind]
    method = dict(AGENTIC_METHOD if kind == "agentic" else METHOD)
    if len(analysis.models) > 1:
        method["interaction"] = INTERACTION_METHOD
    experiment = analysis.experiment
    return doc.ReportPayload(
        kind=kind,
        experiment=experiment.name,
        definition=experiment.source,
        fixed_timestamp=experiment.fixed_timestamp.isoformat(),
        models=tuple(m.model for m in analysis.models),
        reference_model=analysis.reference_model,
        files=tuple(str(f) for f in analysis.loaded.files),
        results=analysis.table.height,
        error_lines=analysis.loaded.errors,
        warnings=tuple(analysis.warnings),
        reference=analysis.reference,
        primary_metric=experiment.primary_metric,
        primary_label=metrics.labels[experiment.primary_metric],
        scenario_metric=metrics.headline,
        scenarios=_scenarios(analysis, kind),
        per_model=tuple(_section(analysis, m, metrics) for m in analysis.models),
        interaction=_interactions(analysis, metrics),
        method=method,
    )


def experiment_kind(analysis: Analysis) -> doc.Kind:
    """The experiment's kind: the one place the report decides it (``ReportPayload``
    refuses any other value)."""
    return analysis.kind


def tool_footprint(footprint: an.Footprint) -> doc.ToolFootprint:
    """The analysis's footprint as the payload's (the one mapping)."""
    return doc.ToolFootprint(
        chars=footprint.chars, tokens=footprint.tokens, counted_by=footprint.counted_by
    )


def _section(analysis: Analysis, m: ModelAnalysis, metrics: MetricSet) -> doc.ModelSection:
    primary = analysis.experiment.primary_metric
    names = [v.variant for v in m.variants]
    headline = headline_rates(m.table, primary, names)
    return doc.ModelSection(
        model=m.model,
        results=m.table.height,
        error_lines=m.errors,
        headline=doc.Headline(
            metric=primary, scenarios=len(headline.scenarios), rates=headline.rates
        ),
        variants=tuple(_variant(v) for v in m.variants),
        comparisons=tuple(
            _comparison(
                analysis.reference,
                m,
                t,
                metrics,
                tool_changes(analysis.experiment, analysis.reference, t),
            )
            for t in m.comparisons
        ),
        categories=tuple(
            doc.CategoryRate(
                category=row["category"],
                variant=row["variant"],
                results=row["results"],
                rate=row[metrics.headline],
            )
            for row in m.categories.iter_rows(named=True)
        ),
        consistency=_consistency(m.consistency, metrics),
        reliability=tuple(_reliability(r) for r in m.reliability),
        scenarios=_scenario_rates(m.table, analysis.experiment.scenario_ids, names, metrics),
    )


def _variant(v: an.VariantSummary) -> doc.Variant:
    return doc.Variant(
        variant=v.variant,
        results=v.results,
        scenarios=v.scenarios,
        reps=v.reps,
        rates=v.rates,
        calls_per_answer=v.calls_per_answer,
        input_tokens=v.input_tokens,
        output_tokens=v.output_tokens,
        latency_s=doc.Latency(mean=v.latency_mean_s, p50=v.latency_p50_s, p95=v.latency_p95_s),
        tool_footprint=tool_footprint(v.footprint),
        conversations=None if v.conversations is None else _costs(v.conversations),
    )


def _costs(c: an.ConversationCosts) -> doc.ConversationCosts:
    return doc.ConversationCosts(
        conversations=c.conversations,
        successes=c.successes,
        failed=c.failed,
        mean=c.mean,
        per_success=c.per_success,
        failed_checks=c.failed_checks,
        judged_checks=c.judged_checks,
        stop_reasons=c.stop_reasons,
    )


def tool_changes(experiment: Experiment, reference: str, treatment: str) -> doc.ToolChanges:
    """``reference``'s tools against ``treatment``'s, as the run recorded them."""
    tools = {v.name: [t.model_dump() for t in v.tools] for v in experiment.variants}
    found = diff_tools(tools.get(reference, []), tools.get(treatment, []))
    return doc.ToolChanges(
        added=found.added,
        removed=found.removed,
        renamed=tuple(doc.Renamed(before=r.before, after=r.after) for r in found.renamed),
        descriptions=tuple(c.name for c in found.descriptions),
        schemas=tuple(c.name for c in found.schemas),
        lines=tuple(found.lines()),
    )


def _comparison(
    reference: str,
    m: ModelAnalysis,
    treatment: str,
    metrics: MetricSet,
    tools: doc.ToolChanges,
) -> doc.Comparison:
    largest = m.largest[treatment].rename({reference: "reference", treatment: "treatment"})
    return doc.Comparison(
        reference=reference,
        treatment=treatment,
        metrics=tuple(_difference(d, metrics.labels[d.metric]) for d in m.comparisons[treatment]),
        reliability_differences=tuple(
            _reliability_difference(d) for d in m.reliability_differences[treatment].values()
        ),
        largest_differences=tuple(
            doc.LargestDifference(**row) for row in largest.iter_rows(named=True)
        ),
        power=_power(m.power[treatment]),
        verdict=_verdict(m.verdicts.get(treatment)),
        tools=tools,
    )


def _verdict(v: an.Verdict | None) -> doc.Verdict | None:
    return None if v is None else doc.Verdict(outcome=v.outcome, text=v.text)


def _difference(d: an.Difference, label: str) -> doc.MetricDifference:
    return doc.MetricDifference(
        metric=d.metric,
        label=label,
        reference=d.reference,
        treatment=d.treatment,
        reference_mean=d.reference_mean,
        treatment_mean=d.treatment_mean,
        difference=d.difference,
        ci_low=d.ci_low,
        ci_high=d.ci_high,
        p_value=d.p_value,
        p_sign_flip=d.p_sign_flip,
        scenarios=d.scenarios,
        primary=d.primary,
        p_holm=d.p_holm,
        sign_flip_floor=d.sign_flip_floor,
        warning=d.warning,
    )


def _reliability_difference(d: an.ReliabilityDifference) -> doc.ReliabilityDifference:
    return doc.ReliabilityDifference(
        k=d.k,
        reference_mean=d.reference_mean,
        treatment_mean=d.treatment_mean,
        estimate=d.statistics.estimate,
        ci_low=d.statistics.ci_low,
        ci_high=d.statistics.ci_high,
        scenarios=len(d.scenarios),
        excluded=d.excluded,
    )


def _power(advice: an.Advice) -> doc.Power:
    return doc.Power(
        metric=advice.metric,
        pilot_scenarios=advice.pilot_scenarios,
        pilot_reps=advice.pilot_reps,
        all_or_nothing_share=advice.all_or_nothing_share,
        target_power=TARGET,
        plans=tuple(
            doc.PowerPlan(
                difference=p.difference,
                reps=p.reps,
                scenarios=p.scenarios,
                scenarios_low=p.low,
                scenarios_high=p.high,
            )
            for p in advice.plans
        ),
        detectable=advice.detectable,
        detectable_low=advice.detectable_low,
        notes=advice.notes,
    )


def _consistency(table: pl.DataFrame, metrics: MetricSet) -> doc.Consistency:
    """Per variant agreement and flips (on the per-scenario rate), and flips per rate."""
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
        "scenario_id", "variant", pl.col(metrics.headline).alias("rate"), "agreement"
    )
    by_metric = table.group_by("variant").agg(
        pl.col(f"flips_{metric}").sum().alias(metric) for metric in metrics.rates
    )
    return doc.Consistency(
        per_variant=tuple(
            doc.VariantConsistency(**row) for row in per_variant.iter_rows(named=True)
        ),
        flips=tuple(doc.Flip(**row) for row in flips.iter_rows(named=True)),
        flipping_by_metric={row.pop("variant"): row for row in by_metric.iter_rows(named=True)},
    )


def _reliability(r: an.Reliability) -> doc.Reliability:
    return doc.Reliability(
        variant=r.variant,
        metric=r.metric,
        scenarios=r.scenarios,
        pass_hat=r.pass_hat,
        pass_at=r.pass_at,
        excluded=r.excluded,
        excluded_scenarios=r.excluded_scenarios,
    )


def _scenarios(analysis: Analysis, kind: doc.Kind) -> tuple[doc.Scenario, ...]:
    """Every scenario of the definition; single-turn ones with the expected kind for
    each variant with results."""
    names = _all_variants(analysis)
    return tuple(
        doc.Scenario(
            id=s.id,
            category=s.category,
            prompt=s.prompt,
            expect=(None if kind == "agentic" else {v: s.expectation_for(v).kind for v in names}),
        )
        for s in analysis.experiment.scenarios
    )


def _scenario_rates(
    table: pl.DataFrame, ids: tuple[str, ...], names: list[str], metrics: MetricSet
) -> tuple[doc.ScenarioRates, ...]:
    """Every scenario of the definition with its per-scenario rate per variant."""
    rates = table.group_by("scenario_id", "variant").agg(
        pl.col(metrics.headline).cast(pl.Float64).mean()
    )
    lookup = {(s, v): r for s, v, r in rates.iter_rows()}
    return tuple(doc.ScenarioRates(id=s, rates={v: lookup.get((s, v)) for v in names}) for s in ids)


def _all_variants(analysis: Analysis) -> list[str]:
    present = set(analysis.table["variant"])
    return [v.name for v in analysis.experiment.variants if v.name in present]


def _interactions(analysis: Analysis, metrics: MetricSet) -> tuple[doc.Interaction, ...]:
    return tuple(
        doc.Interaction(
            model=model,
            reference_model=analysis.reference_model,
            reference=analysis.reference,
            treatment=treatment,
            metrics=tuple(_interaction(i, metrics.labels[i.metric]) for i in rows),
        )
        for (model, treatment), rows in analysis.interactions.items()
    )


def _interaction(i: an.Interaction, label: str) -> doc.InteractionMetric:
    return doc.InteractionMetric(
        metric=i.metric,
        label=label,
        reference=i.reference,
        treatment=i.treatment,
        reference_model=i.reference_model,
        model=i.model,
        reference_model_difference=i.reference_model_difference,
        model_difference=i.model_difference,
        interaction=i.interaction,
        ci_low=i.ci_low,
        ci_high=i.ci_high,
        p_value=i.p_value,
        p_sign_flip=i.p_sign_flip,
        scenarios=i.scenarios,
    )
