"""Reading results files: which files, their committed records in order, and which
result counts for each cell. The one owner of these rules for every reader of a results
folder (validate, resume, analysis).

A record is committed once its newline is on disk; a last line without one is a torn
write from a killed writer and is skipped, never reported (``--resume`` runs that cell
again).

Nothing in a results folder can break or block a reader: a file is opened only if it is
a regular file (``files.open_regular``: a folder, a FIFO or a link to ``/dev/zero`` is
refused before a byte is read; a FIFO or a device named on the command line is refused
as what it is by ``result_files``, from its ``stat`` alone), read line by line with no
line longer than ``MAX_LINE_BYTES`` ever held in memory, and every line that is not a
record (``records.parse_line``) is a ``CorruptLine`` naming the file and line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from tooltrial.errors import CorruptLine, ResultsError
from tooltrial.files import UnreadableFile, kind, open_regular
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
    is a ``ResultsError`` naming it; a path that is neither a folder nor a regular file
    (a FIFO, a link to ``/dev/null``) is an ``UnreadableFile`` saying what it is."""
    given = [Path(raw) for raw in paths]
    files: list[Path] = []
    for path in given:
        if path.is_dir():
            files.extend(sorted(path.glob("*.jsonl")))
        elif path.is_file():
            files.append(path)
        elif path.exists():  # stat only: a FIFO is never opened, so never waited on
            fix = "name a .jsonl file of results or a results folder"
            raise UnreadableFile(path, f"{kind(path.stat())}, not a file of results", fix)
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


GZIP_MAGIC = b"\x1f\x8b"
MAX_LINE_BYTES = 64 * 1024 * 1024
"""The longest line a reader takes (a result with a long conversation is far shorter);
a longer one is a ``CorruptLine``, read no further than this."""


def iter_records(path: Path) -> Iterator[Record]:
    """Yield every committed record of a file in order; raise CorruptLine at a bad one
    (``UnreadableFile`` if the path is not a regular file).

    A last line without its newline is a torn write (the writer was killed): never
    committed, so it is skipped rather than reported.
    """
    with open_regular(path) as handle:
        line_no = 0
        while raw := handle.readline(MAX_LINE_BYTES + 1):
            line_no += 1
            if line_no == 1 and raw.startswith(GZIP_MAGIC):  # torn or not: never a record
                raise CorruptLine(path, 1, "a gzip-compressed file, not JSON lines: decompress it")
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise CorruptLine(
                    path, line_no, f"a line longer than {MAX_LINE_BYTES:,} bytes, not a record"
                )
            if not raw.endswith(b"\n"):
                return
            yield parse_line(path, line_no, raw)


def committed_bytes(path: Path) -> bytes | None:
    """The file up to its last newline if its last line is torn; None if it is whole."""
    with open_regular(path) as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return None
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return None
        handle.seek(0)
        data = handle.read()
    return data[: data.rfind(b"\n") + 1]
