"""App-shaped tools: what a person does in the app, by the names they see.

Tasks and events are named by title, never by id. ``find`` lists every row whose title
contains all the words it is given. In a change, a title picks the row whose title is
exactly that (case-insensitive), else the rows whose title contains all its words; an
event may be narrowed by the day it is on (``date``), a task by its ``list``. When
several rows still match, nothing is changed and the answer lists them and says how to
choose (a ``ValueError``, so the model sees an error result); when none matches, a
``KeyError`` says so. Reads answer with the fields a person sees; changes answer with
one sentence saying what was done.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

# --- reading ---------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.casefold().split()


def _containing(rows: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    return [r for r in rows if all(w in r["title"].casefold() for w in _words(text))]


def _matching(rows: list[dict[str, Any]], title: str) -> list[dict[str, Any]]:
    """The rows a title names: the exact title if some row has it, else every row whose
    title contains its words."""
    wanted = " ".join(_words(title))
    exact = [r for r in rows if " ".join(_words(r["title"])) == wanted]
    return exact or _containing(rows, title)


def _task_view(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("title", "list", "due", "priority", "done")}


def _when(row: dict[str, Any]) -> str:
    day = datetime.strptime(row["start"][:10], "%Y-%m-%d")
    return f"{day:%a} {row['start'][:10]} {row['start'][11:]}–{row['end'][11:]}"


def _event_view(row: dict[str, Any]) -> dict[str, Any]:
    day = datetime.strptime(row["start"][:10], "%Y-%m-%d")
    view = {
        "title": row["title"],
        "date": row["start"][:10],
        "weekday": f"{day:%A}",
        "start": row["start"][11:],
        "end": row["end"][11:],
        "location": row["location"],
    }
    if row["end"][:10] != row["start"][:10]:
        view["end"] = row["end"]
    return view


def find(app, text):
    tasks = _containing(app.rows("SELECT * FROM tasks ORDER BY id"), text)
    events = _containing(app.rows("SELECT * FROM events ORDER BY start, id"), text)
    return {"tasks": [_task_view(t) for t in tasks], "events": [_event_view(e) for e in events]}


def agenda(app, date):
    day = app.day(date, "date")
    events = app.rows("SELECT * FROM events WHERE substr(start, 1, 10) = ? ORDER BY start", (day,))
    tasks = app.rows("SELECT * FROM tasks WHERE substr(due, 1, 10) = ? ORDER BY id", (day,))
    return {
        "date": day,
        "weekday": f"{datetime.strptime(day, '%Y-%m-%d'):%A}",
        "events": [_event_view(e) for e in events],
        "tasks_due": [_task_view(t) for t in tasks],
    }


def show_list(app, list, include_done=False):
    name = app.list_name(list)
    rows = app.rows("SELECT * FROM tasks WHERE list = ? ORDER BY id", (name,))
    shown = [_task_view(t) for t in rows if include_done or not t["done"]]
    return {"list": name, "tasks": shown}


def check_free(app, start, end=None):
    begin = app.instant(start, "start")
    finish = app.instant(end, "end") if end else app.hour_later(begin)
    if finish <= begin:
        raise ValueError(f"end {finish} must be after start {begin}")
    conflicts = app.overlapping(begin, finish)
    return {"free": not conflicts, "conflicts": [_event_view(e) for e in conflicts]}


# --- choosing the row a title names ----------------------------------------------------


def _task(app, title: str, list: str | None = None) -> dict[str, Any]:
    rows = app.rows("SELECT * FROM tasks ORDER BY id")
    if list:
        name = app.list_name(list)
        rows = [r for r in rows if r["list"] == name]
    found = _matching(rows, title)
    if not found:
        raise KeyError(f"no task called {title!r}; use find to look it up")
    if len(found) > 1:
        named = "; ".join(f"'{r['title']}' ({r['list']}, due {r['due']})" for r in found)
        raise ValueError(
            f"{len(found)} tasks match {title!r}: {named}. Nothing was changed; "
            "give the exact title, or the list"
        )
    return found[0]


def _event(app, title: str, date: str | None = None) -> dict[str, Any]:
    rows = app.rows("SELECT * FROM events ORDER BY start, id")
    if date:
        day = app.day(date, "date")
        rows = [r for r in rows if r["start"][:10] == day]
    found = _matching(rows, title)
    if not found:
        where = f" on {date}" if date else ""
        raise KeyError(f"no event called {title!r}{where}; use find or agenda to look it up")
    if len(found) > 1:
        named = "; ".join(f"'{r['title']}' {_when(r)}" for r in found)
        raise ValueError(
            f"{len(found)} events match {title!r}: {named}. Nothing was changed; "
            "give the date (YYYY-MM-DD) of the one you mean"
        )
    return found[0]


def _update(app, table: str, row_id: int, values: dict[str, Any]) -> None:
    columns = ", ".join(f'"{column}" = ?' for column in values)
    app.db.execute(f"UPDATE {table} SET {columns} WHERE id = ?", [*values.values(), row_id])


# --- tasks -----------------------------------------------------------------------------


def add_task(app, title, due=None, list="Inbox", priority="normal", notes=""):
    name = app.list_name(list)
    stored = app.due(due)
    app.db.execute(
        "INSERT INTO tasks (title, due, list, priority, notes) VALUES (?, ?, ?, ?, ?)",
        (title.strip(), stored, name, priority, notes),
    )
    when = f", due {stored}" if stored else ""
    return f"Added task '{title.strip()}' to {name}{when}."


def complete_task(app, title, list=None):
    task = _task(app, title, list)
    if task["done"]:
        return f"'{task['title']}' was already done."
    app.db.execute("UPDATE tasks SET done = 1 WHERE id = ?", (task["id"],))
    return f"Marked '{task['title']}' done."


def complete_list(app, list):
    name = app.list_name(list)
    titles = [
        r["title"] for r in app.rows("SELECT title FROM tasks WHERE list = ? AND done = 0", (name,))
    ]
    app.db.execute("UPDATE tasks SET done = 1 WHERE list = ? AND done = 0", (name,))
    if not titles:
        return f"Everything on {name} was already done."
    return f"Marked {len(titles)} tasks on {name} done: {', '.join(titles)}."


def reschedule_task(app, title, due, list=None):
    task = _task(app, title, list)
    stored = app.due(due)
    app.db.execute("UPDATE tasks SET due = ? WHERE id = ?", (stored, task["id"]))
    return f"'{task['title']}' is now due {stored}."


def edit_task(app, title, list=None, new_title=None, notes=None, priority=None):
    task = _task(app, title, list)
    changes = {"title": new_title.strip() if new_title else None, "notes": notes}
    changes["priority"] = priority
    changed = {k: v for k, v in changes.items() if v is not None}
    if not changed:
        raise ValueError("nothing to change: give new_title, notes or priority")
    _update(app, "tasks", task["id"], changed)
    said = ", ".join(f"{k} {v!r}" for k, v in changed.items())
    return f"Updated '{task['title']}': {said}."


def delete_task(app, title, list=None):
    task = _task(app, title, list)
    app.db.execute("DELETE FROM tasks WHERE id = ?", (task["id"],))
    return f"Deleted task '{task['title']}' ({task['list']})."


# --- events ----------------------------------------------------------------------------


def _overlap_note(app, start: str, end: str, ignore: int | None = None) -> str:
    clashes = app.overlapping(start, end, ignore)
    if not clashes:
        return ""
    named = ", ".join(f"'{e['title']}' {_when(e)}" for e in clashes)
    return f" Note: it overlaps {named}."


def add_event(app, title, start, end=None, location="", attendees=(), notes=""):
    begin = app.instant(start, "start")
    finish = app.instant(end, "end") if end else app.hour_later(begin)
    if finish <= begin:
        raise ValueError(f"end {finish} must be after start {begin}")
    cursor = app.db.execute(
        'INSERT INTO events (title, start, "end", location, attendees, notes) '
        "VALUES (?, ?, ?, ?, ?, ?)",
        (title.strip(), begin, finish, location, app.attendees(list(attendees)), notes),
    )
    row = app.event(cursor.lastrowid)
    return f"Added '{row['title']}' {_when(row)}.{_overlap_note(app, begin, finish, row['id'])}"


def reschedule_event(app, title, new_start, new_end=None, date=None):
    event = _event(app, title, date)
    begin = app.instant(new_start, "new_start")
    if new_end:
        finish = app.instant(new_end, "new_end")
    else:  # same length as before
        length = datetime.fromisoformat(event["end"]) - datetime.fromisoformat(event["start"])
        finish = app.hour_later(begin, int(length.total_seconds() // 60))
    if finish <= begin:
        raise ValueError(f"new_end {finish} must be after new_start {begin}")
    app.db.execute(
        'UPDATE events SET start = ?, "end" = ? WHERE id = ?', (begin, finish, event["id"])
    )
    row = app.event(event["id"])
    note = _overlap_note(app, begin, finish, row["id"])
    return f"Moved '{row['title']}' to {_when(row)}.{note}"


def edit_event(app, title, date=None, new_title=None, location=None, notes=None, attendees=None):
    event = _event(app, title, date)
    changes = {
        "title": new_title.strip() if new_title else None,
        "location": location,
        "notes": notes,
        "attendees": app.attendees(attendees) if attendees is not None else None,
    }
    changed = {k: v for k, v in changes.items() if v is not None}
    if not changed:
        raise ValueError("nothing to change: give new_title, location, notes or attendees")
    _update(app, "events", event["id"], changed)
    said = ", ".join(f"{k} {v!r}" for k, v in changed.items())
    return f"Updated '{event['title']}' {_when(event)}: {said}."


def cancel_event(app, title, date=None):
    event = _event(app, title, date)
    app.db.execute("DELETE FROM events WHERE id = ?", (event["id"],))
    return f"Cancelled '{event['title']}' {_when(event)}."
