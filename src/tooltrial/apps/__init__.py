"""Agentic experiments' apps: the state that tools act on (``base``; ``folder``: state as
a folder of files), differences between two states (``state``), and judging a
conversation by the state it leaves (``judge``)."""

from tooltrial.apps.base import App, Row, SQLiteApp, State
from tooltrial.apps.folder import FolderApp

__all__ = ["App", "FolderApp", "Row", "SQLiteApp", "State"]
