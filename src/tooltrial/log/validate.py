"""Is a results folder complete? The checks the experiment plan makes, rerun-aware.

For every (experiment, model, variant, rep) the metadata promises — its scenario ids and
its number of runs — there must be a file, and every scenario must have a non-empty
result. Partial reruns and resumes add files; which result counts for a cell is
``log.reader``'s rule (latest timestamp, ties to the later line, ``scenario_error`` lines
never count), so runs of several models in one folder never collapse into one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tooltrial.errors import CorruptLine, ResultsError
from tooltrial.log.reader import iter_records, latest_results, result_files
from tooltrial.log.records import Error, Metadata, Result

ArmKey = tuple[str, str, str, int]
"""(experiment, model, variant, rep)."""


@dataclass(frozen=True)
class Problem:
    where: str
    what: str


@dataclass
class Arm:
    """One (experiment, model, variant, rep): its files and the result per scenario that
    counts."""

    experiment: str
    model: str
    variant: str
    rep: int
    expected: set[str] = field(default_factory=set)
    files: list[Path] = field(default_factory=list)
    records: list[Result | Error] = field(default_factory=list, repr=False)
    latest: dict[str, Result] = field(default_factory=dict)
    errors: dict[str, Error] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.model} {self.experiment}/{self.variant} run {self.rep}"

    def settle(self) -> None:
        """Apply the latest-result rule to the records read for this arm."""
        self.latest = {key[2]: r for key, r in latest_results(self.records).items()}
        self.errors = {r.scenario_id: r for r in self.records if isinstance(r, Error)}

    @property
    def missing(self) -> list[str]:
        return sorted(self.expected - self.latest.keys())

    @property
    def empty(self) -> list[str]:
        return sorted(s for s, r in self.latest.items() if not r.response_text and not r.tool_calls)

    @property
    def tool_only(self) -> int:
        return sum(1 for r in self.latest.values() if r.tool_calls and not r.response_text)


@dataclass
class Validation:
    arms: list[Arm]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.arms)


def validate(directory: str | Path, run_id: str | None = None) -> Validation:
    directory = Path(directory)
    try:
        files = result_files([directory])
    except ResultsError:
        what = "no .jsonl result files here" if directory.is_dir() else "no such folder"
        return Validation([], [Problem(str(directory), what)])
    problems: list[Problem] = []
    arms: dict[ArmKey, Arm] = {}
    runs: dict[tuple[str, str, str], int] = defaultdict(int)
    for path in files:
        metadata = _read_file(path, run_id, arms, problems)
        if metadata is not None:
            key = (metadata.experiment, metadata.model, metadata.variant)
            runs[key] = max(runs[key], metadata.runs or metadata.rep)
    for (experiment, model, variant), count in runs.items():
        for rep in range(1, count + 1):
            if (experiment, model, variant, rep) not in arms:
                where = Arm(experiment, model, variant, rep).where
                problems.append(Problem(where, "no file: this run never started"))
    for arm in arms.values():
        arm.settle()
        _check_arm(arm, problems)
    ordered = sorted(arms.values(), key=lambda a: (a.experiment, a.model, a.variant, a.rep))
    return Validation(ordered, problems)


def _read_file(
    path: Path,
    run_id: str | None,
    arms: dict[ArmKey, Arm],
    problems: list[Problem],
) -> Metadata | None:
    records = iter_records(path)
    metadata = None
    try:
        first = next(records, None)
        if not isinstance(first, Metadata):
            problems.append(Problem(f"{path}:1", "the first line must be the metadata line"))
            return None
        metadata = first
        if run_id is not None and metadata.run_id != run_id:
            return None
        key = (metadata.experiment, metadata.model, metadata.variant, metadata.rep)
        arm = arms.setdefault(key, Arm(*key))
        arm.expected |= set(metadata.scenario_ids)
        arm.files.append(path)
        for line_no, record in enumerate(records, start=2):
            if isinstance(record, Metadata):
                problems.append(Problem(str(path), "a second metadata line"))
            elif (record.model, record.variant, record.rep) != key[1:]:
                problems.append(Problem(f"{path}:{line_no}", _stray(record)))
            else:
                arm.records.append(record)
        return metadata
    except CorruptLine as exc:
        problems.append(Problem(f"{exc.path}:{exc.line_no}", exc.problem))
        return metadata  # what came before the bad line still counts


def _stray(record: Result | Error) -> str:
    return (
        f"a line of {record.model} {record.variant} run {record.rep} in the file of another "
        "(model, variant, run): not counted"
    )


def _check_arm(arm: Arm, problems: list[Problem]) -> None:
    where = arm.where
    if arm.missing:
        failed = [s for s in arm.missing if s in arm.errors]
        detail = f" ({len(failed)} failed after retries: {', '.join(failed)})" if failed else ""
        problems.append(
            Problem(
                where,
                f"{len(arm.missing)} scenario(s) without a result{detail}: "
                f"{', '.join(arm.missing)}",
            )
        )
    if arm.empty:
        problems.append(
            Problem(where, f"empty response (no text, no tool call): {', '.join(arm.empty)}")
        )
    unknown = sorted(arm.latest.keys() - arm.expected)
    if unknown:
        problems.append(Problem(where, f"results for scenarios not in the metadata: {unknown}"))
