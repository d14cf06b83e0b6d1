"""The verdict in words: one sentence per comparison on the primary metric.

A reader gets a p-value and an interval; this says what they mean. From one comparison's
primary difference and the power advice from the same results:

- the interval excludes zero: "<treatment> is better (worse) than <reference> on
  <metric>: +X pp [L, U], p = …, over N scenarios";
- it does not: "inconclusive", the estimate and interval, and how large a difference
  this design could have detected with 80% power (``Advice.detectable``), and what a
  study that detects the smallest advised difference would need.

Guarantee: the outcome is "better"/"worse" exactly when the primary difference's
interval excludes zero (p < 0.05), never otherwise; every number is one the report shows
elsewhere (the primary row, the power table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from tooltrial.analysis.intervals import excludes_zero
from tooltrial.analysis.power import Advice, Plan

Outcome = Literal["better", "worse", "inconclusive"]


@dataclass(frozen=True)
class Verdict:
    reference: str
    treatment: str
    metric: str
    outcome: Outcome
    text: str


def _pp(value: float) -> str:
    return f"{round(100 * value, 1) + 0.0:+.1f} pp"


def _points(value: float) -> str:
    return f"{round(100 * value):.0f} points"


def verdict(
    *,
    reference: str,
    treatment: str,
    metric: str,
    label: str,
    difference: float,
    ci_low: float,
    ci_high: float,
    p_value: float,
    scenarios: int,
    reps: int,
    advice: Advice,
) -> Verdict:
    """The verdict of one comparison (see the module docstring)."""
    interval = f"[{_pp(ci_low)}, {_pp(ci_high)}]"
    p = "< 0.001" if p_value < 0.001 else f"{p_value:.3f}"
    measured = f"{_pp(difference)} {interval}, p = {p}"
    design = f"{scenarios} scenarios × {reps} rep{'s' if reps != 1 else ''}"
    if excludes_zero((ci_low, ci_high)) and not math.isnan(difference):
        outcome: Outcome = "better" if ci_low > 0 else "worse"
        text = f"{treatment} is {outcome} than {reference} on {label}: {measured}, over {design}."
        return Verdict(reference, treatment, metric, outcome, text)
    parts = [f"Inconclusive: {treatment} − {reference} on {label} is {measured}, with {design}."]
    parts.append(_detectable(advice))
    need = _need(advice, reps)
    if need:
        parts.append(need)
    return Verdict(reference, treatment, metric, "inconclusive", " ".join(parts))


def _detectable(advice: Advice) -> str:
    low, high = advice.detectable_low, advice.detectable
    if high is None:
        return "This design could not detect any difference the rates allow with 80% power."
    if low is not None and round(100 * low) != round(100 * high):
        span = f"{round(100 * low)}–{_points(high)}"
        return (
            f"A difference below {span} (either way; the range: 1 rep cannot tell "
            "all-or-nothing scenarios apart) cannot be told apart from noise here."
        )
    return f"A difference below {_points(high)} (either way) cannot be told apart from noise here."


def _need(advice: Advice, reps: int) -> str | None:
    """What the advised larger study needs for the smallest advised difference."""
    if not advice.plans:
        return None
    smallest = min(p.difference for p in advice.plans)
    options = [p for p in advice.plans if p.difference == smallest]
    plan = min(options, key=lambda p: (abs(p.reps - reps), p.reps))
    return f"Detecting {_points(smallest)} would need {_scenarios(plan)}."


def _scenarios(plan: Plan) -> str:
    at = f"at {plan.reps} rep{'s' if plan.reps != 1 else ''}"
    if plan.scenarios is not None:
        return f"about {plan.scenarios} scenarios {at}"
    if plan.low is not None and plan.high is not None:
        return f"{plan.low}–{plan.high} scenarios {at}"
    if plan.low is not None:
        return f"at least {plan.low} scenarios {at}"
    return f"more scenarios than the advice searches, or a larger difference, {at}"
