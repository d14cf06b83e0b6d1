"""The app an agentic experiment's tools act on, and its state as plain data.

An ``App`` holds state and can copy itself; its ``snapshot`` is the state as rows keyed by
table and primary key, which is what success is judged on and what a result line's diff
is made of. ``SQLiteApp`` is the ready-made backend: an in-memory SQLite database (real
constraints, cheap copies through the backup API, row-level diffs). An app with another
backend implements ``snapshot``, ``clone`` and, to count changes, ``changes``.

State another program acts on (an MCP server): ``paths()`` moves the app's state into
files of its own (``SQLiteApp``: one database file, ``{db}``; ``FolderApp``: a folder,
``{dir}``) and names them; from then on ``snapshot`` reads those files, so the verdict
is read from what the program left there. Each copy (``clone``) has its own files, and
``close`` removes them. ``path_names`` says which names an app class provides, so a
server's settings are checked before any copy is made.

Determinism: ``now`` is the experiment's fixed timestamp, and an app builds its seeded
state in ``seed`` from nothing else, so every cell of a scenario starts from the same
rows with the same ids.
"""

from __future__ import annotations

import copy
import shutil
import sqlite3
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

Row = dict[str, Any]
State = dict[str, dict[str, Row]]
"""An app's state: table -> primary key (as text) -> row (column -> value)."""


class App(ABC):
    """State that tools act on. Subclasses are built with the experiment's fixed ``now``."""

    path_names: ClassVar[tuple[str, ...]] = ()
    """The names ``paths()`` gives (the placeholders a server's settings may use)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    @abstractmethod
    def snapshot(self) -> State:
        """The whole state, as plain rows (see ``State``)."""

    @abstractmethod
    def clone(self) -> App:
        """An independent copy: what one copy's tools change, the other never sees."""

    @abstractmethod
    def add_rows(self, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add rows to the seeded state (a scenario's ``setup``)."""

    def changes(self) -> int:
        """Rows changed since the app was built; tool results record the difference."""
        return 0

    def close(self) -> None:  # noqa: B027 (most apps hold nothing to release)
        """Release what the app holds."""

    def state_version(self) -> Any:
        """A value that changes whenever another program may have changed the state (so
        an unchanged one saves reading the state to count changes); None: unknown."""
        return None

    def paths(self) -> dict[str, str]:
        """This copy's state as files another program can act on, by name (``{"db":
        "/tmp/…/app.db"}``), moved there on the first call; ``snapshot`` reads them from
        then on, and ``close`` removes them. An app whose state is not in files says so."""
        raise NotImplementedError(
            f"{type(self).__name__} keeps its state in memory: subclass SQLiteApp or "
            "FolderApp (or implement paths()) for a server to act on it"
        )


class SQLiteApp(App):
    """An app whose state is an in-memory SQLite database.

    Subclasses set ``schema`` (SQL run once per app) and override ``seed`` to insert the
    seeded rows through ``self.db``. Columns declared ``BOOLEAN`` read as true/false in
    snapshots (SQLite stores 0/1), so success criteria can say ``done: true``.
    """

    schema: ClassVar[str] = ""
    path_names = ("db",)
    _folder: Path | None = None
    """Where this copy's database file is, once ``paths()`` moved it there."""

    def __init__(self, now: datetime) -> None:
        super().__init__(now)
        self.db = _connect()
        self.db.executescript(self.schema)
        self.seed()
        self.db.commit()
        self._baseline = self.db.total_changes

    @classmethod
    def open(cls, path: str | Path, now: datetime) -> SQLiteApp:
        """The app over an existing database file (no schema run, nothing seeded): what a
        server acting on a cell's copy (``{db}``) uses to reuse the app's own rules."""
        app = cls.__new__(cls)
        App.__init__(app, now)
        app.db = _connect(str(path))
        app._baseline = app.db.total_changes
        return app

    def seed(self) -> None:
        """Insert the seeded rows (override); the schema is already in place."""

    def add_rows(self, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
        columns = self.columns().get(table)
        if columns is None:
            raise KeyError(f"no table {table!r}; the app has: {', '.join(self.columns())}")
        for row in rows:
            unknown = sorted(set(row) - set(columns))
            if unknown:
                raise KeyError(f"table {table!r} has no column {', '.join(map(repr, unknown))}")
            names = ", ".join(f'"{c}"' for c in row)
            marks = ", ".join("?" for _ in row)
            self.db.execute(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', list(row.values()))
        self.db.commit()
        self._baseline = self.db.total_changes

    def columns(self) -> dict[str, list[str]]:
        """Every table's columns, in order."""
        return {table: [c[1] for c in info] for table, info in self._table_info().items()}

    def snapshot(self) -> State:
        state: State = {}
        for table, info in self._table_info().items():
            names = [c[1] for c in info]
            keys = [c[1] for c in sorted(info, key=lambda c: c[5]) if c[5]] or ["rowid"]
            booleans = {c[1] for c in info if "BOOL" in (c[2] or "").upper()}
            select = ", ".join([*(f'"{k}"' for k in keys), *(f'"{n}"' for n in names)])
            rows: dict[str, Row] = {}
            for values in self.db.execute(f'SELECT {select} FROM "{table}"'):
                key = "/".join(str(v) for v in values[: len(keys)])
                row = dict(zip(names, values[len(keys) :], strict=True))
                for name in booleans & row.keys():
                    if row[name] is not None:
                        row[name] = bool(row[name])
                rows[key] = row
            state[table] = dict(sorted(rows.items(), key=lambda kv: _natural(kv[0])))
        return state

    def clone(self) -> SQLiteApp:
        twin = copy.copy(self)  # the subclass's own attributes come along
        twin.db = _connect()
        twin._folder = None  # a copy starts in memory; its files are its own
        self.db.backup(twin.db)
        twin._baseline = twin.db.total_changes
        return twin

    def changes(self) -> int:
        return self.db.total_changes - self._baseline

    def close(self) -> None:
        self.db.close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def state_version(self) -> Any:
        """SQLite's ``data_version``: it changes when another connection (a server acting
        on the file) commits a change."""
        return (self.db.execute("PRAGMA data_version").fetchone()[0], self.db.total_changes)

    def paths(self) -> dict[str, str]:
        """``{"db": file}``: the database copied into a file of this copy's own (rollback
        journal, so every committed write is in that one file), read from there on."""
        if self._folder is None:
            folder = Path(tempfile.mkdtemp(prefix="tooltrial-app-"))
            on_disk = _connect(str(folder / "app.db"))
            try:
                self.db.backup(on_disk)
            except BaseException:
                on_disk.close()
                shutil.rmtree(folder, ignore_errors=True)
                raise
            self.db.close()
            self.db, self._folder = on_disk, folder
            self._baseline = self.db.total_changes
        return {"db": str(self._folder / "app.db")}

    def _table_info(self) -> dict[str, list[tuple[Any, ...]]]:
        tables = [
            name
            for (name,) in self.db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return {t: list(self.db.execute(f'PRAGMA table_info("{t}")')) for t in tables}


def _connect(path: str = ":memory:") -> sqlite3.Connection:
    # Tools run in worker threads (so a tool timeout can be enforced); one cell's calls
    # never overlap, so sharing the connection across threads is safe.
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA foreign_keys = ON")
    return db


def _natural(key: str) -> tuple[Any, ...]:
    """Sort "2" before "10": numeric parts as numbers."""
    return tuple((0, int(p), "") if p.lstrip("-").isdigit() else (1, 0, p) for p in key.split("/"))
