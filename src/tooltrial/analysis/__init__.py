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
- 95% interval: cluster bootstrap, resampling scenarios with replacement (percentile);
- p-value: paired t-test on ``d_s`` (one-sample t-test of "mean d_s = 0"); it assumes
  the mean of the per-scenario differences is close to normal, which with 20 or more
  scenarios holds well enough for bounded rates (checked by simulation in the tests);
- a second p-value, a paired sign-flip permutation test on ``d_s`` (exact when at most
  16 differences are non-zero), assumes only that with no variant effect each scenario's
  difference is as likely positive as negative. With few reps the differences take few
  values, and then it is conservative (rejects less often than 5% at 0.05).

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
    compare,
    interaction,
    largest_differences,
    one_model,
    scenario_means,
    variance_components,
)
from tooltrial.analysis.load import Loaded, experiment_for, load_results
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
from tooltrial.log.reader import result_files

__all__ = [
    "AGENTIC",
    "METRICS",
    "METRIC_SETS",
    "RATE_METRICS",
    "SINGLE_TURN",
    "Analysis",
    "ConversationCosts",
    "Difference",
    "Footprint",
    "Interaction",
    "Loaded",
    "MetricSet",
    "ModelAnalysis",
    "PairedStatistics",
    "PowerPlan",
    "Reliability",
    "VarianceComponents",
    "VariantSummary",
    "analyze",
    "by_category",
    "cluster_bootstrap_ci",
    "compare",
    "consistency",
    "conversation_costs",
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
    "result_files",
    "scenario_means",
    "scenarios_needed",
    "score",
    "score_conversations",
    "sign_flip_min_p",
    "sign_flip_test",
    "summarize",
    "t_interval",
    "tidy_table",
    "variance_components",
]
