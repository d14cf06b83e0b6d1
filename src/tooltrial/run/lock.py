"""One writer per run: a lock held for the run's lifetime, and SIGTERM as a clean stop.

**The lock.** Two processes writing one run (two ``--resume`` of it, or ``--run-id`` of a
run in progress) would each call the cells the other is calling and record them twice.
So a run is written under ``flock`` on ``<results>/.<run_id>.lock``, taken without
waiting: a second writer is refused (``RunInProgress``, exit 2) with the holder's pid,
before it reads the run or calls a model. An advisory lock dies with its process, so even
SIGKILL leaves no stale lock; a clean exit also removes the file. The holder's pid and
front end are written into the file for the message. The lock file is opened never
through a link and only as a regular file of one link, holding a holder line or nothing
(``files.open_append``): whatever else is under its name is refused, never truncated.

Removing a lock file is safe because a taker checks, once it holds the lock, that the
file it locked is still the one under that name (else someone removed it meanwhile and it
starts again), so two processes never hold "the" lock on two different files.

pytest-xdist workers of one session are one run: the controller (or a session without
xdist) holds the lock; workers never take it.

**SIGTERM.** CI systems, ``timeout`` and container runtimes stop a process with SIGTERM.
``sigterm_raises`` makes it raise ``Terminated`` (as SIGINT raises ``KeyboardInterrupt``),
and ``run_stoppable`` runs a coroutine so that SIGTERM cancels it the way asyncio cancels
it on Ctrl-C: the calls in flight are cancelled, then ``Terminated`` is raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import signal
import threading
import time
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TypeVar

from tooltrial.errors import ResultsError, TooltrialError
from tooltrial.files import FileRefused, checked_run_id, open_append, open_regular

T = TypeVar("T")

SIGTERM_EXIT = 128 + signal.SIGTERM  # 143, as a shell reports a process SIGTERM ended


_HOLDER_BYTES = 4096
"""A holder line is far shorter; a longer file under the lock's name is not a lock."""


class RunInProgress(TooltrialError):
    """Another process is writing this run now."""


class Terminated(BaseException):  # a stop request, like KeyboardInterrupt: not an error
    """The process got SIGTERM: stop cleanly, as on Ctrl-C."""


def lock_path(directory: str | Path, run_id: str) -> Path:
    """``<directory>/.<run_id>.lock``; a run id that is not a plain name is refused."""
    return Path(directory) / f".{checked_run_id(run_id)}.lock"


class RunLock:
    """``flock`` on ``<directory>/.<run_id>.lock`` for as long as the run writes.

    ``acquire`` raises ``RunInProgress`` at once if another process holds it. Use it as a
    context manager, or ``acquire`` / ``release``.
    """

    def __init__(self, directory: str | Path, run_id: str, front_end: str = "tooltrial run"):
        self.directory, self.run_id, self.front_end = Path(directory), run_id, front_end
        self.path = lock_path(directory, run_id)
        self._fd: int | None = None
        self._made_directory = False

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self._made_directory = not self.directory.exists()
        self.directory.mkdir(parents=True, exist_ok=True)
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                    raise
                raise self._in_progress() from None
            if self._still_named(fd):
                break
            os.close(fd)  # it was removed (its holder ended) after we opened it: again
        try:
            self._check_ours(fd)
        except BaseException:
            os.close(fd)
            self._remove_made_directory()
            raise
        holder = {
            "pid": os.getpid(),
            "front_end": self.front_end,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        with contextlib.suppress(OSError):  # only for another process's message: a full
            os.ftruncate(fd, 0)  # disk must not stop the run here
            os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        self._fd = fd

    def _open(self) -> int:
        """The lock file, never through a link, and only a regular file of one link."""
        try:
            return open_append(self.path)
        except FileRefused:
            self._remove_made_directory()
            raise

    def _check_ours(self, fd: int) -> None:
        """A lock file left by a killed holder holds its holder line (or nothing yet);
        anything else under the name is not tooltrial's, and is never truncated."""
        text = os.pread(fd, _HOLDER_BYTES + 1, 0)
        if not text:
            return
        with contextlib.suppress(ValueError):
            found = json.loads(text)
            if isinstance(found, dict) and "pid" in found and len(text) <= _HOLDER_BYTES:
                return
        raise FileRefused(
            f"{self.path}: this file is not a lock tooltrial made, and tooltrial takes "
            "this name to lock the run; move it out of the results folder"
        )

    def _still_named(self, fd: int) -> bool:
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)

    def _in_progress(self) -> RunInProgress:
        holder = self.holder()
        who = "another process"
        if holder:
            who = f"another process (pid {holder.get('pid')}, {holder.get('front_end')}"
            who += f", since {holder['since']})" if holder.get("since") else ")"
        return RunInProgress(
            f"run {self.run_id} is being written by {who} in {self.directory}/: two "
            "processes writing one run would call its cells twice. Wait for it to end (or "
            f"stop it), then resume with `tooltrial run --resume {self.run_id} "
            f"--results {self.directory}`"
        )

    def holder(self) -> dict[str, Any] | None:
        """What the holder wrote into the file (it may not have yet: wait a moment)."""
        for _ in range(50):
            try:
                with open_regular(self.path) as handle:
                    text = handle.read(_HOLDER_BYTES).decode("utf-8", "replace")
            except ResultsError:
                return None
            if text.endswith("\n"):
                with contextlib.suppress(ValueError):
                    found = json.loads(text)
                    return found if isinstance(found, dict) else None
            time.sleep(0.01)
        return None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # while still held: see the module docstring
        os.close(fd)
        self._remove_made_directory()

    def _remove_made_directory(self) -> None:
        if self._made_directory:  # a run refused before it wrote leaves no empty folder
            with contextlib.suppress(OSError):
                self.directory.rmdir()  # only if empty

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While inside: SIGTERM raises ``Terminated`` in the main thread (elsewhere: no-op)."""
    if not _in_main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_stoppable(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, but SIGTERM cancels ``main`` as Ctrl-C does (its tasks and
    calls in flight are cancelled and awaited), then raises ``Terminated``."""
    return asyncio.run(_stoppable(main))


async def _stoppable(main: Coroutine[Any, Any, T]) -> T:
    if not _in_main_thread():
        return await main
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    assert task is not None
    got: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if got:  # a second SIGTERM: stop at once (as a second Ctrl-C does)
            raise Terminated
        got.append(signum)
        task.cancel()
        loop.call_soon_threadsafe(lambda: None)  # wake the loop if it is waiting

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        result = await main
    except asyncio.CancelledError:
        if got and task.uncancel() == 0:
            raise Terminated from None
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    if got:  # it came as the run ended (its cancel not yet delivered): still a stop
        raise Terminated
    return result
