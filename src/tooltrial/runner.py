"""The engine both front ends share: one cell = (variant, scenario, rep) → one recorded line.

A cell's call is retried on failures that may pass (rate limits, overloads, 5xx, timeouts,
dropped connections, garbled bodies) with exponential backoff and jitter; a cell that still
fails is recorded as a ``scenario_error`` line, never as a result, and the run goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooltrial.capture import JSONLWriter, WriterPool
from tooltrial.experiment import Experiment
from tooltrial.models import Failure, Model, ModelResponse, classify


@dataclass(frozen=True, order=True)
class Cell:
    variant: str
    scenario_id: str
    rep: int


def plan_cells(
    experiment: Experiment,
    runs: int,
    variants: Iterable[str] | None = None,
    scenario_ids: Iterable[str] | None = None,
) -> list[Cell]:
    """Every cell, variant-major: consecutive calls share a system prompt and tools,
    which lets a local model reuse its evaluated prompt prefix."""
    names = list(variants) if variants else [v.name for v in experiment.variants]
    for name in names:
        experiment.variant(name)  # unknown names fail here, before any call
    ids = list(scenario_ids) if scenario_ids else list(experiment.scenario_ids)
    for scenario_id in ids:
        experiment.scenario(scenario_id)
    return [Cell(v, s, rep) for v in names for rep in range(1, runs + 1) for s in ids]


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def git_commit(cwd: str | Path = ".") -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def metadata_for(
    experiment: Experiment, model: Model, runs: int | None, **settings: Any
) -> dict[str, dict[str, Any]]:
    """The metadata fields of each variant's files (the pool adds variant, rep, commit)."""
    return {
        v.name: {
            "experiment": experiment.name,
            "model": model.spec,
            "temperature": model.temperature,
            "fixed_timestamp": experiment.fixed_timestamp.isoformat(),
            "zero_persona": experiment.zero_persona,
            "variant_hash": v.definition_hash,
            "scenario_ids": list(experiment.scenario_ids),
            "runs": runs,
            "settings": {
                **model.settings(),
                "experiment_source": experiment.source,
                "max_tokens": experiment.max_tokens,
                **settings,
            },
        }
        for v in experiment.variants
    }


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
class Outcome:
    cell: Cell
    response: ModelResponse | None
    failure: Failure | None
    attempts: int
    retry_wait_s: float
    latency_s: float
    trace_id: str | None = None

    def write_to(self, writer: JSONLWriter, model: Model) -> None:
        """A result line, or an error line when every attempt failed."""
        common = {"scenario_id": self.cell.scenario_id, "variant": self.cell.variant}
        common |= {"rep": self.cell.rep, "attempts": self.attempts}
        common |= {"retry_wait_s": round(self.retry_wait_s, 3)}
        if self.response is None:
            assert self.failure is not None
            writer.write_error(
                **common, kind=self.failure.kind, message=self.failure.message, model=model.spec
            )
        else:
            fields = result_fields(self.response, model, self.latency_s)
            writer.write_result(**common, **fields, trace_id=self.trace_id)


def result_fields(response: ModelResponse, model: Model, latency_s: float) -> dict[str, Any]:
    return {
        "response_text": response.text,
        "tool_calls": list(response.tool_calls),
        "stop_reason": response.stop_reason,
        "usage": response.usage,
        "latency_s": round(latency_s, 4),
        "model": model.spec,
        "response_model": response.response_model,
        "temperature": model.temperature,
        "content": list(response.content),
    }


def cell_seed(cell: Cell) -> int:
    """Stable per cell, so a local model's run can be reproduced exactly."""
    return zlib.crc32(f"{cell.variant}/{cell.scenario_id}/{cell.rep}".encode())


class Span:
    """A handle on one cell's trace; ``id`` goes on the result line."""

    id: str | None = None

    def finish(self, outcome: Outcome) -> None:
        """Called once with the cell's outcome, before the line is written."""


class Tracer:
    """Where traces go. This default sends nothing; see ``tooltrial.tracing``."""

    @contextlib.asynccontextmanager
    async def trace(self, cell: Cell, system: str, prompt: str) -> AsyncIterator[Span]:
        yield Span()

    def close(self) -> None:
        """Flush what is queued; called once at the end of a run."""


@dataclass
class Runner:
    """Calls cells with retries, at most ``concurrency`` at a time."""

    experiment: Experiment
    model: Model
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    concurrency: int = 1
    on_outcome: Callable[[Outcome], None] | None = None
    sleep: Callable[[float], Any] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    tracer: Tracer = field(default_factory=Tracer)

    async def call(self, cell: Cell) -> Outcome:
        variant = self.experiment.variant(cell.variant)
        system = self.experiment.system_prompt(variant)
        prompt = self.experiment.scenario(cell.scenario_id).prompt
        async with self.tracer.trace(cell, system, prompt) as span:
            outcome = await self._attempts(cell, system, prompt)
            outcome.trace_id = span.id
            span.finish(outcome)
        return outcome

    async def _attempts(self, cell: Cell, system: str, prompt: str) -> Outcome:
        variant = self.experiment.variant(cell.variant)
        waited, failure = 0.0, None
        for attempt in range(1, self.policy.max_attempts + 1):
            started = time.perf_counter()
            try:
                response = await asyncio.wait_for(
                    self.model.generate(system, prompt, variant.tools, seed=cell_seed(cell)),
                    self.policy.timeout_s,
                )
                latency = time.perf_counter() - started
                return Outcome(cell, response, None, attempt, waited, latency)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = classify(exc)
                if not failure.retryable or attempt == self.policy.max_attempts:
                    return Outcome(cell, None, failure, attempt, waited, 0.0)
                delay = self.policy.delay(attempt, failure, self.rng)
                waited += delay
                await self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def run(self, cells: Iterable[Cell], pool: WriterPool) -> list[Outcome]:
        """Call every cell and write each outcome as soon as it is known."""
        gate = asyncio.Semaphore(self.concurrency)
        outcomes: list[Outcome] = []

        async def one(cell: Cell) -> None:
            async with gate:
                outcome = await self.call(cell)
            outcome.write_to(pool.get(cell.variant, cell.rep), self.model)
            outcomes.append(outcome)
            if self.on_outcome:
                self.on_outcome(outcome)

        await asyncio.gather(*(one(c) for c in cells))
        return outcomes
