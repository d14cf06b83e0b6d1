"""App-shaped tools: say what you want done, by the task's title.

A title that matches several tasks changes nothing and says so, so the model can ask.
"""


def _one(app, title):
    rows = app.db.execute("SELECT id FROM tasks WHERE title = ?", (title,)).fetchall()
    if len(rows) != 1:
        raise LookupError(f"{len(rows)} tasks are called {title!r}; give the exact title")
    return rows[0][0]


def reschedule(app, title, due):
    app.db.execute("UPDATE tasks SET due = ? WHERE id = ?", (due, _one(app, title)))
    return f"{title} is now due {due}"


def complete(app, title):
    app.db.execute("UPDATE tasks SET done = 1 WHERE id = ?", (_one(app, title),))
    return f"{title} is done"


def remove(app, title):
    app.db.execute("DELETE FROM tasks WHERE id = ?", (_one(app, title),))
    return f"{title} was removed"
