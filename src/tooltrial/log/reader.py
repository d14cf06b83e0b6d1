"""Reading results files: which files, their committed records in order, and which
result counts for each cell. The one owner of these rules for every reader of a results
folder (validate, resume, analysis).

A record is committed once its newline is on disk; a last line without one is a torn
write from a killed writer and is skipped, never reported (``--resume`` runs that cell
again).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from tooltrial.errors import ResultsError
from tooltrial.log.records import Error, Record, Result, parse_line

CELL_KEY = ("model", "variant", "scenario_id", "rep")
"""What identifies a cell in the log. Of several results for one cell (partial reruns,
resumes), the one with the latest ``timestamp`` counts, ties going to the later line;
``scenario_error`` lines never count as results. Every reader of a results folder
(validate, resume, analysis) applies this rule through this module."""

CellKey = tuple[str, str, str, int]
"""A cell as ``CELL_KEY`` names it: (model, variant, scenario_id, rep)."""


def result_files(paths: Iterable[str | Path]) -> list[Path]:
    """Every ``*.jsonl`` in the given folders, plus the files given directly, in the order
    every reader takes them (by file name). A path that does not exist, or no file at all,
    is a ``ResultsError`` naming it."""
    given = [Path(raw) for raw in paths]
    files: list[Path] = []
    for path in given:
        if path.is_dir():
            files.extend(sorted(path.glob("*.jsonl")))
        elif path.is_file():
            files.append(path)
        else:
            raise ResultsError(f"{path}: no such file or folder")
    if not files:
        raise ResultsError(f"no .jsonl result files in {', '.join(map(str, given))}")
    return sorted(set(files), key=lambda p: (p.name, str(p)))


def cell_key(record: Result | Error) -> CellKey:
    return (record.model, record.variant, record.scenario_id, record.rep)


def latest_results(records: Iterable[Record]) -> dict[CellKey, Result]:
    """The result that counts for each cell (``CELL_KEY``'s rule) among ``records``, given
    in line order (files in ``result_files`` order, lines in file order): the latest
    ``timestamp`` wins (tooltrial's ISO-8601 UTC stamps compare as text), a tie goes to
    the later line, and metadata and ``scenario_error`` lines are never results."""
    latest: dict[CellKey, Result] = {}
    for record in records:
        if isinstance(record, Result):
            key = cell_key(record)
            held = latest.get(key)
            if held is None or record.timestamp >= held.timestamp:
                latest[key] = record
    return latest


def read_results(paths: Iterable[str | Path]) -> dict[CellKey, Result]:
    """The result that counts for every cell in these folders or files."""
    return latest_results(record for path in result_files(paths) for record in iter_records(path))


def iter_records(path: Path) -> Iterator[Record]:
    """Yield every committed record of a file in order; raise CorruptLine at a bad one.

    A last line without its newline is a torn write (the writer was killed): never
    committed, so it is skipped rather than reported.
    """
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                return
            yield parse_line(path, line_no, raw)


def committed_bytes(path: Path) -> bytes | None:
    """The file up to its last newline if its last line is torn; None if it is whole."""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return None
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return None
        handle.seek(0)
        data = handle.read()
    return data[: data.rfind(b"\n") + 1]
