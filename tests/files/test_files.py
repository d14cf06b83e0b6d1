"""``tooltrial.files``: names that can name files, writes that cannot be redirected or
left half-done, reads that cannot block."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tooltrial.files import (
    FileRefused,
    UnreadableFile,
    WriteFailed,
    append_whole,
    file_part,
    open_append,
    open_regular,
    run_id_problem,
)


@pytest.mark.parametrize("run_id", ["r1", "run_2025-01-01.a", "A" * 128, "_x", "20250101T000000Z"])
def test_plain_run_ids_are_taken(run_id: str) -> None:
    assert run_id_problem(run_id) is None


@pytest.mark.parametrize(
    "run_id",
    ["", ".", "..", ".x", "-x", "a/b", "/../important", "a\\b", "a b", "a\0b", "é", "A" * 129, 7],
)
def test_other_run_ids_are_refused(run_id: object) -> None:
    problem = run_id_problem(run_id)
    assert problem is not None and "must be 1 to 128 letters" in problem
    assert len(problem) < 200


@pytest.mark.parametrize("name", ["api", "app v2", "tasks-calendar", "ä"])
def test_a_safe_name_stays_as_it_is(name: str) -> None:
    assert file_part(name) == name


@pytest.mark.parametrize(
    "name", ["..", ".", "../../etc/x", "a/b", "a\\b", "a\nb", ".hidden", "x" * 300, " ", "a\0b"]
)
def test_any_other_name_is_encoded_into_one_plain_name(name: str, tmp_path: Path) -> None:
    part = file_part(name)
    assert part == file_part(name)  # stable
    assert "/" not in part and "\\" not in part and not part.startswith(".")
    assert len(part.encode()) <= 100 and part.isprintable()
    assert (tmp_path / part).parent == tmp_path
    assert file_part(name + "!") != part  # the hash keeps different names apart


def test_open_append_refuses_what_it_did_not_make(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("keep\n")
    (tmp_path / "link").symlink_to(outside)
    os.link(outside, tmp_path / "hard")
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "fifo")
    for name, what in [
        ("link", "a symbolic link"),
        ("hard", "a hard link"),
        ("folder", "cannot write"),
        ("fifo", "a FIFO"),
    ]:
        with pytest.raises(FileRefused, match=what):
            open_append(tmp_path / name)
    assert outside.read_text() == "keep\n"
    fd = open_append(tmp_path / "new.jsonl")
    os.close(fd)
    assert (tmp_path / "new.jsonl").exists()


def test_a_failed_append_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.jsonl"
    fd = open_append(path)
    append_whole(fd, b"one\n", path)
    real = os.write

    def half(fd_: int, data: bytes) -> int:
        real(fd_, bytes(data)[:3])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half)
    with pytest.raises(WriteFailed) as failed:
        append_whole(fd, b"two two\n", path, resume="tooltrial run --resume r1")
    monkeypatch.undo()
    os.close(fd)
    assert path.read_bytes() == b"one\n"
    message = str(failed.value)
    assert "No space left on device (ENOSPC)" in message
    assert "tooltrial run --resume r1" in message


def test_open_regular_never_blocks_or_reads_a_device(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.jsonl")  # opening it for reading would wait for a writer
    (tmp_path / "zero.jsonl").symlink_to("/dev/zero")
    (tmp_path / "dir.jsonl").mkdir()
    for name, what in [
        ("fifo.jsonl", "a FIFO"),
        ("zero.jsonl", "a character device"),
        ("dir.jsonl", "a folder"),
        ("missing.jsonl", "cannot be read"),
    ]:
        with pytest.raises(UnreadableFile, match=what):
            open_regular(tmp_path / name)
    (tmp_path / "ok.jsonl").write_text("x\n")
    with open_regular(tmp_path / "ok.jsonl") as handle:
        assert handle.read() == b"x\n"
