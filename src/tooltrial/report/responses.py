"""The HTML drill-down of a single-turn report: every scenario's responses, variants side
by side, and the same table for the scenarios where two variants differ most.

Layout: one collapsed ``<details id="s-<scenario>">`` per scenario inside ``#drill`` (the
page's filter, heatmap clicks and "expand all" act on them), its summary the scenario's
rate per (model,) variant from the payload; inside, one row per rep with each column's
response: exact or not (and why not), the tool calls with their arguments, the text.

Guarantees: everything a model wrote is escaped; a text is cut at 1,500 characters and a
column at 20 reps, so one huge answer cannot swamp the page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import polars as pl

from tooltrial.report.document import ReportPayload
from tooltrial.report.formatting import pct
from tooltrial.report.markup import Column, column_label, columns, escape

TEXT_LIMIT = 1500
MAX_REPS = 20


@dataclass(frozen=True)
class _Response:
    """What the page shows of one result (a row of the single-turn tidy table)."""

    rep: int
    exact: bool
    reason: str | None
    calls: list[dict[str, object]]
    text: str


def html_responses(data: ReportPayload, table: pl.DataFrame) -> str:
    """The drill-down section: every scenario of the payload, collapsed."""
    shown = columns(data)
    rates = {
        (s.id, section.model if data.several_models else None, variant): rate
        for section in data.per_model
        for s in section.scenarios
        for variant, rate in s.rates.items()
    }
    parts = [
        "<h2>Every scenario's responses</h2>"
        '<input id="filter" type="search" placeholder="filter: id, prompt, tool, text…">'
        ' <button id="expand" type="button">expand all</button> '
        '<span id="shown" class="note"></span><div id="drill">'
    ]
    for s in data.scenarios:
        tally = " · ".join(f"{escape(column_label(c))} {pct(rates.get((s.id, *c)))}" for c in shown)
        parts.append(
            f'<details id="s-{escape(s.id)}"><summary><b>{escape(s.id)}</b> '
            f'<span class="note">{escape(s.category)} · {tally}</span></summary>'
            f"<p>“{escape(s.prompt)}”</p>{responses_table(table, s.id, shown)}</details>"
        )
    parts.append("</div>")
    return "".join(parts)


def responses_table(table: pl.DataFrame, scenario_id: str, shown: list[Column]) -> str:
    """One scenario's responses: a row per rep, a column per (model,) variant."""
    rows = table.filter(pl.col("scenario_id") == scenario_id).sort("model", "variant", "rep")
    by_column = [_responses(rows, column) for column in shown]
    reps = max((len(v) for v in by_column), default=0)
    head = "".join(f"<th>{escape(column_label(c))}</th>" for c in shown)
    body = []
    for i in range(reps):
        cells = [_cell(items[i]) if i < len(items) else "<td></td>" for items in by_column]
        body.append(f"<tr><td>{i + 1}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>#</th>{head}</tr>{''.join(body)}</table>"


def _responses(rows: pl.DataFrame, column: Column) -> list[_Response]:
    model, variant = column
    picked = rows.filter(pl.col("variant") == variant)
    if model is not None:
        picked = picked.filter(pl.col("model") == model)
    return [
        _Response(
            rep=row["rep"],
            exact=bool(row["exact"]),
            reason=row["reason"],
            calls=json.loads(row["tool_calls"]),
            text=row["response_text"],
        )
        for row in picked.head(MAX_REPS).iter_rows(named=True)
    ]


def _cell(r: _Response) -> str:
    mark = '<span class="ok">✓ exact</span>' if r.exact else '<span class="bad">✗</span>'
    shown = [{"name": c["name"], "arguments": c.get("arguments")} for c in r.calls]
    return (
        f'<td>{mark} <span class="note">rep {r.rep}</span>'
        + (f'<div class="note">{escape(r.reason)}</div>' if r.reason else "")
        + (f"<pre>{escape(json.dumps(shown, indent=1))}</pre>" if r.calls else "")
        + (f"<pre>{escape(r.text[:TEXT_LIMIT])}</pre>" if r.text.strip() else "")
        + "</td>"
    )
