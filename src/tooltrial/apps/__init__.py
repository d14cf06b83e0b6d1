"""Agentic experiments' apps: state that tools act on, running tool calls, and judging a
conversation by the state it leaves (see ``base``, ``tools``, ``judge``, ``workbench``)."""

from tooltrial.apps.base import App, Row, SQLiteApp, State
from tooltrial.apps.tools import PythonTools, ToolExecutor, ToolTimeout
from tooltrial.apps.workbench import Workbench

__all__ = [
    "App",
    "PythonTools",
    "Row",
    "SQLiteApp",
    "State",
    "ToolExecutor",
    "ToolTimeout",
    "Workbench",
]
