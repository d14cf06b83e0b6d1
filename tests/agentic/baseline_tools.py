"""API-shaped tools: the app's REST resources, as a public API exposes them.

``GET /tasks`` and ``GET /events`` list by structured filters only (no text search, as
in Google Tasks), sorted by id and by start, ten per page unless ``page_size`` says
otherwise; the response's ``next_page`` is null on the last page. ``GET``/``POST``/
``PATCH``/``DELETE`` by id. A PATCH changes only the fields it is given; ``due: null``
clears a due date. An event's ``end`` must be after its ``start``, also after a PATCH
that moves only one of them (the API does not keep the duration for you).

Errors are what such an API answers with a 4xx: ``KeyError`` for an unknown id or list,
``ValueError`` for a value it cannot store.
"""

from __future__ import annotations

from typing import Any

DEFAULT_PAGE_SIZE = 10
TASK_SUMMARY = "id, title, due, done, list, priority"
EVENT_SUMMARY = 'id, title, start, "end", location'


def _page(
    app,
    table: str,
    columns: str,
    where: list[str],
    params: list[Any],
    order: str,
    page: int,
    page_size: int,
) -> dict[str, Any]:
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    (total,) = app.db.execute(f"SELECT count(*) FROM {table}{clause}", params).fetchone()
    rows = app.rows(
        f"SELECT {columns} FROM {table}{clause} ORDER BY {order} LIMIT ? OFFSET ?",
        [*params, page_size, (page - 1) * page_size],
    )
    more = page * page_size < total
    return {
        table: rows,
        "page": page,
        "page_size": page_size,
        "total": total,
        "next_page": page + 1 if more else None,
    }


def _update(app, table: str, row_id: int, values: dict[str, Any]) -> None:
    """One statement, so the constraints see the new row whole and a refusal leaves
    nothing half-written."""
    if values:
        columns = ", ".join(f'"{column}" = ?' for column in values)
        app.db.execute(f"UPDATE {table} SET {columns} WHERE id = ?", [*values.values(), row_id])


# --- tasks -----------------------------------------------------------------------------


def list_tasks(
    app, list=None, done=None, due_from=None, due_to=None, page=1, page_size=DEFAULT_PAGE_SIZE
):
    where, params = [], []
    if list is not None:
        where.append("list = ?")
        params.append(app.list_name(list))
    if done is not None:
        where.append("done = ?")
        params.append(int(done))
    if due_from is not None:
        where.append("substr(due, 1, 10) >= ?")
        params.append(app.day(due_from, "due_from"))
    if due_to is not None:
        where.append("substr(due, 1, 10) <= ?")
        params.append(app.day(due_to, "due_to"))
    return _page(app, "tasks", TASK_SUMMARY, where, params, "id", page, page_size)


def get_task(app, id):
    return app.task(id)


def create_task(app, title, due=None, notes="", priority="normal", list="Inbox"):
    cursor = app.db.execute(
        "INSERT INTO tasks (title, due, notes, priority, list) VALUES (?, ?, ?, ?, ?)",
        (title.strip(), app.due(due), notes, priority, app.list_name(list)),
    )
    return app.task(cursor.lastrowid)


_TASK_FIELDS = ("title", "due", "notes", "priority", "done", "list")


def update_task(app, id, **fields):
    app.task(id)  # 404 before anything is written
    _update(app, "tasks", id, _task_values(app, fields))
    return app.task(id)


def _task_values(app, fields: dict[str, Any]) -> dict[str, Any]:
    values = {}
    for name in _TASK_FIELDS:
        if name not in fields:
            continue
        value = fields[name]
        if name == "due":
            value = app.due(value)
        elif name == "list":
            value = app.list_name(value)
        elif name == "done":
            value = int(value)
        elif name == "title":
            value = value.strip()
        values[name] = value
    return values


def delete_task(app, id):
    app.task(id)
    app.db.execute("DELETE FROM tasks WHERE id = ?", (id,))
    return {"deleted": True, "id": id}


# --- events ----------------------------------------------------------------------------


def list_events(app, time_min=None, time_max=None, page=1, page_size=DEFAULT_PAGE_SIZE):
    where, params = [], []
    if time_min is not None:
        where.append('"end" > ?')
        params.append(app.instant(time_min, "time_min"))
    if time_max is not None:
        where.append("start < ?")
        params.append(app.instant(time_max, "time_max"))
    return _page(app, "events", EVENT_SUMMARY, where, params, "start, id", page, page_size)


def _event(app, event_id: int) -> dict[str, Any]:
    row = app.event(event_id)
    row["attendees"] = [n.strip() for n in row["attendees"].split(",") if n.strip()]
    return row


def get_event(app, id):
    return _event(app, id)


def _span(start: str, end: str) -> None:
    if end <= start:
        raise ValueError(f"end {end} must be after start {start}")


def create_event(app, title, start, end, location="", notes="", attendees=()):
    start, end = app.instant(start, "start"), app.instant(end, "end")
    _span(start, end)
    cursor = app.db.execute(
        'INSERT INTO events (title, start, "end", location, notes, attendees) '
        "VALUES (?, ?, ?, ?, ?, ?)",
        (title.strip(), start, end, location, notes, app.attendees(list(attendees))),
    )
    return _event(app, cursor.lastrowid)


_EVENT_FIELDS = ("title", "start", "end", "location", "notes", "attendees")


def update_event(app, id, **fields):
    row = app.event(id)
    values = {name: fields[name] for name in _EVENT_FIELDS if name in fields}
    for name in ("start", "end"):
        if name in values:
            values[name] = app.instant(values[name], name)
    if "attendees" in values:
        values["attendees"] = app.attendees(values["attendees"])
    if "title" in values:
        values["title"] = values["title"].strip()
    _span(values.get("start", row["start"]), values.get("end", row["end"]))
    _update(app, "events", id, values)
    return _event(app, id)


def delete_event(app, id):
    app.event(id)
    app.db.execute("DELETE FROM events WHERE id = ?", (id,))
    return {"deleted": True, "id": id}
