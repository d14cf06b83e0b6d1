"""What a run will do: its cells, its id, its seed per cell, and the metadata it records.

A run's grid is models × variants × scenarios × reps. Planning happens before any call,
so every name in it (variant, scenario) is checked against the experiment here and an
unknown one stops the run with nothing written.
"""

from __future__ import annotations

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
from tooltrial.types import Cell


def plan_cells(
    experiment: Experiment,
    models: str | Iterable[str],
    runs: int,
    variants: Iterable[str] | None = None,
    scenario_ids: Iterable[str] | None = None,
) -> list[Cell]:
    """Every cell of the grid once, variant-major with the models innermost: each model's
    consecutive calls share a system prompt and tools (a local model reuses its evaluated
    prompt prefix), and calls to different models interleave, so one model's pace limits
    never hold up the others' turns."""
    specs = model_specs(models)
    names = list(variants) if variants else [v.name for v in experiment.variants]
    for name in names:
        experiment.variant(name)  # unknown names fail here, before any call
    ids = list(scenario_ids) if scenario_ids else list(experiment.scenario_ids)
    for scenario_id in ids:
        experiment.scenario(scenario_id)
    reps = range(1, runs + 1)
    return [Cell(m, v, s, rep) for v in names for rep in reps for s in ids for m in specs]


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
                **settings,
            },
        }
        for model in lineup
        for v in experiment.variants
    }


def cell_seed(cell: Cell) -> int:
    """Stable per cell, so a local model samples each cell the same way every time.

    Not a promise of identical text: llama.cpp's prompt-prefix reuse changes how the
    prompt is batched, which shifts logits by float rounding, and near-ties can flip.
    """
    return zlib.crc32(f"{cell.variant}/{cell.scenario_id}/{cell.rep}".encode())
