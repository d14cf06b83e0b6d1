"""The parts of the report only an agentic experiment has, as rows of text that the
Markdown and the HTML both render: pass^k beside success in the headline, what a success
costs (steps, tokens, tool errors, time), and why conversations failed.

Guarantee: every cell is a payload number formatted by ``formatting``, so the two formats
cannot disagree; a cost per success with no success shows as "–". Callers ask only for
sections of an agentic payload (``ReportPayload.kind``); a variant without conversations
has no row.
"""

from __future__ import annotations

import math

from tooltrial.analysis.table import CHECK_COLUMNS
from tooltrial.report.document import ConversationCosts, ModelSection, Variant
from tooltrial.report.formatting import number, pass_k_difference_line, pct

COSTS = (
    ("turns", "turns", 2),
    ("tool_calls", "tool calls", 2),
    ("tool_errors", "tool errors", 2),
    ("input_tokens", "tokens in", 0),
    ("output_tokens", "tokens out", 0),
    ("latency_s", "time s", 2),
)
"""(cost, column label, decimals), in report order."""
PER_SUCCESS_NOTE = (
    "Each cost: per success, then (in brackets) per conversation. Per success: the total "
    "over all of a variant's conversations (failed ones too) divided by its successes; "
    "– when it has none. Per conversation: the plain mean."
)
FAILURE_NOTE = (
    "Failed of judged: how many conversations failed each part of the verdict, of those "
    "whose scenario judges that part (– where none does); a conversation can fail "
    "several parts. Stop reasons: why conversations ended (answered: the model replied "
    "without a tool call; otherwise the limit that stopped it)."
)


def top_k(section: ModelSection) -> int | None:
    """The largest k with pass^k for every variant: the headline's pass^k."""
    ks = [{k for k, v in r.pass_hat.items() if _defined(v)} for r in section.reliability]
    common = set.intersection(*ks) if ks else set()
    return max(common) if common else None


def _defined(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def pass_k_lines(section: ModelSection) -> list[str]:
    """pass^k for the headline: per variant and each paired difference from the
    reference, over one scenario set; the differences are descriptive (no p-value: the
    primary metric is the one unadjusted test)."""
    k = top_k(section)
    if k is None:
        return []
    values = ", ".join(f"{r.variant} {pct(r.pass_hat[k])}" for r in section.reliability)
    out = [f"pass^{k} (all {k} tries of a scenario succeed): {values}"]
    for comp in section.comparisons:
        d = next((d for d in comp.reliability_differences if d.k == k), None)
        if d is not None:
            out.append(pass_k_difference_line(d, comp.treatment, comp.reference))
    return out


def _conversations(section: ModelSection) -> list[tuple[Variant, ConversationCosts]]:
    return [(v, v.conversations) for v in section.variants if v.conversations is not None]


def cost_table(section: ModelSection) -> tuple[list[str], list[list[str]]]:
    """Per variant: conversations, successes, success rate (share of conversations),
    then each cost per success and (in brackets) per conversation."""
    header = ["variant", "conversations", "successes", "success"]
    header += [label for _, label, _ in COSTS]
    rows = [
        [
            v.variant,
            str(c.conversations),
            str(c.successes),
            pct(v.rates["success"]),
            *(
                f"{number(c.per_success[m], digits)} ({number(c.mean[m], digits)})"
                for m, _, digits in COSTS
            ),
        ]
        for v, c in _conversations(section)
    ]
    return header, rows


def failure_table(section: ModelSection) -> tuple[list[str], list[list[str]]]:
    """Per variant: failed conversations, failed of judged per verdict part, stop reasons."""
    parts = list(CHECK_COLUMNS)
    header = ["variant", "failed", *parts, "stop reasons"]
    rows = []
    for v, c in _conversations(section):
        cells = [
            f"{c.failed_checks[p]} of {c.judged_checks[p]}" if c.judged_checks[p] else "–"
            for p in parts
        ]
        stops = ", ".join(f"{reason} {n}" for reason, n in c.stop_reasons.items())
        rows.append([v.variant, f"{c.failed} of {c.conversations}", *cells, stops])
    return header, rows
