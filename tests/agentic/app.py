"""The tasks-and-calendar app of the agentic worked experiment: a SQLite backend.

Both variants' tools act on this one class; they differ only in how they expose it. The
class holds what a real backend owns: the schema with its constraints, the seeded rows,
and the rules every write goes through (``instant``, ``due``, ``attendees``): times are
stored as ``YYYY-MM-DDTHH:MM`` in the zone of ``now``, a task's due as that or as a bare
``YYYY-MM-DD``, attendees as a sorted ``"Alex, Priya"``. Stored values therefore do not
depend on how a model wrote them, which is what lets a reference replay be compared
row for row.

Determinism: every row comes from ``seed``, relative to nothing but the literal dates
below (the experiment's fixed timestamp is Wednesday 2025-03-12 09:00 UTC); ids are
assigned in insertion order, so they are the same in every cell.

The seed is built to make finding the right row take care: tasks "Dentist",
"Dentist bill" and "Call dentist" (the last two beyond the first page of ten), three
"Team sync" and three "1:1 with Priya" events a week apart, "Quarterly review" and
"Quarterly review prep", and a Work list longer than one page even without its done
tasks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tooltrial.apps import SQLiteApp

TIME = "%Y-%m-%dT%H:%M"
DAY = "%Y-%m-%d"

LISTS = ("Inbox", "Work", "Home", "Groceries", "Lisbon trip")

# (title, list, due, priority, done, notes); ids 1.. in this order
TASKS: tuple[tuple[str, str, str | None, str, bool, str], ...] = (
    ("Dentist", "Home", "2025-03-14", "normal", False, "Ask about the crown"),
    ("Buy milk", "Groceries", None, "normal", False, ""),
    ("Quarterly report draft", "Work", "2025-03-13", "normal", False, "Numbers from Ana"),
    ("Eggs", "Groceries", None, "normal", False, "A dozen"),
    ("Water the plants", "Home", "2025-03-13", "low", False, ""),
    ("Update slides for sprint review", "Work", "2025-03-14", "normal", False, ""),
    ("Bread", "Groceries", None, "normal", False, ""),
    ("Renew passport", "Inbox", "2025-03-20", "high", False, "Photos first"),
    ("Book flights", "Lisbon trip", "2025-03-15", "normal", False, ""),
    ("Coffee beans", "Groceries", None, "low", False, ""),
    ("Review Ana's PR", "Work", "2025-03-12", "high", False, ""),
    ("Fix the leaking tap", "Home", None, "normal", False, "Kitchen"),
    ("Dentist bill", "Home", "2025-03-19", "normal", False, "EUR 85"),
    ("Tomatoes", "Groceries", None, "normal", False, ""),
    ("Expense report", "Work", "2025-03-21", "normal", False, ""),
    ("Old project notes", "Work", None, "low", False, "From the 2023 project"),
    ("Apples", "Groceries", None, "normal", True, ""),
    ("Call dentist", "Home", "2025-03-13", "normal", False, "To confirm Friday"),
    ("Prepare budget", "Work", "2025-03-17", "normal", False, ""),
    ("Pack suitcase", "Lisbon trip", "2025-03-21", "normal", False, ""),
    ("Cheese", "Groceries", None, "normal", False, ""),
    ("Submit timesheet", "Work", "2025-03-14T17:00", "normal", False, ""),
    ("Call mum", "Inbox", "2025-03-16", "normal", False, ""),
    ("Rice", "Groceries", None, "normal", True, ""),
    ("Exchange euros", "Lisbon trip", "2025-03-20", "low", False, ""),
    ("Onboarding doc", "Work", "2025-03-07", "normal", True, ""),
    ("Vacuum the car", "Home", "2025-03-09", "low", True, ""),
    ("Team offsite ideas", "Work", "2025-03-25", "low", False, ""),
    ("Book hotel", "Lisbon trip", "2025-03-05", "normal", True, "Alfama, 3 nights"),
    ("Pay electricity bill", "Home", "2025-03-18", "normal", False, ""),
    ("Archive old emails", "Work", None, "low", True, ""),
    ("Send invoice", "Work", "2025-03-07", "high", True, ""),
    ("Pick up dry cleaning", "Inbox", "2025-03-12T17:00", "normal", False, ""),
    ("Read 'Deep Work'", "Inbox", None, "low", False, ""),
    ("Plan Q2 roadmap", "Work", "2025-03-28", "normal", False, ""),
    ("Reply to Ben about the offsite", "Work", "2025-03-26", "normal", False, ""),
    ("Book meeting room for offsite", "Work", "2025-03-13", "normal", False, ""),
)

# (title, start, end, location, attendees, notes); ids 1.. in this order
EVENTS: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("Team sync", "2025-03-11T10:00", "2025-03-11T10:30", "Zoom", "Ana, Ben, Priya", ""),
    ("1:1 with Priya", "2025-03-10T09:30", "2025-03-10T10:00", "Room 2A", "Priya", ""),
    ("Yoga class", "2025-03-12T18:00", "2025-03-12T19:00", "Studio Flow", "", ""),
    ("Team sync", "2025-03-13T10:00", "2025-03-13T10:30", "Zoom", "Ana, Ben, Priya", ""),
    ("Lunch & learn: security", "2025-03-13T13:00", "2025-03-13T14:00", "Auditorium", "", ""),
    ("Design crit", "2025-03-13T15:30", "2025-03-13T16:30", "Room 3C", "Ana, Ben", ""),
    (
        "Dentist appointment",
        "2025-03-14T10:00",
        "2025-03-14T10:45",
        "Smile Dental",
        "",
        "Dr. Moreau",
    ),
    ("Lunch with Sam", "2025-03-14T12:30", "2025-03-14T13:30", "Café Lento", "Sam", ""),
    ("Sprint review", "2025-03-14T15:00", "2025-03-14T16:00", "Room 3C", "Ana, Ben, Priya", ""),
    (
        "Quarterly review",
        "2025-03-20T14:00",
        "2025-03-20T15:30",
        "Atlas room",
        "Priya",
        "Q1 numbers",
    ),
    (
        "Mia's birthday party",
        "2025-03-15T16:00",
        "2025-03-15T19:00",
        "Mia's place",
        "",
        "Bring a gift",
    ),
    ("1:1 with Priya", "2025-03-17T09:30", "2025-03-17T10:00", "Room 2A", "Priya", ""),
    ("Team sync", "2025-03-18T10:00", "2025-03-18T10:30", "Zoom", "Ana, Ben, Priya", ""),
    ("Gym", "2025-03-12T07:00", "2025-03-12T08:00", "Fit Club", "", ""),
    ("Flight to Lisbon", "2025-03-22T08:15", "2025-03-22T10:30", "LHR Terminal 2", "", "TP 1357"),
    ("Parent-teacher meeting", "2025-03-19T17:00", "2025-03-19T17:30", "School", "", ""),
    ("Yoga class", "2025-03-19T18:00", "2025-03-19T19:00", "Studio Flow", "", ""),
    ("Car service", "2025-03-24T08:30", "2025-03-24T09:30", "City Garage", "", ""),
    ("Sprint planning", "2025-03-17T11:00", "2025-03-17T12:00", "Room 3C", "Ana, Ben, Priya", ""),
    ("Coffee with Dana", "2025-03-10T16:00", "2025-03-10T16:30", "Café Lento", "Dana", ""),
    ("Book club", "2025-03-26T19:00", "2025-03-26T21:00", "Library", "", "'Klara and the Sun'"),
    ("Board game night", "2025-03-21T19:00", "2025-03-21T23:00", "Ben's place", "Ben", ""),
    ("1:1 with Priya", "2025-03-24T09:30", "2025-03-24T10:00", "Room 2A", "Priya", ""),
    ("Quarterly review prep", "2025-03-19T11:00", "2025-03-19T12:00", "Room 2A", "Ana", ""),
)


class TasksCalendar(SQLiteApp):
    """Task lists and a calendar; see the module docstring."""

    schema = """
    CREATE TABLE lists (
        name TEXT PRIMARY KEY CHECK (trim(name) <> '')
    );
    CREATE TABLE tasks (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL CHECK (trim(title) <> ''),
        notes TEXT NOT NULL DEFAULT '',
        due TEXT CHECK (
            due IS NULL
            OR due GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'
            OR due GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]'
        ),
        priority TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high')),
        done BOOLEAN NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
        list TEXT NOT NULL DEFAULT 'Inbox' REFERENCES lists (name) ON UPDATE CASCADE
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL CHECK (trim(title) <> ''),
        start TEXT NOT NULL
            CHECK (start GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]'),
        "end" TEXT NOT NULL
            CHECK ("end" GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]'),
        location TEXT NOT NULL DEFAULT '',
        attendees TEXT NOT NULL DEFAULT '',
        notes TEXT NOT NULL DEFAULT '',
        CONSTRAINT end_after_start CHECK ("end" > start)
    );
    """

    def seed(self) -> None:
        self.db.executemany("INSERT INTO lists (name) VALUES (?)", [(n,) for n in LISTS])
        self.db.executemany(
            "INSERT INTO tasks (title, list, due, priority, done, notes) VALUES (?, ?, ?, ?, ?, ?)",
            TASKS,
        )
        self.db.executemany(
            'INSERT INTO events (title, start, "end", location, attendees, notes) '
            "VALUES (?, ?, ?, ?, ?, ?)",
            EVENTS,
        )

    # --- the backend's rules, shared by both variants' tools -------------------------

    def instant(self, value: str, field: str) -> str:
        """An ISO 8601 date-time as stored (``YYYY-MM-DDTHH:MM`` in the app's zone); a
        value with an offset is converted, one without is read in the app's zone."""
        try:
            moment = datetime.fromisoformat(value.strip())
        except (AttributeError, ValueError):
            raise ValueError(
                f"{field}: {value!r} is not an ISO 8601 date-time such as 2025-03-14T10:00"
            ) from None
        if moment.tzinfo is not None:
            moment = moment.astimezone(self.now.tzinfo).replace(tzinfo=None)
        return moment.strftime(TIME)

    def day(self, value: str, field: str) -> str:
        """An ISO 8601 day (``YYYY-MM-DD``); a date-time gives its day in the app's zone."""
        return self.instant(value, field)[:10]

    def due(self, value: str | None) -> str | None:
        """A task's due as stored: a bare day stays a day, a date-time is an instant."""
        if value is None or not value.strip():
            return None
        text = value.strip()
        return self.day(text, "due") if len(text) == 10 else self.instant(text, "due")

    @staticmethod
    def attendees(names: list[str]) -> str:
        """Attendees as stored: unique names, sorted, comma-separated."""
        unique = {" ".join(n.split()): None for n in names if n.strip()}
        return ", ".join(sorted(unique, key=str.casefold))

    def list_name(self, name: str) -> str:
        """The list's stored name (case-insensitive); ``KeyError`` naming the lists."""
        for (stored,) in self.db.execute("SELECT name FROM lists ORDER BY rowid"):
            if stored.casefold() == name.strip().casefold():
                return str(stored)
        known = ", ".join(n for (n,) in self.db.execute("SELECT name FROM lists ORDER BY rowid"))
        raise KeyError(f"no list called {name!r}; the lists are: {known}")

    def rows(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[dict[str, Any]]:
        """Query results as dicts (``done`` as a boolean)."""
        cursor = self.db.execute(sql, params)
        names = [d[0] for d in cursor.description]
        found = [dict(zip(names, values, strict=True)) for values in cursor]
        for row in found:
            if "done" in row:
                row["done"] = bool(row["done"])
        return found

    def task(self, task_id: int) -> dict[str, Any]:
        found = self.rows("SELECT * FROM tasks WHERE id = ?", (task_id,))
        if not found:
            raise KeyError(f"no task with id {task_id}")
        return found[0]

    def event(self, event_id: int) -> dict[str, Any]:
        found = self.rows("SELECT * FROM events WHERE id = ?", (event_id,))
        if not found:
            raise KeyError(f"no event with id {event_id}")
        return found[0]

    def overlapping(self, start: str, end: str, ignore: int | None = None) -> list[dict[str, Any]]:
        """Events that overlap [start, end): touching ends is not a conflict."""
        return self.rows(
            'SELECT * FROM events WHERE start < ? AND "end" > ? AND id IS NOT ? ORDER BY start, id',
            (end, start, ignore),
        )

    def hour_later(self, start: str, minutes: int = 60) -> str:
        return (datetime.strptime(start, TIME) + timedelta(minutes=minutes)).strftime(TIME)
