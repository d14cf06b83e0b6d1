"""API-shaped tools: list the tasks, then change one by its id.

One function per tool, named as the tool: ``function(app, **arguments)``. What it returns
goes back to the model (text as text, anything else as JSON); what it raises goes back as
an error the model can read and act on.
"""


def list_tasks(app, query=""):
    rows = app.db.execute(
        "SELECT id, title, due, done FROM tasks WHERE title LIKE ? ORDER BY id", (f"%{query}%",)
    )
    return [{"id": i, "title": t, "due": d, "done": bool(x)} for i, t, d, x in rows]


def update_task(app, id, due=None, done=None):
    if app.db.execute("SELECT 1 FROM tasks WHERE id = ?", (id,)).fetchone() is None:
        raise KeyError(f"no task with id {id}")
    if due is not None:
        app.db.execute("UPDATE tasks SET due = ? WHERE id = ?", (due, id))
    if done is not None:
        app.db.execute("UPDATE tasks SET done = ? WHERE id = ?", (int(done), id))
    return {"ok": True}


def delete_task(app, id):
    app.db.execute("DELETE FROM tasks WHERE id = ?", (id,))
    return {"ok": True}
