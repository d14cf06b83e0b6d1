"""The runner's view of tracing: a ``Tracer`` opens a ``Span`` per cell.

The default ``Tracer`` sends nothing; ``tooltrial.tracing.from_env`` picks the real ones.
A tracer must never hold up or fail a call: implementations queue and send elsewhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence

from tooltrial.types import AssistantTurn, Cell, Failure, Message, Outcome, ToolCall, ToolResult


class Span:
    """A handle on one cell's trace; ``id`` goes on the result line.

    An agentic cell also reports each model turn and each tool call as it ends, so a
    tracer can record them as child runs/spans; times are ``time.time()`` seconds."""

    id: str | None = None

    def model_turn(
        self, history: Sequence[Message], turn: AssistantTurn | Failure, started: float
    ) -> None:
        """One model turn of a conversation ended (``history``: what it was sent)."""

    def tool_call(self, call: ToolCall, result: ToolResult, started: float) -> None:
        """One tool call of a conversation ended."""

    def finish(self, outcome: Outcome) -> None:
        """Called once with the cell's outcome, before the line is written."""


class Tracer:
    """Where traces go. This default sends nothing; see ``tooltrial.tracing``."""

    @contextlib.asynccontextmanager
    async def trace(self, cell: Cell, system: str, prompt: str) -> AsyncIterator[Span]:
        yield Span()

    def close(self) -> None:
        """Flush what is queued; called once at the end of a run."""


class FanOutSpan(Span):
    """Every tracer's span; one that raises does not keep the others from recording
    (the first error is raised once all were called, for the runner to warn about)."""

    def __init__(self, spans: Sequence[Span]) -> None:
        self.spans = spans
        self.id = next((s.id for s in spans if s.id), None)  # LangSmith's, when it is on

    def model_turn(
        self, history: Sequence[Message], turn: AssistantTurn | Failure, started: float
    ) -> None:
        self._each(lambda span: span.model_turn(history, turn, started))

    def tool_call(self, call: ToolCall, result: ToolResult, started: float) -> None:
        self._each(lambda span: span.tool_call(call, result, started))

    def finish(self, outcome: Outcome) -> None:
        self._each(lambda span: span.finish(outcome))

    def _each(self, hook: Callable[[Span], None]) -> None:
        errors: list[Exception] = []
        for span in self.spans:
            try:
                hook(span)
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


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
