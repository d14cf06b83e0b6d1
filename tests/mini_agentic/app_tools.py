"""App-shaped: say what you want done, by title."""


def reschedule(app, title, due):
    rows = app.db.execute("SELECT id FROM tasks WHERE title = ?", (title,)).fetchall()
    if len(rows) != 1:
        return f"{len(rows)} tasks are called {title!r}"
    app.db.execute("UPDATE tasks SET due = ? WHERE id = ?", (due, rows[0][0]))
    return f"{title} is now due {due}"


def remove(app, title):
    app.db.execute("DELETE FROM tasks WHERE title = ?", (title,))
    return "removed"
