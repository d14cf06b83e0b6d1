"""The app whose state the MCP server acts on: a to-do list in SQLite.

tooltrial builds this database for each conversation, writes it to a file of its own and
gives the server that file (``{db}``); once the server has exited, it judges the rows.
``schema`` is run once per app; ``seed`` inserts the rows every scenario starts from
(``self.now`` is the experiment's fixed timestamp, a ``datetime``). Each conversation
gets its own copy, so what one conversation changes, no other sees. Foreign keys are on;
a ``BOOLEAN`` column reads as true/false in the state the scenarios are judged on.
"""

from tooltrial.apps import SQLiteApp


class Todo(SQLiteApp):
    schema = """
    CREATE TABLE tasks (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        due TEXT CHECK (due IS NULL OR due GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'),
        done BOOLEAN NOT NULL DEFAULT 0
    );
    """

    def seed(self) -> None:
        self.db.executemany(
            "INSERT INTO tasks (title, due) VALUES (?, ?)",
            [
                ("Dentist", "2025-03-14"),
                ("Dentist bill", None),
                ("Pay rent", "2025-03-31"),
                ("Call mum", "2025-03-12"),
            ],
        )
