"""``analyze``: result files → every model's summaries and comparisons (see the package
docstring for the statistics)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tooltrial.analysis.compare import (
    Difference,
    Interaction,
    ReliabilityDifference,
    compare,
    interaction,
    largest_differences,
    one_model,
    pilot,
    reliability_differences,
)
from tooltrial.analysis.load import Loaded, definition_warnings
from tooltrial.analysis.power import Advice, advise
from tooltrial.analysis.summary import (
    Footprint,
    FootprintOf,
    Reliability,
    VariantSummary,
    by_category,
    consistency,
    estimated_footprint,
    reliability,
    summarize,
)
from tooltrial.analysis.table import metric_set, tidy_table
from tooltrial.analysis.verdict import Verdict, verdict
from tooltrial.definitions import Experiment, Variant
from tooltrial.definitions.experiment import Kind
from tooltrial.errors import ResultsError, UsageError


@dataclass(frozen=True)
class ModelAnalysis:
    """Everything about one model's results: its variants and their comparisons."""

    model: str
    table: pl.DataFrame
    """This model's rows of the tidy table."""
    variants: list[VariantSummary]
    comparisons: dict[str, list[Difference]]
    """Treatment variant → its differences from the reference, within this model."""
    largest: dict[str, pl.DataFrame]
    categories: pl.DataFrame
    consistency: pl.DataFrame
    power: dict[str, Advice]
    """Treatment → the power advice from this comparison's results as a pilot."""
    reliability: list[Reliability]
    """pass^k and pass@k per variant, on the primary metric, each k over one scenario set."""
    reliability_differences: dict[str, dict[int, ReliabilityDifference]]
    """Treatment → k → its paired difference from the reference in pass^k (same sets)."""
    errors: int
    """``scenario_error`` lines of this model (never results)."""
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    """Treatment → the verdict in words on the primary metric."""


@dataclass(frozen=True)
class Analysis:
    experiment: Experiment
    loaded: Loaded
    table: pl.DataFrame
    """Every cell of every model."""
    reference: str
    """The reference variant (compared with each other variant, within each model)."""
    models: list[ModelAnalysis]
    """One per model, the reference model first."""
    interactions: dict[tuple[str, str], list[Interaction]] = field(default_factory=dict)
    """(model, treatment) → the interaction with the reference model, per rate metric;
    empty with one model."""
    warnings: list[str] = field(default_factory=list)

    @property
    def reference_model(self) -> str:
        return self.models[0].model

    @property
    def kind(self) -> Kind:
        """The kind the results record (``Loaded.kind``)."""
        return self.loaded.kind


@dataclass(frozen=True)
class _Options:
    seed: int
    detect: Sequence[float]


def analyze(
    paths: Iterable[str | Path],
    experiment: str | Path | None = None,
    reference: str | None = None,
    seed: int = 0,
    detect: Sequence[float] = (0.1, 0.2),
    reference_model: str | None = None,
) -> Analysis:
    """Score the results; compare variants within each model, and models with each other.

    ``reference`` defaults to the definition's first variant with results;
    ``reference_model`` to the first model in sorted order.
    """
    paths = list(paths)
    table, definition, loaded = tidy_table(paths, experiment)
    present = [v.name for v in definition.variants if v.name in set(table["variant"])]
    if not present:
        raise ResultsError(
            f"no results in these files ({', '.join(str(p) for p in paths)}): they hold no "
            + (
                f"result line for any variant of {definition.name!r}"
                if table.height
                else "result line (only metadata or error lines)"
            )
            + "; run the experiment, or resume it with `tooltrial run --resume RUN_ID`"
        )
    reference = _pick(reference, present, "--reference", "variants")
    models = _pick_first(reference_model, sorted(table["model"].unique().to_list()))
    options = _Options(seed, tuple(detect))
    others = [v for v in present if v != reference]
    return Analysis(
        experiment=definition,
        loaded=loaded,
        table=table,
        reference=reference,
        models=[_analyze_model(table, definition, loaded, m, reference, options) for m in models],
        interactions=_interactions(table, reference, others, models, options),
        warnings=definition_warnings(loaded, definition),
    )


def _footprints(loaded: Loaded) -> FootprintOf:
    """Each (model, variant)'s footprint as the run recorded it, else estimated."""

    def footprint(model: str, variant: Variant) -> Footprint:
        recorded = loaded.footprint(model, variant.name)
        if recorded is None:
            return estimated_footprint(model, variant)
        return Footprint(recorded.chars, recorded.tokens, recorded.counted_by)

    return footprint


def _interactions(
    table: pl.DataFrame, reference: str, others: list[str], models: list[str], options: _Options
) -> dict[tuple[str, str], list[Interaction]]:
    """(model, treatment) → interaction with the first model; pairs without data left out."""
    found = {
        (m, t): interaction(table, reference, t, models[0], m, seed=options.seed)
        for m in models[1:]
        for t in others
    }
    return {key: rows for key, rows in found.items() if rows}


def _pick(choice: str | None, present: list[str], flag: str, what: str) -> str:
    if choice is None:
        return present[0]
    if choice not in present:
        raise UsageError(f"{flag} {choice!r}: no results; {what} here: {present}")
    return choice


def _pick_first(reference_model: str | None, models: list[str]) -> list[str]:
    """The models, the reference model first."""
    first = _pick(reference_model, models, "reference model", "models")
    return [first, *(m for m in models if m != first)]


def _analyze_model(
    table: pl.DataFrame,
    definition: Experiment,
    loaded: Loaded,
    model: str,
    reference: str,
    options: _Options,
) -> ModelAnalysis:
    """One model's summaries, and reference vs each other variant within it."""
    rows = one_model(table, model)
    variants = set(rows["variant"])
    others = [
        v.name
        for v in definition.variants
        if v.name in variants and v.name != reference and reference in variants
    ]
    seed = options.seed
    primary = definition.primary_metric
    names = [v.name for v in definition.variants if v.name in variants]
    comparisons = {
        t: compare(rows, reference, t, seed=seed, primary=primary, randomised=loaded.randomised)
        for t in others
    }
    power = {
        t: advise(pilot(rows, reference, t, primary), primary, options.detect, seed=seed)
        for t in others
    }
    return ModelAnalysis(
        model=model,
        table=rows,
        variants=summarize(rows, definition, _footprints(loaded)),
        comparisons=comparisons,
        largest={t: largest_differences(rows, reference, t) for t in others},
        categories=by_category(rows),
        consistency=consistency(rows),
        power=power,
        reliability=reliability(rows, definition, primary),
        reliability_differences={
            t: reliability_differences(rows, reference, t, primary, seed, names) for t in others
        },
        errors=loaded.errors_by_model.get(model, 0),
        verdicts=_verdicts(rows, comparisons, power),
    )


def _verdicts(
    rows: pl.DataFrame, comparisons: dict[str, list[Difference]], power: dict[str, Advice]
) -> dict[str, Verdict]:
    """Treatment → its verdict on the primary metric (none without a primary difference)."""
    labels = metric_set(rows).labels
    out = {}
    for treatment, differences in comparisons.items():
        d = next((x for x in differences if x.primary), None)
        if d is None or d.p_value is None:
            continue
        advice = power[treatment]
        out[treatment] = verdict(
            reference=d.reference,
            treatment=treatment,
            metric=d.metric,
            label=labels[d.metric],
            difference=d.difference,
            ci_low=d.ci_low,
            ci_high=d.ci_high,
            p_value=d.p_value,
            scenarios=d.scenarios,
            reps=max(1, round(advice.pilot_reps)),
            advice=advice,
        )
    return out
