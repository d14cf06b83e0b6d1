"""OpenTelemetry spans, exported by the real OTLP/HTTP exporter to a real OTLP receiver
(oteltap, run on 127.0.0.1 by the test); model calls go to the local Messages API server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.paths import TESTS
from support.runs import run_cells as run_through
from support.tracing import attributes, otlp_receiver

from tooltrial import tracing
from tooltrial.definitions import Experiment, load_experiment
from tooltrial.models import get_model
from tooltrial.run.plan import plan_cells
from tooltrial.testing.langsmith_server import free_port_url
from tooltrial.testing.messages_server import MessagesServer
from tooltrial.tracing import otel
from tooltrial.tracing.base import Tracer
from tooltrial.turns import RetryPolicy
from tooltrial.types import Outcome

EXPERIMENT_DIR = TESTS / "experiment"
FAST = RetryPolicy(max_attempts=2, base_delay_s=0.01, max_delay_s=0.05, timeout_s=10)


@pytest.fixture(scope="module")
def experiment() -> Experiment:
    return load_experiment(EXPERIMENT_DIR)


@pytest.fixture
def messages() -> Iterator[MessagesServer]:
    with MessagesServer() as server:
        yield server


@pytest.fixture(autouse=True)
def only_otel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key")
    monkeypatch.setenv("LANGSMITH_TRACING", "false")
    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)


async def run_cells(
    experiment: Experiment, messages: MessagesServer, tracer: Tracer, tmp_path: Path
) -> tuple[list[Outcome], list[dict]]:
    model = get_model("anthropic:claude-test", base_url=messages.url, max_tokens=64)
    cells = plan_cells(experiment, model.spec, 2, scenario_ids=experiment.scenario_ids[:3])
    # In a thread of its own: the run closes (flushes) its tracer at the end, and the
    # receiver's loop, this one, must keep polling meanwhile.
    run = await asyncio.to_thread(
        run_through, experiment, model, cells, tmp_path, tracer=tracer, run_id="run-o", retry=FAST
    )
    outcomes = run.outcomes
    lines = []
    for path in sorted(tmp_path.glob("*.jsonl")):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        lines += [r for r in records if r["type"] == "scenario_result"]
    return outcomes, lines


def otel_tracer(experiment: Experiment, messages: MessagesServer, warnings: list[str], **kw):
    model = get_model("anthropic:claude-test", base_url=messages.url, max_tokens=64)
    return tracing.from_env(experiment, model, "run-o", "c0ffee", warn=warnings.append, **kw)


async def test_one_genai_span_per_call_with_the_run_attributes(experiment, messages, tmp_path):
    async with otlp_receiver() as collector:
        warnings: list[str] = []
        tracer = otel_tracer(experiment, messages, warnings, otel_endpoint=collector.url)
        assert isinstance(tracer, otel.OTelTracer)
        outcomes, lines = await run_cells(experiment, messages, tracer, tmp_path)
        spans = await collector.wait_for(len(outcomes))

    assert warnings == []
    assert len(lines) == len(outcomes) == 12
    by_trace = {span.trace_id.hex(): span for span in spans}
    assert len(spans) == len(by_trace) == 12  # nothing lost, nothing sent twice
    assert set(by_trace) == {line["trace_id"] for line in lines}
    for line in lines:
        span = by_trace[line["trace_id"]]
        attrs = attributes(span)
        assert span.name == "chat claude-test"
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.provider.name"] == attrs["gen_ai.system"] == "anthropic"
        assert attrs["gen_ai.request.model"] == "claude-test"
        assert attrs["gen_ai.request.temperature"] == pytest.approx(0.2)
        assert attrs["gen_ai.usage.input_tokens"] == line["usage"]["input_tokens"]
        assert attrs["gen_ai.usage.output_tokens"] == line["usage"]["output_tokens"]
        assert attrs["gen_ai.response.finish_reasons"] == [line["stop_reason"]]
        assert attrs["tooltrial.variant"] == line["variant"]
        assert attrs["tooltrial.rep"] == line["rep"]
        assert attrs["tooltrial.scenario_id"] == line["scenario_id"]
        assert attrs["tooltrial.run_id"] == "run-o"
        assert attrs["tooltrial.git_commit"] == "c0ffee"
        assert f"variant:{line['variant']}" in attrs["tooltrial.tags"]
        prompt = experiment.scenario(line["scenario_id"]).prompt
        assert json.loads(attrs["gen_ai.input.messages"])[0]["parts"][0]["content"] == prompt


async def test_the_standard_environment_variable_turns_it_on(
    experiment, messages, tmp_path, monkeypatch
):
    async with otlp_receiver() as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
        warnings: list[str] = []
        tracer = otel_tracer(experiment, messages, warnings)
        outcomes, _ = await run_cells(experiment, messages, tracer, tmp_path)
        spans = await collector.wait_for(len(outcomes))
    assert len(spans) == len(outcomes) and warnings == []


async def test_collector_down_run_completes_with_one_warning(
    experiment, messages, tmp_path, caplog, capfd, monkeypatch
):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2")  # seconds the exporter retries
    warnings: list[str] = []
    tracer = otel_tracer(experiment, messages, warnings, otel_endpoint=free_port_url())
    outcomes, lines = await run_cells(experiment, messages, tracer, tmp_path)
    assert len(lines) == len(outcomes) == 12
    assert len(warnings) == 1 and "12 of 12 traces were not sent" in warnings[0]
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")]
    assert "Traceback" not in capfd.readouterr().err


def test_otel_endpoint_is_a_base_url_like_the_standard_variable():
    assert otel.otel_traces_url("http://h:4318") == "http://h:4318/v1/traces"
    assert otel.otel_traces_url("http://h:4318/v1/traces") == "http://h:4318/v1/traces"
