"""What a run will do: its cells and their order, its id, its seed per cell, and the
metadata it records.

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
import zlib
from collections.abc import Iterable, Sequence
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


def plan_of(cells: Sequence[Cell], runs: int) -> dict[str, Any]:
    """The run's plan as recorded in metadata settings, so ``--resume`` can rebuild it."""
    return {
        "models": list(dict.fromkeys(c.model for c in cells)),
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
    models: Model | Sequence[Model],
    runs: int | None,
    scenario_ids: Sequence[str] | None = None,
    **settings: Any,
) -> dict[tuple[str, str], dict[str, Any]]:
    """The metadata fields of each (model spec, variant)'s files (the pool adds variant,
    rep, commit): each model records its own spec, temperature and settings.

    ``scenario_ids`` are the ones this run plans (default: all of the experiment's)."""
    lineup = [models] if isinstance(models, Model) else list(models)
    return {
        (model.spec, v.name): {
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
                **_agentic_settings(experiment),
                **settings,
            },
        }
        for model in lineup
        for v in experiment.variants
    }


def _agentic_settings(experiment: Experiment) -> dict[str, Any]:
    """An agentic run also records its app and its conversation limits."""
    if not experiment.agentic:
        return {}
    return {"app": experiment.app, "limits": experiment.limits.model_dump()}


def cell_seed(cell: Cell) -> int:
    """Stable per cell, so a local model samples each cell the same way every time.

    Not a promise of identical text: llama.cpp's prompt-prefix reuse changes how the
    prompt is batched, which shifts logits by float rounding, and near-ties can flip.
    """
    return zlib.crc32(f"{cell.variant}/{cell.scenario_id}/{cell.rep}".encode())
