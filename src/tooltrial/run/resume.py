"""Resuming a run: what its files already hold, and which cells are left.

A run's cells are (model, variant, scenario, rep) and its models are those its metadata
records; a cell is done once it has a result (``log.reader``'s rule: error lines never
count). A resumed run must measure the same thing: anything recorded in the metadata
that would change what is measured (the set of models, a model's temperature or
max_tokens, runs, fixed timestamp, a variant's definition, a scenario that is gone, and
any part of the setup recorded in ``settings.setup``: the scenarios as defined, the
experiment's settings, the limits, the app's schema and seeded state) refuses the resume
(exit 2) with what changed. Files from before the setup was recorded are checked on what
they record. The remaining cells keep the run's recorded order
(``settings.order``; none recorded: blocked).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tooltrial.definitions import Experiment
from tooltrial.errors import ResultsError, ResumeError
from tooltrial.log.reader import iter_records, latest_results, result_files
from tooltrial.log.records import Metadata, Record
from tooltrial.models.base import Model
from tooltrial.run.options import RunOptions
from tooltrial.run.plan import Plan, order_cells
from tooltrial.turns.batch.options import BatchOptions
from tooltrial.types import Cell, Order

SETUP_PARTS = {
    "scenarios": "the scenarios (a prompt, setup rows, user turns or expected outcome)",
    "settings": "the experiment's settings (fixed timestamp, zero persona, max_tokens, kind "
    "or primary metric)",
    "app": "the app (its schema or seeded state)",
    "limits": "limits",
}
"""How a refused resume names each changed part of the setup."""


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
    def models(self) -> list[str]:
        """The run's model specs, in the order it planned them."""
        plan = self.setting("plan") or {}
        return plan.get("models") or list(dict.fromkeys(m.model for m in self.metadata))

    @property
    def order(self) -> Order:
        """The order the run recorded (blocked for files from before it was recorded)."""
        return Order.of(self.first.settings)

    def metadata_of(self, model: str) -> Metadata:
        return next(m for m in self.metadata if m.model == model)

    @property
    def planned_runs(self) -> int:
        plan = self.setting("plan") or {}
        return plan.get("runs") or self.first.runs or max(m.rep for m in self.metadata)

    @property
    def plan(self) -> Plan:
        """What the run set out to do, from its recorded plan (files from before plans
        were recorded: from their metadata)."""
        plan = self.setting("plan") or {}
        return Plan(
            models=tuple(self.models),
            variants=tuple(plan.get("variants") or sorted({m.variant for m in self.metadata})),
            scenario_ids=tuple(plan.get("scenario_ids") or self.first.scenario_ids),
            runs=self.planned_runs,
        )

    def planned_cells(self) -> list[Cell]:
        """The cells the run set out to make, from its recorded plan."""
        plan = self.plan
        reps = range(1, plan.runs + 1)
        return [
            Cell(m, v, s, rep)
            for v in plan.variants
            for rep in reps
            for s in plan.scenario_ids
            for m in plan.models
        ]

    def check_same(
        self,
        experiment: Experiment,
        models: Sequence[Model],
        runs: int,
        variant_hashes: Mapping[str, str],
        setup: Mapping[str, str] | None = None,
    ) -> None:
        """Refuse to resume with anything that would change what the run measures
        (``variant_hashes``: each variant's hash as resolved now; ``setup``: the setup's
        parts as now, ``run.metadata.setup_hashes``)."""
        self._check_models([m.spec for m in models])
        first = self.first
        wanted: dict[str, tuple[Any, Any]] = {
            "experiment": (first.experiment, experiment.name),
            "runs": (self.planned_runs, runs),
            "fixed_timestamp": (first.fixed_timestamp, experiment.fixed_timestamp.isoformat()),
        }
        for model in models:
            was = self.metadata_of(model.spec)
            of = f" for {model.spec}" if len(models) > 1 else ""
            wanted[f"temperature{of}"] = (was.temperature, model.temperature)
            wanted[f"max_tokens{of}"] = (was.settings.get("max_tokens"), model.max_tokens)
        for meta in self.metadata:
            now = variant_hashes.get(meta.variant, "(no such variant now)")
            wanted[f"variant {meta.variant!r}"] = (meta.variant_hash, now)
        known = set(experiment.scenario_ids)
        lost = [s for s in (self.setting("plan") or {}).get("scenario_ids", []) if s not in known]
        if lost:
            wanted["scenarios"] = (", ".join(lost), "(missing now)")
        for name, (was, now) in wanted.items():
            if was is not None and was != now:
                self._refuse(f"its {name} was {was}, now {now}")
        self._check_setup(experiment, setup or {})

    def _check_setup(self, experiment: Experiment, setup: Mapping[str, str]) -> None:
        recorded = self.setting("setup")
        if not isinstance(recorded, Mapping):
            return  # files from before the setup was recorded
        changed = [part for part, was in recorded.items() if setup.get(part) != was]
        if changed:
            what = "; ".join(self._describe(part, experiment) for part in changed)
            self._refuse(f"its setup changed since it ran: {what}")

    def _describe(self, part: str, experiment: Experiment) -> str:
        if part == "limits":
            was = self.setting("limits") or {}
            now = experiment.limits.model_dump(mode="json")
            diffs = [
                f"{k} was {was.get(k)}, now {now.get(k)}" for k in now if was.get(k) != now.get(k)
            ]
            return f"limits ({', '.join(diffs)})" if diffs else "limits"
        return SETUP_PARTS.get(part, part)

    def _check_models(self, given: Sequence[str]) -> None:
        recorded = self.models
        if set(given) == set(recorded):
            return
        left_out = [m for m in recorded if m not in given]
        added = [m for m in given if m not in recorded]
        difference = "; ".join(
            part
            for part in (
                f"not given now: {', '.join(left_out)}" if left_out else "",
                f"not in the run: {', '.join(added)}" if added else "",
            )
            if part
        )
        self._refuse(
            f"its model was {', '.join(recorded)}, now {', '.join(given)} ({difference}); "
            "leave out --model to resume with the run's own models"
        )

    def _refuse(self, difference: str) -> None:
        raise ResumeError(
            f"cannot resume run {self.run_id}: {difference}. A resumed run must measure the "
            "same thing: undo the change (or drop the flag that makes it), or start a new run."
        )

    def remaining(self) -> list[Cell]:
        """The cells without a result, in the run's own order."""
        return order_cells((c for c in self.planned_cells() if c not in self.done), self.order)


def resumed_options(prior: PriorRun, options: RunOptions) -> RunOptions:
    """The options of a resumed run: the run's own runs, temperature, order and batch
    mode where none is given (a run that submitted batches keeps collecting them); a
    flag that would change the order is refused."""
    temperature = options.temperature
    if temperature is None:
        recorded = prior.first.temperature
        temperature = "default" if recorded is None else recorded
    order = prior.order
    wanted = (options.order or order.kind, options.order_seed)
    if wanted[0] != order.kind or wanted[1] not in (None, order.seed):
        given = " ".join(
            f"{flag} {value}"
            for flag, value in (("--order", options.order), ("--order-seed", options.order_seed))
            if value is not None
        )
        raise ResumeError(
            f"run {prior.run_id} was run in {order.describe()} order; --resume keeps it: "
            f"drop {given}"
        )
    return replace(
        options,
        runs=options.runs or prior.planned_runs,
        temperature=temperature,
        order=order.kind,
        order_seed=order.seed,
        batch=options.batch or BatchOptions.of(prior.setting("batch")),
    )


def resumed_source(prior: PriorRun, given: str | None) -> str:
    """Where a resumed run's experiment comes from: as given, else as recorded."""
    source = given or prior.setting("experiment_source")
    if source is None:
        raise ResumeError(
            f"run {prior.run_id} does not record where its experiment came from: name it"
        )
    return str(source)


def read_run(directory: str | Path, run_id: str) -> PriorRun:
    """Read every file of ``run_id`` in ``directory``; error lines do not count as done."""
    directory = Path(directory)
    metadata: list[Metadata] = []
    records: list[Record] = []
    files: list[Path] = []
    for path in _files(directory):
        lines = iter_records(path)
        head = next(lines, None)
        if not isinstance(head, Metadata) or head.run_id != run_id:
            continue
        files.append(path)
        metadata.append(head)
        records.extend(lines)
    if not metadata:
        raise ResumeError(
            f"no files of run {run_id!r} in {directory}/: check the run id and --results "
            "(a run killed before its first file was made has nothing to resume; start it again)"
        )
    done = frozenset(Cell(*key) for key in latest_results(records))
    return PriorRun(run_id, tuple(metadata), done, tuple(files))


def _files(directory: Path) -> list[Path]:
    try:
        return result_files([directory])
    except ResultsError:  # no folder or no files: no files of this run either
        return []


def run_files(directory: str | Path, run_id: str) -> list[Path]:
    """The files of ``run_id`` in ``directory`` (read up to their metadata line only)."""
    found = []
    for path in _files(Path(directory)):
        head = next(iter_records(path), None)
        if isinstance(head, Metadata) and head.run_id == run_id:
            found.append(path)
    return found
