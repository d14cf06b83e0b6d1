"""Starts an MCP server so that it cannot outlive tooltrial.

    python -I -S launcher.py PARENT_PID PIDFILE -- COMMAND [ARG ...]

tooltrial starts every server process through this script (stdlib only, run without
``site`` so it starts in milliseconds), as the leader of a process group of its own. It

- writes its pid (its process group's id) to PIDFILE, so tooltrial can end the group at
  once (a server that hangs);
- asks the kernel for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``; if the parent
  is already gone, it exits at once), so ``kill -9`` of tooltrial still ends the server;
- starts the server in its group, with SIGKILL as the server's parent-death signal,
  so a server whose launcher is killed outright dies with it;
- hands the server its stdin and stdout (the stdio transport is the server's own pipes:
  nothing is copied through here) and lets go of its own copies, so the pipes close
  exactly when the server's do;
- on SIGTERM, SIGINT or SIGHUP (tooltrial closing the server, or dying), and when the
  server exits, ends every process left in the group: SIGTERM, then SIGKILL after
  ``GRACE_S``. A program that leaves the group on purpose (a daemon) escapes, as from
  any process manager.

Its exit status is the server's (128 + N for a signal); a command that cannot be
started is one line on stderr and status 127.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
GRACE_S = 2.0


def _die_with(parent_signal: int) -> None:
    """Ask for ``parent_signal`` when this process's parent dies (Linux only; elsewhere
    the server still ends when its stdin closes, as most servers do)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, parent_signal, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def _others_in_group() -> list[int]:
    if not os.path.isdir("/proc"):  # not Linux: SIGTERM to the group is all there is
        with contextlib.suppress(OSError):
            os.killpg(os.getpgrp(), signal.SIGTERM)  # this process ignores it by now
        return []
    group, me = os.getpgrp(), os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me:
            try:
                if os.getpgid(int(entry)) == group:
                    found.append(int(entry))
            except OSError:
                continue  # gone meanwhile
    return found


def _end_group() -> None:
    """SIGTERM to every other process in the group, SIGKILL to what is left after the
    grace period."""
    for pid in _others_in_group():
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline:
        _reap()  # a dead child is a zombie member of the group until reaped
        if not _others_in_group():
            return
        time.sleep(0.01)
    for pid in _others_in_group():
        _signal(pid, signal.SIGKILL)
    _reap()


def _reap() -> None:
    """Collect every child that has ended (directly: the handler may have interrupted
    ``Popen.wait``, which holds the lock ``Popen.poll`` needs)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def _signal(pid: int, number: int) -> None:
    with contextlib.suppress(OSError):  # gone meanwhile
        os.kill(pid, number)


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[3] != "--":
        print("usage: launcher.py PARENT_PID PIDFILE -- COMMAND [ARG ...]", file=sys.stderr)
        return 2
    parent, pidfile, command = int(argv[1]), argv[2], argv[4:]
    with open(pidfile, "w") as written:
        written.write(str(os.getpid()))
    _die_with(signal.SIGTERM)
    if os.getppid() != parent:
        return 1  # the parent died before the request took effect

    def stop(number: int, _frame: object) -> None:
        for each in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(each, signal.SIG_IGN)
        _end_group()
        os._exit(128 + number)

    for each in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(each, stop)
    try:
        server = subprocess.Popen(command, preexec_fn=lambda: _die_with(signal.SIGKILL))
    except OSError as exc:
        print(f"tooltrial: cannot start {command[0]!r}: {exc.strerror or exc}", file=sys.stderr)
        return 127
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)  # the server holds the pipes; this process lets go of them
    os.dup2(devnull, 1)
    code = server.wait()
    for each in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(each, signal.SIG_IGN)
    _end_group()  # what the server left behind in its group
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
