"""OpenTelemetry: one ``chat`` span per call (GenAI semantic conventions), OTLP/HTTP.

This module imports the OpenTelemetry SDK; ``tooltrial.tracing`` imports it only when
an endpoint is configured, so a run without OpenTelemetry never loads the SDK.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tooltrial.tracing.base import Span, Tracer
from tooltrial.tracing.context import (
    TraceContext,
    Warn,
    _HeldLogs,
    _not_sent_warning,
    _reason,
    warn_on_stderr,
)
from tooltrial.types import Cell, Outcome


class _GuardedExporter(SpanExporter):
    """Counts what the real exporter sent; after its first failure it stops trying, so a
    dead collector costs one timeout, not one per batch."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.sent = self.unsent = 0
        self.error: BaseException | str | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.error is None:
            try:
                result = self.inner.export(spans)
            except Exception as exc:
                self.error, result = exc, SpanExportResult.FAILURE
            if result == SpanExportResult.SUCCESS:
                self.sent += len(spans)
                return result
            self.error = self.error or "the collector refused the spans"
        self.unsent += len(spans)
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def otel_traces_url(endpoint: str) -> str:
    """``--otel-endpoint`` is a base URL like OTEL_EXPORTER_OTLP_ENDPOINT: traces go to
    ``/v1/traces`` under it."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


_GEN_AI_PROVIDERS = {"anthropic": "anthropic", "openai": "openai", "local": "llama_cpp"}


class OTelSpan(Span):
    def __init__(self, tracer: OTelTracer, cell: Cell, system: str, prompt: str) -> None:
        from opentelemetry import trace

        self._tracer = tracer
        context = tracer.context
        model = context.model_for(cell)
        provider = _GEN_AI_PROVIDERS.get(model.provider, model.provider)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.system": provider,
            "gen_ai.request.model": model.name,
            "gen_ai.request.max_tokens": model.max_tokens,
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": system}]),
            "gen_ai.input.messages": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": prompt}]}]
            ),
            "gen_ai.tool.definitions": json.dumps(context.tools(cell)),
        }
        if model.temperature is not None:
            attributes["gen_ai.request.temperature"] = model.temperature
        for key, value in context.metadata(cell).items():
            if value is not None:
                attributes[f"tooltrial.{key}"] = value
        attributes["tooltrial.tags"] = context.tags(cell)
        self.span = tracer.otel.start_span(
            f"chat {model.name}", kind=trace.SpanKind.CLIENT, attributes=attributes
        )
        self.id = trace.format_trace_id(self.span.get_span_context().trace_id)

    def finish(self, outcome: Outcome) -> None:
        from opentelemetry.trace import Status, StatusCode

        span = self.span
        span.set_attribute("tooltrial.attempts", outcome.attempts)
        span.set_attribute("tooltrial.cached", bool(getattr(outcome, "cached", False)))
        response = outcome.response
        if response is not None:
            span.set_attribute("gen_ai.usage.input_tokens", response.usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", response.usage.output_tokens)
            span.set_attribute("gen_ai.response.finish_reasons", [response.stop_reason or ""])
            if response.response_model:
                span.set_attribute("gen_ai.response.model", response.response_model)
            parts: list[dict[str, Any]] = [{"type": "text", "content": response.text}]
            parts += [
                {"type": "tool_call", "id": c.id, "name": c.name, "arguments": c.arguments}
                for c in response.tool_calls
            ]
            message = {"role": "assistant", "parts": parts, "finish_reason": response.stop_reason}
            span.set_attribute("gen_ai.output.messages", json.dumps([message]))
        elif outcome.failure is not None:
            span.set_attribute("error.type", outcome.failure.kind)
            span.set_status(Status(StatusCode.ERROR, outcome.failure.message[:500]))
        span.end()
        self._tracer.finished += 1


class OTelTracer(Tracer):
    """One GenAI ``chat`` span per call, exported over OTLP/HTTP by a batch processor."""

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
        self._closed = False

    @contextlib.asynccontextmanager
    async def trace(self, cell: Cell, system: str, prompt: str) -> AsyncIterator[Span]:
        span = OTelSpan(self, cell, system, prompt)
        try:
            yield span
        finally:
            if span.span.is_recording():  # cancelled before finish(): still end it
                span.span.end()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.provider.force_flush(int(self._flush_timeout_s * 1000))
        self.provider.shutdown()
        self._held.restore()
        missing = self.finished - self.exporter.sent
        if missing > 0:
            error = self.exporter.error
            reason = error if isinstance(error, str) else _reason(error) if error else "timeout"
            self._warn(
                _not_sent_warning(
                    "OpenTelemetry", self.where, missing, self.finished, reason, self._held.count
                )
            )
