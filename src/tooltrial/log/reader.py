"""Reading results files: committed records only, in order.

A record is committed once its newline is on disk; a last line without one is a torn
write from a killed writer and is skipped, never reported (``--resume`` runs that cell
again).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from tooltrial.log.records import Record, parse_line

CELL_KEY = ("model", "variant", "scenario_id", "rep")
"""What identifies a cell in the log. Of several results for one cell (partial reruns,
resumes), the one with the latest ``timestamp`` counts, ties going to the later line;
``scenario_error`` lines never count as results. Every reader of a results folder
(validate, resume, analysis) applies this rule through this module."""


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
