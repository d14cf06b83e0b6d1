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
    replace_whole,
    run_id_problem,
)
from tooltrial.files import kind as files_kind


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


def test_open_regular_without_following_refuses_a_link(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text("{}")
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    with pytest.raises(UnreadableFile, match="a symbolic link, not a file tooltrial made"):
        open_regular(tmp_path / "link.json", follow=False)
    with open_regular(tmp_path / "link.json") as handle:  # followed when asked to
        assert handle.read() == b"{}"
    with open_regular(tmp_path / "real.json", follow=False) as handle:
        assert handle.read() == b"{}"


@pytest.mark.parametrize("planted", ["link", "fifo", "hard"])
def test_replace_whole_replaces_what_is_planted_never_writing_through_it(
    tmp_path: Path, planted: str
) -> None:
    outside = tmp_path / "outside"
    outside.write_text("keep\n")
    path = tmp_path / "out" / "report.html"
    path.parent.mkdir()
    if planted == "link":
        path.symlink_to(outside)
    elif planted == "fifo":
        os.mkfifo(path)  # opened for writing, this would wait for a reader
    else:
        os.link(outside, path)
    replace_whole(path, b"new\n")
    assert outside.read_text() == "keep\n"
    assert not path.is_symlink() and path.read_bytes() == b"new\n"
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_a_failed_replace_leaves_the_file_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"old\n")

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(WriteFailed, match=r"t.csv: could not write .*as it was before"):
        replace_whole(path, b"new\n")
    monkeypatch.undo()
    assert path.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


@pytest.mark.parametrize(
    ("what", "kind"),
    [("fifo", "a FIFO (named pipe)"), ("dev/null", "a character device"), ("dir", "a folder")],
)
def test_kind_names_what_is_not_a_regular_file(tmp_path: Path, what: str, kind: str) -> None:
    if what == "fifo":
        os.mkfifo(tmp_path / "fifo")
    elif what == "dir":
        (tmp_path / "dir").mkdir()
    path = Path("/dev/null") if what == "dev/null" else tmp_path / what
    assert files_kind(os.stat(path)) == kind
