"""Analysis: result files → a tidy table of scored results → comparisons with uncertainty.

Reading is columnar (polars scans the NDJSON; no line becomes a Python dict). Scoring
needs Python, so it runs once per *distinct answer* — (variant, scenario, tool calls,
has text, asks a question) — and is joined back; repeated answers cost nothing.

Statistics respect the design: repetitions are nested in scenarios, so every comparison
first averages the reps of each scenario and variant, then works on the per-scenario
differences ``d_s = mean(treatment) - mean(reference)``:

- estimate: the mean of ``d_s`` (each scenario weighs the same);
- 95% interval: cluster bootstrap, resampling scenarios with replacement (percentile);
- p-value: paired t-test on ``d_s`` (one-sample t-test of "mean d_s = 0"); it assumes
  the mean of the per-scenario differences is close to normal, which with 20 or more
  scenarios holds well enough for bounded rates (checked by simulation in the tests);
- a second p-value, a paired sign-flip permutation test on ``d_s`` (exact when at most
  16 differences are non-zero), assumes only that with no variant effect each scenario's
  difference is as likely positive as negative. With few reps the differences take few
  values, and then it is conservative (rejects less often than 5% at 0.05).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tooltrial.analysis.compare import (
    Difference,
    compare,
    largest_differences,
    scenario_means,
    variance_components,
)
from tooltrial.analysis.load import Loaded, experiment_for, load_results, result_files
from tooltrial.analysis.stats import (
    PowerPlan,
    VarianceComponents,
    cluster_bootstrap_ci,
    paired_power,
    paired_t_test,
    scenarios_needed,
    sign_flip_test,
)
from tooltrial.analysis.summary import (
    Footprint,
    VariantSummary,
    by_category,
    consistency,
    summarize,
    tool_footprint,
)
from tooltrial.analysis.table import METRICS, RATE_METRICS, export_table, score, tidy_table
from tooltrial.definitions import Experiment
from tooltrial.errors import ResultsError, UsageError

__all__ = [
    "METRICS",
    "RATE_METRICS",
    "Analysis",
    "Difference",
    "Footprint",
    "Loaded",
    "PowerPlan",
    "VarianceComponents",
    "VariantSummary",
    "analyze",
    "by_category",
    "cluster_bootstrap_ci",
    "compare",
    "consistency",
    "experiment_for",
    "export_table",
    "largest_differences",
    "load_results",
    "paired_power",
    "paired_t_test",
    "result_files",
    "scenario_means",
    "scenarios_needed",
    "score",
    "sign_flip_test",
    "summarize",
    "tidy_table",
    "tool_footprint",
    "variance_components",
]


@dataclass(frozen=True)
class Analysis:
    experiment: Experiment
    loaded: Loaded
    table: pl.DataFrame
    variants: list[VariantSummary]
    reference: str
    comparisons: dict[str, list[Difference]]
    """Treatment variant → its differences from the reference."""
    largest: dict[str, pl.DataFrame]
    categories: pl.DataFrame
    consistency: pl.DataFrame
    power: dict[str, tuple[VarianceComponents, dict[float, list[PowerPlan]]]]
    warnings: list[str] = field(default_factory=list)


def analyze(
    paths: Iterable[str | Path],
    experiment: str | Path | None = None,
    reference: str | None = None,
    n_boot: int = 10_000,
    seed: int = 0,
    count_tokens: bool = True,
    detect: Sequence[float] = (0.1, 0.2),
) -> Analysis:
    paths_list = list(paths)
    table, definition, loaded = tidy_table(paths_list, experiment)
    present = [v.name for v in definition.variants if v.name in set(table["variant"])]
    if not present:
        files = ", ".join(str(p) for p in paths_list)
        raise ResultsError(
            f"no results in these files ({files}): they hold no result line"
            + (
                f" for any variant of {definition.name!r}"
                if table.height
                else " (only metadata or error lines)"
            )
            + "; run the experiment, or resume it with `tooltrial run --resume RUN_ID`"
        )
    if reference is None:
        reference = present[0]
    elif reference not in present:
        raise UsageError(f"--reference {reference!r}: no results; variants here: {present}")
    warnings = [
        f"variant {v.name!r}: its definition changed since the run "
        f"({loaded.variant_hashes[v.name]} in the files, {v.definition_hash} now)"
        for v in definition.variants
        if v.name in loaded.variant_hashes and loaded.variant_hashes[v.name] != v.definition_hash
    ]
    others = [v for v in present if v != reference]
    comparisons = {t: compare(table, reference, t, n_boot=n_boot, seed=seed) for t in others}
    power = {}
    for t in others:
        components = variance_components(table, reference, t)
        power[t] = (components, {delta: scenarios_needed(delta, components) for delta in detect})
    return Analysis(
        experiment=definition,
        loaded=loaded,
        table=table,
        variants=summarize(table, definition, count_tokens),
        reference=reference,
        comparisons=comparisons,
        largest={t: largest_differences(table, reference, t) for t in others},
        categories=by_category(table),
        consistency=consistency(table),
        power=power,
        warnings=warnings,
    )
