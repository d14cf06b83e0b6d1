"""State per cell for tools another program runs: each copy of an app can hold its state
in files of its own (``App.paths()``), which a server's settings name by placeholder;
the verdict reads those files once the server has exited.

- ``SQLiteApp``: one database file (``{db}``); ``SQLiteApp.open`` is how a server reuses
  the app's own class over it;
- ``FolderApp``: a folder (``{dir}``), one ``files`` row per file;
- an app whose server keeps its state in another form subclasses one of them and reads
  that form as rows (here: a JSON store, read by ``NotesFolder.snapshot`` in
  ``tests/mcp_servers/notes_app.py``), shown with a real server
  (``tests/mcp_servers/notes.py``).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.mcp import SERVERS, call, steps, write_experiment

from tooltrial import run_experiment
from tooltrial.apps import FolderApp, SQLiteApp
from tooltrial.testing.scripted import reply

NOW = datetime(2025, 3, 12, 9, tzinfo=UTC)


class Todo(SQLiteApp):
    schema = "CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done BOOLEAN);"

    def seed(self) -> None:
        self.db.execute("INSERT INTO tasks (title, done) VALUES ('Dentist', 0)")


def test_a_sqlite_copy_moves_to_a_file_of_its_own_and_reads_what_others_write():
    app = Todo(NOW)
    copy = app.clone()
    (name, path), *_ = copy.paths().items()
    assert name == "db" and Path(path).is_file() and copy.paths() == {"db": path}  # once
    other = sqlite3.connect(path)  # another program acting on the cell's copy
    other.execute("UPDATE tasks SET done = 1 WHERE id = 1")
    other.commit()
    other.close()
    assert copy.snapshot()["tasks"]["1"]["done"] is True
    assert app.snapshot()["tasks"]["1"]["done"] is False  # the original is untouched
    twin = copy.clone()  # a copy of a copy on disk starts in memory, with its rows
    assert twin.snapshot() == copy.snapshot() and twin.paths()["db"] != path
    served = Todo.open(path, NOW)  # what a server uses: the app's class over the file
    assert served.snapshot() == copy.snapshot() and served.now == NOW
    for each in (served, twin, copy, app):
        each.close()
    assert not Path(path).exists() and not Path(path).parent.exists()


class Project(FolderApp):
    def seed(self) -> None:
        self.write("README.md", "# Project\n")
        self.write("src/main.py", "print('hi')\n")
        self.write(".git/HEAD", "ref: refs/heads/main\n")  # left out: FolderApp.ignore
        (self.root / "logo.bin").write_bytes(b"\x89PNG\x00")


def test_a_folder_app_is_a_folder_per_copy_read_as_files():
    app = Project(NOW)
    copy = app.clone()
    folder = Path(copy.paths()["dir"])
    (folder / "src" / "main.py").write_text("print('bye')\n")
    copy.add_rows("files", [{"path": "docs/a.md", "text": "A"}])
    files = copy.snapshot()["files"]
    assert sorted(files) == ["README.md", "docs/a.md", "logo.bin", "src/main.py"]
    assert files["src/main.py"] == {"path": "src/main.py", "text": "print('bye')\n"}
    assert files["logo.bin"]["size"] == 5 and len(files["logo.bin"]["sha256"]) == 64
    assert app.snapshot()["files"]["src/main.py"]["text"] == "print('hi')\n"
    with pytest.raises(KeyError, match="no table 'tasks'"):
        copy.add_rows("tasks", [{}])
    copy.close()
    assert not folder.exists()
    app.close()


NOTES_SCENARIOS = """\
- id: replace-groceries
  prompt: Replace my groceries note with one that says 'bread'.
  success:
    state:
      - {table: notes, where: {title: Groceries}, gone: true}
      - table: notes
        where: {title: Shopping}
        values: {text: bread}
"""


def test_an_app_reads_a_state_kept_in_another_form(tmp_path):
    """``tests/mcp_servers/notes_app.py``: ``NotesFolder`` reads the JSON store as rows."""
    server = f'mcp: {{command: "{{python}}", args: ["{SERVERS / "notes.py"}", --dir, "{{dir}}"]}}\n'
    folder = write_experiment(
        tmp_path / "e",
        {"notes": server},
        NOTES_SCENARIOS,
        app=f"{SERVERS / 'notes_app.py'}:NotesFolder",
    )
    model = steps(
        call("delete_note", title="Groceries"),
        call("add_note", title="Shopping", text="bread", tags=["home"]),
        reply("Replaced it."),
    )
    run = run_experiment(folder, model, runs=2, results=tmp_path / "r")
    for outcome in run.outcomes:  # each cell on its own folder, from the seeded note
        conversation = outcome.conversation
        assert conversation.success, conversation.checks
        assert [(c.key, c.after is None) for c in conversation.diff] == [
            ("Groceries", True),
            ("Shopping", False),
        ]
        assert [r.changes for r in conversation.tool_results] == [1, 1]
