"""One trace per conversation: an agentic cell (``tests/mini_agentic``, scripted with
``ScriptedModel`` or driven through the real ChatAnthropic against the local Messages
API server) becomes one LangSmith run tree (sent by the real ``langsmith`` client to the
local LangSmith stand-in) and one OpenTelemetry trace (an in-memory exporter)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from support.agents import api_agent
from support.paths import TESTS
from support.tracing import point_langsmith_at

from tooltrial import load_experiment, run_experiment
from tooltrial.log.reader import read_results
from tooltrial.models import get_model
from tooltrial.run.runner import _TracedTools
from tooltrial.testing.langsmith_server import LangSmithServer
from tooltrial.testing.messages_server import MessagesServer
from tooltrial.testing.scripted import Request, ScriptedModel, reply
from tooltrial.tools import ToolTimeout
from tooltrial.tracing import FanOutTracer, LangSmithTracer, TraceContext
from tooltrial.tracing.base import Span, Tracer
from tooltrial.tracing.otel import OTelTracer
from tooltrial.turns import RetryPolicy
from tooltrial.types import ToolCall, ToolResult

MINI = TESTS / "mini_agentic"
FAST = RetryPolicy(max_attempts=2, base_delay_s=0.01, max_delay_s=0.05, timeout_s=10)


@pytest.fixture(scope="module")
def experiment():
    return load_experiment(MINI)


@pytest.fixture
def langsmith(monkeypatch: pytest.MonkeyPatch) -> Iterator[LangSmithServer]:
    with LangSmithServer() as server:
        point_langsmith_at(monkeypatch, server.url)
        yield server


def broken_agent(request: Request):
    """Two failing tool calls, then a model turn that fails for good."""
    if request.call == 1:
        return reply(calls=[("update_task", {"id": 99, "due": "2025-03-21"}), ("nope", {})])
    raise ValueError("the model fell over")


def run(experiment, tmp_path: Path, script, tracer: Tracer, model=None):
    model = model or ScriptedModel(name="agent", experiment=experiment, script=script)
    result = run_experiment(
        experiment,
        model,
        runs=1,
        results=tmp_path,
        variants=["api"],
        scenarios=["move-dentist"],
        tracer=tracer,
        retry=FAST,
        run_id="conv",
    )
    (outcome,) = result.outcomes
    return outcome


def context(experiment, model) -> TraceContext:
    return TraceContext(experiment, (model,), "conv", "abc123", ("api",))


# --- LangSmith ------------------------------------------------------------------------


def langsmith_tree(experiment, tmp_path, script, langsmith, model=None):
    model = model or ScriptedModel(name="agent", experiment=experiment, script=script)
    warnings: list[str] = []
    tracer = LangSmithTracer(context(experiment, model), "conv-project", warn=warnings.append)
    outcome = run(experiment, tmp_path, script, tracer, model)
    assert warnings == [] and tracer.sent == 1  # one cell, one trace
    runs = langsmith.runs
    (root,) = [r for r in runs.values() if "parent_run_id" not in r]
    children = sorted((r for r in runs.values() if r is not root), key=lambda r: r["dotted_order"])
    return outcome, root, children


def moment(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_one_ordered_tree(root: dict, children: list[dict]) -> None:
    assert root["trace_id"] == root["id"] and root["dotted_order"].endswith(root["id"])
    for child in children:
        assert child["trace_id"] == root["id"] and child["parent_run_id"] == root["id"]
        assert child["dotted_order"].startswith(root["dotted_order"] + ".")
        assert child["dotted_order"].endswith(child["id"])
        assert child["session_name"] == root["session_name"] == "conv-project"
    starts = [moment(c["start_time"]) for c in children]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)  # dotted = time order
    assert moment(root["start_time"]) < starts[0]
    for child in children:
        assert moment(child["start_time"]) <= moment(child["end_time"])
        assert moment(child["end_time"]) <= moment(root["end_time"])


def test_a_conversation_is_one_langsmith_tree_in_time_order(experiment, tmp_path, langsmith):
    outcome, root, children = langsmith_tree(experiment, tmp_path, api_agent, langsmith)

    assert_one_ordered_tree(root, children)
    assert [c["run_type"] for c in children] == ["llm", "tool", "llm", "tool", "llm"]
    assert [c["name"] for c in children] == [
        "agent",
        "list_tasks",
        "agent",
        "update_task",
        "agent",
    ]
    (line,) = read_results([tmp_path]).values()
    assert line.trace_id == outcome.trace_id == root["id"]

    # The conversation: what it was asked, how it ended, the verdict.
    assert root["run_type"] == "chain" and root["name"] == "api/move-dentist rep 1"
    assert root["inputs"] == {
        "system": experiment.system_prompt(experiment.variant("api")),
        "prompt": "Move my dentist appointment to Friday the 21st.",
        "variant": "api",
        "scenario_id": "move-dentist",
    }
    assert root["outputs"] == {
        "reply": "Moved to Friday the 21st.",
        "success": True,
        "stop_reason": "answered",
        "failed_checks": [],
        "turns": 3,
        "tool_calls": 2,
    }
    meta = root["extra"]["metadata"]
    assert (meta["variant"], meta["run_id"], meta["rep"], meta["scenario_id"]) == (
        "api",
        "conv",
        1,
        "move-dentist",
    )
    assert meta["model"] == "scripted:agent" and meta["git_commit"] == "abc123"
    assert "error" not in root

    # Each model turn: what it was sent, its reply and usage, priced by model.
    first, lookup, second, update, last = children
    assert [m["role"] for m in first["inputs"]["messages"]] == ["system", "user"]
    sent = second["inputs"]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    (call,) = sent[2]["tool_calls"]
    assert (call["name"], call["args"]) == ("list_tasks", {"query": "Dentist"})
    assert sent[3]["tool_call_id"] == call["id"] and "Dentist bill" in sent[3]["content"]
    assert [m["role"] for m in last["inputs"]["messages"]][-2:] == ["assistant", "tool"]
    tools = {t["function"]["name"] for t in first["inputs"]["tools"]}  # as sent (OpenAI form)
    assert tools == {"list_tasks", "update_task", "delete_task", "slow"}
    assert last["outputs"]["message"]["content"] == "Moved to Friday the 21st."
    assert first["outputs"]["message"]["tool_calls"][0]["name"] == "list_tasks"
    turns = outcome.conversation.assistant_turns
    for run, turn in zip((first, second, last), turns, strict=True):
        usage = run["outputs"]["usage_metadata"]
        assert usage["input_tokens"] == turn.response.usage.input_tokens
        assert usage["output_tokens"] == turn.response.usage.output_tokens
        assert run["extra"]["metadata"]["ls_model_name"] == "agent"
        assert run["extra"]["metadata"]["variant"] == "api"
        assert "error" not in run

    # Each tool call: its arguments in, what the model got back out.
    assert lookup["inputs"] == {"query": "Dentist"}
    assert json.loads(lookup["outputs"]["output"])[0]["title"] == "Dentist"
    assert update["inputs"] == {"id": 1, "due": "2025-03-21"}
    assert update["outputs"]["output"] == '{"ok": true}'
    assert update["extra"]["metadata"]["changes"] == 1
    assert "error" not in lookup and "error" not in update


def test_failed_tool_calls_and_a_failed_turn_are_error_runs(experiment, tmp_path, langsmith):
    outcome, root, children = langsmith_tree(experiment, tmp_path, broken_agent, langsmith)

    assert outcome.failure is not None and outcome.failure.kind == "ValueError"
    assert_one_ordered_tree(root, children)
    assert [c["run_type"] for c in children] == ["llm", "tool", "tool", "llm"]
    ok_turn, raised, unknown, failed_turn = children
    assert "error" not in ok_turn
    assert raised["error"].startswith("KeyError") and raised["name"] == "update_task"
    assert unknown["error"].startswith("unknown tool 'nope'")
    assert failed_turn["error"] == "ValueError: the model fell over"
    assert "outputs" not in failed_turn or not failed_turn["outputs"]
    sent = failed_turn["inputs"]["messages"]
    assert [m.get("status") for m in sent if m["role"] == "tool"] == ["error", "error"]
    assert root["error"] == "ValueError: the model fell over"


def test_under_a_current_run_the_conversation_nests_there(experiment, tmp_path, langsmith):
    """LangSmith's pytest integration makes the test's run current: the whole tree goes
    under it, one level down."""
    from langsmith import run_helpers
    from langsmith.run_trees import RunTree

    model = ScriptedModel(name="agent", experiment=experiment, script=api_agent)
    tracer = LangSmithTracer(context(experiment, model), "conv-project")
    outer = RunTree(name="the test", run_type="chain", project_name="conv-project")
    with run_helpers.tracing_context(parent=outer):
        run(experiment, tmp_path, api_agent, tracer, model)

    runs = langsmith.runs
    (root,) = [r for r in runs.values() if r.get("parent_run_id") == str(outer.id)]
    children = [r for r in runs.values() if r.get("parent_run_id") == root["id"]]
    assert len(runs) == 1 + len(children) == 6
    assert root["run_type"] == "chain"
    assert root["dotted_order"].startswith(outer.dotted_order + ".")
    for run_ in (root, *children):
        assert run_["trace_id"] == str(outer.trace_id)
    for child in children:
        assert child["dotted_order"].startswith(root["dotted_order"] + ".")


# --- OpenTelemetry --------------------------------------------------------------------


def otel_spans(experiment, tmp_path, script, model=None):
    model = model or ScriptedModel(name="agent", experiment=experiment, script=script)
    exporter = InMemorySpanExporter()
    warnings: list[str] = []
    tracer = OTelTracer(context(experiment, model), exporter=exporter, warn=warnings.append)
    outcome = run(experiment, tmp_path, script, tracer, model)
    assert warnings == [] and tracer.finished == 1 and tracer.unsent_traces() == 0
    spans = exporter.get_finished_spans()
    (root,) = [s for s in spans if s.parent is None]
    children = sorted((s for s in spans if s is not root), key=lambda s: s.start_time)
    for child in children:
        assert child.context.trace_id == root.context.trace_id
        assert child.parent.span_id == root.context.span_id
        assert root.start_time <= child.start_time <= child.end_time <= root.end_time
    return outcome, root, children


def test_a_conversation_is_one_invoke_agent_trace(experiment, tmp_path):
    outcome, root, children = otel_spans(experiment, tmp_path, api_agent)

    assert root.name == "invoke_agent api" and root.kind == SpanKind.INTERNAL
    attrs = root.attributes
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.agent.name"] == "api"
    conversation_id = "conv/scripted:agent/api/move-dentist/1"
    assert attrs["gen_ai.conversation.id"] == conversation_id
    assert attrs["gen_ai.request.model"] == "agent"
    assert (attrs["tooltrial.variant"], attrs["tooltrial.rep"]) == ("api", 1)
    assert attrs["tooltrial.run_id"] == "conv" and attrs["tooltrial.git_commit"] == "abc123"
    usage = outcome.conversation.usage
    assert attrs["gen_ai.usage.input_tokens"] == usage.input_tokens  # every turn's
    assert attrs["gen_ai.usage.output_tokens"] == usage.output_tokens
    assert attrs["tooltrial.success"] is True and attrs["tooltrial.stop_reason"] == "answered"
    assert (attrs["tooltrial.turns"], attrs["tooltrial.tool_calls"]) == (3, 2)
    assert list(attrs["tooltrial.failed_checks"]) == []
    final = json.loads(attrs["gen_ai.output.messages"])[0]["parts"][0]["content"]
    assert final == "Moved to Friday the 21st."
    assert root.status.status_code == StatusCode.UNSET
    assert format(root.context.trace_id, "032x") in outcome.trace_id

    assert [s.name for s in children] == [
        "chat agent",
        "execute_tool list_tasks",
        "chat agent",
        "execute_tool update_task",
        "chat agent",
    ]
    chats = [s for s in children if s.name.startswith("chat")]
    for number, (span, turn) in enumerate(
        zip(chats, outcome.conversation.assistant_turns, strict=True), start=1
    ):
        a = span.attributes
        assert span.kind == SpanKind.CLIENT and a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.request.model"] == "agent"
        assert a["gen_ai.response.model"] == "scripted:agent"
        assert a["gen_ai.usage.input_tokens"] == turn.response.usage.input_tokens
        assert a["gen_ai.usage.output_tokens"] == turn.response.usage.output_tokens
        assert list(a["gen_ai.response.finish_reasons"]) == [turn.response.stop_reason]
        assert a["gen_ai.conversation.id"] == conversation_id and a["tooltrial.turn"] == number
        assert span.status.status_code == StatusCode.UNSET
    sent = json.loads(chats[1].attributes["gen_ai.input.messages"])
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    (result,) = sent[2]["parts"]
    assert result["type"] == "tool_call_response" and "Dentist bill" in result["response"]
    assert sent[1]["parts"][-1]["id"] == result["id"]

    tools = [s for s in children if s.name.startswith("execute_tool")]
    for span, call in zip(tools, outcome.conversation.tool_results, strict=True):
        a = span.attributes
        assert span.kind == SpanKind.INTERNAL and a["gen_ai.operation.name"] == "execute_tool"
        assert (a["gen_ai.tool.name"], a["gen_ai.tool.call.id"]) == (call.name, call.call_id)
        assert a["gen_ai.tool.type"] == "function" and a["gen_ai.tool.description"]
        assert a["gen_ai.tool.call.result"] == call.content
        assert span.status.status_code == StatusCode.UNSET
    assert json.loads(tools[1].attributes["gen_ai.tool.call.arguments"])["id"] == 1


def test_failed_tool_calls_and_a_failed_turn_are_error_spans(experiment, tmp_path):
    _, root, children = otel_spans(experiment, tmp_path, broken_agent)

    assert [s.name for s in children] == [
        "chat agent",
        "execute_tool update_task",
        "execute_tool nope",
        "chat agent",
    ]
    ok_turn, raised, unknown, failed_turn = children
    assert ok_turn.status.status_code == StatusCode.UNSET
    assert raised.status.status_code == StatusCode.ERROR
    assert raised.attributes["error.type"] == "KeyError"
    assert unknown.attributes["error.type"] == "unknown_tool"
    assert failed_turn.status.status_code == StatusCode.ERROR
    assert failed_turn.attributes["error.type"] == "ValueError"
    assert "gen_ai.usage.output_tokens" not in failed_turn.attributes
    assert root.status.status_code == StatusCode.ERROR
    assert root.attributes["error.type"] == "ValueError"


# --- both at once, through the real ChatAnthropic ----------------------------------------


def test_chat_anthropic_conversation_in_langsmith_and_otel(
    experiment, tmp_path, langsmith, monkeypatch
):
    """The default Messages API server calls a tool, then answers: two turns, one call."""
    with MessagesServer() as messages:
        model = get_model("anthropic:claude-test", base_url=messages.url, max_tokens=256)
        exporter = InMemorySpanExporter()
        warnings: list[str] = []
        tracer = FanOutTracer(
            [
                LangSmithTracer(context(experiment, model), "conv-project", warn=warnings.append),
                OTelTracer(context(experiment, model), exporter=exporter, warn=warnings.append),
            ]
        )
        outcome = run(experiment, tmp_path, None, tracer, model)

    assert warnings == [] and outcome.conversation is not None
    assert outcome.conversation.stop_reason == "answered"
    runs = langsmith.runs
    (root,) = [r for r in runs.values() if "parent_run_id" not in r]
    children = sorted((r for r in runs.values() if r is not root), key=lambda r: r["dotted_order"])
    assert_one_ordered_tree(root, children)
    assert [c["run_type"] for c in children] == ["llm", "tool", "llm"]
    assert outcome.trace_id == root["id"]
    sent = children[2]["inputs"]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    assert sent[3]["tool_call_id"] == sent[2]["tool_calls"][0]["id"]
    assert children[2]["outputs"]["message"]["content"].startswith("Done.")
    assert children[0]["extra"]["metadata"]["ls_provider"] == "anthropic"

    spans = exporter.get_finished_spans()
    names = sorted(s.name for s in spans)
    chats, calls = ["chat claude-test"] * 2, ["execute_tool list_tasks"]
    assert names == [*chats, *calls, "invoke_agent api"]
    assert len({s.context.trace_id for s in spans}) == 1
    (agent,) = [s for s in spans if s.parent is None]
    assert agent.attributes["gen_ai.provider.name"] == "anthropic"


# --- best-effort ----------------------------------------------------------------------


class BrokenSpan(Span):
    def model_turn(self, history, turn, started):
        raise RuntimeError("tracer bug")

    def tool_call(self, call, result, started):
        raise RuntimeError("tracer bug")

    def finish(self, outcome):
        raise RuntimeError("tracer bug")


class BrokenTracer(Tracer):
    @contextlib.asynccontextmanager
    async def trace(self, cell, system, prompt):
        yield BrokenSpan()


def test_a_failing_tracer_costs_no_result(experiment, tmp_path):
    with pytest.warns(RuntimeWarning, match="trace could not be recorded") as caught:
        outcome = run(experiment, tmp_path, api_agent, BrokenTracer())
    assert outcome.conversation is not None and outcome.conversation.success
    assert len([w for w in caught if "trace could not be recorded" in str(w.message)]) == 1
    (line,) = read_results([tmp_path]).values()
    assert line.conversation.success


class Recorder(Span):
    def __init__(self) -> None:
        self.calls: list[tuple[ToolCall, ToolResult]] = []

    def tool_call(self, call: ToolCall, result: ToolResult, started: float) -> None:
        self.calls.append((call, result))


class TimesOut:
    async def call(self, call: ToolCall) -> Any:
        raise ToolTimeout(call, 2)


async def test_the_tool_call_that_timed_out_is_traced_too():
    span = Recorder()
    call = ToolCall(id="call_0", name="slow", arguments={})
    with pytest.raises(ToolTimeout):
        await _TracedTools(TimesOut(), span, lambda what, message: None).call(call)
    ((traced, result),) = span.calls
    assert traced == call and result.is_error and result.call_id == "call_0"
    assert "ran past its 2 s limit" in result.content


def test_one_broken_tracer_does_not_blind_the_other(experiment, tmp_path):
    model = ScriptedModel(name="agent", experiment=experiment, script=api_agent)
    exporter = InMemorySpanExporter()
    otel = OTelTracer(context(experiment, model), exporter=exporter)
    with pytest.warns(RuntimeWarning, match="trace could not be recorded"):
        outcome = run(experiment, tmp_path, api_agent, FanOutTracer([BrokenTracer(), otel]))
    assert outcome.conversation is not None and outcome.conversation.success
    assert len(exporter.get_finished_spans()) == 1 + 3 + 2  # the agent, 3 turns, 2 calls
