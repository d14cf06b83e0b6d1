"""Tracing of model calls to LangSmith and OpenTelemetry, off the model call's path.

``from_env(...)`` builds what the environment asks for: a ``LangSmithTracer`` when
``LANGSMITH_API_KEY`` is set (and ``LANGSMITH_TRACING`` is not ``false``), an
``OTelTracer`` when ``--otel-endpoint`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is given, both
behind a ``FanOutTracer``, or the runner's do-nothing ``Tracer``.

Every call becomes one trace carrying variant, run id, rep, scenario id, model,
temperature and git commit. Finished calls go into a bounded queue that a background
thread (LangSmith) or a batch span processor (OpenTelemetry) sends; a full queue drops
the trace rather than wait. When the service is away or answers errors, the first failed
batch stops further sends and ``close()`` gives one warning saying how many traces were
not sent; what the tracing libraries log meanwhile is held back and counted in it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import queue
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from tooltrial.experiment import Experiment
from tooltrial.models import Model
from tooltrial.runner import Cell, Outcome, Span, Tracer

Warn = Callable[[str], None]
_PROBES: dict[str, tuple[dict[str, Any] | None, str]] = {}


class TracingWarning(UserWarning):
    """Traces were not (all) sent; the run's results are complete all the same."""


def warn_on_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def langsmith_enabled() -> bool:
    """LangSmith is on when a key is set and tracing is not switched off."""
    return bool(os.environ.get("LANGSMITH_API_KEY")) and not _langsmith_switched_off()


def _langsmith_switched_off() -> bool:
    switch = os.environ.get("LANGSMITH_TRACING", os.environ.get("LANGCHAIN_TRACING_V2", ""))
    return switch.lower() in {"false", "0"}


def langsmith_endpoint() -> str:
    # Read here, not through langsmith.utils, which caches environment variables.
    url = os.environ.get("LANGSMITH_ENDPOINT") or os.environ.get("LANGCHAIN_ENDPOINT")
    return (url or "https://api.smith.langchain.com").strip().rstrip("/")


def probe_langsmith(endpoint: str | None = None, timeout_s: float = 3.0) -> str | None:
    """Why LangSmith cannot take traces now (None when it can), asked once per endpoint.

    ``GET /info`` needs no key, so the probe sends none.
    """
    import requests

    endpoint = endpoint or langsmith_endpoint()
    if endpoint not in _PROBES:
        try:
            reply = requests.get(f"{endpoint}/info", timeout=(timeout_s, timeout_s))
            if reply.ok:
                _PROBES[endpoint] = (reply.json(), "")
            else:
                _PROBES[endpoint] = (None, f"it answered HTTP {reply.status_code}")
        except (requests.RequestException, ValueError) as exc:
            _PROBES[endpoint] = (None, _reason(exc))
    return _PROBES[endpoint][1] or None


def langsmith_ready() -> bool:
    """Key set, tracing not switched off, and the service answering: the condition for
    LangSmith's pytest integration, whose setup calls fail the test when it is away."""
    return langsmith_enabled() and probe_langsmith() is None


def _reason(exc: BaseException) -> str:
    """A failure in words that carry no URL query, header or key."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status:
        return f"it answered HTTP {status}"
    name = type(exc).__name__
    if "Connection" in name or isinstance(exc, ConnectionError):
        return "it could not be reached"
    if "Timeout" in name or isinstance(exc, TimeoutError):
        return "it did not answer in time"
    text = str(exc)
    for status in (500, 502, 503, 504, 429, 401, 403, 404):
        if f"({status})" in text or f"code: {status}" in text or f"[{status}]" in text:
            return f"it answered HTTP {status}"
    return f"sending failed ({name})"


@dataclass(frozen=True)
class TraceContext:
    """What every trace of one run carries besides its cell."""

    experiment: Experiment
    model: Model
    run_id: str
    git_commit: str | None
    variants: tuple[str, ...]

    def metadata(self, cell: Cell) -> dict[str, Any]:
        return {
            "variant": cell.variant,
            "run_id": self.run_id,
            "rep": cell.rep,
            "scenario_id": cell.scenario_id,
            "model": self.model.spec,
            "temperature": self.model.temperature,
            "git_commit": self.git_commit,
            "experiment": self.experiment.name,
        }

    def tags(self, cell: Cell) -> list[str]:
        return [
            "tooltrial",
            f"variant:{cell.variant}",
            f"rep:{cell.rep}",
            f"run:{self.run_id}",
            f"scenario:{cell.scenario_id}",
        ]

    def default_name(self) -> str:
        return f"tooltrial {self.model.spec} {' vs '.join(self.variants)} {self.run_id}"

    def tools(self, cell: Cell) -> list[dict[str, Any]]:
        return [t.openai_format() for t in self.experiment.variant(cell.variant).tools]


class _HeldLogs(logging.Handler):
    """Takes the records of a library's loggers while a tracer runs, so a dead service
    gives one warning of ours rather than a log line (or stack trace) per batch."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _original_propagate: ClassVar[dict[str, bool]] = {}  # while any tracer holds it

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self._names = list(names)
        with self._lock:
            for name in self._names:
                logger = logging.getLogger(name)
                self._original_propagate.setdefault(name, logger.propagate)
                logger.addHandler(self)
                logger.propagate = False

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1

    def restore(self) -> None:
        with self._lock:
            for name in self._names:
                logger = logging.getLogger(name)
                logger.removeHandler(self)
                if not any(isinstance(h, _HeldLogs) for h in logger.handlers):
                    logger.propagate = self._original_propagate.pop(name, True)
            self._names = []


def _not_sent_warning(
    service: str, where: str, unsent: int, total: int, reason: str, held: int
) -> str:
    logs = f"; {held} log message(s) of its client were held back" if held else ""
    return (
        f"{service}: {unsent} of {total} traces were not sent to {where} ({reason}{logs}). "
        "The results are complete in the JSONL files."
    )


# --- LangSmith ----------------------------------------------------------------------------


def _utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LangSmithSpan(Span):
    def __init__(self, tracer: LangSmithTracer, cell: Cell, system: str, prompt: str) -> None:
        from langsmith import run_helpers
        from langsmith.uuid import uuid7

        self._tracer, self._cell = tracer, cell
        self._inputs = {
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": prompt},
            ],
            "tools": tracer.context.tools(cell),
        }
        self.start = _utc()
        run_id = uuid7()
        self.id = str(run_id)
        own = f"{self.start.strftime('%Y%m%dT%H%M%S%fZ')}{run_id}"
        # Under LangSmith's pytest integration the test's run is current: nest under it.
        parent = run_helpers.get_current_run_tree()
        if parent is not None and parent.dotted_order:
            self._tree = {
                "trace_id": str(parent.trace_id),
                "parent_run_id": str(parent.id),
                "dotted_order": f"{parent.dotted_order}.{own}",
                "session_name": parent.session_name or tracer.project,
            }
        else:
            self._tree = {"trace_id": self.id, "dotted_order": own, "session_name": tracer.project}

    def finish(self, outcome: Outcome) -> None:
        context, model = self._tracer.context, self._tracer.context.model
        metadata = context.metadata(self._cell) | {
            "attempts": outcome.attempts,
            "retry_wait_s": round(outcome.retry_wait_s, 3),
            "cached": getattr(outcome, "cached", False),  # replayed from --cache, not called
            "ls_provider": model.provider,
            "ls_model_name": model.name,
            "ls_model_type": "chat",
            "ls_temperature": model.temperature,
            "ls_max_tokens": model.max_tokens,
        }
        run: dict[str, Any] = {
            "id": self.id,
            "name": f"{self._cell.variant}/{self._cell.scenario_id} rep {self._cell.rep}",
            "run_type": "llm",
            "start_time": self.start,
            "end_time": _utc(),
            "inputs": self._inputs,
            "extra": {"metadata": metadata},
            "tags": context.tags(self._cell),
            **self._tree,
        }
        if outcome.response is not None:
            run["outputs"] = _langsmith_outputs(outcome)
        elif outcome.failure is not None:
            run["error"] = f"{outcome.failure.kind}: {outcome.failure.message}"
        self._tracer.submit(run)


def _langsmith_outputs(outcome: Outcome) -> dict[str, Any]:
    response = outcome.response
    assert response is not None
    usage = {"input_tokens": response.usage.input_tokens}
    usage |= {"output_tokens": response.usage.output_tokens}
    usage |= {"total_tokens": response.usage.input_tokens + response.usage.output_tokens}
    return {
        "message": {
            "role": "assistant",
            "content": response.text,
            "tool_calls": [
                {"id": c.id, "name": c.name, "args": c.arguments} for c in response.tool_calls
            ],
        },
        "stop_reason": response.stop_reason,
        "response_model": response.response_model,
        "usage_metadata": usage,
    }


_STOP = object()


class LangSmithTracer(Tracer):
    """One LangSmith run per call, sent by a background thread in multipart batches."""

    def __init__(
        self,
        context: TraceContext,
        project: str | None = None,
        *,
        endpoint: str | None = None,
        api_key: str | None = None,
        info: dict[str, Any] | None = None,
        queue_size: int = 10_000,
        batch_size: int = 50,
        flush_timeout_s: float = 60.0,
        warn: Warn = warn_on_stderr,
    ) -> None:
        from langsmith import Client
        from urllib3.util.retry import Retry

        self.context = context
        self.project = project or os.environ.get("LANGSMITH_EXPERIMENT") or context.default_name()
        self.endpoint = endpoint or langsmith_endpoint()
        self._warn, self._batch_size, self._flush_timeout_s = warn, batch_size, flush_timeout_s
        self._held = _HeldLogs(["langsmith"])
        self._errors: list[BaseException] = []
        self.client = Client(
            api_url=self.endpoint,
            api_key=api_key or os.environ.get("LANGSMITH_API_KEY"),
            auto_batch_tracing=False,  # our thread batches; the client only sends
            info=info,
            retry_config=Retry(total=2, backoff_factor=0.2, status_forcelist=[429, 502, 503, 504]),
            timeout_ms=(3_000, 20_000),
            tracing_error_callback=self._errors.append,
        )
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self.submitted = self.sent = self.dropped = self.unsent = 0
        self._thread = threading.Thread(
            target=self._send_loop, name="langsmith-traces", daemon=True
        )
        self._thread.start()
        self._closed = False

    @contextlib.asynccontextmanager
    async def trace(self, cell: Cell, system: str, prompt: str) -> AsyncIterator[Span]:
        from langsmith import run_helpers

        span = LangSmithSpan(self, cell, system, prompt)
        # LangChain clients trace themselves when a LangSmith run is current; this call
        # already has its run, so theirs would be a duplicate.
        with run_helpers.tracing_context(enabled=False):
            yield span

    def submit(self, run: dict[str, Any]) -> None:
        """Queue a finished run; never waits (a full queue drops it, counted)."""
        self.submitted += 1
        try:
            self._queue.put_nowait(run)
        except queue.Full:
            self.dropped += 1

    def _send_loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self._batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            runs = [item for item in batch if item is not _STOP]
            if runs:
                self._send(runs)
            if len(runs) < len(batch):
                return

    def _send(self, runs: list[dict[str, Any]]) -> None:
        if self._errors:  # the service failed once: don't make every batch wait it out
            self.unsent += len(runs)
            return
        before = len(self._errors)
        try:
            self.client.multipart_ingest(create=runs)
        except Exception as exc:
            self._errors.append(exc)
        if len(self._errors) > before:
            self.unsent += len(runs)
        else:
            self.sent += len(runs)

    def close(self) -> None:
        """Flush the queue (bounded in time) and warn once if anything was not sent."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=self._flush_timeout_s)
        self._thread.join(self._flush_timeout_s)
        with contextlib.suppress(Exception):
            self.client.close()
        self._held.restore()
        missing = self.submitted - self.sent
        if missing:
            reason = _reason(self._errors[0]) if self._errors else "the queue was full or slow"
            self._warn(
                _not_sent_warning(
                    "LangSmith", self.endpoint, missing, self.submitted, reason, self._held.count
                )
            )


# --- OpenTelemetry ------------------------------------------------------------------------


class _GuardedExporter:
    """Counts what the real exporter sent; after its first failure it stops trying, so a
    dead collector costs one timeout, not one per batch."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sent = self.unsent = 0
        self.error: BaseException | str | None = None

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

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
        context, model = tracer.context, tracer.context.model
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
        self.where = self.endpoint or getattr(inner, "_endpoint", "the OTLP endpoint")
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


# --- both, and from the environment -------------------------------------------------------


class FanOutSpan(Span):
    def __init__(self, spans: Sequence[Span]) -> None:
        self.spans = spans
        self.id = next((s.id for s in spans if s.id), None)  # LangSmith's, when it is on

    def finish(self, outcome: Outcome) -> None:
        for span in self.spans:
            span.finish(outcome)


class FanOutTracer(Tracer):
    def __init__(self, tracers: Iterable[Tracer]) -> None:
        self.tracers = list(tracers)

    @contextlib.asynccontextmanager
    async def trace(self, cell: Cell, system: str, prompt: str) -> AsyncIterator[Span]:
        async with contextlib.AsyncExitStack() as stack:
            spans = [
                await stack.enter_async_context(t.trace(cell, system, prompt)) for t in self.tracers
            ]
            yield FanOutSpan(spans)

    def close(self) -> None:
        for tracer in self.tracers:
            tracer.close()


def from_env(
    experiment: Experiment,
    model: Model,
    run_id: str,
    git_commit: str | None,
    *,
    variants: Iterable[str] | None = None,
    otel_endpoint: str | None = None,
    langsmith_experiment: str | None = None,
    warn: Warn = warn_on_stderr,
) -> Tracer:
    """The tracer the environment and options ask for; close() it at the end of the run."""
    names = tuple(variants or (v.name for v in experiment.variants))
    context = TraceContext(experiment, model, run_id, git_commit, names)
    tracers: list[Tracer] = []
    otel_on = bool(otel_endpoint or _otel_env_endpoint())
    if langsmith_enabled():
        reason = probe_langsmith()
        if reason is None:
            info = _PROBES[langsmith_endpoint()][0]
            tracers.append(LangSmithTracer(context, langsmith_experiment, info=info, warn=warn))
        else:
            warn(
                f"LangSmith: traces are not sent to {langsmith_endpoint()} ({reason}). "
                "The run goes on; the results are complete in the JSONL files."
            )
    elif not _langsmith_switched_off() and not otel_on:
        warn(
            "LangSmith: LANGSMITH_API_KEY is not set, so no traces are sent "
            "(set LANGSMITH_TRACING=false to silence this)."
        )
    if otel_on:
        tracers.append(OTelTracer(context, otel_endpoint, warn=warn))
    if not tracers:
        return Tracer()
    return tracers[0] if len(tracers) == 1 else FanOutTracer(tracers)


def _otel_env_endpoint() -> str | None:
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )


def project_name(tracer: Tracer) -> str | None:
    """The LangSmith project (experiment) a tracer sends to, if any."""
    for candidate in [tracer, *getattr(tracer, "tracers", [])]:
        if isinstance(candidate, LangSmithTracer):
            return candidate.project
    return None
