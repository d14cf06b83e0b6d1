"""One rule for an empty answer (``types.empty_answer``): the judge fails a conversation's
``answered`` part when its final answer is empty, ``validate`` counts it without calling
the run incomplete, ``--resume`` treats its cell as done, and the report counts it."""

from __future__ import annotations

import json
from pathlib import Path

from support.agentic_results import MINI, write_experiment, write_results

from tooltrial.analysis import analyze
from tooltrial.apps.judge import judge
from tooltrial.definitions import load_experiment
from tooltrial.log.validate import validate
from tooltrial.run.resume import read_run
from tooltrial.types import (
    AssistantTurn,
    ModelResponse,
    ToolCall,
    ToolResult,
    ToolTurn,
    Usage,
    UserTurn,
    empty_answer,
    final_answer_empty,
)


def turn(text: str, *calls: ToolCall) -> AssistantTurn:
    stop = "tool_use" if calls else "end_turn"
    return AssistantTurn(
        response=ModelResponse(text=text, tool_calls=calls, stop_reason=stop, usage=Usage())
    )


CALL = ToolCall(id="c1", name="list_tasks", arguments={})
WORKED_THEN_SILENT = (
    UserTurn(text="mark the rent paid"),
    turn("", CALL),
    ToolTurn(results=(ToolResult(call_id="c1", name="list_tasks", content="[]", size=2),)),
    turn("  "),
)


def test_the_rule():
    assert empty_answer("", ()) and empty_answer(" \n", [])
    assert not empty_answer("Done.", ()) and not empty_answer("", (CALL,))
    assert final_answer_empty(WORKED_THEN_SILENT, "answered")
    assert not final_answer_empty(WORKED_THEN_SILENT[:2], "max_turns")  # a limit stopped it


def test_the_judge_fails_answered_for_an_empty_final_answer():
    experiment = load_experiment(MINI)
    scenario = experiment.scenarios[0].id
    criteria = experiment.expectations.success(scenario)
    state: dict = {}
    checks = judge(
        criteria,
        experiment.variants[0].name,
        initial=state,
        final=state,
        diff=(),
        messages=WORKED_THEN_SILENT,
        stop_reason="answered",
    )
    answered = next(c for c in checks if c.name == "answered")
    assert not answered.ok and "final answer is empty" in answered.detail


def silent(conversation: dict) -> None:
    reply = conversation["messages"][-1]
    reply["response"]["text"] = ""
    conversation["messages"][1:] = [reply]
    conversation.update(turns=1, tool_calls=0)


def make_silent(folder: Path, variant: str, rep: int, scenario: str) -> None:
    (path,) = folder.glob(f"{variant}_run{rep}_*.jsonl")
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        record = json.loads(line)
        if record.get("scenario_id") == scenario:
            silent(record["conversation"])
            record["response_text"] = ""
            record["conversation"]["success"] = False
            record["conversation"]["checks"][0].update(ok=False, detail="empty")
            lines[i] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")


def test_validate_resume_and_the_report_agree_it_is_a_result(tmp_path: Path):
    write_results(write_experiment(tmp_path / "def"), tmp_path / "results")
    folder = tmp_path / "results"
    make_silent(folder, "app", 1, "finish-rent")
    checked = validate(folder)
    assert checked.ok and checked.problems == []  # complete: before, exit 1 for ever
    arm = next(a for a in checked.arms if (a.variant, a.rep) == ("app", 1))
    assert arm.empty == ["finish-rent"]
    prior = read_run(folder, "run-1")
    assert all(c.scenario_id != "finish-rent" or c.rep != 1 for c in prior.remaining())
    table = analyze([folder]).table
    row = table.filter(
        (table["variant"] == "app") & (table["rep"] == 1) & (table["scenario_id"] == "finish-rent")
    )
    assert row.height == 1 and row["success"].to_list() == [False]
