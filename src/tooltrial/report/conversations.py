"""The HTML drill-down of an agentic report: every conversation, variants side by side.

Layout: one collapsed ``<details id="s-<scenario>">`` per scenario inside ``#drill`` (so
the page's filter, heatmap clicks and "expand all" work as on a single-turn page); inside
it, links to each rep and one table row per rep (``id="s-<scenario>-r<rep>"``) with each
(model,) variant's conversation in its own column. A conversation shows its verdict
(every part, the failed ones with their detail), why it stopped, its counts, every
message (user text; assistant text and tool calls with their arguments; tool results,
errors marked, with their size) and the state diff (rows added, removed, changed: before
→ after). Closed ``<details>`` cost the browser little, so 120 conversations stay usable.

A row of the agentic tidy table holds its checks, diff and messages as the JSON the log
recorded; they are read back into the log's own types (``tooltrial.types``).

Guarantees: everything a model or a tool wrote is escaped; long texts are cut (their full
size is shown), so one huge tool result cannot swamp the page; a changed row names itself
(its key and title, :func:`row_name`), not only its key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import polars as pl
from pydantic import TypeAdapter

from tooltrial.report.document import ReportPayload, Scenario
from tooltrial.report.formatting import number
from tooltrial.report.markup import Column, column_label, columns, escape
from tooltrial.types import AssistantTurn, CheckResult, Message, RowChange, ToolResult, UserTurn

TEXT_LIMIT = 4000
RESULT_LIMIT = 2000

CSS = """
.reps { margin: 4px 0; } .reps a { margin-right: 8px; }
table.conv { width: 100%; table-layout: fixed; }
.msg { border-left: 3px solid var(--line); padding: 2px 6px; margin: 4px 0; }
.msg.user { border-color: #4c78a8; } .msg.assistant { border-color: #54a24b; }
.msg.tool { border-color: #999; } .msg.err { border-color: var(--bad); background: #fdecea; }
.role { font-weight: 600; font-size: 12px; text-transform: uppercase; color: var(--muted); }
ul.checks { margin: 4px 0; padding-left: 18px; }
table.diff td, table.diff th { font-size: 12px; }
"""

_MESSAGES = TypeAdapter(tuple[Message, ...])
_CHECKS = TypeAdapter(tuple[CheckResult, ...])
_DIFF = TypeAdapter(tuple[RowChange, ...])


@dataclass(frozen=True)
class Row:
    """One conversation: a row of the agentic tidy table, its JSON parts read back."""

    rep: int
    success: bool
    stop_reason: str
    turns: int
    tool_calls: int
    tool_errors: int
    input_tokens: int
    output_tokens: int
    latency_s: float | None
    checks: tuple[CheckResult, ...]
    diff: tuple[RowChange, ...]
    messages: tuple[Message, ...]

    @classmethod
    def of(cls, row: dict[str, Any]) -> Row:
        return cls(
            rep=row["rep"],
            success=bool(row["success"]),
            stop_reason=row["stop_reason"],
            turns=row["turns"],
            tool_calls=row["tool_calls"],
            tool_errors=row["tool_errors"],
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            latency_s=row["latency_s"],
            checks=_CHECKS.validate_json(row["checks"]),
            diff=_DIFF.validate_json(row["diff"]),
            messages=_MESSAGES.validate_json(row["messages"]),
        )


def html_conversations(data: ReportPayload, table: pl.DataFrame) -> str:
    """The drill-down section: every scenario of the payload, collapsed."""
    shown = columns(data)
    parts = [
        "<h2>Every scenario's conversations</h2>"
        '<div class="note">Open a scenario to see, rep by rep, each variant\'s conversation '
        "side by side: its verdict, every message and the change it made to the app.</div>"
        '<input id="filter" type="search" placeholder="filter: id, prompt, tool, text…">'
        ' <button id="expand" type="button">expand all</button> '
        '<span id="shown" class="note"></span><div id="drill">'
    ]
    for s in data.scenarios:
        rows = table.filter(pl.col("scenario_id") == s.id).sort("model", "variant", "rep")
        parts.append(_scenario(s, rows, shown))
    parts.append("</div>")
    return "".join(parts)


def _scenario(scenario: Scenario, rows: pl.DataFrame, shown: list[Column]) -> str:
    by_column = [_column_rows(rows, column) for column in shown]
    reps = sorted({row.rep for items in by_column for row in items})
    tally = " · ".join(
        f"{escape(column_label(c))} {sum(r.success for r in items)}/{len(items)}"
        for c, items in zip(shown, by_column, strict=True)
    )
    sid = escape(scenario.id)
    links = " ".join(f'<a href="#s-{sid}-r{rep}">rep {rep}</a>' for rep in reps)
    head = "".join(f"<th>{escape(column_label(c))}</th>" for c in shown)
    body = []
    for rep in reps:
        cells = []
        for column, items in zip(shown, by_column, strict=True):
            row = next((r for r in items if r.rep == rep), None)
            cell = conversation(row) if row else "no result"
            cells.append(f'<td data-column="{escape(column_label(column))}">{cell}</td>')
        body.append(f'<tr id="s-{sid}-r{rep}"><td>{rep}</td>{"".join(cells)}</tr>')
    return (
        f'<details id="s-{sid}"><summary><b>{sid}</b> <span class="note">'
        f"{escape(scenario.category)} · successes {tally}</span></summary>"
        f"<p>“{escape(scenario.prompt)}”</p>"
        f'<div class="reps">{links}</div>'
        f'<table class="conv"><tr><th style="width: 3em">rep</th>{head}</tr>'
        f"{''.join(body)}</table></details>"
    )


def _column_rows(rows: pl.DataFrame, column: Column) -> list[Row]:
    model, variant = column
    picked = rows.filter(pl.col("variant") == variant)
    if model is not None:
        picked = picked.filter(pl.col("model") == model)
    return [Row.of(row) for row in picked.iter_rows(named=True)]


def conversation(row: Row) -> str:
    """One conversation as HTML."""
    return (
        _verdict(row)
        + _checks(row.checks)
        + "".join(_message(m) for m in row.messages)
        + _unrun(row.messages, row.stop_reason)
        + _diff(row.diff)
    )


def _unrun(messages: tuple[Message, ...], stop_reason: str) -> str:
    """Say so when a limit stopped the conversation before the last turn's calls ran."""
    last = messages[-1] if messages else None
    if not isinstance(last, AssistantTurn) or not last.response.tool_calls:
        return ""
    return f'<div class="note">stopped ({escape(stop_reason)}): these calls never ran</div>'


def _verdict(row: Row) -> str:
    mark = (
        '<span class="ok">✓ success</span>' if row.success else '<span class="bad">✗ failed</span>'
    )
    return (
        f'<div>{mark} <span class="note">stopped: {escape(row.stop_reason)} · '
        f"{row.turns} turns · {row.tool_calls} tool calls · "
        f"{row.tool_errors} tool errors · {row.input_tokens:,} tokens in / "
        f"{row.output_tokens:,} out · {number(row.latency_s, 2)} s</span></div>"
    )


def _checks(checks: tuple[CheckResult, ...]) -> str:
    items = "".join(
        f'<li><span class="ok">✓</span> {escape(c.name)}</li>'
        if c.ok
        else f'<li><span class="bad">✗ {escape(c.name)}</span>'
        + (f": {escape(c.detail)}" if c.detail else "")
        + "</li>"
        for c in checks
    )
    return f'<ul class="checks">{items}</ul>'


def _message(message: Message) -> str:
    if isinstance(message, UserTurn):
        return f'<div class="msg user"><span class="role">user</span>{_text(message.text)}</div>'
    if isinstance(message, AssistantTurn):
        return _assistant(message)
    return "".join(_tool_result(r) for r in message.results)


def _assistant(message: AssistantTurn) -> str:
    response = message.response
    calls = "".join(
        f"<div>→ <b>{escape(c.name)}</b> "
        f'<span class="note">{escape(c.id)}</span>'
        f"<pre>{escape(json.dumps(c.arguments, indent=1, ensure_ascii=False))}</pre></div>"
        for c in response.tool_calls
    )
    return (
        '<div class="msg assistant"><span class="role">assistant</span> '
        f'<span class="note">{response.usage.input_tokens:,} tokens in / '
        f"{response.usage.output_tokens:,} out · {number(message.latency_s, 2)} s</span>"
        f"{_text(response.text)}{calls}</div>"
    )


def _tool_result(result: ToolResult) -> str:
    changed = f" · changed {result.changes} row(s)" if result.changes else ""
    flag = ' <span class="bad">error</span>' if result.is_error else ""
    return (
        f'<div class="msg tool{" err" if result.is_error else ""}"><span class="role">tool</span> '
        f"<b>{escape(result.name)}</b>{flag} "
        f'<span class="note">{escape(result.call_id)} · {result.size:,} bytes'
        f"{changed}</span>{_text(result.content, RESULT_LIMIT)}</div>"
    )


def _text(text: str, limit: int = TEXT_LIMIT) -> str:
    if not text.strip():
        return ""
    cut = f'<div class="note">… cut at {limit:,} of {len(text):,} characters</div>'
    return f"<pre>{escape(text[:limit])}</pre>" + (cut if len(text) > limit else "")


def _diff(changes: tuple[RowChange, ...]) -> str:
    if not changes:
        return '<div class="note">state: no row changed</div>'
    rows = "".join(_change(c) for c in changes)
    return (
        '<table class="diff"><tr><th>table</th><th>row</th><th>change</th>'
        f"<th>before → after</th></tr>{rows}</table>"
    )


def _change(change: RowChange) -> str:
    before, after = change.before, change.after
    if before is None:
        kind, shown = "added", _values(after or {})
    elif after is None:
        kind, shown = "removed", _values(before)
    else:
        kind = "changed"
        shown = "<br>".join(
            f"{escape(k)}: {escape(_show(before.get(k)))} → {escape(_show(v))}"
            for k, v in after.items()
            if before.get(k) != v
        )
    return (
        f"<tr><td>{escape(change.table)}</td><td>{escape(row_name(change))}</td>"
        f"<td>{kind}</td><td>{shown}</td></tr>"
    )


LABEL_COLUMNS = ("title", "name", "label", "subject", "summary")
"""Columns that name a row, in the order tried: a changed row is shown by its key and the
first of these it has (after the change, else before), so "tasks 3" reads "3 “Pay rent”"."""


def row_name(change: RowChange) -> str:
    """A diff row's key and, when it has one, its title (:data:`LABEL_COLUMNS`)."""
    for row in (change.after, change.before):
        for column in LABEL_COLUMNS:
            value = (row or {}).get(column)
            if isinstance(value, str) and value.strip():
                return f"{change.key} “{value}”"
    return change.key


def _values(row: dict[str, Any]) -> str:
    return ", ".join(f"{escape(k)}={escape(_show(v))}" for k, v in row.items())


def _show(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)
