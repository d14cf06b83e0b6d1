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
    compare,
    interaction,
    largest_differences,
    one_model,
    reliability_differences,
    variance_components,
)
from tooltrial.analysis.load import Loaded
from tooltrial.analysis.stats import (
    PairedStatistics,
    PowerPlan,
    VarianceComponents,
    scenarios_needed,
)
from tooltrial.analysis.summary import (
    Reliability,
    VariantSummary,
    by_category,
    consistency,
    reliability,
    summarize,
)
from tooltrial.analysis.table import (
    tidy_table,
)
from tooltrial.definitions import Experiment
from tooltrial.errors import ResultsError, UsageError

Power = tuple[VarianceComponents, dict[float, list[PowerPlan]]]


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
    power: dict[str, Power]
    reliability: list[Reliability]
    """pass^k and pass@k per variant, on the primary metric."""
    reliability_differences: dict[str, dict[int, PairedStatistics]]
    """Treatment → k → its paired difference from the reference in pass^k."""
    errors: int
    """``scenario_error`` lines of this model (never results)."""


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


@dataclass(frozen=True)
class _Options:
    seed: int
    count_tokens: bool
    detect: Sequence[float]


def analyze(
    paths: Iterable[str | Path],
    experiment: str | Path | None = None,
    reference: str | None = None,
    seed: int = 0,
    count_tokens: bool = True,
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
    options = _Options(seed, count_tokens, tuple(detect))
    others = [v for v in present if v != reference]
    return Analysis(
        experiment=definition,
        loaded=loaded,
        table=table,
        reference=reference,
        models=[_analyze_model(table, definition, loaded, m, reference, options) for m in models],
        interactions=_interactions(table, reference, others, models, options),
        warnings=_changed_definitions(definition, loaded),
    )


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


def _changed_definitions(definition: Experiment, loaded: Loaded) -> list[str]:
    """Variants whose definition changed since the run. An MCP variant's tools are known
    only from its server (recorded in the files, checked by ``--resume``): not compared."""
    return [
        f"variant {v.name!r}: its definition changed since the run "
        f"({loaded.variant_hashes[v.name]} in the files, {v.definition_hash} now)"
        for v in definition.variants
        if v.mcp is None
        and v.name in loaded.variant_hashes
        and loaded.variant_hashes[v.name] != v.definition_hash
    ]


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
    return ModelAnalysis(
        model=model,
        table=rows,
        variants=summarize(rows, definition, options.count_tokens),
        comparisons={
            t: compare(
                rows,
                reference,
                t,
                seed=seed,
                primary=definition.primary_metric,
                randomised=loaded.randomised,
            )
            for t in others
        },
        largest={t: largest_differences(rows, reference, t) for t in others},
        categories=by_category(rows),
        consistency=consistency(rows),
        power={
            t: _power(rows, reference, t, options.detect, definition.primary_metric) for t in others
        },
        reliability=reliability(rows, definition, definition.primary_metric),
        reliability_differences={
            t: reliability_differences(rows, reference, t, definition.primary_metric, seed)
            for t in others
        },
        errors=loaded.errors_by_model.get(model, 0),
    )


def _power(
    table: pl.DataFrame, reference: str, treatment: str, detect: Sequence[float], metric: str
) -> Power:
    components = variance_components(table, reference, treatment, metric)
    return components, {delta: scenarios_needed(delta, components) for delta in detect}
