"""Model turns from live calls: pacing, retries and the response cache.

A turn is looked up in the cache first (``cache``; off unless a cache is given); else its
model is called, retried on failures that may pass (rate limits, overloads, 5xx,
timeouts, dropped connections, garbled bodies) with exponential backoff and full jitter,
never sooner than the server asked; a turn that still fails is a ``TurnFailed``. Each
attempt is paced by its model's own ``Pacer`` (rpm/tpm, 429 pauses): limits belong to a
provider account, so a 429 from one model never slows another. A fresh answer is stored
in the cache at once (best-effort: a cache that fails warns once and never costs a turn).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tooltrial.errors import TooltrialError
from tooltrial.files import WriteFailed
from tooltrial.models.base import Model
from tooltrial.models.registry import lineup
from tooltrial.turns.base import TurnFailed, TurnRequest
from tooltrial.turns.cache import ResponseCache, cache_key
from tooltrial.turns.pacing import Pacer
from tooltrial.types import AssistantTurn, Cell, Failure, ModelResponse, UserTurn

LONG_WAIT_S = 30.0
"""A retry wait at least this long is announced (``warn``), once a run."""

Warn = Callable[[str, str], None]
"""``warn(topic, message)``: an auxiliary store's problem, reported once per topic."""


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


def cell_seed(cell: Cell) -> int:
    """Stable per cell, so a local model samples each cell the same way every time.

    Not a promise of identical text: llama.cpp's prompt-prefix reuse changes how the
    prompt is batched, which shifts logits by float rounding, and near-ties can flip.
    """
    return zlib.crc32(f"{cell.variant}/{cell.scenario_id}/{cell.rep}".encode())


@dataclass
class LiveTurns:
    """Calls each request's model (``request.cell.model``, a spec) with retries.

    ``pacer`` paces the first model; every other model gets a fresh copy with the same
    limits."""

    models: Sequence[Model]
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    pacer: Pacer = field(default_factory=Pacer)
    cache: ResponseCache | None = None
    on_retry: Callable[[Cell, Failure], None] | None = None
    """Called after each failed attempt that will be tried again (progress counts them)."""
    warn: Warn | None = None
    sleep: Callable[[float], Any] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    by_spec: Mapping[str, Model] = field(init=False, repr=False)
    pacers: dict[str, Pacer] = field(init=False, repr=False)
    """Each model's pacer, by spec."""
    _schemas: dict[tuple[str, tuple[str, ...]], int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.by_spec = lineup(self.models)
        self.pacers = {
            spec: self.pacer if i == 0 else replace(self.pacer)
            for i, spec in enumerate(self.by_spec)
        }

    def model(self, spec: str) -> Model:
        return self.by_spec[spec]

    async def preflight(self, models: Iterable[str]) -> tuple[str, Failure] | None:
        """Each model's own preflight, retried like a call (a refused setting or key
        still raises its TooltrialError)."""
        for spec in models:
            failure = await self._preflight(spec)
            if failure is not None:
                return spec, failure
        return None

    async def _preflight(self, spec: str) -> Failure | None:
        model = self.by_spec[spec]
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

    def _key(self, request: TurnRequest) -> str | None:
        if self.cache is None:
            return None
        model = self.by_spec[request.cell.model]
        rest = request.messages[1:]
        return cache_key(
            model, request.system, request.prompt, request.tools, request.cell.rep, rest
        )

    def cached(self, request: TurnRequest) -> bool:
        key = self._key(request)
        return key is not None and self.cache is not None and self.cache.has(key)

    async def next_turn(self, request: TurnRequest) -> AssistantTurn | TurnFailed:
        hit = self.cached_turn(request)
        if hit is not None:
            return hit
        turn = await self._attempts(request)
        if isinstance(turn, AssistantTurn):
            self.remember(request, turn.response)
        return turn

    def cached_turn(self, request: TurnRequest) -> AssistantTurn | None:
        """The cached answer to the request, if the cache holds one."""
        key = self._key(request)
        if key is None or self.cache is None:
            return None
        hit = self.cache.get(key)
        return AssistantTurn(response=hit, cached=True) if hit is not None else None

    def remember(self, request: TurnRequest, response: ModelResponse) -> None:
        """Store a fresh answer in the cache (if there is one); best-effort."""
        key = self._key(request)
        if key is not None:
            self._store(key, response)

    def _store(self, key: str, response: ModelResponse) -> None:
        assert self.cache is not None
        try:
            self.cache.put(key, response)
        except (OSError, WriteFailed) as exc:
            reason = exc.reason if isinstance(exc, WriteFailed) else exc.strerror or exc
            self._warn(
                "cache",
                f"the response cache {self.cache.directory} could not store a response "
                f"({reason}); the results are complete in the JSONL files, "
                "later calls are just not cached",
            )

    def _warn(self, topic: str, message: str) -> None:
        if self.warn is not None:
            self.warn(topic, message)

    def _failed(self, spec: str, exc: Exception, attempt: int) -> tuple[Failure, float | None]:
        """What a failed attempt means: the failure, and the wait before the next try
        (None: give up). A 429 slows every call to that model, not just this one."""
        failure = self.by_spec[spec].classify(exc)  # the provider knows its own exceptions
        if failure.kind == "rate_limit":
            self.pacers[spec].rate_limited_by_server(failure.retry_after_s)
        if not failure.retryable or attempt == self.policy.max_attempts:
            return failure, None
        return failure, self.policy.delay(attempt, failure, self.rng)

    async def _attempts(self, request: TurnRequest) -> AssistantTurn | TurnFailed:
        cell = request.cell
        waited = 0.0
        model, pacer = self.by_spec[cell.model], self.pacers[cell.model]
        estimate = self._estimate_tokens(request)
        for attempt in range(1, self.policy.max_attempts + 1):
            await pacer.acquire(estimate)
            started = time.perf_counter()
            try:
                response = await asyncio.wait_for(
                    model.chat(
                        request.system, request.messages, request.tools, seed=cell_seed(cell)
                    ),
                    self.policy.timeout_s,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure, delay = self._failed(cell.model, exc, attempt)
                if delay is None:
                    return TurnFailed(failure, attempt, round(waited, 3))
                if self.on_retry:
                    self.on_retry(cell, failure)
                if delay >= LONG_WAIT_S:  # a pause this long must not look like a hang
                    self._warn(
                        "long-wait",
                        f"{cell.model} asked to wait {delay:.0f} s before a retry "
                        f"({failure.kind}); waiting (a server's retry-after is honoured "
                        "up to 300 s)",
                    )
                waited += delay
                await self.sleep(delay)
                continue
            latency = time.perf_counter() - started
            pacer.settle(estimate, response.usage.input_tokens + response.usage.output_tokens)
            return AssistantTurn(
                response=response,
                latency_s=round(latency, 4),
                attempts=attempt,
                retry_wait_s=round(waited, 3),
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _estimate_tokens(self, request: TurnRequest) -> int:
        """A call's cost before it is made (~4 characters a token, plus the output cap);
        only needed when a tokens-per-minute limit is set."""
        spec = request.cell.model
        if not self.pacers[spec].tpm:
            return 0
        model = self.by_spec[spec]
        key = (spec, tuple(t.name for t in request.tools))
        if key not in self._schemas:
            schema = json.dumps([model.tool_format(t) for t in request.tools])
            self._schemas[key] = len(schema)
        sent = sum(
            len(m.text) if isinstance(m, UserTurn) else len(m.model_dump_json())
            for m in request.messages
        )
        return (len(request.system) + self._schemas[key] + sent) // 4 + model.max_tokens
