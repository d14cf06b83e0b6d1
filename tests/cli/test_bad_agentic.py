"""Bad input in an agentic experiment: one clear message, before the first call, nothing
written. The same harness (``support.bad_input``) and checks as ``test_bad_input`` (exit
2, the file or flag named, no traceback, the results folder untouched, no request at the
test server), on a copy of ``tests/mini_agentic``: the app, the tool code, the success
criteria, the model.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.bad_input import Case, Ctx, edit, invoke, run, snapshot
from support.paths import TESTS

from tooltrial.testing.messages_server import MessagesServer

MINI = TESTS / "mini_agentic"


def scenario(old: str, new: str) -> object:
    return edit("scenarios.yaml", old, new)


CASES = [
    Case(
        "app-file-missing",
        run(),
        ["nowhere.py: no such file"],
        edit("experiment.yaml", "app: app.py:Todo", "app: nowhere.py:Todo"),
    ),
    Case(
        "app-class-missing",
        run(),
        ["app.py:Nope", "subclass of tooltrial.apps.App"],
        edit("experiment.yaml", "app: app.py:Todo", "app: app.py:Nope"),
    ),
    Case(
        "app-seed-raises",
        run(),
        ["app.py:", "the definition raised", "table tasks has no column named titel"],
        edit("app.py", "INSERT INTO tasks (title, due)", "INSERT INTO tasks (titel, due)"),
    ),
    Case(
        "tool-function-missing",
        run(),
        ["app_tools.py", "no function for tool(s) remove", "def remove(app, **arguments)"],
        edit("app_tools.py", "def remove(app, title):", "def remove_it(app, title):"),
    ),
    Case(
        "implementation-missing",
        run(),
        ["variant 'app' has no 'implementation:'"],
        edit("variants/app.yaml", "implementation: ../app_tools.py\n", ""),
    ),
    Case(
        "state-check-unknown-table",
        run(),
        ["scenario 'move-dentist'", "names table 'task'", "the app has: tasks"],
        scenario(
            "      - table: tasks\n        where: {title: Dentist}",
            "      - table: task\n        where: {title: Dentist}",
        ),
    ),
    Case(
        "state-check-unknown-column",
        run(),
        ["names column(s) due_date", "table 'tasks' does not have"],
        scenario('values: {due: {date: "2025-03-21"}}', 'values: {due_date: {date: "2025-03-21"}}'),
    ),
    Case(
        "state-check-bad-date",
        run(),
        ["scenario 'move-dentist'", "column 'due'", "not an ISO date"],
        scenario('values: {due: {date: "2025-03-21"}}', 'values: {due: {date: "next friday"}}'),
    ),
    Case(
        "reference-fails",
        run(),
        ["scenario 'move-dentist'", "reference call #1 'reschedule' failed", "'due' is a required"],
        scenario('args: {title: Dentist, due: "2025-03-21"}', "args: {title: Dentist}"),
    ),
    Case(
        "reference-misses-the-state-checks",
        run(),
        ["scenario 'move-dentist'", "the reference's final state fails its own state checks"],
        scenario("args: {title: Dentist, due:", "args: {title: Dentistry, due:"),
    ),
    Case(
        "reference-unknown-tool",
        run(),
        ["names tool 'move'", "variant 'app' does not have"],
        scenario("calls: [{tool: reschedule,", "calls: [{tool: move,"),
    ),
    Case(
        "forbidden-unknown-variant",
        run(),
        ["expectation for unknown variant 'apx'"],
        scenario("      api: [{tool: delete_task}]", "      apx: [{tool: delete_task}]"),
    ),
    Case(
        "expect-in-agentic",
        run(),
        ["'expect' scores a single call", "under 'success:' instead"],
        scenario(
            "  prompt: Delete the rent task.\n",
            "  prompt: Delete the rent task.\n  expect: {'*': {kind: no_call}}\n",
        ),
    ),
    Case(
        "scenario-without-success",
        run(),
        ["scenario 'confirm-delete'", "needs 'success:'"],
        scenario("  success:\n    reply: {asks: true}\n", ""),
    ),
    Case(
        "limits-out-of-range",
        run(),
        ["experiment.yaml", "max_turns", "must be an integer from 1 to 200; got 0"],
        edit("experiment.yaml", "max_turns: 4", "max_turns: 0"),
    ),
    Case(
        "single-turn-primary-metric",
        run(),
        ["primary_metric 'exact' scores a single call"],
        edit("experiment.yaml", "app: app.py:Todo", "app: app.py:Todo\nprimary_metric: exact"),
    ),
]


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ctx:
    exp = tmp_path / "exp"
    shutil.copytree(MINI, exp, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(tmp_path)
    return Ctx(exp=exp, results=tmp_path / "results", tmp=tmp_path, monkeypatch=monkeypatch)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_agentic_input(
    case: Case, ctx: Ctx, env: MessagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    if case.setup is not None:
        case.setup(ctx)
    fill = {"exp": str(ctx.exp)}
    argv = [a.format(**fill) for a in case.args]
    argv += ["--results", str(ctx.results), "--runs", "1"]
    if "--model" not in argv:
        argv += ["--model", "anthropic:x"]
    code = invoke(argv)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err
    assert "Traceback" not in err and "this is a bug" not in err, err
    for needle in case.expect:
        assert " ".join(needle.split()) in err, f"{needle!r} not in: {err}"
    assert snapshot(ctx.results) is None, "a refused command must not create the results"
    assert env.requests == [], "no model call may happen for bad input"


def test_a_good_agentic_input_does_reach_the_model(ctx: Ctx, env: MessagesServer) -> None:
    """The harness can fail: the unbroken copy runs and calls the model."""
    argv = ["run", str(ctx.exp), "--results", str(ctx.results), "--runs", "1"]
    assert invoke([*argv, "--model", "anthropic:x", "--scenario", "confirm-delete"]) in (0, 1)
    assert env.requests


def test_a_provider_without_chat_is_refused_before_any_call(tmp_path: Path) -> None:
    from tooltrial import load_experiment, run_experiment
    from tooltrial.errors import UsageError
    from tooltrial.models.base import Model
    from tooltrial.testing.scripted import reply

    class SingleTurn(Model):
        provider = "single"
        calls = 0

        async def generate(self, system, prompt, tools, seed=None):  # type: ignore[no-untyped-def]
            SingleTurn.calls += 1
            return reply("hi")

    with pytest.raises(UsageError, match="single:m answers single requests only"):
        run_experiment(load_experiment(MINI), SingleTurn(name="m"), results=tmp_path / "r")
    assert SingleTurn.calls == 0 and not (tmp_path / "r").exists()
