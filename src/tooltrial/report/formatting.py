"""Text formatting shared by the Markdown and HTML renderers: one way to show a number.

Guarantee: an undefined value (None or NaN) always shows as "–", never as "nan".
"""

from __future__ import annotations

import math
from typing import Any

from tooltrial.analysis import is_rate

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


def holm_text(m: dict[str, Any]) -> str:
    """The Holm column: the primary metric is the one unadjusted test."""
    if m["primary"]:
        return "primary"
    return "not tested" if m["p_value"] is None else p_text(m["p_holm"])


def comparison_notes(comp: dict[str, Any]) -> list[str]:
    """What a reader must know to trust a comparison's p-values, as sentences."""
    return [f"{m['label']}: {m['warning']}" for m in comp["metrics"] if m.get("warning")]


def fmt_diff(m: dict[str, Any], key: str = "difference") -> tuple[str, str]:
    """(m[key], interval) as text: rates in percentage points, others in units."""
    if is_rate(m["metric"]):
        show = signed_pct
    else:
        digits = _DIGITS.get(m["metric"], 1)

        def show(value: float | None) -> str:
            return "–" if value is None else f"{round(value, digits) + 0.0:+,.{digits}f}"

    return show(m[key]), f"[{show(m['ci_low'])}, {show(m['ci_high'])}]"


def fmt_mean(metric: str, value: float | None) -> str:
    if is_rate(metric):
        return pct(value)
    return number(value, _DIGITS.get(metric, 1))
