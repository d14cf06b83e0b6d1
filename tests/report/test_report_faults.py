"""A report is written whole or not at all: a full disk leaves the old report (or none)
and no temporary file, with exit 2 and what to do."""

from __future__ import annotations

import contextlib
import errno
import io
import os
from pathlib import Path

import pytest
from support.sample_results import sample_answers, write_experiment, write_results

from tooltrial.cli import main


@pytest.mark.parametrize("old", [None, "the old report\n"])
def test_a_full_disk_leaves_the_report_as_it_was(tmp_path: Path, old: str | None) -> None:
    write_results(write_experiment(tmp_path / "exp"), tmp_path / "results", sample_answers(1))
    out = tmp_path / "out" / "report.md"
    out.parent.mkdir()
    if old is not None:
        out.write_text(old)
    real = os.write

    def full(fd: int, data: bytes) -> int:
        if "/out/.report.md-" in os.readlink(f"/proc/self/fd/{fd}"):
            real(fd, bytes(data)[:10])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    err = io.StringIO()
    with pytest.MonkeyPatch.context() as fault:
        fault.setattr(os, "write", full)
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["report", str(tmp_path / "results"), "--format", "md", "-o", str(out)])
    text = " ".join(err.getvalue().split())
    assert code == 2, text
    assert "could not write (No space left on device (ENOSPC))" in text and "Traceback" not in text
    assert sorted(p.name for p in out.parent.iterdir()) == ([] if old is None else ["report.md"])
    if old is not None:
        assert out.read_text() == old
    assert main(["report", str(tmp_path / "results"), "--format", "md", "-o", str(out)]) == 0
    assert out.read_text().startswith("#") and oct(out.stat().st_mode & 0o777) == "0o644"
