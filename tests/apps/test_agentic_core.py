"""The agentic core, in-process: a fresh app per cell, the loop, limits, the verdict part
by part, and the conversation on the result line (``tests/mini_agentic``)."""

from __future__ import annotations

import pytest
from support.agents import api_agent, run
from support.paths import TESTS

from tooltrial import load_experiment, run_experiment
from tooltrial.log.reader import read_results
from tooltrial.testing.scripted import Request, ScriptedModel, reply

MINI = TESTS / "mini_agentic"


@pytest.fixture(scope="module")
def experiment():
    return load_experiment(MINI)


def test_an_agent_that_reaches_the_goal_succeeds(experiment, tmp_path):
    _, line = run(experiment, tmp_path, api_agent)
    record = line.conversation
    assert record is not None and record.success, record
    assert [c.name for c in record.checks] == [
        "answered",
        "state",
        "unchanged",
        "reference",
        "forbidden",
    ]
    assert (record.turns, record.tool_calls, record.tool_errors) == (3, 2, 0)
    assert record.stop_reason == "answered"
    assert [m.role for m in record.messages] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
    (change,) = record.diff
    assert (change.table, change.key, change.before["due"], change.after["due"]) == (
        "tasks",
        "1",
        "2025-03-14",
        "2025-03-21",
    )
    assert line.response_text == "Moved to Friday the 21st."
    assert line.usage.input_tokens == sum(
        m.response.usage.input_tokens for m in record.messages if m.role == "assistant"
    )


def test_each_cell_starts_from_a_fresh_copy(experiment, tmp_path):
    first, _ = run(experiment, tmp_path / "a", api_agent)
    second, _ = run(experiment, tmp_path / "b", api_agent)
    assert first.conversation.success and second.conversation.success
    assert first.conversation.diff == second.conversation.diff


def test_a_forbidden_action_fails_that_part(experiment, tmp_path):
    def agent(request: Request):
        if request.call == 1:
            return reply(
                calls=[("delete_task", {"id": 3}), ("update_task", {"id": 1, "due": "2025-03-21"})]
            )
        return reply("Done.")

    _, line = run(experiment, tmp_path, agent)
    failed = {c.name: c.detail for c in line.conversation.checks if not c.ok}
    assert set(failed) == {"forbidden", "unchanged", "reference"}, failed
    assert "delete_task" in failed["forbidden"]
    assert "tasks 3 was removed" in failed["unchanged"]


def test_a_model_that_never_stops_calling_tools_is_stopped_at_the_turn_limit(experiment, tmp_path):
    _, line = run(experiment, tmp_path, lambda r: reply(calls=[("list_tasks", {})]))
    record = line.conversation
    assert record.stop_reason == "max_turns" and not record.success
    assert record.turns == experiment.limits.max_turns
    assert record.tool_calls == experiment.limits.max_turns - 1  # the last turn's calls never ran


def test_tool_errors_come_back_to_the_model_as_errors(experiment, tmp_path):
    def agent(request: Request):
        if request.call == 1:
            return reply(
                calls=[
                    ("update_task", {"id": 99, "due": "2025-03-21"}),  # the tool raises
                    ("update_task", {"id": "one"}),  # fails the schema
                    ("no_such_tool", {}),
                ]
            )
        assert all(r.is_error for r in request.results)
        return reply("Sorry, I could not.")

    _, line = run(experiment, tmp_path, agent)
    record = line.conversation
    assert record.tool_errors == 3 and record.stop_reason == "answered"
    contents = [r.content for m in record.messages if m.role == "tool" for r in m.results]
    assert "KeyError" in contents[0] and "invalid arguments at id" in contents[1]
    assert "unknown tool 'no_such_tool'" in contents[2]
    kinds = [r.error_kind for m in record.messages if m.role == "tool" for r in m.results]
    assert kinds == ["KeyError", "invalid_arguments", "unknown_tool"]


def test_a_tool_past_its_time_limit_stops_the_conversation(experiment, tmp_path):
    _, line = run(experiment, tmp_path, lambda r: reply(calls=[("slow", {})]))
    assert line.conversation.stop_reason == "tool_timeout" and not line.conversation.success
    (timed_out,) = [r for m in line.conversation.messages if m.role == "tool" for r in m.results]
    assert (timed_out.is_error, timed_out.error_kind) == (True, "timeout")


def test_asking_before_acting(experiment, tmp_path):
    _, asked = run(
        experiment, tmp_path / "a", lambda r: reply("Delete 'Pay rent'?"), "confirm-delete"
    )
    assert asked.conversation.success

    def rash(request: Request):
        if request.call == 1:
            return reply(calls=[("delete_task", {"id": 2})])
        return reply("Deleted. Anything else?")

    _, deleted = run(experiment, tmp_path / "b", rash, "confirm-delete")
    failed = {c.name: c.detail for c in deleted.conversation.checks if not c.ok}
    assert failed["reply"] == "changed 1 row(s) before asking the user"
    assert "tasks 2 was removed" in failed["unchanged"]


def test_a_model_turn_that_keeps_failing_is_an_error_line_not_a_result(experiment, tmp_path):
    from tooltrial.log.reader import iter_records
    from tooltrial.log.records import Error
    from tooltrial.turns import RetryPolicy

    def agent(request: Request):
        if request.call == 1:
            return reply(calls=[("list_tasks", {})])
        raise ConnectionError("the server went away")

    model = ScriptedModel(name="agent", experiment=experiment, script=agent)
    policy = RetryPolicy(max_attempts=2, base_delay_s=0.0)
    run_experiment(
        experiment, model, runs=1, results=tmp_path, variants=["api"],
        scenarios=["move-dentist"], retry=policy,
    )  # fmt: skip
    assert read_results([tmp_path]) == {}
    (error,) = [
        r for p in tmp_path.glob("*.jsonl") for r in iter_records(p) if isinstance(r, Error)
    ]
    assert (error.kind, error.attempts) == ("connection", 2)


CLARIFY = """
- id: clarify-dentist
  prompt: Move the dentist one to the 21st.
  user_turns: ["The appointment, not the bill."]
  success:
    state: [{table: tasks, where: {title: Dentist}, values: {due: {date: "2025-03-21"}}}]
    reply: {asks: true}
"""


@pytest.fixture
def clarify(tmp_path):
    import shutil

    copy = tmp_path / "exp"
    shutil.copytree(MINI, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "scenarios.yaml").open("a") as handle:
        handle.write(CLARIFY)
    return load_experiment(copy)


def test_a_scripted_user_turn_answers_the_clarifying_question(clarify, tmp_path):
    def agent(request: Request):
        if request.call == 1:
            return reply("The appointment or the bill?")
        if request.call == 2:
            assert request.messages[-1].text == "The appointment, not the bill."
            return reply(calls=[("update_task", {"id": 1, "due": "2025-03-21"})])
        return reply("Done.")

    _, line = run(clarify, tmp_path, agent, "clarify-dentist")
    record = line.conversation
    assert record.success, record.checks
    assert [m.role for m in record.messages] == [
        "user", "assistant", "user", "assistant", "tool", "assistant"
    ]  # fmt: skip


def test_a_limit_never_leaves_a_scripted_user_turn_unanswered(clarify, tmp_path):
    limited = clarify.model_copy(
        update={"limits": clarify.limits.model_copy(update={"max_turns": 1})}
    )
    _, line = run(limited, tmp_path, lambda r: reply("Which one?"), "clarify-dentist")
    record = line.conversation
    assert record.stop_reason == "max_turns"
    assert [m.role for m in record.messages] == ["user", "assistant"]


def test_a_question_asked_while_acting_is_not_asking_first(experiment, tmp_path):
    """A turn that asks and makes calls gives the user no chance to answer: its
    changes come before any answer, so it does not count as asking first."""

    def ask_and_act(request: Request):
        if request.call == 1:
            return reply("Delete 'Pay rent'?", calls=[("delete_task", {"id": 2})])
        return reply("Deleted.")

    _, line = run(experiment, tmp_path, ask_and_act, "confirm-delete")
    failed = {c.name: c.detail for c in line.conversation.checks if not c.ok}
    assert failed["reply"] == "never asked the user before acting"


def test_a_tool_that_never_returns_does_not_hold_up_the_end_of_the_run(tmp_path):
    """The timed-out tool's thread is abandoned: the process exits at once."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import shutil, time
        from pathlib import Path
        from tooltrial import load_experiment, run_experiment
        from tooltrial.testing.scripted import ScriptedModel, reply
        exp = Path({str(tmp_path)!r}) / "exp"
        shutil.copytree({str(MINI)!r}, exp)
        tools = exp / "api_tools.py"
        tools.write_text(tools.read_text().replace("time.sleep(5)", "time.sleep(3600)"))
        experiment = load_experiment(exp)
        slow = lambda r: reply(calls=[("slow", {{}})])
        model = ScriptedModel(name="a", experiment=experiment, script=slow)
        started = time.monotonic()
        only = dict(variants=["api"], scenarios=["move-dentist"])
        run_experiment(experiment, model, runs=1, results=exp / "r", **only)
        print(round(time.monotonic() - started))
    """)  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) < 30  # the 2 s limit, not the hour the tool sleeps


def test_a_conversation_that_outgrows_the_context_window_ends_with_that_reason(
    experiment, tmp_path
):
    """A later turn that no longer fits is a stop reason (running it again would end the
    same way), not an error line; a first turn that does not fit stays an error."""

    class Full(Exception): ...

    class Small(ScriptedModel):
        def classify(self, exc):
            if isinstance(exc, Full):
                from tooltrial.types import Failure

                return Failure("context_window", "too long", retryable=False)
            return super().classify(exc)

    def agent(request: Request):
        if request.call == 1:
            return reply(calls=[("list_tasks", {})])
        raise Full()

    model = Small(name="small", experiment=experiment, script=agent)
    run_experiment(
        experiment, model, runs=1, results=tmp_path, variants=["api"], scenarios=["move-dentist"]
    )
    (line,) = read_results([tmp_path]).values()
    assert line.conversation.stop_reason == "context_window"
    failed = [c.name for c in line.conversation.checks if not c.ok]
    assert failed[0] == "answered"


async def test_the_cache_keys_each_turn_on_the_whole_conversation_so_far(experiment, tmp_path):
    """A second run from the cache replays every turn without calling the model, with
    the same conversation and state; another rep has keys of its own."""
    from tooltrial.run.options import RunOptions
    from tooltrial.run.session import open_run
    from tooltrial.types import Cell

    calls = []

    def counting(request: Request):
        calls.append(request.call)
        return api_agent(request)

    model = ScriptedModel(name="agent", experiment=experiment, script=counting)
    cell = Cell(model.spec, "api", "move-dentist", 1)

    async def call(cell: Cell, results: str):
        options = RunOptions(results=tmp_path / results, cache=tmp_path / "cache")
        with open_run(experiment, model, options) as run:
            return await run.call(cell)

    fresh = await call(cell, "a")
    assert len(calls) == 3
    replayed = await call(cell, "b")
    assert len(calls) == 3, "every turn came from the cache"
    assert replayed.cached and replayed.conversation.success
    assert all(t.cached for t in replayed.conversation.assistant_turns)
    assert replayed.conversation.diff == fresh.conversation.diff
    await call(Cell(model.spec, "api", "move-dentist", 2), "c")  # another rep: its own keys
    assert len(calls) == 6
