"""Every place tooltrial will write, checked before the first model call.

``tooltrial run`` writes into ``--results`` (and ``--cache``), ``tooltrial report`` to
``--output`` and ``--export``. A place that is a file where a folder is needed (or the
reverse), is not writable, or sits under a folder that does not exist and cannot be
created, is refused with a ``UsageError`` naming the flag, before any call is made and
before anything is created: so a refused command changes nothing on disk.

A file place (``--output``, ``--export``) is written whole by a rename
(``files.replace_whole``), which replaces what is at the name and never writes through it;
still, only a regular file is replaced: a symbolic link, a FIFO, a device or a socket at
the name is refused here, naming the flag, as something tooltrial did not make.

``os.access`` is used rather than a trial write, so checking touches nothing; it honours
read-only mounts even for root (who may otherwise write anywhere).
"""

from __future__ import annotations

import os
from pathlib import Path

from tooltrial.errors import UsageError
from tooltrial.files import kind

_WRITE = os.W_OK | os.X_OK


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _exists(path: Path) -> bool:
    try:
        return path.exists() or path.is_symlink()
    except OSError:
        return False


def check_folder(path: Path, flag: str) -> None:
    """A folder that will be created when missing, then written into."""
    if _exists(path):
        if not _is_dir(path):
            raise UsageError(
                f"{flag} {path}: is a file, not a folder; name a folder (created if missing)"
            )
        if not os.access(path, _WRITE):
            raise UsageError(
                f"{flag} {path}: this folder is not writable; name another one, "
                "or change its permissions"
            )
        return
    for ancestor in Path(os.path.abspath(path)).parents:
        if not _exists(ancestor):
            continue
        if not _is_dir(ancestor):
            raise UsageError(
                f"{flag} {path}: cannot create it, {ancestor} is a file; name another folder"
            )
        if not os.access(ancestor, _WRITE):
            raise UsageError(
                f"{flag} {path}: cannot create it, {ancestor} is not writable; name another folder"
            )
        return


def check_file(path: Path, flag: str) -> None:
    """A file that will be created or replaced; its folder must already exist."""
    if path.is_symlink():
        raise UsageError(
            f"{flag} {path}: is a symbolic link; tooltrial writes only a file of its own "
            "there: remove the link or name another file"
        )
    if _is_dir(path):
        raise UsageError(f"{flag} {path}: is a folder; name a file")
    if _exists(path) and not path.is_file():
        raise UsageError(f"{flag} {path}: is {kind(path.stat())}, not a file; name a file")
    if _exists(path) and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path}: this file is not writable; name another one")
    folder = Path(os.path.abspath(path)).parent
    if not _exists(folder):
        raise UsageError(f"{flag} {path}: the folder {folder} does not exist; create it first")
    if not _is_dir(folder):
        raise UsageError(f"{flag} {path}: {folder} is a file, not a folder; name another place")
    if not os.access(folder, _WRITE):
        raise UsageError(f"{flag} {path}: the folder {folder} is not writable; name another one")


def check_run_places(results: Path, cache: Path | None) -> None:
    """``tooltrial run``: the results folder and the cache folder."""
    check_folder(results, "--results")
    if cache is not None:
        check_folder(cache, "--cache")


def check_report_places(output: Path | None, export: Path | None) -> None:
    """``tooltrial report``: the report file and the exported table."""
    if output is not None:
        check_file(output, "--output")
    if export is not None:
        check_file(export, "--export")
