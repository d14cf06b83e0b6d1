"""A notes server (the SDK's ``MCPServer``) that keeps its state as one JSON document in
the folder it is given, for the test of an app that reads such a state:

    python notes.py --dir FOLDER

``FOLDER/store.json`` is ``{"notes": {title: {"text": ..., "tags": [...]}}}``; the tools
are ``add_note(title, text, tags)``, ``list_notes()`` and ``delete_note(title)``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, required=True)
    store = parser.parse_args().dir / "store.json"
    server = MCPServer("notes", version="1.0.0", log_level="WARNING")

    def load() -> dict:
        return json.loads(store.read_text()) if store.exists() else {"notes": {}}

    def save(data: dict) -> None:
        store.write_text(json.dumps(data, indent=1, sort_keys=True))

    @server.tool()
    def add_note(title: str, text: str, tags: list[str] | None = None) -> str:
        """Add a note."""
        data = load()
        if title in data["notes"]:
            raise ToolError(f"a note called {title!r} exists already")
        data["notes"][title] = {"text": text, "tags": sorted(tags or [])}
        save(data)
        return f"Added {title!r}."

    @server.tool()
    def list_notes() -> dict:
        """Every note, by title."""
        return load()["notes"]

    @server.tool()
    def delete_note(title: str) -> str:
        """Delete a note, by title."""
        data = load()
        if data["notes"].pop(title, None) is None:
            raise ToolError(f"no note called {title!r}")
        save(data)
        return f"Deleted {title!r}."

    server.run()


if __name__ == "__main__":
    main()
