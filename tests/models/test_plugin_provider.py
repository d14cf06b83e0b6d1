"""A provider registered through the ``tooltrial.providers`` entry point, end to end.

The test writes a tiny installed distribution (a module plus its ``*.dist-info`` with
``entry_points.txt``) into a folder, puts the folder on PYTHONPATH and runs the real
``python -m tooltrial run`` in a subprocess. The plugin's model is a
``tooltrial.testing.scripted.ScriptedModel`` that raises its own exception types; its own
``classify`` decides that ``Flaky`` is retried and ``Refused`` is recorded with the
plugin's kind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.paths import TESTS

from tooltrial.definitions import load_experiment
from tooltrial.log.reader import iter_records
from tooltrial.log.records import Error, Metadata, Result
from tooltrial.log.validate import validate
from tooltrial.run.options import RunOptions
from tooltrial.run.session import Run, open_run
from tooltrial.testing.scripted import ScriptedModel, Unscripted, reply
from tooltrial.turns import RetryPolicy
from tooltrial.types import Cell

SAMPLE = TESTS / "experiment"
FLAKY = "no-call-weather"  # fails once per cell, then answers
REFUSED = "clarify-move-meeting"  # always refused by the plugin's backend

PLUGIN = """
from tooltrial.definitions import load_experiment
from tooltrial.testing.scripted import ScriptedModel, reply
from tooltrial.types import Failure


class Flaky(Exception):
    "The plugin's backend is busy; the same call may work later."


class Refused(Exception):
    "The plugin's backend will not answer this request."


def script(request):
    if request.scenario_id == {flaky!r} and request.call == 1:
        raise Flaky("busy, try again")
    if request.scenario_id == {refused!r}:
        raise Refused("this request is refused by policy")
    return reply(text=f"scripted answer to {{request.scenario_id}}?")


class PlugModel(ScriptedModel):
    provider = "myplug"

    def classify(self, exc):
        if isinstance(exc, Flaky):
            return Failure("plug_busy", str(exc), retryable=True, retry_after_s=0.0)
        if isinstance(exc, Refused):
            return Failure("plug_refused", str(exc), retryable=False)
        return super().classify(exc)


def factory(**settings):
    return PlugModel(script=script, experiment=load_experiment({experiment!r}), **settings)
"""


@pytest.fixture
def plugin_path(tmp_path: Path) -> Path:
    """A folder holding an 'installed' distribution that registers provider myplug."""
    site = tmp_path / "site"
    site.mkdir()
    source = PLUGIN.format(flaky=FLAKY, refused=REFUSED, experiment=str(SAMPLE))
    (site / "myplug_provider.py").write_text(textwrap.dedent(source))
    info = site / "myplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[tooltrial.providers]\nmyplug = myplug_provider:factory\n"
    )
    return site


def _run_cli(plugin_path: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH", "OTEL_"))}
    env.update(PYTHONPATH=str(plugin_path), LANGSMITH_TRACING="false", NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "tooltrial", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_plugin_provider_end_to_end(plugin_path: Path, tmp_path: Path):
    results = tmp_path / "results"
    args = ["run", str(SAMPLE), "--model", "myplug:x", "--runs", "1", "--results", str(results)]
    done = _run_cli(plugin_path, tmp_path, *args)
    assert done.returncode == 1, done.stderr  # some cells ended as errors
    records = [r for path in sorted(results.glob("*.jsonl")) for r in iter_records(path)]
    metadata = [r for r in records if isinstance(r, Metadata)]
    answered = [r for r in records if isinstance(r, Result)]
    errors = [r for r in records if isinstance(r, Error)]
    experiment = load_experiment(SAMPLE)
    cells = {(v.name, s.id) for v in experiment.variants for s in experiment.scenarios}
    assert {m.model for m in metadata} == {"myplug:x"}
    assert sorted((r.variant, r.scenario_id) for r in answered) == sorted(
        (v, s) for v, s in cells if s != REFUSED
    ), "one result for every cell the plugin answers"
    assert all(r.response_text == f"scripted answer to {r.scenario_id}?" for r in answered)
    flaky = [r for r in answered if r.scenario_id == FLAKY]
    assert len(flaky) == 2 and all(r.attempts == 2 for r in flaky), "Flaky was retried"
    assert all(r.attempts == 1 for r in answered if r.scenario_id != FLAKY)
    assert sorted((e.variant, e.scenario_id, e.kind, e.attempts) for e in errors) == [
        ("applike", REFUSED, "plug_refused", 1),
        ("baseline", REFUSED, "plug_refused", 1),
    ], "Refused is the plugin's own kind, never retried"
    assert "this request is refused by policy" in errors[0].message
    check = validate(results)
    assert not check.ok
    assert {s for arm in check.arms for s in arm.missing} == {REFUSED}
    again = _run_cli(plugin_path, tmp_path, "validate", str(results))
    assert again.returncode == 1 and REFUSED in again.stdout


def test_a_broken_plugin_is_named_and_others_still_load(plugin_path: Path, tmp_path: Path):
    (plugin_path / "myplug_provider.py").write_text("raise ImportError('no backend here')\n")
    results = tmp_path / "results"
    done = _run_cli(
        plugin_path, tmp_path, "run", str(SAMPLE), "--model", "myplug:x", "--results", str(results)
    )
    err = " ".join(done.stderr.split())
    assert done.returncode == 2
    assert "provider 'myplug' (myplug_provider:factory, from myplug) cannot be loaded" in err
    assert "no backend here" in err
    assert not results.exists()


# --- ScriptedModel in-process, as a user's own tests would use it ------------------------


async def test_scripted_model_in_process(tmp_path):
    experiment = load_experiment(SAMPLE)
    model = ScriptedModel(
        name="demo",
        experiment=experiment,
        script={
            ("applike", "no-call-small-talk"): "You're welcome!",
            ("*", "create-task-tomorrow-at-3"): reply(
                calls=[("add_task", {"title": "Call the plumber", "due": "2025-03-13 3pm"})]
            ),
            ("*", FLAKY): [TimeoutError, "Sunny."],
        },
    )
    retry = RetryPolicy(max_attempts=2, base_delay_s=0.0)
    with open_run(experiment, model, RunOptions(results=tmp_path, retry=retry)) as run:
        await cells_of_a_scripted_model(run, model.spec)


async def cells_of_a_scripted_model(runner: Run, spec: str) -> None:
    thanks = await runner.call(Cell(spec, "applike", "no-call-small-talk", 1))
    assert thanks.response is not None and thanks.response.text == "You're welcome!"
    task = await runner.call(Cell(spec, "applike", "create-task-tomorrow-at-3", 1))
    assert task.response is not None and task.response.tool_calls[0].name == "add_task"
    assert task.response.usage.input_tokens > 0 and task.response.response_model == "scripted:demo"
    weather = await runner.call(Cell(spec, "baseline", FLAKY, 1))
    assert weather.response is not None and weather.attempts == 2
    missing = await runner.call(Cell(spec, "baseline", "no-call-small-talk", 1))
    assert missing.failure is not None and missing.failure.kind == "unscripted"
    assert not missing.failure.retryable and missing.attempts == 1


async def test_scripted_model_from_a_function_without_an_experiment():
    seen = []
    model = ScriptedModel(name="fn", script=lambda request: seen.append(request) or "ok")
    response = await model.generate("sys", "hello", (), seed=7)
    await model.generate("sys", "hello", (), seed=7)
    assert response.text == "ok"
    assert [(r.prompt, r.variant, r.scenario_id, r.call) for r in seen] == [
        ("hello", None, None, 1),
        ("hello", None, None, 2),
    ]
    with pytest.raises(Unscripted):
        await ScriptedModel(name="m", script={}).generate("s", "p", ())


# --- a plugin that holds a conversation ------------------------------------------------

MINI = TESTS / "mini_agentic"

CHAT_PLUGIN = """
import json

from tooltrial.models import Model
from tooltrial.types import ModelResponse, ToolCall, ToolTurn, Usage


class ChatModel(Model):
    provider = "chatplug"

    async def chat(self, system, messages, tools, seed=None):
        last = messages[-1]
        if isinstance(last, ToolTurn):  # the results of its lookup: move the exact match
            found = json.loads(last.results[0].content)
            if isinstance(found, list):
                task = next(t for t in found if t["title"] == "Dentist")
                return self._calls(("update_task", {"id": task["id"], "due": "2025-03-21"}))
            return ModelResponse(
                text="Moved.", tool_calls=(), stop_reason="end_turn", usage=Usage()
            )
        return self._calls(("list_tasks", {"query": "Dentist"}))

    def _calls(self, *calls):
        made = tuple(ToolCall(id=f"c{i}", name=n, arguments=a) for i, (n, a) in enumerate(calls))
        return ModelResponse(text="", tool_calls=made, stop_reason="tool_use", usage=Usage())


def factory(**settings):
    return ChatModel(**settings)
"""


def test_a_plugin_with_chat_runs_an_agentic_experiment(plugin_path: Path, tmp_path: Path):
    (plugin_path / "chatplug_provider.py").write_text(CHAT_PLUGIN)
    info = plugin_path / "chatplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: chatplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[tooltrial.providers]\nchatplug = chatplug_provider:factory\n"
    )
    results = tmp_path / "results"
    args = ["run", str(MINI), "--model", "chatplug:x", "--runs", "1", "--results", str(results)]
    done = _run_cli(plugin_path, tmp_path, *args, "--variant", "api", "--scenario", "move-dentist")
    assert done.returncode == 0, done.stderr
    (line,) = [r for p in results.glob("*.jsonl") for r in iter_records(p) if isinstance(r, Result)]
    assert line.conversation is not None and line.conversation.success, line.conversation
    assert [m.role for m in line.conversation.messages] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
