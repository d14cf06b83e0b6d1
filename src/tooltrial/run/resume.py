"""Resuming a run: what its files already hold, and which cells are left.

A resumed run must measure the same thing: anything recorded in the metadata that would
change what is measured (model, temperature, runs, fixed timestamp, max_tokens, a
variant's definition, a scenario that is gone) refuses the resume with the difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tooltrial.definitions import Experiment
from tooltrial.errors import ResumeError
from tooltrial.log.reader import iter_records
from tooltrial.log.records import Metadata, Result
from tooltrial.models.base import Model
from tooltrial.types import Cell


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
