"""`tooltrial validate` on conversations: each recorded conversation must be whole, and a
broken one is named by file and line; a conversation a limit stopped is not "empty"."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.agentic_results import write_experiment, write_results

from tooltrial.cli import main
from tooltrial.log.validate import validate
from tooltrial.types import STOP_REASONS


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_results(write_experiment(tmp_path / "def"), tmp_path / "results")
    return tmp_path / "results"


def problems(folder: Path) -> list[str]:
    return [f"{p.where}: {p.what}" for p in validate(folder).problems]


def edit(folder: Path, variant: str, rep: int, scenario: str, change: Callable[[dict], Any]) -> str:
    """Apply ``change`` to one result line's conversation; return ``file:line``."""
    (path,) = folder.glob(f"{variant}_run{rep}_*.jsonl")
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        record = json.loads(line)
        if record.get("scenario_id") == scenario:
            change(record["conversation"])
            lines[i] = json.dumps(record)
            path.write_text("\n".join(lines) + "\n")
            return f"{path}:{i + 1}"
    raise AssertionError(f"no line for {scenario}")


def test_whole_conversations_pass_and_limit_stops_are_not_empty(folder, capsys):
    assert problems(folder) == []
    assert main(["validate", str(folder)]) == 0
    arm = next(a for a in validate(folder).arms if (a.variant, a.rep) == ("api", 3))
    # move-dentist and drop-bill were stopped by limits: no final text, a call never run
    assert arm.latest["move-dentist"].response_text == "" and arm.empty == []
    assert arm.tool_only == 0  # a conversation is never a "tool-only answer"


def silent(conversation: dict) -> None:
    """The model's only turn: no text, no tool call."""
    reply = conversation["messages"][-1]
    reply["response"]["text"] = ""
    conversation["messages"][1:] = [reply]
    conversation.update(turns=1, tool_calls=0)


def test_a_conversation_that_answered_without_a_word_is_empty_and_complete(folder):
    edit(folder, "app", 1, "finish-rent", silent)
    assert problems(folder) == []  # a result (counted), not a hole in the run
    arm = next(a for a in validate(folder).arms if (a.variant, a.rep) == ("app", 1))
    assert arm.empty == ["finish-rent"]


def first_tool_turn(conversation: dict) -> dict:
    return next(m for m in conversation["messages"] if m["role"] == "tool")


CASES: list[tuple[str, Callable[[dict], Any], str]] = [
    (
        "first message",
        lambda c: c["messages"].pop(0),
        "it does not start with a user turn",
    ),
    (
        "tool turn after a user turn",
        lambda c: c["messages"].insert(1, first_tool_turn(c)),
        "message 2: a tool turn that does not follow an assistant turn",
    ),
    (
        "a call answered twice",
        lambda c: first_tool_turn(c)["results"].append(first_tool_turn(c)["results"][0]),
        "message 3: call 'call_1' answered more than once",
    ),
    (
        "an unknown call id",
        lambda c: first_tool_turn(c)["results"][0].update(call_id="call_9"),
        "message 3: a result for call 'call_9', which the turn never made",
    ),
    (
        "a call never answered",
        lambda c: first_tool_turn(c).update(results=[]),
        "message 3: call(s) 'call_1' never answered",
    ),
    (
        "a tool turn missing",
        lambda c: c["messages"].remove(first_tool_turn(c)) or c.update(tool_calls=0),
        "message 2: 1 tool call(s) that no tool turn answers",
    ),
    (
        "success disagrees with the checks",
        lambda c: c.update(success=False),
        "success is false but every check held",
    ),
    (
        "a failed check under success",
        lambda c: c["checks"][1].update(ok=False),
        "success is true but check(s) state failed",
    ),
    (
        "turns",
        lambda c: c.update(turns=5),
        "turns is 5 but the messages hold 2",
    ),
    (
        "tool calls",
        lambda c: c.update(tool_calls=2),
        "tool_calls is 2 but the messages hold 1",
    ),
    (
        "tool errors",
        lambda c: c.update(tool_errors=1),
        "tool_errors is 1 but the messages hold 0",
    ),
    (
        "stop reason",
        lambda c: c.update(stop_reason="bored"),
        f"stop_reason 'bored' is not one of {', '.join(STOP_REASONS)}",
    ),
    (
        "answered but ends on tool results",
        lambda c: c["messages"].pop(),
        "stopped as answered, but the last message is not a reply without tool calls",
    ),
]


@pytest.mark.parametrize(("case", "change", "expected"), CASES, ids=[c[0] for c in CASES])
def test_a_broken_conversation_is_named_by_file_and_line(folder, case, change, expected):
    where = edit(folder, "app", 2, "finish-rent", change)  # a whole 2-turn success
    found = problems(folder)
    assert f"{where}: conversation of app/finish-rent run 2: {expected}" in found, found


def second_call(conversation: dict) -> None:
    """The last model turn made two calls; only the first (which timed out) has a result."""
    calls = conversation["messages"][-2]["response"]["tool_calls"]
    calls.append({"id": "call_x", "name": "list_tasks", "arguments": {}})


def test_only_a_timeout_may_cut_the_last_tool_turn_short(folder):
    where = edit(folder, "app", 3, "drop-bill", second_call)  # stopped by tool_timeout
    assert problems(folder) == []
    edit(folder, "app", 3, "drop-bill", lambda c: c.update(stop_reason="max_turns"))
    expected = (
        f"{where}: conversation of app/drop-bill run 3: message 5: call(s) 'call_x' never answered"
    )
    assert problems(folder) == [expected]


def test_the_cli_prints_the_problem_and_fails(folder, capsys):
    where = edit(folder, "api", 1, "move-dentist", lambda c: c.update(turns=9))
    assert main(["validate", str(folder)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert f"{where}: conversation of api/move-dentist run 1: turns is 9" in out
