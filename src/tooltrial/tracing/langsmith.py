"""LangSmith: one ``llm`` run per call, or one run tree per conversation, sent in
batches by a background thread.

A single-turn cell is one ``llm`` run. An agentic cell is one trace: a ``chain`` run for
the conversation (LangSmith has no agent run type; LangChain's and LangGraph's agents
are ``chain`` runs too, and that is what its UI groups and filters as the root of an
agent trace) with a child ``llm`` run per model turn and a child ``tool`` run per tool
call, in the order they happened.

Guarantees:

- A trace is queued whole, when the cell finishes: a full queue drops it whole, never
  a parent without its children or children without their parent.
- Child runs carry the parent's ``trace_id`` and ``parent_run_id``, and a
  ``dotted_order`` of the parent's plus their own start; start times are strictly
  increasing within a trace (a tie is moved on by a microsecond) and never before the
  parent's, so sorting by ``dotted_order`` is sorting by time.
- ``llm`` runs record what that turn was sent (system prompt, user turns, earlier
  replies with their tool calls, tool results as ``tool`` messages) in the chat format
  LangSmith renders, the reply with its tool calls and ``usage_metadata``, and
  ``ls_provider``/``ls_model_name`` for cost tracking; a turn that failed after its
  retries is an ``llm`` run with ``error``. A tool call that failed (``is_error``) is a
  ``tool`` run with ``error``. A tool run's metadata names where the tool ran
  (``tool_source``; for an MCP server ``tool_server``, "name version", and
  ``tool_server_tool``, its own name for the tool).

The ``langsmith`` package is imported when a tracer is made, not with this module.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import queue
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

from tooltrial.extras import found
from tooltrial.redact import redact_data
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
    return langsmith_enabled() and found("langsmith") and probe_langsmith() is None


def _utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(moment: dt.datetime) -> str:
    """A start time as ``dotted_order`` writes it."""
    return moment.strftime("%Y%m%dT%H%M%S%fZ")


_TICK = dt.timedelta(microseconds=1)


class LangSmithSpan(Span):
    def __init__(self, tracer: LangSmithTracer, cell: Cell, system: str, prompt: str) -> None:
        from langsmith import run_helpers
        from langsmith.uuid import uuid7

        self._tracer, self._cell = tracer, cell
        self._system, self._prompt = system, prompt
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
        own = f"{_stamp(self.start)}{run_id}"
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
        self._children: list[dict[str, Any]] = []
        self._last_start = self._last_end = self.start

    def model_turn(
        self, history: Sequence[Message], turn: AssistantTurn | Failure, started: float
    ) -> None:
        model = self._tracer.context.model_for(self._cell)
        inputs = {
            "messages": [{"role": "system", "content": self._system}, *_chat_messages(history)],
            "tools": self._inputs["tools"],
        }
        metadata = _model_metadata(model)
        if isinstance(turn, Failure):
            run = self._child(model.name, "llm", started, inputs, metadata)
            run["error"] = f"{turn.kind}: {turn.message}"
        else:
            metadata |= {
                "attempts": turn.attempts,
                "retry_wait_s": turn.retry_wait_s,
                "cached": turn.cached,
            }
            run = self._child(model.name, "llm", started, inputs, metadata)
            run["outputs"] = _response_outputs(turn.response)
        self._children.append(run)

    def tool_call(self, call: ToolCall, result: ToolResult, started: float) -> None:
        metadata = {
            "tool_call_id": call.id,
            "size": result.size,
            "changes": result.changes,
            "duration_s": result.duration_s,
        }
        origin = self._tracer.context.tool_origin(self._cell.variant, call.name)
        metadata |= {f"tool_{key}": value for key, value in origin.items() if value}
        run = self._child(call.name, "tool", started, dict(call.arguments), metadata)
        run["outputs"] = {"output": result.content}
        if result.is_error:
            run["error"] = result.content
        self._children.append(run)

    def _child(
        self,
        name: str,
        run_type: str,
        started: float,
        inputs: dict[str, Any],
        metadata: dict[str, Any],
    ) -> dict[str, Any]:
        """A child run of this cell's run that started at ``started`` and ends now."""
        from langsmith.uuid import uuid7_from_datetime

        start = max(dt.datetime.fromtimestamp(started, dt.UTC), self._last_start + _TICK)
        end = max(_utc(), start)
        self._last_start, self._last_end = start, max(self._last_end, end)
        run_id = str(uuid7_from_datetime(start))
        return {
            "id": run_id,
            "name": name,
            "run_type": run_type,
            "start_time": start,
            "end_time": end,
            "inputs": inputs,
            "extra": {"metadata": self._tracer.context.metadata(self._cell) | metadata},
            "tags": self._tracer.context.tags(self._cell),
            "trace_id": self._tree["trace_id"],
            "parent_run_id": self.id,
            "dotted_order": f"{self._tree['dotted_order']}.{_stamp(start)}{run_id}",
            "session_name": self._tree["session_name"],
        }

    def finish(self, outcome: Outcome) -> None:
        if self._tracer.context.experiment.agentic:
            self._tracer.submit(self._conversation_run(outcome), *self._children)
        else:
            self._tracer.submit(self._call_run(outcome))

    def _run(
        self, run_type: str, inputs: dict[str, Any], metadata: dict[str, Any]
    ) -> dict[str, Any]:
        context = self._tracer.context
        return {
            "id": self.id,
            "name": context.run_name(self._cell),
            "run_type": run_type,
            "start_time": self.start,
            "end_time": max(_utc(), self._last_end),
            "inputs": inputs,
            "extra": {"metadata": context.metadata(self._cell) | metadata},
            "tags": context.tags(self._cell),
            **self._tree,
        }

    def _call_run(self, outcome: Outcome) -> dict[str, Any]:
        """A single-turn cell: one ``llm`` run."""
        model = self._tracer.context.model_for(self._cell)
        run = self._run("llm", self._inputs, _outcome_metadata(outcome) | _model_metadata(model))
        if outcome.response is not None:
            run["outputs"] = _langsmith_outputs(outcome)
        elif outcome.failure is not None:
            run["error"] = f"{outcome.failure.kind}: {outcome.failure.message}"
        return run

    def _conversation_run(self, outcome: Outcome) -> dict[str, Any]:
        """An agentic cell: the ``chain`` run its turns and tool calls hang from."""
        inputs = {
            "system": self._system,
            "prompt": self._prompt,
            "variant": self._cell.variant,
            "scenario_id": self._cell.scenario_id,
        }
        run = self._run("chain", inputs, _outcome_metadata(outcome))
        conversation = outcome.conversation
        if conversation is not None:
            run["outputs"] = {
                "reply": conversation.final_text,
                "success": conversation.success,
                "stop_reason": conversation.stop_reason,
                "failed_checks": [
                    {"name": c.name, "detail": c.detail} for c in conversation.checks if not c.ok
                ],
                "turns": len(conversation.assistant_turns),
                "tool_calls": len(conversation.tool_results),
            }
        elif outcome.failure is not None:
            run["error"] = f"{outcome.failure.kind}: {outcome.failure.message}"
        return run


def _outcome_metadata(outcome: Outcome) -> dict[str, Any]:
    return {
        "attempts": outcome.attempts,
        "retry_wait_s": round(outcome.retry_wait_s, 3),
        "cached": getattr(outcome, "cached", False),  # replayed from --cache, not called
    }


def _model_metadata(model: Any) -> dict[str, Any]:
    """What LangSmith reads to name the model and price an ``llm`` run."""
    return {
        "ls_provider": model.provider,
        "ls_model_name": model.name,
        "ls_model_type": "chat",
        "ls_temperature": model.temperature,
        "ls_max_tokens": model.max_tokens,
    }


def _chat_messages(history: Sequence[Message]) -> list[dict[str, Any]]:
    """A conversation as chat messages LangSmith renders: each tool result is a ``tool``
    message answering its call's id (``status: error`` when the tool failed)."""
    messages: list[dict[str, Any]] = []
    for message in history:
        if isinstance(message, UserTurn):
            messages.append({"role": "user", "content": message.text})
        elif isinstance(message, AssistantTurn):
            messages.append(_assistant_message(message.response))
        elif isinstance(message, ToolTurn):
            messages.extend(_tool_message(result) for result in message.results)
    return messages


def _tool_message(result: ToolResult) -> dict[str, Any]:
    message = {
        "role": "tool",
        "tool_call_id": result.call_id,
        "name": result.name,
        "content": result.content,
    }
    if result.is_error:
        message["status"] = "error"
    return message


def _assistant_message(response: ModelResponse) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": response.text,
        "tool_calls": [
            {"id": c.id, "name": c.name, "args": c.arguments} for c in response.tool_calls
        ],
    }


def _langsmith_outputs(outcome: Outcome) -> dict[str, Any]:
    assert outcome.response is not None
    return _response_outputs(outcome.response)


def _response_outputs(response: ModelResponse) -> dict[str, Any]:
    usage = {"input_tokens": response.usage.input_tokens}
    usage |= {"output_tokens": response.usage.output_tokens}
    usage |= {"total_tokens": response.usage.input_tokens + response.usage.output_tokens}
    return {
        "message": _assistant_message(response),
        "stop_reason": response.stop_reason,
        "response_model": response.response_model,
        "usage_metadata": usage,
    }


_STOP = object()


def _runs_in(item: Any) -> int:
    return 0 if item is _STOP else len(item)


class LangSmithTracer(Tracer):
    """One LangSmith trace per cell, sent by a background thread in multipart batches;
    ``submitted``, ``sent``, ``dropped`` and ``unsent`` count traces, not runs."""

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

    def submit(self, run: dict[str, Any], *children: dict[str, Any]) -> None:
        """Queue one trace (a run and its child runs); never waits (a full queue drops
        the whole trace, counted)."""
        self.submitted += 1
        trace = tuple(redact_data(r) for r in (run, *children))  # no key value leaves
        try:
            self._queue.put_nowait(trace)
        except queue.Full:
            self.dropped += 1

    def _send_loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            runs = _runs_in(batch[0])
            while runs < self._batch_size:  # whole traces, about batch_size runs a request
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
                runs += _runs_in(batch[-1])
            traces = [item for item in batch if item is not _STOP]
            if traces:
                self._send(traces)
            if len(traces) < len(batch):
                return

    def _send(self, traces: list[tuple[dict[str, Any], ...]]) -> None:
        """Send whole traces; each counts as sent or not sent (never half of one)."""
        if self._errors:  # the service failed once: don't make every batch wait it out
            self.unsent += len(traces)
            return
        before = len(self._errors)
        try:
            self.client.multipart_ingest(create=[run for trace in traces for run in trace])
        except Exception as exc:
            self._errors.append(exc)
        if len(self._errors) > before:
            self.unsent += len(traces)
        else:
            self.sent += len(traces)

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
