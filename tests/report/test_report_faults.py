"""A report is written whole or not at all: a full disk leaves the old report (or none)
and no temporary file, with exit 2 and what to do."""

from __future__ import annotations

import contextlib
import errno
import io
import os
from pathlib import Path

import polars as pl
import pytest
from support.sample_results import sample_answers, write_experiment, write_results

from tooltrial.cli import main


def on_a_full_disk(argv: list[str], temporary: str) -> tuple[int, str]:
    """``main(argv)`` with the disk full halfway through writing a file whose path holds
    ``temporary`` (the temp file a whole write goes through): the exit code and stderr."""
    real = os.write

    def full(fd: int, data: bytes) -> int:
        if temporary in os.readlink(f"/proc/self/fd/{fd}"):
            real(fd, bytes(data)[: max(1, len(data) // 2)])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    err = io.StringIO()
    with pytest.MonkeyPatch.context() as fault:
        fault.setattr(os, "write", full)
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    return code, " ".join(err.getvalue().split())


@pytest.mark.parametrize("old", [None, "the old report\n"])
def test_a_full_disk_leaves_the_report_as_it_was(tmp_path: Path, old: str | None) -> None:
    write_results(write_experiment(tmp_path / "exp"), tmp_path / "results", sample_answers(1))
    out = tmp_path / "out" / "report.md"
    out.parent.mkdir()
    if old is not None:
        out.write_text(old)
    argv = ["report", str(tmp_path / "results"), "--format", "md", "-o", str(out)]
    code, text = on_a_full_disk(argv, "/out/.report.md-")
    assert code == 2, text
    assert "could not write (No space left on device (ENOSPC))" in text and "Traceback" not in text
    assert sorted(p.name for p in out.parent.iterdir()) == ([] if old is None else ["report.md"])
    if old is not None:
        assert out.read_text() == old
    assert main(["report", str(tmp_path / "results"), "--format", "md", "-o", str(out)]) == 0
    assert out.read_text().startswith("#") and oct(out.stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("old", [None, b"the old table\n"])
def test_a_full_disk_leaves_the_export_as_it_was(
    tmp_path: Path, suffix: str, old: bytes | None
) -> None:
    """``--export`` is written whole too: a full disk halfway through leaves the old table
    (or none) and no temporary file; exit 2, what to do; the same command then works."""
    write_results(write_experiment(tmp_path / "exp"), tmp_path / "results", sample_answers(1))
    table = tmp_path / "out" / f"table{suffix}"
    table.parent.mkdir()
    if old is not None:
        table.write_bytes(old)
    argv = ["report", str(tmp_path / "results"), "--format", "md", "-o", str(tmp_path / "r.md")]
    argv += ["--export", str(table)]
    code, text = on_a_full_disk(argv, f"/out/.table{suffix}-")
    assert code == 2, text
    assert f"{table}: could not write (No space left on device (ENOSPC))" in text
    assert "The file is as it was before" in text and "Traceback" not in text
    assert sorted(p.name for p in table.parent.iterdir()) == ([] if old is None else [table.name])
    if old is not None:
        assert table.read_bytes() == old
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(argv) == 0
    written = pl.read_csv(table) if suffix == ".csv" else pl.read_parquet(table)
    assert written.height == 8 and oct(table.stat().st_mode & 0o777) == "0o644"


def test_an_export_over_a_hard_link_leaves_the_other_name_alone(tmp_path: Path) -> None:
    """The export is a new file renamed over the name: a hard link there is replaced, and
    the file it shared bytes with keeps them."""
    write_results(write_experiment(tmp_path / "exp"), tmp_path / "results", sample_answers(1))
    (tmp_path / "notes.csv").write_text("mine\n")
    os.link(tmp_path / "notes.csv", tmp_path / "t.csv")
    argv = ["report", str(tmp_path / "results"), "--format", "md", "-o", str(tmp_path / "r.md")]
    with contextlib.redirect_stderr(io.StringIO()):
        assert main([*argv, "--export", str(tmp_path / "t.csv")]) == 0
    assert (tmp_path / "notes.csv").read_text() == "mine\n"
    assert pl.read_csv(tmp_path / "t.csv").height == 8
