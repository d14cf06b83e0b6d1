"""The engine of a run: one cell = (model, variant, scenario, rep) → one recorded line.

A single-turn cell is one model turn. An agentic cell is a whole conversation
(``run.conversation``) against a fresh copy of its scenario's app, with the variant's
tools bound to it (``tools.ToolSource``) and the scenario's user (``users.User``), judged
by the state it leaves (``apps.judge``) before its line is written. Model turns come
from a ``turns.TurnSource`` (live calls with pacing, retries and cache); a turn that
still fails ends the cell as a ``scenario_error`` line, never a result, and the run goes
on.

Up to ``concurrency`` cells are in flight at once, whatever their model. Each outcome is
written the moment it is known, so a run killed at any point keeps every finished cell,
and ``run.resume`` tells a resumed run which cells are left. Tracing is best-effort: a
tracer that fails warns once and never costs a result.

The engine is built by ``run.session.Run`` alone (the one place a run is put together).
"""

from __future__ import annotations

import asyncio
import random
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tooltrial.apps.judge import judge
from tooltrial.apps.state import diff
from tooltrial.definitions import Experiment
from tooltrial.files import WriteFailed
from tooltrial.log.writer import WriterPool
from tooltrial.models.base import Model, safe_text
from tooltrial.run.conversation import Ended, converse, timed_out
from tooltrial.run.workbench import Workbench
from tooltrial.tools import ToolExecutor, ToolSourceFailed, ToolTimeout
from tooltrial.tools.results import exception_text
from tooltrial.tracing.base import Span, Tracer
from tooltrial.turns import RetryPolicy, TurnFailed, TurnRequest, TurnSource
from tooltrial.types import (
    AssistantTurn,
    Cell,
    Conversation,
    Failure,
    Message,
    Outcome,
    ToolCall,
    ToolResult,
    UserTurn,
    with_unique_call_ids,
)
from tooltrial.users import user_for

T = TypeVar("T")


@dataclass
class Runner:
    """Calls cells, at most ``concurrency`` at a time, and writes each outcome."""

    experiment: Experiment
    models: Mapping[str, Model]
    """The run's models by spec (each cell names its own)."""
    turns: TurnSource
    workbench: Workbench | None = None
    """An agentic experiment's code, bound; None for a single-turn experiment."""
    tracer: Tracer = field(default_factory=Tracer)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    """How often a cell whose tool source broke is run again (model turns retry inside
    their ``TurnSource``)."""
    rng: random.Random = field(default_factory=random.Random)
    concurrency: int = 1
    on_outcome: Callable[[Outcome], None] | None = None
    warn: Callable[[str, str], None] = field(default=lambda _, message: _warning(message))
    """``warn(topic, message)``: where a problem with an auxiliary store (tracing) is
    reported (the run tells each topic once). Such a problem never costs a result."""

    def first_request(self, cell: Cell) -> TurnRequest:
        """What the model is sent for the cell's first turn."""
        variant = self.experiment.variant(cell.variant)
        prompt = self.experiment.scenario(cell.scenario_id).prompt
        system = self.experiment.system_prompt(variant)
        tools = (
            self.workbench.sources[variant.name].definitions if self.workbench else variant.tools
        )
        return TurnRequest(cell, system, (UserTurn(text=prompt),), tuple(tools))

    def needs_model(self, cell: Cell) -> bool:
        """Whether the cell will call its model (a single-turn cell may be cached; an
        agentic cell always counts: only its first turn could be known to be)."""
        return self.workbench is not None or not self.turns.cached(self.first_request(cell))

    async def call(self, cell: Cell) -> Outcome:
        """One cell's outcome (not written: ``run`` writes, the pytest front end's test
        does)."""
        request = self.first_request(cell)
        async with self.tracer.trace(cell, request.system, request.prompt) as span:
            if self.workbench is not None:
                outcome = await self._conversation(request, span)
            else:
                outcome = self._single(cell, await self.turns.next_turn(request))
            outcome.trace_id = span.id
            try:
                span.finish(outcome)
            except Exception as exc:
                self.warn("tracing", f"a trace could not be recorded ({exc!r})")
        return outcome

    def _outcome(self, cell: Cell, **fields: Any) -> Outcome:
        model = self.models[cell.model]
        return Outcome(cell, model=cell.model, temperature=model.temperature, **fields)

    def _single(self, cell: Cell, turn: AssistantTurn | TurnFailed) -> Outcome:
        if isinstance(turn, TurnFailed):
            return self._failed(cell, turn, 0.0)
        return self._outcome(
            cell,
            response=with_unique_call_ids(turn.response),
            failure=None,
            attempts=0 if turn.cached else turn.attempts,
            retry_wait_s=turn.retry_wait_s,
            latency_s=turn.latency_s,
            cached=turn.cached,
            batch=turn.batch,
        )

    def _failed(self, cell: Cell, turn: TurnFailed, elapsed: float) -> Outcome:
        return self._outcome(
            cell,
            response=None,
            failure=turn.failure,
            attempts=turn.attempts,
            retry_wait_s=turn.retry_wait_s,
            latency_s=elapsed,
        )

    async def _conversation(self, request: TurnRequest, span: Span) -> Outcome:
        """One agentic cell; a tool source that breaks (``ToolSourceFailed``) runs it again
        from a fresh app, per the retry policy, else ends it as an error line."""
        waited = 0.0
        for attempt in range(1, self.retry.max_attempts + 1):
            started = time.perf_counter()
            try:
                return await self._converse(request, span)
            except ToolSourceFailed as exc:
                failure = Failure(exc.kind, safe_text(str(exc)), retryable=exc.retryable)
                if not exc.retryable or attempt == self.retry.max_attempts:
                    elapsed = time.perf_counter() - started
                    return self._failed(request.cell, TurnFailed(failure, attempt, waited), elapsed)
                delay = self.retry.delay(attempt, failure, self.rng)
                waited += delay
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _converse(self, request: TurnRequest, span: Span) -> Outcome:
        """One agentic cell: a fresh app, its tools bound to it, the loop, the verdict."""
        assert self.workbench is not None
        cell = request.cell
        scenario = self.experiment.scenario(cell.scenario_id)
        app = _app_step("copied for the cell", self.workbench.fresh, cell.scenario_id)
        started = time.perf_counter()

        async def next_turn(history: Sequence[Message]) -> AssistantTurn | TurnFailed:
            return await self._turn(request, history, span)

        try:
            async with self.workbench.sources[cell.variant].bind(app) as bound:
                tools = _TracedTools(bound, span, self.warn)
                limits = self.experiment.limits
                ended = await converse(request.prompt, user_for(scenario), limits, tools, next_turn)
            final = _app_step("read after the conversation", app.snapshot)
        finally:
            _app_step("closed", app.close)
        elapsed = time.perf_counter() - started
        if isinstance(ended, TurnFailed):
            return self._failed(cell, ended, elapsed)
        return self._judged(cell, ended, final, elapsed)

    async def _turn(
        self, first: TurnRequest, history: Sequence[Message], span: Span
    ) -> AssistantTurn | TurnFailed:
        """The conversation's next model turn, reported to its trace."""
        started = time.time()
        request = TurnRequest(first.cell, first.system, tuple(history), first.tools)
        turn = await self.turns.next_turn(request)
        try:
            span.model_turn(
                history, turn.failure if isinstance(turn, TurnFailed) else turn, started
            )
        except Exception as exc:
            self.warn("tracing", f"a trace could not be recorded ({exc!r})")
        return turn

    def _judged(self, cell: Cell, ended: Ended, final: Any, elapsed: float) -> Outcome:
        assert self.workbench is not None
        initial = self.workbench.initial_state(cell.scenario_id)
        changes = diff(initial, final)
        checks = judge(
            self.experiment.expectations.success(cell.scenario_id),
            cell.variant,
            initial=initial,
            final=final,
            diff=changes,
            messages=ended.messages,
            stop_reason=ended.stop_reason,
            reference=self.workbench.reference_state(cell.scenario_id),
        )
        conversation = Conversation(
            messages=ended.messages, stop_reason=ended.stop_reason, checks=checks, diff=changes
        )
        turns = conversation.assistant_turns
        return self._outcome(
            cell,
            response=turns[-1].response,
            failure=None,
            attempts=sum(t.attempts for t in turns),
            retry_wait_s=sum(t.retry_wait_s for t in turns),
            latency_s=elapsed,
            cached=all(t.cached for t in turns),
            conversation=conversation,
            batch=turns[-1].batch,
        )

    async def run(self, cells: Iterable[Cell], pool: WriterPool) -> None:
        """Call every cell and write each outcome as soon as it is known.

        Every file is created (with its metadata line) before the first call, so even a
        run killed early leaves what ``--resume`` needs. Cancelling the run (Ctrl-C)
        cancels the calls in flight; lines already written stay whole. A write that fails
        (a full disk) cancels the calls in flight and raises its ``WriteFailed``.
        """
        cells = list(cells)
        for model, variant, rep in dict.fromkeys((c.model, c.variant, c.rep) for c in cells):
            pool.get(variant, rep, model)
        gate = asyncio.Semaphore(self.concurrency)

        async def one(cell: Cell) -> None:
            async with gate:
                outcome = await self.call(cell)
            pool.get(cell.variant, cell.rep, cell.model).write_outcome(outcome)
            if self.on_outcome:  # the outcome is on disk; whoever wants it keeps it
                self.on_outcome(outcome)

        try:
            async with asyncio.TaskGroup() as group:
                for cell in cells:
                    group.create_task(one(cell))
        except ExceptionGroup as group:  # a write that failed ends the run, as itself
            failed = group.subgroup(WriteFailed)
            if failed is None:
                raise
            raise failed.exceptions[0] from None


def _app_step(what: str, step: Callable[..., T], *args: Any) -> T:
    """One step of the app's own code in a cell (copy, read, close): what it raises ends
    the cell as an error line (kind ``app_broken``), never the run."""
    try:
        return step(*args)
    except Exception as exc:
        raise ToolSourceFailed(
            f"the app could not be {what} "
            f"({type(exc).__name__}: {safe_text(exception_text(exc))}); "
            "its state is unknown, so the cell was stopped",
            kind="app_broken",
            retryable=False,
        ) from None


def _warning(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)


class _TracedTools:
    """A cell's tools, each call reported to its trace (best-effort: a tracing failure
    warns once and never touches the call)."""

    def __init__(self, tools: ToolExecutor, span: Span, warn: Callable[[str, str], None]):
        self.tools, self.span, self.warn = tools, span, warn

    async def call(self, call: ToolCall) -> ToolResult:
        started = time.time()
        try:
            result = await self.tools.call(call)
        except ToolTimeout as exc:  # the call that ended the conversation is traced too
            self._report(call, timed_out(exc), started)
            raise
        self._report(call, result, started)
        return result

    def _report(self, call: ToolCall, result: ToolResult, started: float) -> None:
        try:
            self.span.tool_call(call, result, started)
        except Exception as exc:
            self.warn("tracing", f"a trace could not be recorded ({exc!r})")
