"""The report's payload as typed data: frozen pydantic models, one per thing the report
says. ``report.build`` builds a :class:`ReportPayload` from an analysis; the Markdown
and the HTML read nothing else; ``--format json`` prints it; ``report.schema`` publishes
its JSON Schema (``report.schema.json``, beside this module).

Guarantees:

- every model is frozen and refuses unknown fields, so a renderer cannot read a key that
  is not here and the JSON has no key that is not declared;
- an undefined number (no data, an interval from one scenario) is None, never NaN: a
  :data:`Number` turns NaN and ±inf into None when the payload is built, and every other
  float refuses them, so the object, its JSON (``null``) and the schema agree;
- :attr:`ReportPayload.kind` is the one place a reader learns the experiment's kind.

Shape (``tooltrial_report`` 3): the head (experiment, models, files, counts, warnings,
reference, primary metric), ``scenarios`` (the definition's), ``per_model`` (one
:class:`ModelSection` per model, the reference model first, even when there is only one),
``interaction`` (empty with one model) and ``method``. Field names are those of report 1,
except: ``kind`` replaces ``"agentic": true``; ``tool_footprint.counted_by`` replaces
``tokenizer``; values keyed by a metric's name (``exact`` or ``success`` per scenario,
category and flip) are ``rate`` / ``rates``, the metric named once by
``scenario_metric``; each section adds its ``headline``. Report 3 (from 2): each
comparison has its ``verdict`` in words; ``power`` is the simulation's advice (plans with
a range for a 1-rep pilot, the smallest detectable difference, notes) instead of variance
components; pass^k differences are descriptive (no p-value) and name their scenario set;
each variant's pass^k names the scenarios left out of each k.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict

VERSION: Final = 3
"""``tooltrial_report``: the payload's shape. 2: typed, one shape for any number of
models, a per-scenario headline. 3: verdicts, simulated power, descriptive pass^k
differences on one scenario set."""

Kind = Literal["single-turn", "agentic"]  # definitions.experiment.Kind, spelled out for the schema


def _defined(value: object) -> object:
    """NaN and ±inf (an undefined statistic) become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


Number = Annotated[float | None, BeforeValidator(_defined)]
"""A statistic that may be undefined: None (``null`` in JSON), never NaN."""


class Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        use_attribute_docstrings=True,  # the docstrings describe the published schema
        json_schema_serialization_defaults_required=True,  # a default is written too
    )


# --- one variant ------------------------------------------------------------------------


class ToolFootprint(Frozen):
    """What a variant's tool definitions cost in the prompt, before any request."""

    chars: int
    """Characters of the tools as the model's API takes them."""
    tokens: int
    counted_by: str
    """How ``tokens`` were counted: the model's own tokenizer (``local:smollm2
    tokenizer``), or an estimate from the characters (``estimate (...)``)."""


class Latency(Frozen):
    mean: Number
    p50: Number
    p95: Number


class ConversationCosts(Frozen):
    """Agentic: what a variant's conversations spent and how they ended. ``per_success``
    is the total over all its conversations divided by its successes (None: none)."""

    conversations: int
    successes: int
    failed: int
    mean: Mapping[str, Number]
    per_success: Mapping[str, Number]
    failed_checks: Mapping[str, int]
    """Verdict part → conversations that failed it."""
    judged_checks: Mapping[str, int]
    """Verdict part → conversations whose scenario judges it."""
    stop_reasons: Mapping[str, int]
    """Stop reason → conversations, the most common first."""


class Variant(Frozen):
    """One variant of one model: counts, shares of results, usage, footprint."""

    variant: str
    results: int
    scenarios: int
    reps: int
    """The most reps any of its scenarios has."""
    rates: Mapping[str, Number]
    """Metric → share of all its results (a scenario with more reps weighs more; the
    headline, :class:`Headline`, weighs each scenario the same)."""
    calls_per_answer: Number
    input_tokens: Number
    output_tokens: Number
    latency_s: Latency
    tool_footprint: ToolFootprint
    conversations: ConversationCosts | None
    """Agentic experiments only."""


class Headline(Frozen):
    """The declared primary metric per variant, as the paired test sees it: per scenario
    the mean over its reps, then the mean over the ``scenarios`` every variant has. With
    two variants these are exactly the primary comparison's means, so its difference is
    the difference of these rates."""

    metric: str
    scenarios: int
    rates: Mapping[str, Number]
    """Variant → its headline rate."""


# --- comparisons ------------------------------------------------------------------------


class MetricDifference(Frozen):
    """Treatment − reference on one metric, paired over scenarios."""

    metric: str
    label: str
    reference: str
    treatment: str
    reference_mean: Number
    treatment_mean: Number
    difference: Number
    ci_low: Number
    ci_high: Number
    p_value: Number
    """The interval's own test (excludes zero exactly when p < 0.05); None: reported, not
    tested."""
    p_sign_flip: Number
    scenarios: int
    primary: bool
    """The declared primary metric: its p is not adjusted."""
    p_holm: Number
    """Holm-adjusted p over the comparison's tested secondary metrics."""
    sign_flip_floor: float
    warning: str | None


class ReliabilityDifference(Frozen):
    """Treatment − reference in pass^k over the scenarios with at least k results in every
    variant: the same set, and so the same means, as each variant's pass^k in
    :class:`Reliability`. Descriptive: an interval, no p-value (the primary metric is the
    one unadjusted test)."""

    k: int
    reference_mean: Number
    treatment_mean: Number
    estimate: Number
    ci_low: Number
    ci_high: Number
    scenarios: int
    excluded: tuple[str, ...]
    """Scenarios with results left out of this k (fewer than k results in some variant)."""


class LargestDifference(Frozen):
    """A scenario whose per-scenario rate (``scenario_metric``) differs most."""

    scenario_id: str
    reference: Number
    treatment: Number
    difference: Number


class PowerPlan(Frozen):
    difference: float
    """Detect this difference (in either direction) with 80% power."""
    reps: int
    scenarios: int | None
    """The advice from a pilot with 2 or more reps; None: a range (below), or more than
    the search limit, or a difference these rates cannot reach."""
    scenarios_low: int | None
    scenarios_high: int | None
    """A 1-rep pilot: the range (high None: beyond the search limit)."""


class Power(Frozen):
    """How many scenarios a study needs, simulated from these results as a pilot with the
    report's own test (``analysis.power``)."""

    metric: str
    pilot_scenarios: int
    pilot_reps: Number
    all_or_nothing_share: Number
    """Share of the pilot's scenarios whose reps all agreed in both variants."""
    target_power: float
    plans: tuple[PowerPlan, ...]
    detectable: Number
    """The smallest difference (either direction) this design detects with 80% power
    (a 1-rep pilot: the upper end of a range); None: none the rates allow."""
    detectable_low: Number
    """A 1-rep pilot: the lower end of that range; otherwise equal to ``detectable``."""
    notes: tuple[str, ...]
    """What the pilot cannot tell."""


class Verdict(Frozen):
    """The primary comparison in words: ``better``/``worse`` exactly when its interval
    excludes zero, else ``inconclusive`` with what the design could have detected."""

    outcome: Literal["better", "worse", "inconclusive"]
    text: str


class Renamed(Frozen):
    before: str
    after: str


class ToolChanges(Frozen):
    """What differs between the reference's tools and the treatment's, as the model saw
    them (``tools.diff.diff_tools``, the same as ``tooltrial tools`` prints)."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    renamed: tuple[Renamed, ...]
    descriptions: tuple[str, ...]
    """Tools (named as in the treatment) whose description changed."""
    schemas: tuple[str, ...]
    """Tools (named as in the treatment) whose input schema changed."""
    lines: tuple[str, ...]
    """One line per difference, for people; empty: the same tools."""


class Comparison(Frozen):
    """One treatment against the reference, within one model."""

    reference: str
    treatment: str
    metrics: tuple[MetricDifference, ...]
    reliability_differences: tuple[ReliabilityDifference, ...]
    largest_differences: tuple[LargestDifference, ...]
    power: Power
    verdict: Verdict | None
    """None: no primary difference to judge."""
    tools: ToolChanges
    """What changed in the tools between the two variants."""

    @property
    def primary(self) -> MetricDifference | None:
        """The declared primary metric's difference (None: no scenario has it)."""
        return next((m for m in self.metrics if m.primary), None)


# --- per-scenario views -----------------------------------------------------------------


class CategoryRate(Frozen):
    category: str
    variant: str
    results: int
    rate: Number
    """Share of results on ``scenario_metric``."""


class VariantConsistency(Frozen):
    variant: str
    mean_agreement: Number
    all_reps_agree: Number
    flipping_scenarios: int


class Flip(Frozen):
    """A scenario whose reps are neither all right nor all wrong."""

    scenario_id: str
    variant: str
    rate: Number
    agreement: Number


class Consistency(Frozen):
    per_variant: tuple[VariantConsistency, ...]
    flips: tuple[Flip, ...]
    flipping_by_metric: Mapping[str, Mapping[str, int]]
    """Variant → yes/no metric → flipping scenarios."""


class Reliability(Frozen):
    """pass^k and pass@k of one variant on the primary metric, by k (text keys in JSON)."""

    variant: str
    metric: str
    scenarios: int
    pass_hat: Mapping[int, Number]
    pass_at: Mapping[int, Number]
    excluded: Mapping[int, int]
    excluded_scenarios: Mapping[int, tuple[str, ...]]
    """k → the scenarios left out of that k (fewer than k results in some variant): each
    k is averaged over one scenario set shared by every variant."""


class ScenarioRates(Frozen):
    id: str
    rates: Mapping[str, Number]
    """Variant → its rate on ``scenario_metric`` over this scenario's reps."""


class ModelSection(Frozen):
    """Everything about one model's results."""

    model: str
    results: int
    error_lines: int
    headline: Headline
    variants: tuple[Variant, ...]
    comparisons: tuple[Comparison, ...]
    categories: tuple[CategoryRate, ...]
    consistency: Consistency
    reliability: tuple[Reliability, ...]
    scenarios: tuple[ScenarioRates, ...]

    def variant_names(self) -> list[str]:
        return [v.variant for v in self.variants]


# --- cost (with a price table) ------------------------------------------------------------


class VariantCost(Frozen):
    """What one variant of one model cost, at the table's prices."""

    model: str
    variant: str
    cells: int
    """Results (conversations, in an agentic experiment)."""
    successes: int
    """Of them, those that held on the primary metric."""
    total: float
    per_conversation: float
    """Total / cells."""
    per_success: Number
    """Total over all its cells / successes; None: no success."""
    batch_share: float
    """Share of its model turns answered in batch mode (discounted)."""


class StudyCost(Frozen):
    """What a study the power table advises would cost: scenarios × reps for each of the
    two variants, at their mean cost per conversation here."""

    model: str
    reference: str
    treatment: str
    difference: float
    reps: int
    scenarios: int
    cells: int
    cost: float


class CostSection(Frozen):
    """Cost per variant, per conversation and per success, and the advised studies' cost,
    from the user's price table (``tooltrial report --prices``); absent without one."""

    currency: str
    per_tokens: int
    """The table's prices are per this many tokens."""
    variants: tuple[VariantCost, ...]
    studies: tuple[StudyCost, ...]
    unpriced: tuple[str, ...]
    """Models with results but no price in the table (tokens only)."""
    method: str


# --- the whole report -------------------------------------------------------------------


class Scenario(Frozen):
    """A scenario of the definition."""

    id: str
    category: str
    prompt: str
    expect: Mapping[str, str] | None
    """Single-turn: variant → expected kind (call, no_call, clarify); agentic: None."""


class InteractionMetric(Frozen):
    """(treatment − reference in ``model``) − (the same in ``reference_model``)."""

    metric: str
    label: str
    reference: str
    treatment: str
    reference_model: str
    model: str
    reference_model_difference: Number
    model_difference: Number
    interaction: Number
    ci_low: Number
    ci_high: Number
    p_value: Number
    p_sign_flip: Number
    scenarios: int


class Interaction(Frozen):
    model: str
    reference_model: str
    reference: str
    treatment: str
    metrics: tuple[InteractionMetric, ...]


class ReportPayload(Frozen):
    """Everything the report says."""

    tooltrial_report: Literal[3] = VERSION
    kind: Kind
    """The experiment's kind: the one place the report learns it."""
    experiment: str
    definition: str | None
    fixed_timestamp: str
    models: tuple[str, ...]
    reference_model: str
    files: tuple[str, ...]
    results: int
    error_lines: int
    warnings: tuple[str, ...]
    reference: str
    primary_metric: str
    primary_label: str
    scenario_metric: str
    """The rate of the per-scenario views (heatmap, categories, flips, largest
    differences): ``exact``, or ``success`` for conversations."""
    scenarios: tuple[Scenario, ...]
    per_model: tuple[ModelSection, ...]
    """One per model, the reference model first."""
    interaction: tuple[Interaction, ...]
    """Each other model against the reference model; empty with one model."""
    method: Mapping[str, str]
    """Topic → how it was computed."""
    cost: CostSection | None = None
    """With a price table: what each variant cost (None: tokens only)."""

    @property
    def several_models(self) -> bool:
        return len(self.per_model) > 1

    def to_json(self, indent: int | None = 2) -> str:
        """The payload as JSON (what ``--format json`` prints and the page embeds)."""
        return self.model_dump_json(indent=indent)
