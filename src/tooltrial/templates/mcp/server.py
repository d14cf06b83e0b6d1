"""A to-do MCP server in two versions, built with the MCP SDK's ``MCPServer`` (FastMCP):
a stand-in for your own server. tooltrial starts it as the variants say:

    python server.py --version 1 --db todo.db

Version 1 is API-shaped (list the tasks, then change one by its id); version 2 is
app-shaped (say what to do, by the task's title). It acts on the SQLite file it is given:
tooltrial gives each conversation its own copy (``{db}`` in the variants) and judges the
state the server left there. To test your own server, point the variants' ``mcp:`` at
its command instead.
"""

import argparse
import sqlite3

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError  # its message reaches the model


def version_1(server: MCPServer, db: sqlite3.Connection) -> None:
    @server.tool()
    def list_tasks(query: str = "") -> list[dict]:
        """List the tasks whose title contains the query (all tasks without one)."""
        rows = db.execute(
            "SELECT id, title, due, done FROM tasks WHERE title LIKE ? ORDER BY id",
            (f"%{query}%",),
        )
        return [{"id": i, "title": t, "due": d, "done": bool(x)} for i, t, d, x in rows]

    @server.tool()
    def update_task(id: int, due: str | None = None, done: bool | None = None) -> str:
        """Change a task's due date (YYYY-MM-DD) or mark it done, by id."""
        if db.execute("SELECT 1 FROM tasks WHERE id = ?", (id,)).fetchone() is None:
            raise ToolError(f"no task with id {id}")
        if due is not None:
            db.execute("UPDATE tasks SET due = ? WHERE id = ?", (due, id))
        if done is not None:
            db.execute("UPDATE tasks SET done = ? WHERE id = ?", (int(done), id))
        return "ok"

    @server.tool()
    def delete_task(id: int) -> str:
        """Delete a task, by id."""
        db.execute("DELETE FROM tasks WHERE id = ?", (id,))
        return "ok"


def version_2(server: MCPServer, db: sqlite3.Connection) -> None:
    def one(title: str) -> int:
        rows = db.execute("SELECT id FROM tasks WHERE title = ?", (title,)).fetchall()
        if len(rows) != 1:  # several (or none) change nothing, and say so: the model can ask
            raise ToolError(f"{len(rows)} tasks are called {title!r}; give the exact title")
        return rows[0][0]

    @server.tool()
    def reschedule(title: str, due: str) -> str:
        """Move a task to another day (YYYY-MM-DD), by its exact title."""
        db.execute("UPDATE tasks SET due = ? WHERE id = ?", (due, one(title)))
        return f"{title} is now due {due}"

    @server.tool()
    def complete(title: str) -> str:
        """Tick off a task, by its exact title."""
        db.execute("UPDATE tasks SET done = 1 WHERE id = ?", (one(title),))
        return f"{title} is done"

    @server.tool()
    def remove(title: str) -> str:
        """Delete a task, by its exact title."""
        db.execute("DELETE FROM tasks WHERE id = ?", (one(title),))
        return f"{title} was removed"


def main() -> None:
    parser = argparse.ArgumentParser(description="A to-do MCP server, version 1 or 2.")
    parser.add_argument("--version", choices=["1", "2"], required=True)
    parser.add_argument("--db", required=True, help="the SQLite file to act on")
    args = parser.parse_args()
    # Every change at once on disk; the SDK runs each call in a worker thread.
    db = sqlite3.connect(args.db, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA foreign_keys = ON")
    server = MCPServer("todo", version=f"{args.version}.0.0", log_level="WARNING")
    (version_1 if args.version == "1" else version_2)(server, db)
    server.run()  # stdio


if __name__ == "__main__":
    main()
