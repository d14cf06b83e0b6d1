"""What a run will do: its cells and their order, its id and its plan.

A run's grid is models × variants × scenarios × reps. Planning happens before any call,
so every name in it (variant, scenario) is checked against the experiment here and an
unknown one stops the run with nothing written.

Order: by default a run is randomised (``order_cells``): rep by rep, each rep's cells in a
seeded random order, so drift over the run (server load, rate limits, a deploy) does not
land on one variant. The seed is recorded in the metadata (``settings.order``).
"""

from __future__ import annotations

import hashlib
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tooltrial.definitions import Experiment
from tooltrial.errors import UsageError
from tooltrial.models.base import Model
from tooltrial.types import Cell, Order


def plan_cells(
    experiment: Experiment,
    models: str | Iterable[str],
    runs: int,
    variants: Iterable[str] | None = None,
    scenario_ids: Iterable[str] | None = None,
) -> list[Cell]:
    """Every cell of the grid once, in the blocked order: variant-major with the models
    innermost, so each model's consecutive calls share a system prompt and tools, and
    calls to different models interleave (one model's pace limits never hold up the
    others' turns). ``order_cells`` gives the order a run actually uses."""
    specs = model_specs(models)
    names = list(variants) if variants else [v.name for v in experiment.variants]
    for name in names:
        experiment.variant(name)  # unknown names fail here, before any call
    ids = list(scenario_ids) if scenario_ids else list(experiment.scenario_ids)
    for scenario_id in ids:
        experiment.scenario(scenario_id)
    reps = range(1, runs + 1)
    return [Cell(m, v, s, rep) for v in names for rep in reps for s in ids for m in specs]


def new_order(kind: str = "random", seed: int | None = None) -> Order:
    """The order to run in; a random order without a seed gets a fresh one (to record)."""
    if kind not in ("blocked", "random"):
        raise UsageError(f"the order is 'random' or 'blocked', not {kind!r}")
    if kind == "blocked":
        if seed is not None:
            raise UsageError("an order seed only applies to the random order: drop one")
        return Order("blocked")
    return Order("random", secrets.randbelow(1_000_000) if seed is None else seed)


def order_key(seed: int, rep: int, names: Sequence[str]) -> bytes:
    """Where a cell (named by ``names``) falls within its rep under ``seed``: a hash, so
    a cell's place depends only on the seed and the cell, never on which other cells are
    there. A subset of the cells (a resumed run's remaining ones, an xdist worker's share,
    a ``-k`` selection) keeps the relative order it had in the whole run."""
    text = "\x1f".join([str(seed), str(rep), *names])
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def order_cells(cells: Iterable[Cell], order: Order) -> list[Cell]:
    """The cells in the order to call them. Blocked: as given (``plan_cells``' order).
    Random: rep by rep (a killed run has whole early reps), and within a rep the seeded
    permutation of ``order_key`` across models, variants and scenarios."""
    cells = list(cells)
    if not order.randomised:
        return cells
    seed = order.seed or 0
    return sorted(
        cells, key=lambda c: (c.rep, order_key(seed, c.rep, (c.model, c.variant, c.scenario_id)))
    )


def model_specs(models: str | Model | Iterable[str] | Iterable[Model]) -> list[str]:
    """Model specs, in order, each once; one spec or model stands for a list of one."""
    items: list[str | Model] = [models] if isinstance(models, str | Model) else list(models)
    specs = [m if isinstance(m, str) else m.spec for m in items]
    if not specs:
        raise UsageError("name at least one model")
    return list(dict.fromkeys(specs))


@dataclass(frozen=True)
class Plan:
    """What a run set out to do, recorded in the metadata (``settings.plan``) so that
    ``--resume`` can rebuild its cells."""

    models: tuple[str, ...]
    variants: tuple[str, ...]
    scenario_ids: tuple[str, ...]
    runs: int

    @classmethod
    def of(cls, cells: Sequence[Cell], runs: int) -> Plan:
        return cls(
            models=tuple(dict.fromkeys(c.model for c in cells)),
            variants=tuple(dict.fromkeys(c.variant for c in cells)),
            scenario_ids=tuple(dict.fromkeys(c.scenario_id for c in cells)),
            runs=runs,
        )

    def record(self) -> dict[str, Any]:
        return {
            "models": list(self.models),
            "variants": list(self.variants),
            "scenario_ids": list(self.scenario_ids),
            "runs": self.runs,
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
