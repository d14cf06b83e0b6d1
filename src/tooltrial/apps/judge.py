"""The verdict on a conversation: each part of a scenario's success criteria, judged on
the app's initial and final state and on what was said.

Every part is recorded separately, in ``CHECK_NAMES`` order, so the report can say why a
conversation failed; success is every part holding. ``answered`` is always judged (a
conversation a limit stopped, or one whose final answer is empty, is a failure, whatever
the state: ``types.empty_answer`` is the one rule for an empty answer); the other parts
only when the scenario declares them. Judging never raises on what a model did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tooltrial.apps.base import Row, State
from tooltrial.apps.state import same_state
from tooltrial.definitions.matchers import CompiledRowCheck, CompiledSuccess
from tooltrial.types import (
    AssistantTurn,
    CheckResult,
    Message,
    RowChange,
    ToolCall,
    ToolTurn,
    final_answer_empty,
)


def judge(
    criteria: CompiledSuccess,
    variant: str,
    *,
    initial: State,
    final: State,
    diff: Sequence[RowChange],
    messages: Sequence[Message],
    stop_reason: str,
    reference: State | None = None,
) -> tuple[CheckResult, ...]:
    success = criteria.success
    checks = [_answered(stop_reason, messages)]
    if criteria.state:
        checks.append(_state(criteria.state, final))
    if success.only_these_change:
        checks.append(_unchanged(criteria.state, diff, initial, reference))
    if reference is not None:
        problems = same_state(initial, final, reference)
        checks.append(_check("reference", problems))
    if criteria.forbidden.get(variant):
        checks.append(_forbidden(criteria, variant, messages))
    if success.reply is not None:
        checks.append(_reply(criteria, messages))
    return tuple(checks)


def judge_state(checks: Sequence[CompiledRowCheck], final: State) -> tuple[CheckResult, ...]:
    """The state part alone (none when there are no state checks)."""
    return (_state(checks, final),) if checks else ()


def _check(name: str, problems: Sequence[str]) -> CheckResult:
    return CheckResult(name=name, ok=not problems, detail="; ".join(problems[:5]))


def _answered(stop_reason: str, messages: Sequence[Message]) -> CheckResult:
    """Held when the model replied on its own, with something in it: a limit stopping the
    conversation, or an empty final answer (``types.final_answer_empty``), fails it."""
    if final_answer_empty(messages, stop_reason):
        return CheckResult(
            name="answered", ok=False, detail="the final answer is empty (no text, no tool call)"
        )
    if stop_reason == "answered":
        return CheckResult(name="answered", ok=True)
    return CheckResult(name="answered", ok=False, detail=f"stopped: {stop_reason}")


def _state(checks: Sequence[CompiledRowCheck], final: State) -> CheckResult:
    problems: list[str] = []
    for index, compiled in enumerate(checks, start=1):
        check = compiled.check
        rows = [r for r in final.get(check.table, {}).values() if compiled.selects(r)]
        label = f"#{index} {check.table} where {_show(check.where)}"
        if check.gone:
            if rows:
                problems.append(f"{label}: {len(rows)} row(s) still there")
            continue
        if len(rows) != check.count:
            problems.append(f"{label}: {len(rows)} row(s), expected {check.count}")
            continue
        for row in rows:
            wrong = compiled.problems(row)
            if wrong:
                problems.append(f"{label}: {', '.join(wrong)}")
    return _check("state", problems)


def _unchanged(
    checks: Sequence[CompiledRowCheck],
    diff: Sequence[RowChange],
    initial: State,
    reference: State | None,
) -> CheckResult:
    """Rows that changed although no state check selects them (before or after) and the
    reference (when given) does not change them either."""
    allowed = _reference_changes(initial, reference)
    stray = [
        change
        for change in diff
        if not _selected(checks, change)
        and (change.table, change.key) not in allowed
        and not (change.before is None and (change.table, None) in allowed)
    ]
    problems = [_describe(change) for change in stray]
    return _check("unchanged", problems)


def _reference_changes(initial: State, reference: State | None) -> set[tuple[str, str | None]]:
    if reference is None:
        return set()
    allowed: set[tuple[str, str | None]] = set()
    for table in reference.keys() | initial.keys():
        old, new = initial.get(table, {}), reference.get(table, {})
        allowed.update((table, key) for key in old if old.get(key) != new.get(key))
        if any(key not in old for key in new):
            allowed.add((table, None))  # the reference adds rows to this table
    return allowed


def _selected(checks: Sequence[CompiledRowCheck], change: RowChange) -> bool:
    rows: list[Row] = [r for r in (change.before, change.after) if r is not None]
    return any(c.check.table == change.table and any(c.selects(r) for r in rows) for c in checks)


def _describe(change: RowChange) -> str:
    if change.before is None:
        return f"{change.table} {change.key} was added"
    if change.after is None:
        return f"{change.table} {change.key} was removed"
    columns = [c for c in change.after if change.before.get(c) != change.after.get(c)]
    return f"{change.table} {change.key} changed ({', '.join(columns)})"


def _forbidden(criteria: CompiledSuccess, variant: str, messages: Sequence[Message]) -> CheckResult:
    problems = []
    made: dict[str, ToolCall] = {}
    for message in messages:
        if isinstance(message, AssistantTurn):
            # Ids are only unique within a turn (some models number calls per turn), so a
            # result is matched to the calls of the assistant turn it answers.
            made = {call.id: call for call in message.response.tool_calls}
            continue
        if not isinstance(message, ToolTurn):
            continue
        for result in message.results:
            call = made.get(result.call_id)
            if call is None or result.is_error:
                continue  # a refused call did nothing
            for forbidden in criteria.forbidden[variant]:
                if forbidden.tool == call.name and not forbidden.check(call.arguments)[0]:
                    problems.append(f"called {call.name}({_show(call.arguments)})")
    return _check("forbidden", problems)


def _reply(criteria: CompiledSuccess, messages: Sequence[Message]) -> CheckResult:
    reply = criteria.success.reply
    assert reply is not None
    turns = [m for m in messages if isinstance(m, AssistantTurn)]
    final = turns[-1].response.text if turns else ""
    problems = [
        f"the final reply does not mention {text!r}"
        for text in reply.mentions
        if text.casefold() not in final.casefold()
    ]
    if reply.asks:
        problems.extend(_asked_first(messages))
    return _check("reply", problems)


def _asked_first(messages: Sequence[Message]) -> list[str]:
    """The model asked the user (a reply with a question mark) before changing anything.

    Only a turn without tool calls asks: the user answers a question only once the
    model stops to wait, so a question beside calls comes after what those calls did."""
    changed = 0
    for message in messages:
        if isinstance(message, ToolTurn):
            changed += sum(r.changes for r in message.results if not r.is_error)
        elif isinstance(message, AssistantTurn) and _asks(message):
            return [f"changed {changed} row(s) before asking the user"] if changed else []
    return ["never asked the user before acting"]


def _asks(turn: AssistantTurn) -> bool:
    return "?" in turn.response.text and not turn.response.tool_calls


def _show(values: Mapping[str, object]) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in values.items())
    return text if len(text) <= 80 else text[:79] + "…"
