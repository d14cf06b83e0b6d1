"""The engine both front ends share: one cell = (variant, scenario, rep) → one recorded line.

A cell's call is retried on failures that may pass (rate limits, overloads, 5xx, timeouts,
dropped connections, garbled bodies) with exponential backoff and jitter; a cell that still
fails is recorded as a ``scenario_error`` line, never as a result, and the run goes on.

Up to ``concurrency`` cells are in flight at once, each attempt paced by a shared
``Pacer`` (rpm/tpm, 429 pauses). Each outcome is written the moment it is known, so a
run killed at any point keeps every finished cell, and ``read_run`` tells a resumed run
which cells are left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import subprocess
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooltrial.cache import ResponseCache, cache_key
from tooltrial.capture import JSONLWriter, Metadata, Result, WriterPool, iter_records
from tooltrial.experiment import Experiment
from tooltrial.models import Failure, Model, ModelResponse, ModelSettingRejected, classify
from tooltrial.pacing import Pacer
from tooltrial.variants import Tool


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


def plan_of(cells: Sequence[Cell], runs: int) -> dict[str, Any]:
    """The run's plan as recorded in metadata settings, so ``--resume`` can rebuild it."""
    return {
        "variants": list(dict.fromkeys(c.variant for c in cells)),
        "scenario_ids": list(dict.fromkeys(c.scenario_id for c in cells)),
        "runs": runs,
    }


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
    experiment: Experiment,
    model: Model,
    runs: int | None,
    scenario_ids: Sequence[str] | None = None,
    **settings: Any,
) -> dict[str, dict[str, Any]]:
    """The metadata fields of each variant's files (the pool adds variant, rep, commit).

    ``scenario_ids`` are the ones this run plans (default: all of the experiment's)."""
    return {
        v.name: {
            "experiment": experiment.name,
            "model": model.spec,
            "temperature": model.temperature,
            "fixed_timestamp": experiment.fixed_timestamp.isoformat(),
            "zero_persona": experiment.zero_persona,
            "variant_hash": v.definition_hash,
            "scenario_ids": list(scenario_ids or experiment.scenario_ids),
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
    cached: bool = False

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
            writer.write_result(**common, **fields, trace_id=self.trace_id, cached=self.cached)


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
    """Stable per cell, so a local model samples each cell the same way every time.

    Not a promise of identical text: llama.cpp's prompt-prefix reuse changes how the
    prompt is batched, which shifts logits by float rounding, and near-ties can flip.
    """
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
    """Calls cells with retries, at most ``concurrency`` at a time, paced by ``pacer``."""

    experiment: Experiment
    model: Model
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
    _token_estimates: dict[str, int] = field(default_factory=dict, repr=False)

    async def preflight(self) -> Failure | None:
        """The model's own preflight, retried like a call; the last failure if it never
        got through (a refused setting still raises ``ModelSettingRejected``)."""
        for attempt in range(1, self.policy.max_attempts + 1):
            await self.pacer.acquire()
            try:
                await self.model.preflight()
                return None
            except ModelSettingRejected:
                raise
            except Exception as exc:
                failure, delay = self._failed(exc, attempt)
                if delay is None:
                    return failure
                await self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _failed(self, exc: Exception, attempt: int) -> tuple[Failure, float | None]:
        """What a failed attempt means: the failure, and the wait before the next try
        (None: give up). A 429 slows every call, not just this one."""
        failure = classify(exc)
        if failure.kind == "rate_limit":
            self.pacer.rate_limited_by_server(failure.retry_after_s)
        if not failure.retryable or attempt == self.policy.max_attempts:
            return failure, None
        return failure, self.policy.delay(attempt, failure, self.rng)

    def _request(self, cell: Cell) -> tuple[str, str, tuple[Tool, ...]]:
        """What the model is sent for this cell: system prompt, user prompt, tools."""
        variant = self.experiment.variant(cell.variant)
        prompt = self.experiment.scenario(cell.scenario_id).prompt
        return self.experiment.system_prompt(variant), prompt, variant.tools

    def _cache_key(self, cell: Cell) -> str | None:
        if self.cache is None:
            return None
        system, prompt, tools = self._request(cell)
        return cache_key(self.model, system, prompt, tools, cell.rep)

    def is_cached(self, cell: Cell) -> bool:
        key = self._cache_key(cell)
        return key is not None and self.cache is not None and self.cache.has(key)

    async def call(self, cell: Cell) -> Outcome:
        system, prompt, tools = self._request(cell)
        key = self._cache_key(cell)
        async with self.tracer.trace(cell, system, prompt) as span:
            hit = self.cache.get(key) if self.cache is not None and key else None
            if hit is not None:
                outcome = Outcome(cell, hit, None, 0, 0.0, 0.0, cached=True)
            else:
                outcome = await self._attempts(cell, system, prompt, tools)
                if self.cache is not None and key and outcome.response is not None:
                    self.cache.put(key, outcome.response)
            outcome.trace_id = span.id
            span.finish(outcome)
        return outcome

    async def _attempts(
        self, cell: Cell, system: str, prompt: str, tools: Sequence[Tool]
    ) -> Outcome:
        waited = 0.0
        estimate = self._estimate_tokens(cell.variant, system, prompt, tools)
        for attempt in range(1, self.policy.max_attempts + 1):
            await self.pacer.acquire(estimate)
            started = time.perf_counter()
            try:
                response = await asyncio.wait_for(
                    self.model.generate(system, prompt, tools, seed=cell_seed(cell)),
                    self.policy.timeout_s,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure, delay = self._failed(exc, attempt)
                if delay is None:
                    return Outcome(cell, None, failure, attempt, waited, 0.0)
                if self.on_retry:
                    self.on_retry(cell, failure)
                waited += delay
                await self.sleep(delay)
                continue
            latency = time.perf_counter() - started
            used = response.usage.input_tokens + response.usage.output_tokens
            self.pacer.settle(estimate, used)
            return Outcome(cell, response, None, attempt, waited, latency)
        raise AssertionError("unreachable")  # pragma: no cover

    def _estimate_tokens(
        self, variant: str, system: str, prompt: str, tools: Sequence[Tool]
    ) -> int:
        """A call's cost before it is made (~4 characters a token, plus the output cap);
        only needed when a tokens-per-minute limit is set."""
        if not self.pacer.tpm:
            return 0
        if variant not in self._token_estimates:
            schema = json.dumps([t.anthropic_format() for t in tools])
            self._token_estimates[variant] = (len(system) + len(schema)) // 4
        return self._token_estimates[variant] + len(prompt) // 4 + self.model.max_tokens

    async def run(self, cells: Iterable[Cell], pool: WriterPool) -> list[Outcome]:
        """Call every cell and write each outcome as soon as it is known.

        Every file is created (with its metadata line) before the first call, so even a
        run killed early leaves what ``--resume`` needs. Cancelling the run (Ctrl-C)
        cancels the calls in flight; lines already written stay whole.
        """
        cells = list(cells)
        for variant, rep in dict.fromkeys((c.variant, c.rep) for c in cells):
            pool.get(variant, rep)
        gate = asyncio.Semaphore(self.concurrency)
        outcomes: list[Outcome] = []

        async def one(cell: Cell) -> None:
            async with gate:
                outcome = await self.call(cell)
            outcome.write_to(pool.get(cell.variant, cell.rep), self.model)
            outcomes.append(outcome)
            if self.on_outcome:
                self.on_outcome(outcome)

        async with asyncio.TaskGroup() as group:
            for cell in cells:
                group.create_task(one(cell))
        return outcomes


# --- resuming -------------------------------------------------------------------------


class ResumeError(ValueError):
    """A run cannot be resumed as asked; the message says why and what to do."""


@dataclass(frozen=True)
class PriorRun:
    """What a run's files already hold: its metadata lines and its finished cells."""

    run_id: str
    metadata: tuple[Metadata, ...]
    done: frozenset[Cell]
    files: tuple[Path, ...]

    @property
    def first(self) -> Metadata:
        return self.metadata[0]

    def setting(self, name: str) -> Any:
        return self.first.settings.get(name)

    @property
    def planned_runs(self) -> int:
        plan = self.setting("plan") or {}
        return plan.get("runs") or self.first.runs or max(m.rep for m in self.metadata)

    def planned_cells(self) -> list[Cell]:
        """The cells the run set out to make, from its recorded plan."""
        plan = self.setting("plan") or {}
        variants = plan.get("variants") or sorted({m.variant for m in self.metadata})
        ids = plan.get("scenario_ids") or self.first.scenario_ids
        reps = range(1, self.planned_runs + 1)
        return [Cell(v, s, rep) for v in variants for rep in reps for s in ids]

    def check_same(self, experiment: Experiment, model: Model, runs: int) -> None:
        """Refuse to resume with anything that would change what the run measures."""
        first = self.first
        wanted = {
            "experiment": (first.experiment, experiment.name),
            "model": (first.model, model.spec),
            "temperature": (first.temperature, model.temperature),
            "runs": (self.planned_runs, runs),
            "fixed_timestamp": (first.fixed_timestamp, experiment.fixed_timestamp.isoformat()),
            "max_tokens": (self.setting("max_tokens"), model.max_tokens),
        }
        for meta in self.metadata:
            variant = next((v for v in experiment.variants if v.name == meta.variant), None)
            now = variant.definition_hash if variant else "(no such variant now)"
            wanted[f"variant {meta.variant!r}"] = (meta.variant_hash, now)
        known = set(experiment.scenario_ids)
        lost = [s for s in (self.setting("plan") or {}).get("scenario_ids", []) if s not in known]
        if lost:
            wanted["scenarios"] = (", ".join(lost), "(missing now)")
        for name, (was, now) in wanted.items():
            if was is not None and was != now:
                raise ResumeError(
                    f"cannot resume run {self.run_id}: its {name} was {was}, now {now}. "
                    "A resumed run must measure the same thing: undo the change (or drop the "
                    "flag that makes it), or start a new run."
                )

    def remaining(self) -> list[Cell]:
        return [c for c in self.planned_cells() if c not in self.done]


def read_run(directory: str | Path, run_id: str) -> PriorRun:
    """Read every file of ``run_id`` in ``directory``; error lines do not count as done."""
    directory = Path(directory)
    metadata: list[Metadata] = []
    done: set[Cell] = set()
    files: list[Path] = []
    for path in sorted(directory.glob("*.jsonl")):
        records = iter_records(path)
        head = next(records, None)
        if not isinstance(head, Metadata) or head.run_id != run_id:
            continue
        files.append(path)
        metadata.append(head)
        for record in records:
            if isinstance(record, Result):
                done.add(Cell(record.variant, record.scenario_id, record.rep))
    if not metadata:
        raise ResumeError(
            f"no files of run {run_id!r} in {directory}/: check the run id and --results "
            "(a run killed before its first file was made has nothing to resume; start it again)"
        )
    return PriorRun(run_id, tuple(metadata), frozenset(done), tuple(files))
