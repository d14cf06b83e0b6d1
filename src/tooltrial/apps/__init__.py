"""Agentic experiments' apps: the state that tools act on (``base``), differences
between two states (``state``), and judging a conversation by the state it leaves
(``judge``)."""

from tooltrial.apps.base import App, Row, SQLiteApp, State

__all__ = ["App", "Row", "SQLiteApp", "State"]
