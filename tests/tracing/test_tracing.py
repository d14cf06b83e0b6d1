"""LangSmith tracing through the real ``langsmith`` client, against the local LangSmith
stand-in; model calls go through ChatAnthropic to the local Messages API server."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.paths import TESTS
from support.runs import run_cells as run_through
from support.tracing import point_langsmith_at

from tooltrial import cli, tracing
from tooltrial.definitions import Experiment, load_experiment
from tooltrial.models import get_model
from tooltrial.run.plan import plan_cells
from tooltrial.testing.langsmith_server import LangSmithServer, free_port_url
from tooltrial.testing.messages_server import MessagesServer
from tooltrial.tracing.base import Tracer
from tooltrial.turns import RetryPolicy
from tooltrial.types import Outcome

EXPERIMENT_DIR = TESTS / "experiment"
FAST = RetryPolicy(max_attempts=2, base_delay_s=0.01, max_delay_s=0.05, timeout_s=10)
SCENARIOS = ["create-task-tomorrow-at-3", "create-event-monday-morning"]


@pytest.fixture(scope="module")
def experiment() -> Experiment:
    return load_experiment(EXPERIMENT_DIR)


@pytest.fixture
def messages() -> Iterator[MessagesServer]:
    with MessagesServer() as server:
        yield server


@pytest.fixture
def langsmith(monkeypatch: pytest.MonkeyPatch) -> Iterator[LangSmithServer]:
    with LangSmithServer() as server:
        point_langsmith_at(monkeypatch, server.url)
        yield server


def scenario_ids(experiment: Experiment) -> list[str]:
    return [s for s in SCENARIOS if s in experiment.scenario_ids] or experiment.scenario_ids[:2]


def run_cells(
    experiment: Experiment, messages: MessagesServer, tracer: Tracer, tmp_path: Path, runs: int
) -> list[Outcome]:
    model = get_model("anthropic:claude-test", base_url=messages.url, max_tokens=64)
    cells = plan_cells(experiment, model.spec, runs, scenario_ids=scenario_ids(experiment))
    run = run_through(experiment, model, cells, tmp_path, tracer=tracer, run_id="run-t", retry=FAST)
    return run.outcomes


def result_lines(folder: Path) -> list[dict]:
    lines = []
    for path in sorted(folder.glob("*.jsonl")):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        lines += [r for r in records if r["type"] == "scenario_result"]
    return lines


def make_tracer(experiment: Experiment, messages: MessagesServer, warnings: list[str]) -> Tracer:
    model = get_model("anthropic:claude-test", base_url=messages.url, max_tokens=64)
    return tracing.from_env(experiment, model, "run-t", "abc123", warn=warnings.append)


def test_one_langsmith_run_per_call_with_variant_run_and_rep(
    experiment, messages, langsmith, tmp_path
):
    warnings: list[str] = []
    tracer = make_tracer(experiment, messages, warnings)
    assert isinstance(tracer, tracing.LangSmithTracer)
    outcomes = run_cells(experiment, messages, tracer, tmp_path, runs=2)

    assert warnings == []
    lines = result_lines(tmp_path)
    assert len(lines) == len(outcomes) == 2 * 2 * len(scenario_ids(experiment))
    runs = langsmith.runs
    posted = Counter(op.run["id"] for op in langsmith.operations)
    assert set(runs) == {line["trace_id"] for line in lines}  # nothing lost, nothing extra
    assert set(posted.values()) == {1}  # nothing sent twice
    for line in lines:
        run = runs[line["trace_id"]]
        meta = run["extra"]["metadata"]
        assert (meta["variant"], meta["rep"], meta["scenario_id"]) == (
            line["variant"],
            line["rep"],
            line["scenario_id"],
        )
        assert meta["run_id"] == "run-t" and meta["git_commit"] == "abc123"
        assert meta["model"] == "anthropic:claude-test" and meta["temperature"] == 0.2
        assert {f"variant:{line['variant']}", f"rep:{line['rep']}", "run:run-t"} <= set(run["tags"])
        assert run["run_type"] == "llm" and run["trace_id"] == run["id"]
        assert (
            run["inputs"]["messages"][1]["content"]
            == experiment.scenario(line["scenario_id"]).prompt
        )
        assert run["outputs"]["message"]["content"] == line["response_text"]
        assert run["session_name"] == tracer.project


def test_default_project_names_model_variants_and_run(experiment, messages, langsmith):
    model = get_model("anthropic:claude-test", base_url=messages.url)
    tracer = tracing.from_env(experiment, model, "run-7", None, variants=["applike"])
    tracer.close()
    assert tracing.project_name(tracer) == "tooltrial anthropic:claude-test applike run-7"


def test_experiment_name_from_env_and_from_option(experiment, messages, langsmith, monkeypatch):
    model = get_model("anthropic:claude-test", base_url=messages.url)
    monkeypatch.setenv("LANGSMITH_EXPERIMENT", "from-env")
    from_env = tracing.from_env(experiment, model, "r", None)
    option = tracing.from_env(experiment, model, "r", None, langsmith_experiment="opt")
    for tracer in (from_env, option):
        tracer.close()
    assert (tracing.project_name(from_env), tracing.project_name(option)) == ("from-env", "opt")


@pytest.mark.parametrize("broken", ["down", "500"])
def test_broken_service_run_completes_with_one_warning(
    experiment, messages, monkeypatch, tmp_path, caplog, capfd, broken
):
    """Down: nothing listens. 500: /info answers but every ingest answers 500."""
    caplog.set_level(logging.DEBUG)
    server = LangSmithServer().start()
    try:
        url = free_port_url() if broken == "down" else server.url
        point_langsmith_at(monkeypatch, url)
        warnings: list[str] = []
        tracer = make_tracer(experiment, messages, warnings)
        server.fail_status = 500  # after the probe: the ingest calls fail
        outcomes = run_cells(experiment, messages, tracer, tmp_path, runs=1)
    finally:
        server.stop()

    assert all(o.response is not None for o in outcomes)
    assert len(result_lines(tmp_path)) == len(outcomes)
    assert len(warnings) == 1, warnings
    assert "LangSmith" in warnings[0] and "not sent" in warnings[0]
    assert "JSONL" in warnings[0]
    held = [r for r in caplog.records if r.name.startswith("langsmith") and r.levelno >= 30]
    assert not held
    assert "Traceback" not in capfd.readouterr().err


def test_service_answering_500_from_the_start_gives_one_warning(
    experiment, messages, monkeypatch, tmp_path
):
    with LangSmithServer(fail_status=500) as server:
        point_langsmith_at(monkeypatch, server.url)
        warnings: list[str] = []
        tracer = make_tracer(experiment, messages, warnings)
        outcomes = run_cells(experiment, messages, tracer, tmp_path, runs=1)
    assert type(tracer) is Tracer  # the probe saw it: no client is even made
    assert all(o.response is not None for o in outcomes)
    assert len(warnings) == 1 and "HTTP 500" in warnings[0]


def test_no_key_one_notice_and_switch_off_silences_it(experiment, messages, monkeypatch):
    monkeypatch.delenv("LANGSMITH_API_KEY", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    model = get_model("anthropic:claude-test", base_url=messages.url)
    warnings: list[str] = []
    assert type(tracing.from_env(experiment, model, "r", None, warn=warnings.append)) is Tracer
    assert len(warnings) == 1 and "LANGSMITH_API_KEY is not set" in warnings[0]
    monkeypatch.setenv("LANGSMITH_TRACING", "false")
    tracing.from_env(experiment, model, "r", None, warn=warnings.append)
    assert len(warnings) == 1


class StuckTracer(tracing.LangSmithTracer):
    """A service that takes its time: each batch waits for the gate."""

    gate = threading.Event()

    def _send(self, traces: list[tuple[dict, ...]]) -> None:
        self.gate.wait(10)
        self.unsent += len(traces)


def test_a_full_queue_drops_instead_of_waiting(experiment, messages, langsmith):
    """A service too slow to keep up never holds a call back: finish() only queues."""
    model = get_model("anthropic:claude-test", base_url=messages.url)
    names = tuple(v.name for v in experiment.variants)
    context = tracing.TraceContext(experiment, (model,), "r", None, names)
    warnings: list[str] = []
    tracer = StuckTracer(context, queue_size=2, batch_size=1, warn=warnings.append)
    started = time.perf_counter()
    for _ in range(20):
        tracer.submit({"id": "x"})
    submit_s = time.perf_counter() - started
    StuckTracer.gate.set()
    tracer.close()
    assert submit_s < 1.0  # 20 submits against a stuck sender: no waiting
    assert 17 <= tracer.dropped <= 18  # the queue held 2, the sender had taken at most 1
    assert len(warnings) == 1 and "20 of 20 traces were not sent" in warnings[0]


def test_cli_run_sends_traces_and_records_their_ids(experiment, messages, langsmith, tmp_path):
    code = cli.main(
        [
            "run",
            str(EXPERIMENT_DIR),
            "--model",
            "anthropic:claude-test",
            "--base-url",
            messages.url,
            "--runs",
            "1",
            "--variant",
            "applike",
            "--scenario",
            scenario_ids(experiment)[0],
            "--results",
            str(tmp_path),
            "--run-id",
            "cli-run",
            "--langsmith-experiment",
            "cli-exp",
        ]
    )
    assert code == 0
    (line,) = result_lines(tmp_path)
    run = langsmith.runs[line["trace_id"]]
    assert run["session_name"] == "cli-exp"
    assert run["extra"]["metadata"]["run_id"] == "cli-run"
    assert json.dumps(run["tags"]).count("variant:applike") == 1
