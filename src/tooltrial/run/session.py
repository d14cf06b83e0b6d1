"""One run from start to end: preflight every model, then call the cells and log them.

``execute`` is the one place that orders a run: a model is asked a one-token test call
before any of its cells (unless every one of them is cached), so a refused setting or a
dead endpoint stops the run before a result line is written. ``tooltrial run`` and
``run_experiment`` (the library entry point) both go through it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooltrial.definitions import Experiment, load_experiment
from tooltrial.log.writer import WriterPool
from tooltrial.models import Model, get_model
from tooltrial.run.lock import RunLock
from tooltrial.run.plan import (
    git_commit,
    metadata_for,
    new_order,
    new_run_id,
    order_cells,
    plan_cells,
    plan_of,
)
from tooltrial.run.runner import RetryPolicy, Runner
from tooltrial.tracing.base import Tracer
from tooltrial.types import Cell, Failure, Order, Outcome

ModelsArg = str | Model | Iterable[str | Model] | None


async def execute(
    runner: Runner,
    cells: Sequence[Cell],
    pool: WriterPool,
    display: AbstractContextManager[Any] | None = None,
) -> tuple[str, Failure] | None:
    """Preflight (each model with an uncached cell) and run, on one event loop: the
    HTTP clients' connections belong to it. Returns (model, failure) if a preflight
    never got through; then no cell was called."""
    needed = dict.fromkeys(c.model for c in cells if not runner.is_cached(c))
    if needed:
        failure = await runner.preflight(needed)
        if failure is not None:
            return failure
    with display or contextlib.nullcontext():
        await runner.run(cells, pool)
    return None


@dataclass(frozen=True)
class RunResult:
    """What ``run_experiment`` did: its id, its files and every cell's outcome."""

    run_id: str
    files: tuple[Path, ...]
    outcomes: tuple[Outcome, ...]
    failure: tuple[str, Failure] | None = None
    """(model, failure) when a model failed its preflight; then nothing was called."""
    order: Order = field(default_factory=Order)
    """The order the cells were called in (its seed, when random, is in the metadata too)."""

    @property
    def errors(self) -> int:
        return sum(1 for o in self.outcomes if o.failure is not None)


def run_experiment(
    experiment: Experiment | str | Path,
    models: ModelsArg = None,
    *,
    runs: int = 3,
    results: str | Path = "results",
    concurrency: int = 1,
    variants: Iterable[str] | None = None,
    scenarios: Iterable[str] | None = None,
    run_id: str | None = None,
    policy: RetryPolicy | None = None,
    tracer: Tracer | None = None,
    order: Order | str = "random",
    order_seed: int | None = None,
) -> RunResult:
    """Run every (model, variant, scenario, rep) cell and write the usual JSONL files.

    ``models`` are specs (``"anthropic:claude-sonnet-4-5"``) or ``Model`` objects; the
    default is ``TOOLTRIAL_MODEL`` or the embedded model. Specs get the experiment's
    temperature and max_tokens. No tracing unless a ``tracer`` is given. The run is
    written under its lock: ``RunInProgress`` if another process is writing it.

    ``order``: ``"random"`` (within each rep, a seeded random order; ``order_seed``, or a
    fresh seed, recorded in the metadata), ``"blocked"`` (variant by variant) or an
    ``Order``.
    """
    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment)
    lineup = _models(experiment, models)
    if not isinstance(order, Order):
        order = new_order(order, order_seed)
    cells = plan_cells(experiment, [m.spec for m in lineup], runs, variants, scenarios)
    plan = plan_of(cells, runs)
    cells = order_cells(cells, order)
    run_id = run_id or new_run_id()
    # Built first: an agentic experiment's code is bound and checked here, before the
    # lock makes the results folder.
    runner = Runner(experiment, lineup, policy=policy or RetryPolicy(), concurrency=concurrency)
    with RunLock(results, run_id, "run_experiment"):
        pool = WriterPool(
            run_id=run_id,
            git_commit=git_commit(),
            metadata=metadata_for(
                experiment,
                lineup,
                runs,
                plan["scenario_ids"],
                front_end="library",
                plan=plan,
                order=order.record(),
            ),
            directory=Path(results),
        )
        runner.tracer = tracer or Tracer()
        outcomes: list[Outcome] = []
        runner.on_outcome = outcomes.append
        try:
            failure = asyncio.run(execute(runner, cells, pool))
        finally:
            pool.close_all()
            runner.tracer.close()
        return RunResult(pool.run_id, tuple(sorted(pool.paths)), tuple(outcomes), failure, order)


def _models(
    experiment: Experiment, models: str | Model | Iterable[str | Model] | None
) -> list[Model]:
    given = [models] if models is None or isinstance(models, str | Model) else list(models)
    settings = {"temperature": experiment.temperature, "max_tokens": experiment.max_tokens}
    return [m if isinstance(m, Model) else get_model(m, **settings) for m in given]
