"""Agentic experiments through the real ChatAnthropic client: the Messages API server's
scripted agent (``tooltrial.testing.scripted_agent``) plays whole conversations from the
tool results it is sent, and ``tooltrial run`` (or ``run_experiment``) drives them:
verdicts part by part, limits, tool errors as ``is_error``, retried turns, and a run
killed mid-conversation then resumed (real processes, slow)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.agents import LOOK_UP_AND_MOVE, MINI_POLICIES, failed_checks, serve
from support.paths import TESTS
from support.processes import assert_complete, result_cells, start_run

from tooltrial import load_experiment, run_experiment
from tooltrial.cli import main
from tooltrial.log.reader import read_results
from tooltrial.log.records import Result
from tooltrial.testing.messages_server import Faults, MessagesServer
from tooltrial.testing.scripted_agent import ScriptedAgent, call, calls, result, say
from tooltrial.turns import RetryPolicy
from tooltrial.types import STOP_REASONS, AssistantTurn, ToolTurn

MINI = TESTS / "mini_agentic"
KEY = "sk-ant-agentic-test-key-0123456789"
MODEL = "anthropic:claude-test"


@pytest.fixture(autouse=True)
def planted_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.delenv("LANGSMITH_API_KEY", raising=False)


def tooltrial_run(
    monkeypatch: pytest.MonkeyPatch,
    srv: MessagesServer,
    experiment: Path,
    results: Path,
    *extra: str,
) -> int:
    """``tooltrial run --model anthropic:claude-test`` with ANTHROPIC_BASE_URL at the server."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.url)
    args = ["run", str(experiment), "--model", MODEL, "--runs", "1", "--results", str(results)]
    return main([*args, *extra])


def valid_results(results: Path) -> list[Result]:
    """The results, once ``tooltrial validate`` has passed them."""
    assert main(["validate", str(results)]) == 0
    return sorted(read_results([results]).values(), key=lambda r: (r.variant, r.scenario_id))


def cell_requests(srv: MessagesServer) -> list[dict[str, Any]]:
    """The bodies of the model turns the server answered or refused (no preflight)."""
    return [r.body for r in srv.requests if r.body and r.body.get("tools")]


# --- an experiment of the test's own, where one fault fails exactly one check -------------


ERRANDS_SCENARIOS = """\
- id: move-dentist
  prompt: Move my dentist appointment to Friday the 21st.
  success:
    state:
      - table: tasks
        where: {title: Dentist}
        values: {due: {date: "2025-03-21"}}
    forbidden: {"*": [{tool: delete_task}]}
"""
ADD_TASK = """

def add_task(app, title, due=None):
    cursor = app.db.execute("INSERT INTO tasks (title, due) VALUES (?, ?)", (title, due))
    return {"id": cursor.lastrowid}
"""
ADD_TASK_TOOL = """\
  - name: add_task
    description: Add a task.
    input_schema:
      type: object
      properties: {title: {type: string}, due: {type: string}}
      required: [title]
"""


@pytest.fixture
def errands(tmp_path: Path) -> Path:
    """mini_agentic's app and API tools plus ``add_task``, one scenario without a
    reference (so an extra change fails 'unchanged' alone), at most 5 turns."""
    folder = tmp_path / "errands"
    folder.mkdir()
    (folder / "tools.py").write_text((MINI / "api_tools.py").read_text() + ADD_TASK)
    api = (MINI / "variants" / "api.yaml").read_text().replace("../api_tools.py", "tools.py")
    (folder / "api.yaml").write_text(api + ADD_TASK_TOOL)
    (folder / "scenarios.yaml").write_text(ERRANDS_SCENARIOS)
    (folder / "experiment.yaml").write_text(
        "name: errands\n"
        'fixed_timestamp: "2025-03-12T09:00:00+00:00"\n'
        f"app: {MINI / 'app.py'}:Todo\n"
        "limits: {max_turns: 5, max_tool_calls: 8, tool_timeout_s: 2}\n"
        "variants: [api.yaml]\n"
        "scenarios: scenarios.yaml\n"
    )
    return folder


def errand(
    monkeypatch: pytest.MonkeyPatch, errands: Path, results: Path, steps: list[dict[str, Any]]
) -> tuple[Result, MessagesServer]:
    with serve([{"prompt": "dentist", "steps": steps}]) as srv:
        assert tooltrial_run(monkeypatch, srv, errands, results) == 0
    (line,) = valid_results(results)
    return line, srv


# --- verdicts --------------------------------------------------------------------------


def test_agents_that_reach_the_goal_succeed_in_both_variants(monkeypatch, tmp_path):
    with serve(MINI_POLICIES) as srv:
        code = tooltrial_run(monkeypatch, srv, MINI, tmp_path, "--scenario", "move-dentist")
        assert code == 0
    api, app = valid_results(tmp_path)
    for line in (api, app):
        record = line.conversation
        assert record is not None and record.success, record
        assert record.stop_reason == "answered" and failed_checks(line) == {}
        (change,) = record.diff
        assert (change.key, change.after and change.after["due"]) == ("1", "2025-03-21")
    assert (api.conversation.turns, api.conversation.tool_calls) == (3, 2)
    assert api.response_text == "Moved it to Friday the 21st."
    assert app.response_text == "Dentist is now due 2025-03-21"  # the tool's own words
    sent = srv.tool_results()
    assert len(sent) == 3 and not any(r.is_error for r in sent)
    made = [
        c.arguments
        for m in api.conversation.messages
        if isinstance(m, AssistantTurn)
        for c in m.response.tool_calls
    ]
    # The id in update_task is the one the server read from list_tasks' result.
    assert made == [{"query": "Dentist"}, {"id": 1, "due": "2025-03-21"}]


def test_reaching_the_goal_through_a_forbidden_action_fails_forbidden(
    monkeypatch, errands, tmp_path
):
    steps = [
        call("list_tasks", query="Dentist"),
        call("delete_task", id=result("0.id")),
        call("add_task", title="Dentist", due="2025-03-21"),
        say("Done: the dentist is on the 21st."),
    ]
    line, _ = errand(monkeypatch, errands, tmp_path, steps)
    assert failed_checks(line) == {"forbidden": "called delete_task(id=1)"}
    assert {(c.key, c.after is None) for c in line.conversation.diff} == {("1", True), ("4", False)}


def test_an_extra_change_fails_unchanged(monkeypatch, errands, tmp_path):
    steps = [
        *LOOK_UP_AND_MOVE[:2],
        call("update_task", id=2, done=True),  # also ticks off the rent: not asked for
        say("Moved it, and marked the rent as paid."),
    ]
    line, _ = errand(monkeypatch, errands, tmp_path, steps)
    assert failed_checks(line) == {"unchanged": "tasks 2 changed (done)"}


def test_an_agent_that_reaches_the_goal_but_never_answers_fails_answered(
    monkeypatch, errands, tmp_path
):
    steps = [*LOOK_UP_AND_MOVE[:2], call("list_tasks", query="Dentist")]  # the last repeats
    line, srv = errand(monkeypatch, errands, tmp_path, steps)
    assert failed_checks(line) == {"answered": "stopped: max_turns"}
    record = line.conversation
    assert (record.stop_reason, record.turns, record.tool_calls) == ("max_turns", 5, 4)
    assert [c.after["due"] for c in record.diff if c.after] == ["2025-03-21"]
    assert len(cell_requests(srv)) == 5


# --- limits, tool errors, retries ---------------------------------------------------------


def test_an_agent_that_always_calls_a_tool_is_stopped_at_the_turn_limit(monkeypatch, tmp_path):
    limit = load_experiment(MINI).limits.max_turns
    with serve([{"prompt": "dentist", "mode": "always_tool"}]) as srv:
        args = ("--scenario", "move-dentist", "--variant", "api")
        assert tooltrial_run(monkeypatch, srv, MINI, tmp_path, *args) == 0
    (line,) = valid_results(tmp_path)
    record = line.conversation
    assert (record.stop_reason, record.turns) == ("max_turns", limit)
    assert record.tool_calls == limit - 1  # the last turn's call is never run
    assert failed_checks(line)["answered"] == "stopped: max_turns"
    assert len(cell_requests(srv)) == limit
    assert line.stop_reason == "tool_use"  # the last reply still asked for a tool


def test_tool_errors_reach_the_server_as_is_error_tool_results(monkeypatch, tmp_path):
    steps = [
        calls(
            call("update_task", id=99, due="2025-03-21"),  # the tool raises
            call("update_task", id="one"),  # fails the schema
            call("no_such_tool"),
            text="Trying three things.",
        ),
        say("Done.", on_error=say("Sorry, I could not change it.")),
    ]
    with serve([{"prompt": "dentist", "steps": steps}]) as srv:
        args = ("--scenario", "move-dentist", "--variant", "api")
        assert tooltrial_run(monkeypatch, srv, MINI, tmp_path, *args) == 0
    (line,) = valid_results(tmp_path)
    received = srv.tool_results()
    assert [r.is_error for r in received] == [True, True, True]
    assert "KeyError" in received[0].content
    assert "invalid arguments at id" in received[1].content
    assert "unknown tool 'no_such_tool'" in received[2].content
    assert line.response_text == "Sorry, I could not change it."  # the server saw is_error
    assert (line.conversation.tool_errors, line.conversation.stop_reason) == (3, "answered")


@pytest.mark.parametrize("fault", ["529", "500"])
def test_a_retried_model_turn_never_runs_a_tool_again(monkeypatch, tmp_path, fault):
    experiment = load_experiment(MINI)
    policy = RetryPolicy(base_delay_s=0.01)

    def one_cell(faults: Faults | None, results: Path) -> tuple[Result, MessagesServer]:
        with serve(MINI_POLICIES, faults) as srv:
            monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.url)
            done = run_experiment(
                experiment, MODEL, runs=1, results=results, variants=["api"],
                scenarios=["move-dentist"], retry=policy,
            )  # fmt: skip
        assert done.errors == 0
        (line,) = valid_results(results)
        return line, srv

    clean, _ = one_cell(None, tmp_path / "clean")
    # Request 1 is the preflight, 2 the first turn, 3 the second: after list_tasks ran.
    line, srv = one_cell(Faults(on_requests={3: fault}), tmp_path / "faulted")
    record = line.conversation
    assert record.success and record.tool_calls == clean.conversation.tool_calls == 2
    assert record.diff == clean.conversation.diff
    attempts = [m.attempts for m in record.messages if isinstance(m, AssistantTurn)]
    assert attempts == [1, 2, 1] and line.attempts == 4
    faulted, retried = (r for r in srv.requests if r.number in (3, 4))
    assert faulted.outcome == fault and retried.outcome == "ok"
    assert retried.body["messages"] == faulted.body["messages"]  # the same turn, resent
    received = srv.tool_results()
    assert len({r.tool_use_id for r in received}) == 2  # one result per tool call
    assert [r.number for r in received] == [3, 4, 5]  # list_tasks' result went out twice


# --- killed mid-conversation, then resumed (real processes) ----------------------------------


def snapshot(results: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in results.glob("*.jsonl")}


def assert_kept(before: dict[Path, bytes]) -> None:
    for path, data in before.items():
        assert path.read_bytes().startswith(data), f"{path} was rewritten, not appended to"


def mid_conversation(srv: MessagesServer) -> bool:
    """The last request the server got is a later turn of a conversation (a tool ran)."""
    last = srv.requests[-1].body if srv.requests else None
    return bool(last and last.get("tools") and len(last["messages"]) > 1)


def kill_after(srv: MessagesServer, process: subprocess.Popen[str], k: int) -> None:
    """SIGKILL once k requests reached the server and the latest one is mid-conversation
    (held by the server's latency, so the turn is in flight)."""
    deadline = time.monotonic() + 60
    while not (len(srv.requests) >= k and mid_conversation(srv)):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the run ended or stalled before request {k}: {process.returncode}")
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    assert process.wait(30) == -signal.SIGKILL


def assert_conversation_complete(line: Result) -> None:
    record = line.conversation
    assert record is not None and record.stop_reason in STOP_REASONS
    assert record.stop_reason == "answered" and record.success, record.checks
    assert isinstance(record.messages[-1], AssistantTurn)
    assert not record.messages[-1].response.tool_calls
    for made, answered in zip(record.messages, record.messages[1:], strict=False):
        if isinstance(made, AssistantTurn) and made.response.tool_calls:
            assert isinstance(answered, ToolTurn)
            assert [c.id for c in made.response.tool_calls] == [r.call_id for r in answered.results]


@pytest.fixture
def agent_server() -> Iterator[MessagesServer]:
    faults = Faults(latency_s=0.04, latency_jitter_s=0.04, seed=11)
    with MessagesServer(faults, responder=ScriptedAgent(MINI_POLICIES), max_seconds=300) as srv:
        yield srv


@pytest.mark.slow
@pytest.mark.parametrize("kill_points", [[4], [11], [6, 17]], ids=str)
def test_sigkill_mid_conversation_then_resume(
    agent_server: MessagesServer, tmp_path: Path, kill_points: list[int]
) -> None:
    """12 cells (2 variants x 2 scenarios x 3 runs), 25 requests without a kill."""
    first = [str(MINI), "--runs", "3", "--concurrency", "2", "--run-id", "k"]
    for n, k in enumerate(kill_points):
        before = snapshot(tmp_path)
        args = first if n == 0 else ["--resume", "k", "--concurrency", "2"]
        kill_after(agent_server, start_run(agent_server, tmp_path, *args), k)
        assert_kept(before)
        result_cells(tmp_path, "k")  # every line parses, wherever the kill landed
    assert sum(result_cells(tmp_path, "k").values()) < 12
    before = snapshot(tmp_path)
    finish = start_run(agent_server, tmp_path, "--resume", "k", "--concurrency", "2")
    _, err = finish.communicate(timeout=120)
    assert finish.returncode == 0, err
    assert_kept(before)
    assert_complete(tmp_path, "k", 12)
    lines = valid_results(tmp_path)
    assert len(lines) == 12
    for line in lines:
        assert_conversation_complete(line)
