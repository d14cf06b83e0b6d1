"""Where tooltrial reads and writes: names that become parts of paths, files opened so
that nothing already in a folder can redirect a write or block a read, and lines written
whole or not at all.

Guarantees, and how they are kept:

- **Names.** A run id names files (``<results>/.<run_id>.lock``,
  ``<results>/batches/<run_id>.jsonl``), so it must be a plain name: 1 to 128 letters,
  digits, ``.``, ``_`` or ``-``, not starting with ``.`` or ``-`` (``run_id_problem``;
  ``tooltrial run --run-id`` and ``--resume`` refuse anything else, naming the flag).
  Names that come from definitions or models — a variant, a model spec — are *encoded*
  where they form a file name (``file_part``): a name that is already safe stays as it is,
  any other becomes a slug of its safe characters plus a hash of the whole name, so it can
  never hold a ``/``, start a hidden or ``..`` name, carry a control character or run
  past the file system's name limit. Scenario ids never become part of a path.
- **Writing.** ``open_append`` opens a file to append to without following a symbolic
  link and only if it is a regular file with one link, so a link or a hard link left in
  a results folder never sends a write to a file tooltrial did not create (``FileRefused``).
  ``append_whole`` writes all of a record's bytes then ``fsync``s, or — on a full disk,
  an I/O error, a short write — cuts the file back to its size before the write and
  raises ``WriteFailed``: nothing half-written is ever left behind. A whole file (a
  report, an exported table, a cache entry) is written to a new temporary file beside its
  name (``mkstemp``: created, never opened through a link), ``fsync``ed and renamed over
  the name (``replace_whole``): the name holds either the old file or the new one, a link
  or a FIFO planted there is replaced, never written through, and on a failure the
  temporary file is removed and the old file is left as it was.
- **Reading.** ``open_regular`` opens without blocking (a FIFO named ``x.jsonl`` never
  hangs a reader) and only a regular file: a folder, a device (a link to ``/dev/zero``),
  a FIFO or a socket is refused (``UnreadableFile``) before a byte is read; with
  ``follow=False`` a symbolic link is refused too (a cache entry is never read from
  wherever a planted link points). ``kind`` names what a non-regular file is, for
  messages.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
import tempfile
import unicodedata
from pathlib import Path
from typing import BinaryIO

from tooltrial.errors import ResultsError, TooltrialError

RUN_ID_RULE = "1 to 128 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
_RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_PART_BYTES = 100
"""The longest name ``file_part`` keeps as it is (a file name may hold 255 bytes)."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def run_id_problem(run_id: object) -> str | None:
    """Why ``run_id`` cannot name a run's files, or None when it can."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        shown = repr(run_id) if len(repr(run_id)) <= 80 else repr(run_id)[:76] + "…'"
        return f"run id {shown} must be {RUN_ID_RULE} (it names the run's files)"
    return None


def checked_run_id(run_id: str) -> str:
    """``run_id`` if it can name files; a ``TooltrialError`` (exit 2) if not."""
    problem = run_id_problem(run_id)
    if problem is not None:
        raise TooltrialError(problem)
    return run_id


def file_part(name: str) -> str:
    """``name`` as part of a file name: unchanged when safe (no ``/``, ``\\``, NUL or
    control character, not starting with ``.``, at most 100 bytes), else the slug of its
    characters in ``[A-Za-z0-9._-]`` (at most 40) and ``-`` and a hash of the name."""
    if _safe_part(name):
        return name
    slug = _UNSAFE.sub("-", name).strip(".-")[:40].strip(".-") or "x"
    return f"{slug}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:10]}"


def _safe_part(name: str) -> bool:
    return (
        bool(name.strip())
        and not name.startswith(".")
        and len(name.encode("utf-8", "surrogatepass")) <= _PART_BYTES
        and not any(c in "/\\\0" or unicodedata.category(c) in ("Cc", "Cs") for c in name)
    )


# --- writing ----------------------------------------------------------------------------


class FileRefused(TooltrialError):
    """A place tooltrial would write holds something it did not make."""


class WriteFailed(TooltrialError):
    """A write failed (a full disk, an I/O error); the file is as it was before it."""

    def __init__(
        self, path: Path, error: OSError, resume: str | None = None, whole: bool = False
    ) -> None:
        self.path, self.error, self.resume = path, error, resume
        reason = error.strerror or str(error)
        name = errno.errorcode.get(error.errno or 0)
        self.reason = f"{reason} ({name})" if name else reason
        then = f"then resume with `{resume}`" if resume else "then run it again"
        kept = (
            "The file is as it was before"  # replace_whole: the old file, or none
            if whole
            else "The lines already written stay whole"
        )
        super().__init__(
            f"{path}: could not write ({self.reason}). {kept} and nothing half-written "
            f"was left: free some space (or fix the disk), {then}"
        )


def open_append(path: Path) -> int:
    """A descriptor appending to ``path`` (created if missing): never through a symbolic
    link, and only to a regular file with one link (``FileRefused`` otherwise)."""
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileRefused(
                f"{path}: a symbolic link that tooltrial did not make is in the way of a "
                "file it writes; move it out of the results folder"
            ) from None
        if exc.errno in (errno.EISDIR, errno.ENXIO, errno.EACCES, errno.EPERM):
            raise FileRefused(
                f"{path}: tooltrial cannot write this file ({exc.strerror}); move what is "
                "there out of the results folder"
            ) from None
        raise
    return _regular_or_close(fd, path)


def _regular_or_close(fd: int, path: Path) -> int:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
        os.close(fd)
        what = "a hard link to another file" if stat.S_ISREG(info.st_mode) else kind(info)
        raise FileRefused(
            f"{path}: {what}, not a file tooltrial made, is in the way of a file it writes; "
            "move it out of the results folder"
        )
    os.set_blocking(fd, True)
    return fd


def append_whole(fd: int, data: bytes, path: Path, resume: str | None = None) -> None:
    """Append ``data`` and ``fsync``; on any failure cut the file back to where it was
    and raise ``WriteFailed`` (the caller holds the file's lock)."""
    size = os.fstat(fd).st_size
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            if written <= 0:  # pragma: no cover - a write of nothing is no progress
                raise OSError(errno.EIO, "a write made no progress")
            view = view[written:]
        os.fsync(fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise WriteFailed(path, exc, resume) from None


def replace_whole(path: Path, data: bytes) -> None:
    """Make ``path`` hold ``data`` (a report, an exported table, a cache entry): written
    to a temporary file beside it, synced, then renamed over it; on a failure the
    temporary file is removed, ``path`` is as it was, and ``WriteFailed`` is raised.

    The rename replaces whatever is at ``path`` — a link is replaced, not followed — so
    nothing is ever written into a file tooltrial did not make. Callers that must not
    even replace such a thing check first (``run.places.check_file``)."""
    try:
        fd, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name[:40]}-", suffix=".tmp"
        )
    except OSError as exc:  # a full disk can refuse the new file itself
        raise WriteFailed(path, exc, whole=True) from None
    try:
        try:
            os.fchmod(fd, 0o644)  # as a file written in place would be, not mkstemp's 0o600
            try:
                append_whole(fd, data, path)
            except WriteFailed as failed:
                raise WriteFailed(path, failed.error, whole=True) from None
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except OSError as exc:  # the rename itself failed
        raise WriteFailed(path, exc, whole=True) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


# --- reading ----------------------------------------------------------------------------


class UnreadableFile(ResultsError):
    """A file that cannot be read as a results file at all (a folder, a device, …)."""

    def __init__(
        self, path: Path, what: str, fix: str = "move it out of the results folder"
    ) -> None:
        self.path, self.what, self.fix = path, what, fix
        super().__init__(f"{path}: {what}; {fix}")


def open_regular(path: Path, follow: bool = True) -> BinaryIO:
    """``path`` opened for reading, if it is a regular file (``UnreadableFile`` if not,
    or if it cannot be opened); a FIFO or device is never waited on or read. With
    ``follow=False`` a symbolic link at ``path`` is refused as well."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow:
            raise UnreadableFile(path, "a symbolic link, not a file tooltrial made") from None
        raise UnreadableFile(path, f"cannot be read ({exc.strerror or exc})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise UnreadableFile(path, f"{kind(info)}, not a file of results")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def kind(info: os.stat_result) -> str:
    """What a file that is not a regular file is ("a FIFO (named pipe)", …), for messages."""
    mode = info.st_mode
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return "not a regular file"
