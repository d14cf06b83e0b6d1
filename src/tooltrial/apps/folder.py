"""An app whose state is a folder of files: a git repository, a notes folder, a project a
file-system or git MCP server acts on.

Each copy (``clone``) is a folder of its own, made by copying the files; ``paths()``
names it (``{"dir": …}``) for a server's settings, and ``close`` removes it. The state is
one table, ``files``: a row per file (by its path relative to the folder, ``/``-separated)
with the file's ``text`` when it is UTF-8, else its ``sha256`` and ``size``, so a state
check reads ``{table: files, where: {path: notes/todo.md}, values: {text: …}}``. Names in
``ignore`` (at any depth; ``.git`` by default) are left out. An app whose server keeps
its state in another form (a JSON store, a repository's commits) subclasses this and
overrides ``snapshot`` to read it as rows.
"""

from __future__ import annotations

import copy
import hashlib
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from tooltrial.apps.base import App, Row, State


class FolderApp(App):
    """State as a folder of files (see the module docstring); ``seed`` writes the
    seeded files under ``self.root``."""

    path_names = ("dir",)
    ignore: ClassVar[tuple[str, ...]] = (".git",)

    def __init__(self, now: datetime) -> None:
        super().__init__(now)
        self.root = Path(tempfile.mkdtemp(prefix="tooltrial-folder-"))
        self.seed()

    def seed(self) -> None:
        """Write the seeded files under ``self.root`` (override)."""

    def write(self, path: str, text: str) -> None:
        """Write one file (its folders made as needed)."""
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def add_rows(self, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
        if table != "files":
            raise KeyError(f"no table {table!r}; the app has: files")
        for row in rows:
            unknown = sorted(set(row) - {"path", "text"})
            if unknown or "path" not in row:
                raise KeyError("a row of 'files' takes 'path' and 'text'")
            self.write(str(row["path"]), str(row.get("text", "")))

    def snapshot(self) -> State:
        rows: dict[str, Row] = {}
        for file in sorted(self._files()):
            key = file.relative_to(self.root).as_posix()
            data = file.read_bytes()
            try:
                rows[key] = {"path": key, "text": data.decode()}
            except UnicodeDecodeError:
                digest = hashlib.sha256(data).hexdigest()
                rows[key] = {"path": key, "sha256": digest, "size": len(data)}
        return {"files": rows}

    def _files(self) -> Iterable[Path]:
        for path in self.root.rglob("*"):
            parts = path.relative_to(self.root).parts
            if path.is_file() and not any(p in self.ignore for p in parts):
                yield path

    def clone(self) -> FolderApp:
        twin = copy.copy(self)  # the subclass's own attributes come along
        twin.root = Path(tempfile.mkdtemp(prefix="tooltrial-folder-"))
        shutil.copytree(self.root, twin.root, symlinks=True, dirs_exist_ok=True)
        return twin

    def paths(self) -> dict[str, str]:
        return {"dir": str(self.root)}

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
