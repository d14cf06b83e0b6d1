"""The engine both front ends share: one cell = (model, variant, scenario, rep) → one
recorded line. In an agentic experiment a cell is a whole conversation against a fresh
copy of its scenario's app (``tooltrial.run.conversation``), judged by the state it
leaves (``tooltrial.apps.judge``) before its line is written.

A cell's call is retried on failures that may pass (rate limits, overloads, 5xx, timeouts,
dropped connections, garbled bodies) with exponential backoff and jitter; a cell that still
fails is recorded as a ``scenario_error`` line, never as a result, and the run goes on.

Up to ``concurrency`` cells are in flight at once, whatever their model (one gate for the
run); each attempt is paced by its model's own ``Pacer`` (rpm/tpm, 429 pauses): limits
belong to a provider account, so a 429 from one model never slows another. Each outcome
is written the moment it is known, so a run killed at any point keeps every finished
cell, and ``tooltrial.run.resume`` tells a resumed run which cells are left. Retries
wrap one model call, never a tool call: a retried turn never runs a tool again.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tooltrial.apps import Workbench
from tooltrial.apps.judge import judge
from tooltrial.apps.state import diff
from tooltrial.apps.tools import ToolExecutor, ToolTimeout
from tooltrial.definitions import Experiment
from tooltrial.definitions.variants import Tool
from tooltrial.errors import TooltrialError, UsageError
from tooltrial.log.writer import WriterPool
from tooltrial.models.base import Model
from tooltrial.run.cache import ResponseCache, cache_key
from tooltrial.run.conversation import Ended, TurnFailed, converse, timed_out
from tooltrial.run.pacing import Pacer
from tooltrial.run.plan import cell_seed
from tooltrial.tracing.base import Span, Tracer
from tooltrial.types import (
    AssistantTurn,
    Cell,
    Conversation,
    Failure,
    Message,
    ModelResponse,
    Outcome,
    ToolCall,
    ToolResult,
    UserTurn,
)


def prepare_agentic(experiment: Experiment, models: Sequence[Model]) -> Workbench | None:
    """For an agentic experiment, its code bound and checked, and every model checked to
    hold a conversation; None for a single-turn experiment. What is wrong raises a
    TooltrialError (exit 2), so front ends call this before they create anything."""
    if not experiment.agentic:
        return None
    for model in models:
        if not model.converses:
            raise UsageError(
                f"{model.spec} answers single requests only ({type(model).__name__} "
                "implements generate, not chat); an experiment with an app needs a "
                "provider that holds a conversation"
            )
    return Workbench.bind(experiment)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    timeout_s: float = 120.0

    def delay(self, attempt: int, failure: Failure, rng: random.Random) -> float:
        """Full jitter, but never sooner than the server asked for."""
        backoff = rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))
        return max(backoff, failure.retry_after_s or 0.0)


@dataclass
class Runner:
    """Calls cells with retries, at most ``concurrency`` at a time; each cell goes to the
    model whose spec is ``cell.model``.

    ``models``: the models of the run (one ``Model`` stands for a list of one). ``pacer``
    paces the first model; every other model gets a fresh copy with the same limits.
    """

    experiment: Experiment
    models: Sequence[Model] | Model
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    concurrency: int = 1
    on_outcome: Callable[[Outcome], None] | None = None
    sleep: Callable[[float], Any] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    tracer: Tracer = field(default_factory=Tracer)
    pacer: Pacer = field(default_factory=Pacer)
    cache: ResponseCache | None = None
    on_retry: Callable[[Cell, Failure], None] | None = None
    """Called after each failed attempt that will be tried again (progress counts them)."""
    warn: Callable[[str], None] | None = None
    """Where a problem with an auxiliary store (cache, tracing) is reported, once each;
    None: Python's ``warnings``. Such a problem never costs a result."""
    _warned: set[str] = field(default_factory=set, repr=False)
    lineup: dict[str, Model] = field(default_factory=dict, init=False, repr=False)
    """The models by spec."""
    pacers: dict[str, Pacer] = field(default_factory=dict, init=False, repr=False)
    """Each model's pacer, by spec."""
    _token_estimates: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)
    workbench: Workbench | None = None
    """An agentic experiment's code, bound (``Workbench.bind``, done here if not given):
    what is wrong with it stops the run before any call."""

    def __post_init__(self) -> None:
        models = [self.models] if isinstance(self.models, Model) else list(self.models)
        if self.workbench is None:
            self.workbench = prepare_agentic(self.experiment, models)
        if not models:
            raise UsageError("a run needs at least one model")
        self.models = tuple(models)
        for model in models:
            if model.spec in self.lineup:
                raise UsageError(f"model {model.spec} is named twice: name each model once")
            self.lineup[model.spec] = model
            self.pacers[model.spec] = self.pacer if not self.pacers else replace(self.pacer)

    def model(self, spec: str) -> Model:
        """The model of this spec (a cell's ``model``)."""
        found = self.lineup.get(spec)
        if found is None:
            known = ", ".join(self.lineup)
            raise UsageError(f"cell for model {spec!r}, but this run has only: {known}")
        return found

    async def preflight(self, specs: Iterable[str] | None = None) -> tuple[str, Failure] | None:
        """Each model's own preflight (default: every model), retried like a call; the
        spec and last failure of the first model that never got through (a refused
        setting or key still raises its TooltrialError)."""
        for spec in specs if specs is not None else list(self.lineup):
            failure = await self._preflight(spec)
            if failure is not None:
                return spec, failure
        return None

    async def _preflight(self, spec: str) -> Failure | None:
        model = self.model(spec)
        for attempt in range(1, self.policy.max_attempts + 1):
            await self.pacers[spec].acquire()
            try:
                await model.preflight()
                return None
            except TooltrialError:
                raise
            except Exception as exc:
                failure, delay = self._failed(spec, exc, attempt)
                if delay is None:
                    return failure
                await self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _failed(self, spec: str, exc: Exception, attempt: int) -> tuple[Failure, float | None]:
        """What a failed attempt means: the failure, and the wait before the next try
        (None: give up). A 429 slows every call to that model, not just this one."""
        failure = self.model(spec).classify(exc)  # the provider knows its own exceptions
        if failure.kind == "rate_limit":
            self.pacers[spec].rate_limited_by_server(failure.retry_after_s)
        if not failure.retryable or attempt == self.policy.max_attempts:
            return failure, None
        return failure, self.policy.delay(attempt, failure, self.rng)

    def _request(self, cell: Cell) -> tuple[str, str, tuple[Tool, ...]]:
        """What the model is sent for this cell: system prompt, user prompt, tools."""
        variant = self.experiment.variant(cell.variant)
        prompt = self.experiment.scenario(cell.scenario_id).prompt
        return self.experiment.system_prompt(variant), prompt, variant.tools

    def _cache_key(self, cell: Cell, history: Sequence[Message] = ()) -> str | None:
        """The cache key of the cell's call, or of the model turn that follows
        ``history`` (the conversation so far, first user message included)."""
        if self.cache is None:
            return None
        system, prompt, tools = self._request(cell)
        return cache_key(self.model(cell.model), system, prompt, tools, cell.rep, history[1:])

    def _outcome(
        self,
        cell: Cell,
        response: ModelResponse | None,
        failure: Failure | None,
        attempts: int,
        waited: float,
        latency: float,
        cached: bool = False,
    ) -> Outcome:
        return Outcome(
            cell,
            response,
            failure,
            attempts,
            waited,
            latency,
            model=cell.model,
            temperature=self.model(cell.model).temperature,
            cached=cached,
        )

    def is_cached(self, cell: Cell) -> bool:
        """Whether the cell's call is in the cache (an agentic cell never counts: only
        its first turn could be known to be)."""
        if self.experiment.agentic:
            return False
        key = self._cache_key(cell)
        return key is not None and self.cache is not None and self.cache.has(key)

    async def call(self, cell: Cell) -> Outcome:
        """One cell's outcome. Storing it in the cache is ``remember``'s, after the line
        is written (``run`` does both); the tracing span is best-effort."""
        system, prompt, tools = self._request(cell)
        async with self.tracer.trace(cell, system, prompt) as span:
            if self.experiment.agentic:
                outcome = await self._conversation(cell, span)
            else:
                outcome = await self._single(cell, system, prompt, tools)
            outcome.trace_id = span.id
            try:
                span.finish(outcome)
            except Exception as exc:
                self._warn_once("tracing", f"a trace could not be recorded ({exc!r})")
        return outcome

    def remember(self, outcome: Outcome) -> None:
        """Store fresh successful responses in the cache (every model turn of a
        conversation). Best-effort: call it after the outcome's line is written; a
        failing cache (disk full, read-only) warns once."""
        if self.cache is None or outcome.response is None or outcome.cached:
            return
        conversation = outcome.conversation
        entries: list[tuple[str | None, ModelResponse]] = []
        if conversation is None:
            entries.append((self._cache_key(outcome.cell), outcome.response))
        else:
            messages = conversation.messages
            entries.extend(
                (self._cache_key(outcome.cell, messages[:index]), message.response)
                for index, message in enumerate(messages)
                if isinstance(message, AssistantTurn) and not message.cached
            )
        try:
            for key, response in entries:
                if key is not None:
                    self.cache.put(key, response)
        except OSError as exc:
            self._warn_once(
                "cache",
                f"the response cache {self.cache.directory} could not store a response "
                f"({exc.strerror or exc}); the results are complete in the JSONL files, "
                "later calls are just not cached",
            )

    def _warn_once(self, what: str, message: str) -> None:
        if what in self._warned:
            return
        self._warned.add(what)
        if self.warn is not None:
            self.warn(message)
        else:
            warnings.warn(message, RuntimeWarning, stacklevel=2)

    async def _single(self, cell: Cell, system: str, prompt: str, tools: Sequence[Tool]) -> Outcome:
        """One single-turn cell, from the cache or the model."""
        key = self._cache_key(cell)
        hit = self.cache.get(key) if self.cache is not None and key else None
        if hit is not None:
            return self._outcome(cell, hit, None, 0, 0.0, 0.0, cached=True)
        return await self._attempts(cell, system, [UserTurn(text=prompt)], tools)

    async def _conversation(self, cell: Cell, span: Span) -> Outcome:
        """One agentic cell: a fresh app, the loop, the verdict."""
        assert self.workbench is not None
        scenario = self.experiment.scenario(cell.scenario_id)
        system, prompt, tools = self._request(cell)
        app = self.workbench.fresh(cell.scenario_id)
        executor = _TracedTools(self.workbench.tools(cell.variant, app), span, self._warn_once)
        started = time.perf_counter()

        async def next_turn(history: Sequence[Message]) -> AssistantTurn | TurnFailed:
            return await self._model_turn(cell, system, history, tools, span)

        try:
            ended = await converse(
                prompt, scenario.user_turns, self.experiment.limits, executor, next_turn
            )
            final = app.snapshot()
        finally:
            app.close()
        elapsed = time.perf_counter() - started
        if isinstance(ended, TurnFailed):
            return self._outcome(
                cell, None, ended.failure, ended.attempts, ended.retry_wait_s, elapsed
            )
        return self._judged(cell, ended, final, elapsed)

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
        outcome = self._outcome(
            cell,
            turns[-1].response,
            None,
            sum(t.attempts for t in turns),
            sum(t.retry_wait_s for t in turns),
            elapsed,
            cached=all(t.cached for t in turns),
        )
        outcome.conversation = conversation
        return outcome

    async def _model_turn(
        self,
        cell: Cell,
        system: str,
        history: Sequence[Message],
        tools: Sequence[Tool],
        span: Span,
    ) -> AssistantTurn | TurnFailed:
        """The next model turn, from the cache or the model (with retries), or how it
        failed."""
        key = self._cache_key(cell, history)
        hit = self.cache.get(key) if self.cache is not None and key else None
        started = time.time()
        if hit is not None:
            turn: AssistantTurn | TurnFailed = AssistantTurn(response=hit, cached=True)
        else:
            outcome = await self._attempts(cell, system, history, tools)
            if outcome.response is None:
                assert outcome.failure is not None
                turn = TurnFailed(outcome.failure, outcome.attempts, outcome.retry_wait_s)
            else:
                turn = AssistantTurn(
                    response=outcome.response,
                    latency_s=round(outcome.latency_s, 4),
                    attempts=outcome.attempts,
                    retry_wait_s=round(outcome.retry_wait_s, 3),
                )
        try:
            span.model_turn(
                history, turn.failure if isinstance(turn, TurnFailed) else turn, started
            )
        except Exception as exc:
            self._warn_once("tracing", f"a trace could not be recorded ({exc!r})")
        return turn

    async def _attempts(
        self, cell: Cell, system: str, messages: Sequence[Message], tools: Sequence[Tool]
    ) -> Outcome:
        waited = 0.0
        model, pacer = self.model(cell.model), self.pacers[cell.model]
        estimate = self._estimate_tokens(cell, system, messages, tools)
        for attempt in range(1, self.policy.max_attempts + 1):
            await pacer.acquire(estimate)
            started = time.perf_counter()
            try:
                response = await asyncio.wait_for(
                    model.chat(system, messages, tools, seed=cell_seed(cell)),
                    self.policy.timeout_s,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure, delay = self._failed(cell.model, exc, attempt)
                if delay is None:
                    return self._outcome(cell, None, failure, attempt, waited, 0.0)
                if self.on_retry:
                    self.on_retry(cell, failure)
                waited += delay
                await self.sleep(delay)
                continue
            latency = time.perf_counter() - started
            used = response.usage.input_tokens + response.usage.output_tokens
            pacer.settle(estimate, used)
            return self._outcome(cell, response, None, attempt, waited, latency)
        raise AssertionError("unreachable")  # pragma: no cover

    def _estimate_tokens(
        self, cell: Cell, system: str, messages: Sequence[Message], tools: Sequence[Tool]
    ) -> int:
        """A call's cost before it is made (~4 characters a token, plus the output cap);
        only needed when a tokens-per-minute limit is set."""
        if not self.pacers[cell.model].tpm:
            return 0
        key = (cell.model, cell.variant)
        if key not in self._token_estimates:
            schema = json.dumps([self.model(cell.model).tool_format(t) for t in tools])
            self._token_estimates[key] = (len(system) + len(schema)) // 4
        sent = sum(
            len(m.text) if isinstance(m, UserTurn) else len(m.model_dump_json()) for m in messages
        )
        return self._token_estimates[key] + sent // 4 + self.model(cell.model).max_tokens

    async def run(self, cells: Iterable[Cell], pool: WriterPool) -> list[Outcome]:
        """Call every cell and write each outcome as soon as it is known.

        Every file is created (with its metadata line) before the first call, so even a
        run killed early leaves what ``--resume`` needs. Cancelling the run (Ctrl-C)
        cancels the calls in flight; lines already written stay whole.
        """
        cells = list(cells)
        for cell in cells:
            self.model(cell.model)  # a cell for a model the run lacks fails before any call
        for model, variant, rep in dict.fromkeys((c.model, c.variant, c.rep) for c in cells):
            pool.get(variant, rep, model)
        gate = asyncio.Semaphore(self.concurrency)
        outcomes: list[Outcome] = []

        async def one(cell: Cell) -> None:
            async with gate:
                outcome = await self.call(cell)
            pool.get(cell.variant, cell.rep, cell.model).write_outcome(outcome)
            self.remember(outcome)  # after the line: a failing cache never costs a result
            outcomes.append(outcome)
            if self.on_outcome:
                self.on_outcome(outcome)

        async with asyncio.TaskGroup() as group:
            for cell in cells:
                group.create_task(one(cell))
        return outcomes


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
