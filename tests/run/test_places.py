"""``run.places``: a file place (``--output``, ``--export``) that is not a regular file or
absent — a symbolic link, a FIFO, a device, a folder — is refused, naming the flag, and
checking it touches nothing."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tooltrial.errors import UsageError
from tooltrial.run.places import check_file


def test_a_device_is_refused_not_replaced() -> None:
    """``-o /dev/null``: replacing it (as root, a rename could) would break the machine."""
    with pytest.raises(UsageError, match=r"--output /dev/null: is a character device"):
        check_file(Path("/dev/null"), "--output")
    assert Path("/dev/null").is_char_device()


@pytest.mark.parametrize(
    ("planted", "message"),
    [
        ("link", "is a symbolic link; tooltrial writes only a file of its own there"),
        ("dangling", "is a symbolic link"),
        ("fifo", "is a FIFO (named pipe), not a file; name a file"),
        ("dir", "is a folder; name a file"),
    ],
)
def test_what_tooltrial_did_not_make_is_refused(tmp_path: Path, planted: str, message: str) -> None:
    outside = tmp_path / "outside"
    outside.write_text("keep\n")
    path = tmp_path / "t.csv"
    if planted == "link":
        path.symlink_to(outside)
    elif planted == "dangling":
        path.symlink_to(tmp_path / "nowhere")
    elif planted == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    with pytest.raises(UsageError, match=re.escape(f"--export {path}: {message}")):
        check_file(path, "--export")
    assert outside.read_text() == "keep\n"


def test_a_regular_file_or_nothing_is_taken(tmp_path: Path) -> None:
    (tmp_path / "old.csv").write_text("old\n")
    check_file(tmp_path / "old.csv", "--export")
    check_file(tmp_path / "new.csv", "--export")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv"]
