"""The report's cost section, in one place: built from an analysis and a price table
(``cost_section``), and rendered as Markdown (``md_cost``) and HTML (``html_cost``).
Without a price table the payload's ``cost`` is None and neither renders anything: the
report shows tokens only."""

from __future__ import annotations

from tooltrial.analysis.analyze import Analysis
from tooltrial.analysis.cost import costs
from tooltrial.analysis.prices import PriceTable
from tooltrial.report.document import CostSection, ReportPayload, StudyCost, VariantCost
from tooltrial.report.markup import escape

METHOD = (
    "each model turn: uncached input, cache reads, cache writes and output tokens at the "
    "table's prices; a turn answered in batch mode has the model's batch discount taken "
    "off. Per conversation: a variant's total / its results; per success: the total over "
    "all its results / its successes on the primary metric. A study the power table "
    "advises: scenarios × reps for each of the two variants, at their cost per "
    "conversation here."
)


def cost_section(analysis: Analysis, prices: PriceTable) -> CostSection:
    found = costs(analysis, prices)
    return CostSection(
        currency=found.currency,
        per_tokens=found.per_tokens,
        variants=tuple(
            VariantCost(
                model=v.model,
                variant=v.variant,
                cells=v.cells,
                successes=v.successes,
                total=v.total,
                per_conversation=v.per_cell,
                per_success=v.per_success,
                batch_share=v.batch_share,
            )
            for v in found.variants
        ),
        studies=tuple(StudyCost(**vars(s)) for s in found.studies),
        unpriced=tuple(found.unpriced),
        method=METHOD,
    )


def money(value: float | None, currency: str) -> str:
    if value is None:
        return "–"
    digits = 2 if abs(value) >= 1 else 4
    return f"{value:,.{digits}f} {currency}"


def _rows(cost: CostSection) -> list[list[str]]:
    return [
        [
            v.model,
            v.variant,
            str(v.cells),
            str(v.successes),
            money(v.total, cost.currency),
            money(v.per_conversation, cost.currency),
            money(v.per_success, cost.currency),
            f"{v.batch_share:.0%}",
        ]
        for v in cost.variants
    ]


HEAD = [
    "model",
    "variant",
    "results",
    "successes",
    "total",
    "per conversation",
    "per success",
    "batch",
]
STUDY_HEAD = ["model", "treatment vs reference", "difference", "reps", "scenarios", "calls", "cost"]


def _study_rows(cost: CostSection) -> list[list[str]]:
    return [
        [
            s.model,
            f"{s.treatment} vs {s.reference}",
            f"{s.difference:+.0%}",
            str(s.reps),
            str(s.scenarios),
            f"{s.cells:,}",
            money(s.cost, cost.currency),
        ]
        for s in cost.studies
    ]


def md_cost(data: ReportPayload) -> list[str]:
    """The cost section in Markdown (nothing without a price table)."""
    cost = data.cost
    if cost is None:
        return []

    def table(head: list[str], rows: list[list[str]]) -> list[str]:
        return [
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
            *("| " + " | ".join(r) + " |" for r in rows),
        ]

    out = ["", "## Cost", ""]
    out += table(HEAD, _rows(cost))
    if cost.unpriced:
        out += ["", f"> no price for {', '.join(cost.unpriced)}: tokens only"]
    if cost.studies:
        out += ["", "What the study the power table advises would cost at these prices:", ""]
        out += table(STUDY_HEAD, _study_rows(cost))
    return [*out, "", f"> {cost.method}"]


def html_cost(data: ReportPayload) -> str:
    """The cost section in HTML (empty without a price table)."""
    cost = data.cost
    if cost is None:
        return ""

    def table(head: list[str], rows: list[list[str]]) -> str:
        cells = "".join(f"<th>{escape(h)}</th>" for h in head)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows
        )
        return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"

    parts = ['<section id="cost"><h2>Cost</h2>', table(HEAD, _rows(cost))]
    if cost.unpriced:
        parts.append(f"<p>No price for {escape(', '.join(cost.unpriced))}: tokens only.</p>")
    if cost.studies:
        parts.append("<p>What the study the power table advises would cost at these prices:</p>")
        parts.append(table(STUDY_HEAD, _study_rows(cost)))
    parts.append(f'<p class="note">{escape(cost.method)}</p></section>')
    return "".join(parts)
