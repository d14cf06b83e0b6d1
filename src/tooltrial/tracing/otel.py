"""OpenTelemetry (GenAI semantic conventions), exported over OTLP/HTTP.

A single-turn cell is one ``chat {model}`` span. An agentic cell is one trace: an
``invoke_agent {variant}`` span for the conversation with a ``chat {model}`` child per
model turn and an ``execute_tool {tool}`` child per tool call. The runner reports turns
and tool calls after the fact, so children are made with their real start and end
times (``start_time``/``end_time`` in ns) rather than as the current span.

What is recorded, by span (the GenAI conventions of semantic-conventions v1.41 /
semantic-conventions-genai; ``tooltrial.*`` are ours):

``chat {model}`` (kind CLIENT; a single-turn cell's only span, or one model turn)
    gen_ai.operation.name = "chat", gen_ai.provider.name (and the older gen_ai.system,
    same value), gen_ai.request.model, gen_ai.request.max_tokens,
    gen_ai.request.temperature (when sent), gen_ai.system_instructions,
    gen_ai.input.messages (everything the turn was sent, in order: ``text``,
    ``tool_call`` and ``tool_call_response`` parts), gen_ai.usage.input_tokens,
    gen_ai.usage.output_tokens, gen_ai.response.finish_reasons, gen_ai.response.model,
    gen_ai.output.messages. A single-turn span also has gen_ai.tool.definitions and
    the cell's tooltrial.* attributes; a turn has gen_ai.conversation.id,
    tooltrial.turn, tooltrial.attempts, tooltrial.retry_wait_s, tooltrial.cached.
    Failed (after its retries): error.type = the failure kind, status ERROR.
``invoke_agent {variant}`` (kind INTERNAL: the agent loop runs in this process)
    gen_ai.operation.name = "invoke_agent", gen_ai.agent.name (the variant: the tool
    interface is what an experiment varies), gen_ai.conversation.id (run id, model,
    variant, scenario and rep: one cell), the request attributes of a chat span,
    gen_ai.system_instructions, gen_ai.input.messages (the user's prompt),
    gen_ai.tool.definitions, the cell's tooltrial.* attributes (variant, run_id, rep,
    scenario_id, model, temperature, git_commit, experiment, tags); at the end the
    totals gen_ai.usage.input_tokens/output_tokens, the last turn's
    gen_ai.response.finish_reasons/model and gen_ai.output.messages (the final reply),
    tooltrial.success, tooltrial.stop_reason, tooltrial.turns, tooltrial.tool_calls,
    tooltrial.tool_errors, tooltrial.failed_checks. A conversation that ran to its end
    is OK whatever its verdict; one ended by a failed model turn is an ERROR.
``execute_tool {tool}`` (kind INTERNAL)
    gen_ai.operation.name = "execute_tool", gen_ai.tool.name, gen_ai.tool.call.id,
    gen_ai.tool.type = "function", gen_ai.tool.description, gen_ai.tool.call.arguments,
    gen_ai.tool.call.result, gen_ai.conversation.id, tooltrial.tool.size,
    tooltrial.tool.changes; where the tool ran (when the run resolved its tools):
    tooltrial.tool.source (``python``, ``mcp``) and, for an MCP server,
    tooltrial.tool.server ("name version" as the server reported them),
    tooltrial.tool.server_tool (its own name for the tool) and mcp.protocol.version. A
    result with ``is_error``: status ERROR and error.type =
    the result's ``error_kind`` (``timeout``, ``unknown_tool``, ``invalid_arguments``, the
    class name of what the tool raised) or ``_OTHER`` from an executor that names none.

Structured attributes (messages, definitions, arguments) are JSON strings, as the
conventions allow where the SDK has no structured attribute values.

This module imports the OpenTelemetry SDK; ``tooltrial.tracing`` imports it only when
an endpoint is configured, so a run without OpenTelemetry never loads the SDK.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tooltrial.redact import known_secrets, redact_data
from tooltrial.tracing.base import Span, Tracer
from tooltrial.tracing.context import (
    TraceContext,
    Warn,
    _HeldLogs,
    _not_sent_warning,
    _reason,
    warn_on_stderr,
)
from tooltrial.types import (
    AssistantTurn,
    Cell,
    Failure,
    Message,
    ModelResponse,
    Outcome,
    ToolCall,
    ToolResult,
    ToolTurn,
    UserTurn,
)


class _GuardedExporter(SpanExporter):
    """Counts what the real exporter sent (per trace too); after its first failure it
    stops trying, so a dead collector costs one timeout, not one per batch."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.sent = self.unsent = 0
        self.sent_by_trace: Counter[int] = Counter()
        self.error: BaseException | str | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.error is None:
            try:
                result = self.inner.export([_redacted(s) for s in spans])
            except Exception as exc:
                self.error, result = exc, SpanExportResult.FAILURE
            if result == SpanExportResult.SUCCESS:
                self.sent += len(spans)
                self.sent_by_trace.update(s.context.trace_id for s in spans if s.context)
                return result
            self.error = self.error or "the collector refused the spans"
        self.unsent += len(spans)
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _redacted(span: ReadableSpan) -> ReadableSpan:
    """``span`` with no known key value in its attributes or events (``tooltrial.redact``)."""
    if not known_secrets():
        return span
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=redact_data(dict(span.attributes or {})),
        events=[
            Event(e.name, redact_data(dict(e.attributes or {})), e.timestamp) for e in span.events
        ],
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def otel_traces_url(endpoint: str) -> str:
    """``--otel-endpoint`` is a base URL like OTEL_EXPORTER_OTLP_ENDPOINT: traces go to
    ``/v1/traces`` under it."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


_GEN_AI_PROVIDERS = {"anthropic": "anthropic", "openai": "openai", "local": "llama_cpp"}


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


class OTelSpan(Span):
    def __init__(self, tracer: OTelTracer, cell: Cell, system: str, prompt: str) -> None:
        from opentelemetry import trace

        self._tracer, self._cell, self._system = tracer, cell, system
        context = tracer.context
        self._agentic = context.experiment.agentic
        model = context.model_for(cell)
        attributes = self._model_attributes("invoke_agent" if self._agentic else "chat")
        attributes |= {
            "gen_ai.system_instructions": _instructions(system),
            "gen_ai.input.messages": json.dumps([_user_message(prompt)]),
            "gen_ai.tool.definitions": json.dumps(context.tools(cell)),
        }
        for key, value in context.metadata(cell).items():
            if value is not None:
                attributes[f"tooltrial.{key}"] = value
        attributes["tooltrial.tags"] = context.tags(cell)
        if self._agentic:
            attributes["gen_ai.agent.name"] = cell.variant
            attributes["gen_ai.conversation.id"] = self._conversation_id
            name, kind = f"invoke_agent {cell.variant}", trace.SpanKind.INTERNAL
        else:
            name, kind = f"chat {model.name}", trace.SpanKind.CLIENT
        self.span = tracer.otel.start_span(name, kind=kind, attributes=attributes)
        self._parent = trace.set_span_in_context(self.span)
        self._turns = 0
        self.id = trace.format_trace_id(self.span.get_span_context().trace_id)

    @property
    def _conversation_id(self) -> str:
        cell = self._cell
        run_id = self._tracer.context.run_id
        return f"{run_id}/{cell.model}/{cell.variant}/{cell.scenario_id}/{cell.rep}"

    def _model_attributes(self, operation: str) -> dict[str, Any]:
        model = self._tracer.context.model_for(self._cell)
        provider = _GEN_AI_PROVIDERS.get(model.provider, model.provider)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider,
            "gen_ai.system": provider,
            "gen_ai.request.model": model.name,
            "gen_ai.request.max_tokens": model.max_tokens,
        }
        if model.temperature is not None:
            attributes["gen_ai.request.temperature"] = model.temperature
        return attributes

    def model_turn(
        self, history: Sequence[Message], turn: AssistantTurn | Failure, started: float
    ) -> None:
        from opentelemetry.trace import SpanKind

        self._turns += 1
        attributes = self._model_attributes("chat") | {
            "gen_ai.conversation.id": self._conversation_id,
            "gen_ai.system_instructions": _instructions(self._system),
            "gen_ai.input.messages": json.dumps(_input_messages(history)),
            "tooltrial.turn": self._turns,
        }
        if isinstance(turn, AssistantTurn):
            attributes |= {
                "tooltrial.attempts": turn.attempts,
                "tooltrial.retry_wait_s": turn.retry_wait_s,
                "tooltrial.cached": turn.cached,
            }
        model = self._tracer.context.model_for(self._cell)
        span = self._child(f"chat {model.name}", SpanKind.CLIENT, attributes, started)
        if isinstance(turn, Failure):
            _failed(span, turn.kind, turn.message)
        else:
            _set_response(span, turn.response)
        self._end(span)

    def tool_call(self, call: ToolCall, result: ToolResult, started: float) -> None:
        from opentelemetry.trace import SpanKind

        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.name,
            "gen_ai.tool.call.id": call.id,
            "gen_ai.tool.type": "function",
            "gen_ai.tool.call.arguments": json.dumps(call.arguments),
            "gen_ai.tool.call.result": result.content,
            "gen_ai.conversation.id": self._conversation_id,
            "tooltrial.tool.size": result.size,
            "tooltrial.tool.changes": result.changes,
        }
        description = self._tool_description(call.name)
        if description:
            attributes["gen_ai.tool.description"] = description
        origin = self._tracer.context.tool_origin(self._cell.variant, call.name)
        attributes |= {f"tooltrial.tool.{key}": value for key, value in origin.items() if value}
        if origin.get("protocol_version"):
            attributes["mcp.protocol.version"] = origin["protocol_version"]
        span = self._child(f"execute_tool {call.name}", SpanKind.INTERNAL, attributes, started)
        if result.is_error:
            _failed(span, result.error_kind or "_OTHER", result.content)
        self._end(span)

    def _tool_description(self, name: str) -> str | None:
        tools = self._tracer.context.resolved_tools(self._cell.variant)
        return next((t.description for t in tools if t.name == name), None)

    def _child(self, name: str, kind: Any, attributes: dict[str, Any], started: float) -> Any:
        return self._tracer.otel.start_span(
            name, context=self._parent, kind=kind, attributes=attributes, start_time=_ns(started)
        )

    def _end(self, span: Any) -> None:
        span.end(end_time=max(time.time_ns(), span.start_time or 0))
        self._tracer.ended(span)

    def finish(self, outcome: Outcome) -> None:
        span = self.span
        span.set_attribute("tooltrial.attempts", outcome.attempts)
        span.set_attribute("tooltrial.cached", bool(getattr(outcome, "cached", False)))
        if outcome.conversation is not None:
            _set_conversation(span, outcome)
        elif outcome.response is not None:
            _set_response(span, outcome.response)
        elif outcome.failure is not None:
            _failed(span, outcome.failure.kind, outcome.failure.message)
        span.end()
        self._tracer.ended(span, root=True)


def _failed(span: Any, kind: str, message: str) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", kind)
    span.set_status(Status(StatusCode.ERROR, message[:500]))


def _set_response(span: Any, response: ModelResponse) -> None:
    span.set_attribute("gen_ai.usage.input_tokens", response.usage.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", response.usage.output_tokens)
    span.set_attribute("gen_ai.response.finish_reasons", [response.stop_reason or ""])
    if response.response_model:
        span.set_attribute("gen_ai.response.model", response.response_model)
    span.set_attribute("gen_ai.output.messages", json.dumps([_output_message(response)]))


def _set_conversation(span: Any, outcome: Outcome) -> None:
    """The conversation's totals and verdict on its ``invoke_agent`` span."""
    conversation = outcome.conversation
    assert conversation is not None and outcome.response is not None
    _set_response(span, outcome.response)  # the final reply ...
    usage = conversation.usage  # ... but the tokens of every turn
    span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
    span.set_attribute("tooltrial.success", conversation.success)
    span.set_attribute("tooltrial.stop_reason", conversation.stop_reason)
    span.set_attribute("tooltrial.turns", len(conversation.assistant_turns))
    results = conversation.tool_results
    span.set_attribute("tooltrial.tool_calls", len(results))
    span.set_attribute("tooltrial.tool_errors", sum(r.is_error for r in results))
    failed = [check.name for check in conversation.checks if not check.ok]
    span.set_attribute("tooltrial.failed_checks", failed)


def _instructions(system: str) -> str:
    return json.dumps([{"type": "text", "content": system}])


def _user_message(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"type": "text", "content": text}]}


def _output_message(response: ModelResponse) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"type": "text", "content": response.text}]
    parts += [
        {"type": "tool_call", "id": c.id, "name": c.name, "arguments": c.arguments}
        for c in response.tool_calls
    ]
    return {"role": "assistant", "parts": parts, "finish_reason": response.stop_reason}


def _input_messages(history: Sequence[Message]) -> list[dict[str, Any]]:
    """A conversation as GenAI input messages: a model's reply with its ``tool_call``
    parts, the tool results as one ``tool`` message of ``tool_call_response`` parts."""
    messages: list[dict[str, Any]] = []
    for message in history:
        if isinstance(message, UserTurn):
            messages.append(_user_message(message.text))
        elif isinstance(message, AssistantTurn):
            reply = _output_message(message.response)
            messages.append({"role": "assistant", "parts": reply["parts"]})
        elif isinstance(message, ToolTurn):
            parts = [
                {"type": "tool_call_response", "id": r.call_id, "response": r.content}
                for r in message.results
            ]
            messages.append({"role": "tool", "parts": parts})
    return messages


class OTelTracer(Tracer):
    """One GenAI trace per cell, exported over OTLP/HTTP by a batch processor."""

    def __init__(
        self,
        context: TraceContext,
        endpoint: str | None = None,
        *,
        exporter: Any = None,
        queue_size: int = 10_000,
        flush_timeout_s: float = 30.0,
        warn: Warn = warn_on_stderr,
    ) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.context = context
        self.endpoint = otel_traces_url(endpoint) if endpoint else None
        self._warn, self._flush_timeout_s = warn, flush_timeout_s
        self._held = _HeldLogs(["opentelemetry"])
        # No endpoint: the exporter reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT and headers.
        # Its timeout (10 s, or OTEL_EXPORTER_OTLP_TIMEOUT) bounds what a dead one costs.
        inner = exporter or OTLPSpanExporter(endpoint=self.endpoint)
        self.exporter = _GuardedExporter(inner)
        self.where = str(self.endpoint or getattr(inner, "_endpoint", None) or "the OTLP endpoint")
        resource = Resource.create(
            {"service.name": "tooltrial", "tooltrial.run_id": context.run_id}
        )
        # A provider of our own: the application's global one (if any) is left alone.
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(
            BatchSpanProcessor(self.exporter, max_queue_size=queue_size, max_export_batch_size=256)
        )
        self.otel = self.provider.get_tracer("tooltrial")
        self.finished = 0
        """Traces whose root span ended (cells)."""
        self._spans_by_trace: Counter[int] = Counter()
        self._closed = False

    def ended(self, span: Any, root: bool = False) -> None:
        """Count a span that ended (and its trace, for the root), for close()'s tally."""
        self._spans_by_trace[span.get_span_context().trace_id] += 1
        self.finished += root

    @contextlib.asynccontextmanager
    async def trace(self, cell: Cell, system: str, prompt: str) -> AsyncIterator[Span]:
        span = OTelSpan(self, cell, system, prompt)
        try:
            yield span
        finally:
            if span.span.is_recording():  # cancelled before finish(): still end it
                span.span.end()

    def unsent_traces(self) -> int:
        """Traces with a span that ended but was not exported."""
        sent = self.exporter.sent_by_trace
        return sum(1 for trace, spans in self._spans_by_trace.items() if sent[trace] < spans)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.provider.force_flush(int(self._flush_timeout_s * 1000))
        self.provider.shutdown()
        self._held.restore()
        missing = self.unsent_traces()
        if missing > 0:
            error = self.exporter.error
            reason = error if isinstance(error, str) else _reason(error) if error else "timeout"
            self._warn(
                _not_sent_warning(
                    "OpenTelemetry", self.where, missing, self.finished, reason, self._held.count
                )
            )
