"""Is a results folder complete? The checks the experiment plan makes, rerun-aware.

For every (experiment, variant, rep) the metadata promises — its scenario ids and its
number of runs — there must be a file, and every scenario must have a non-empty result.
Partial reruns add files; for each (variant, rep, scenario) the latest result counts, and
``scenario_error`` lines never count as results.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tooltrial.errors import CorruptLine
from tooltrial.log.reader import iter_records
from tooltrial.log.records import Error, Metadata, Result


@dataclass(frozen=True)
class Problem:
    where: str
    what: str


@dataclass
class Arm:
    """One (experiment, variant, rep): its files and the latest result per scenario."""

    experiment: str
    variant: str
    rep: int
    expected: set[str] = field(default_factory=set)
    files: list[Path] = field(default_factory=list)
    latest: dict[str, Result] = field(default_factory=dict)
    errors: dict[str, Error] = field(default_factory=dict)

    def add(self, record: Result | Error) -> None:
        key = record.scenario_id
        if isinstance(record, Error):
            self.errors[key] = record
        elif key not in self.latest or record.timestamp >= self.latest[key].timestamp:
            self.latest[key] = record

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
    files = sorted(directory.glob("*.jsonl"))
    problems: list[Problem] = []
    if not files:
        problems.append(Problem(str(directory), "no .jsonl result files here"))
    arms: dict[tuple[str, str, int], Arm] = {}
    runs: dict[tuple[str, str], int] = defaultdict(int)
    for path in files:
        metadata = _read_file(path, run_id, arms, problems)
        if metadata is not None:
            key = (metadata.experiment, metadata.variant)
            runs[key] = max(runs[key], metadata.runs or metadata.rep)
    for (experiment, variant), count in runs.items():
        for rep in range(1, count + 1):
            if (experiment, variant, rep) not in arms:
                where = f"{experiment}/{variant} run {rep}"
                problems.append(Problem(where, "no file: this run never started"))
    for arm in arms.values():
        _check_arm(arm, problems)
    return Validation(
        sorted(arms.values(), key=lambda a: (a.experiment, a.variant, a.rep)), problems
    )


def _read_file(
    path: Path,
    run_id: str | None,
    arms: dict[tuple[str, str, int], Arm],
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
        key = (metadata.experiment, metadata.variant, metadata.rep)
        arm = arms.setdefault(key, Arm(*key))
        arm.expected |= set(metadata.scenario_ids)
        arm.files.append(path)
        for record in records:
            if isinstance(record, Metadata):
                problems.append(Problem(str(path), "a second metadata line"))
            else:
                arm.add(record)
        return metadata
    except CorruptLine as exc:
        problems.append(Problem(f"{exc.path}:{exc.line_no}", exc.problem))
        return metadata  # what came before the bad line still counts


def _check_arm(arm: Arm, problems: list[Problem]) -> None:
    where = f"{arm.experiment}/{arm.variant} run {arm.rep}"
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
