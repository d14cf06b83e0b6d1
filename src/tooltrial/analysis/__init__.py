"""Analysis: result files → a tidy table of scored results → comparisons with uncertainty.

Reading is columnar (polars scans the NDJSON; no line becomes a Python dict). Scoring
needs Python, so it runs once per *distinct answer* — (variant, scenario, tool calls,
has text, asks a question) — and is joined back; repeated answers cost nothing. Agentic
results (conversations) are not re-scored: each row carries the verdict recorded when
the conversation ended (``success``, one column per part), its counts and its tokens;
the primary metric is ``success``, and each variant also gets its costs per success
(``ConversationCosts``). Which metrics a table has, and the rules for each, is
``table.MetricSet``'s (``SINGLE_TURN``, ``AGENTIC``); a folder mixing both kinds is refused.

Statistics respect the design: repetitions are nested in scenarios, so every comparison
first averages the reps of each scenario and variant, then works on the per-scenario
differences ``d_s = mean(treatment) - mean(reference)``:

- estimate: the mean of ``d_s`` (each scenario weighs the same);
- 95% interval and p-value: one rule for every metric, pass^k and the interaction
  (``intervals.difference_interval``): a t-interval that allows for stuck scenarios
  (every rep failed, or succeeded, in both variants: possibly all-or-nothing ones that
  could switch) and for skewness, clipped to the bounds; the p-value is the interval's
  own test, so the interval excludes zero exactly when p < 0.05. Checked by simulation
  (``bench/sim_stats.py``): 95 ± 2% coverage at 20 and 50 scenarios for uniform,
  Beta(0.5, 0.5) and 70%-all-or-nothing difficulty; wider than it need be below 20;
- a second p-value, a paired sign-flip permutation test on ``d_s`` (exact when at most
  16 differences are non-zero), assumes only that with no variant effect each scenario's
  difference is as likely positive as negative;
- power (``power.advise``): the scenarios a study needs, by simulating it from these
  results as a pilot with the report's own test; a 1-rep pilot gets a range;
- the verdict (``verdict.verdict``): the primary comparison in words.

The model is an axis of the design, like the variant: every summary is per (model,
variant), variants are compared *within* each model, and with several models the
interaction — does treatment − reference differ between a model and the reference model?
— is the mean of ``dd_s = d_s(model) - d_s(reference model)`` over the scenarios present
in all four cells, with the same interval and tests as every comparison.
"""

from tooltrial.analysis.analyze import Analysis, ModelAnalysis, analyze
from tooltrial.analysis.compare import (
    Difference,
    Interaction,
    ReliabilityDifference,
    compare,
    interaction,
    largest_differences,
    one_model,
    scenario_means,
    variance_components,
)
from tooltrial.analysis.intervals import difference_interval, stuck_count
from tooltrial.analysis.load import Loaded, experiment_for, load_results
from tooltrial.analysis.power import Advice, Pilot, advise, pilot_of
from tooltrial.analysis.stats import (
    PairedStatistics,
    PowerPlan,
    VarianceComponents,
    cluster_bootstrap_ci,
    excludes_zero,
    holm,
    paired_power,
    paired_statistics,
    paired_t_test,
    pass_at_k,
    pass_hat_k,
    scenarios_needed,
    sign_flip_min_p,
    sign_flip_test,
    t_interval,
)
from tooltrial.analysis.summary import (
    ConversationCosts,
    Footprint,
    Reliability,
    VariantSummary,
    by_category,
    consistency,
    conversation_costs,
    estimated_footprint,
    summarize,
)
from tooltrial.analysis.table import (
    AGENTIC,
    METRIC_SETS,
    METRICS,
    RATE_METRICS,
    SINGLE_TURN,
    MetricSet,
    export_table,
    is_rate,
    metric_set,
    score,
    score_conversations,
    tidy_table,
)
from tooltrial.analysis.verdict import Verdict
from tooltrial.log.reader import result_files

__all__ = [
    "AGENTIC",
    "METRICS",
    "METRIC_SETS",
    "RATE_METRICS",
    "SINGLE_TURN",
    "Advice",
    "Analysis",
    "ConversationCosts",
    "Difference",
    "Footprint",
    "Interaction",
    "Loaded",
    "MetricSet",
    "ModelAnalysis",
    "PairedStatistics",
    "Pilot",
    "PowerPlan",
    "Reliability",
    "ReliabilityDifference",
    "VarianceComponents",
    "VariantSummary",
    "Verdict",
    "advise",
    "analyze",
    "by_category",
    "cluster_bootstrap_ci",
    "compare",
    "consistency",
    "conversation_costs",
    "difference_interval",
    "estimated_footprint",
    "excludes_zero",
    "experiment_for",
    "export_table",
    "holm",
    "interaction",
    "is_rate",
    "largest_differences",
    "load_results",
    "metric_set",
    "one_model",
    "paired_power",
    "paired_statistics",
    "paired_t_test",
    "pass_at_k",
    "pass_hat_k",
    "pilot_of",
    "result_files",
    "scenario_means",
    "scenarios_needed",
    "score",
    "score_conversations",
    "sign_flip_min_p",
    "sign_flip_test",
    "stuck_count",
    "summarize",
    "t_interval",
    "tidy_table",
    "variance_components",
]
