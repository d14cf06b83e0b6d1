"""Text formatting shared by the Markdown and HTML renderers: one way to show a number.

Guarantee: an undefined value (None or NaN) always shows as "–", never as "nan".
"""

from __future__ import annotations

import functools
import math

from tooltrial.analysis import is_rate
from tooltrial.report.document import (
    Comparison,
    MetricDifference,
    ModelSection,
    Power,
    PowerPlan,
    ReliabilityDifference,
    ReportPayload,
)

_DIGITS = {"latency_s": 3, "turns": 2, "tool_calls": 2, "tool_errors": 2}
"""Decimals of a metric that is not a rate (default 1): seconds, and the small counts of
a conversation, where a tenth hides a real difference."""


def pct(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def signed_pct(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{round(100 * value, 1) + 0.0:+.1f} pp"  # + 0.0: no "-0.0" from rounding noise


def number(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def p_text(p: float | None) -> str:
    """A p-value as text; None means the quantity is reported, not tested."""
    if p is None or math.isnan(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def holm_text(m: MetricDifference) -> str:
    """The Holm column: the primary metric is the one unadjusted test."""
    if m.primary:
        return "primary"
    return "not tested" if m.p_value is None else p_text(m.p_holm)


def comparison_notes(comp: Comparison) -> list[str]:
    """What a reader must know to trust a comparison's p-values, as sentences."""
    return [f"{m.label}: {m.warning}" for m in comp.metrics if m.warning]


def fmt_diff(
    metric: str, value: float | None, ci_low: float | None, ci_high: float | None
) -> tuple[str, str]:
    """(value, interval) as text: differences of rates in percentage points, others in
    the metric's units."""
    show = signed_pct if is_rate(metric) else functools.partial(_signed, _DIGITS.get(metric, 1))
    return show(value), f"[{show(ci_low)}, {show(ci_high)}]"


def _signed(digits: int, value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{round(value, digits) + 0.0:+,.{digits}f}"


def fmt_difference(m: MetricDifference) -> tuple[str, str]:
    """A comparison's difference on one metric and its interval, as text."""
    return fmt_diff(m.metric, m.difference, m.ci_low, m.ci_high)


def fmt_pass_k_difference(d: ReliabilityDifference) -> tuple[str, str]:
    """A difference in pass^k (a probability) and its interval, in percentage points."""
    return signed_pct(d.estimate), f"[{signed_pct(d.ci_low)}, {signed_pct(d.ci_high)}]"


def fmt_mean(metric: str, value: float | None) -> str:
    if is_rate(metric):
        return pct(value)
    return number(value, _DIGITS.get(metric, 1))


def pass_k_difference_line(d: ReliabilityDifference, treatment: str, reference: str) -> str:
    """A pass^k difference as a sentence: descriptive (an interval, no p-value), with
    its scenario set."""
    diff, ci = fmt_pass_k_difference(d)
    left = f"; left out: {', '.join(d.excluded)}" if d.excluded else ""
    return (
        f"pass^{d.k}, {treatment} − {reference}: {diff} {ci} "
        f"(descriptive, over {d.scenarios} scenarios{left})"
    )


def excluded_lines(section: ModelSection) -> list[str]:
    """Which scenarios each k of the reliability table leaves out (none: no line)."""
    shown: dict[int, tuple[str, ...]] = {}
    for r in section.reliability:
        for k, ids in r.excluded_scenarios.items():
            if ids:
                shown[k] = tuple(sorted(set(shown.get(k, ())) | set(ids)))
    return [
        f"pass^{k} and pass@{k} leave out {', '.join(ids)} (fewer than {k} results in some "
        "variant); every variant and difference uses the same scenarios"
        for k, ids in sorted(shown.items())
    ]


def plan_text(plan: PowerPlan) -> str:
    """The scenarios a plan needs: a number, a range, or why there is none."""
    if plan.scenarios is not None:
        return f"{plan.scenarios:,}"
    if plan.scenarios_low is not None:
        high = f"{plan.scenarios_high:,}" if plan.scenarios_high is not None else "> 10,000"
        return f"{plan.scenarios_low:,}–{high}"
    return "> 10,000 or out of reach"


def detectable_text(power: Power) -> str:
    """The smallest difference the pilot's own design detects, as a sentence."""
    if power.detectable is None:
        return "This design detects no difference the rates allow with 80% power."
    high = round(100 * power.detectable)
    low = high if power.detectable_low is None else round(100 * power.detectable_low)
    span = f"{low}–{high}" if low != high else f"{high}"
    return (
        f"This design ({power.pilot_scenarios} scenarios) detects a difference of {span} "
        "points or more (either way) with 80% power."
    )


TOOL_LINE = 300
"""Characters of one tool-change line shown (a rewritten description can be long; the
JSON has the diff's names, ``tooltrial tools`` the full text)."""


def tool_change_lines(comp: Comparison) -> list[str]:
    """What changed in the tools, one line each, long ones cut."""
    return [
        line if len(line) <= TOOL_LINE else line[: TOOL_LINE - 1] + "…" for line in comp.tools.lines
    ]


def verdict_lines(data: ReportPayload) -> list[str]:
    """Every comparison's verdict, the model named when there are several."""
    out = []
    for section in data.per_model:
        for comp in section.comparisons:
            if comp.verdict is None:
                continue
            prefix = f"{section.model}: " if data.several_models else ""
            out.append(prefix + comp.verdict.text)
    return out
