"""The app of the notes server (``notes.py``): an app whose server keeps its state in a
form of its own, read as rows by the app's ``snapshot``."""

from __future__ import annotations

import json

from tooltrial.apps import FolderApp, State


class NotesFolder(FolderApp):
    """The notes server's state: one JSON document in the folder (``{dir}``). Its files
    would say only that ``store.json`` changed; this reads the notes in it as rows, so a
    state check names a note and its fields."""

    def seed(self) -> None:
        notes = {"Groceries": {"text": "milk, eggs", "tags": ["home"]}}
        self.write("store.json", json.dumps({"notes": notes}))

    def snapshot(self) -> State:
        store = json.loads((self.root / "store.json").read_text())
        return {"notes": {t: {"title": t, **note} for t, note in store["notes"].items()}}
