"""A to-do list in SQLite: the app of tooltrial's own agentic tests."""

from tooltrial.apps import SQLiteApp


class Todo(SQLiteApp):
    schema = """
    CREATE TABLE tasks (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        due TEXT,
        done BOOLEAN NOT NULL DEFAULT 0
    );
    """

    def seed(self) -> None:
        self.db.executemany(
            "INSERT INTO tasks (title, due) VALUES (?, ?)",
            [("Dentist", "2025-03-14"), ("Pay rent", "2025-03-31"), ("Dentist bill", None)],
        )
