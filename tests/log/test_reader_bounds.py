"""The log reader's bounds: no line longer than ``MAX_LINE_BYTES`` is held, no nesting
deeper than ``MAX_DEPTH`` is taken, whichever way the JSON parser gets there. The
command-line rows are in ``tests/cli/test_hostile_files.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tooltrial.errors import CorruptLine
from tooltrial.log import reader
from tooltrial.log.records import MAX_DEPTH, parse_line


def test_a_line_past_the_limit_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "MAX_LINE_BYTES", 100)
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"x" * 10_000 + b"\n")
    with pytest.raises(CorruptLine, match="a line longer than 100 bytes") as refused:
        list(reader.iter_records(path))
    assert refused.value.line_no == 1


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 900, 200_000])
def test_nesting_past_the_limit_is_refused(tmp_path: Path, depth: int) -> None:
    raw = b'{"type": "metadata", "x": ' + b"[" * depth + b"]" * depth + b"}\n"
    with pytest.raises(CorruptLine, match=f"nested more than {MAX_DEPTH} levels deep"):
        parse_line(tmp_path / "r.jsonl", 3, raw)


def test_nesting_within_the_limit_reaches_the_record_check(tmp_path: Path) -> None:
    depth = MAX_DEPTH - 2
    raw = b'{"type": "metadata", "x": ' + b"[" * depth + b"]" * depth + b"}\n"
    with pytest.raises(CorruptLine, match="metadata record: "):  # fields missing, not depth
        parse_line(tmp_path / "r.jsonl", 3, raw)
