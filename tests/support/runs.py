"""Running cells through the one public run path (``open_run``), as every front end does.

``run_cells`` plans the smallest grid that holds the given cells (their variants,
scenarios and reps; blocked order), runs exactly those cells, and returns the ``Run``
(its ``turns`` hold the pacers, ``outcomes`` every outcome); a ``Recorder`` keeps what
the run told its observer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooltrial.definitions import Experiment
from tooltrial.models import Model
from tooltrial.run.options import RunOptions
from tooltrial.run.session import ModelsArg, Run, open_run
from tooltrial.tracing import Tracer
from tooltrial.turns import RetryPolicy
from tooltrial.types import Cell, Failure, Outcome

FAST = RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05, timeout_s=5)


@dataclass
class Recorder:
    """A ``RunObserver`` that keeps what it is told."""

    outcomes: list[Outcome] = field(default_factory=list)
    retries: list[Failure] = field(default_factory=list)

    def outcome(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)

    def retry(self, cell: Cell, failure: Failure) -> None:
        self.retries.append(failure)

    def display(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()


def options_for(cells: Sequence[Cell], results: Path, **options: Any) -> RunOptions:
    """Options whose plan holds ``cells`` (and as little else as it can)."""
    settings: dict[str, Any] = {
        "results": results,
        "runs": max(c.rep for c in cells),
        "variants": tuple(dict.fromkeys(c.variant for c in cells)),
        "scenarios": tuple(dict.fromkeys(c.scenario_id for c in cells)),
        "order": "blocked",
        "retry": FAST,
    }
    return RunOptions(**{**settings, **options})


def run_cells(
    experiment: Experiment,
    models: ModelsArg,
    cells: Iterable[Cell],
    results: Path,
    *,
    observer: Recorder | None = None,
    tracer: Tracer | None = None,
    **options: Any,
) -> Run:
    """Run exactly ``cells`` (after the preflight); the run, closed."""
    chosen = list(cells)
    with open_run(
        experiment, models, options_for(chosen, results, **options), tracer=tracer
    ) as run:
        asyncio.run(run.execute(observer, cells=chosen))
    return run


@contextlib.contextmanager
def opened(
    experiment: Experiment, models: Model | Sequence[Model], results: Path, **options: Any
) -> Iterator[Run]:
    """A run of the whole experiment, open (its cells to call one by one)."""
    with open_run(experiment, models, RunOptions(results=results, **options)) as run:
        yield run
