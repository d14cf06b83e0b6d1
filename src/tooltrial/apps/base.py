"""The app an agentic experiment's tools act on, and its state as plain data.

An ``App`` holds state and can copy itself; its ``snapshot`` is the state as rows keyed by
table and primary key, which is what success is judged on and what a result line's diff
is made of. ``SQLiteApp`` is the ready-made backend: an in-memory SQLite database (real
constraints, cheap copies through the backup API, row-level diffs). An app with another
backend implements ``snapshot``, ``clone`` and, to count changes, ``changes``.

Determinism: ``now`` is the experiment's fixed timestamp, and an app builds its seeded
state in ``seed`` from nothing else, so every cell of a scenario starts from the same
rows with the same ids.
"""

from __future__ import annotations

import copy
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, ClassVar

Row = dict[str, Any]
State = dict[str, dict[str, Row]]
"""An app's state: table -> primary key (as text) -> row (column -> value)."""


class App(ABC):
    """State that tools act on. Subclasses are built with the experiment's fixed ``now``."""

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


class SQLiteApp(App):
    """An app whose state is an in-memory SQLite database.

    Subclasses set ``schema`` (SQL run once per app) and override ``seed`` to insert the
    seeded rows through ``self.db``. Columns declared ``BOOLEAN`` read as true/false in
    snapshots (SQLite stores 0/1), so success criteria can say ``done: true``.
    """

    schema: ClassVar[str] = ""

    def __init__(self, now: datetime) -> None:
        super().__init__(now)
        self.db = _connect()
        self.db.executescript(self.schema)
        self.seed()
        self.db.commit()
        self._baseline = self.db.total_changes

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
        self.db.backup(twin.db)
        twin._baseline = twin.db.total_changes
        return twin

    def changes(self) -> int:
        return self.db.total_changes - self._baseline

    def close(self) -> None:
        self.db.close()

    def _table_info(self) -> dict[str, list[tuple[Any, ...]]]:
        tables = [
            name
            for (name,) in self.db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return {t: list(self.db.execute(f'PRAGMA table_info("{t}")')) for t in tables}


def _connect() -> sqlite3.Connection:
    # Tools run in worker threads (so a tool timeout can be enforced); one cell's calls
    # never overlap, so sharing the connection across threads is safe.
    db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA foreign_keys = ON")
    return db


def _natural(key: str) -> tuple[Any, ...]:
    """Sort "2" before "10": numeric parts as numbers."""
    return tuple((0, int(p), "") if p.lstrip("-").isdigit() else (1, 0, p) for p in key.split("/"))
