"""LangSmith: one ``llm`` run per call, sent in batches by a background thread.

The ``langsmith`` package is imported when a tracer is made, not with this module.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import queue
import threading
from collections.abc import AsyncIterator
from typing import Any

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

_PROBES: dict[str, tuple[dict[str, Any] | None, str]] = {}


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
        context = self._tracer.context
        model = context.model_for(self._cell)
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
            "name": context.run_name(self._cell),
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
