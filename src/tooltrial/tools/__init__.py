"""Where a variant's tools come from (``base.ToolSource``) and how one cell calls them
(``base.ToolExecutor``); ``python``: tools written as Python functions over the app;
``mcp``: the tools an MCP server lists (imported on use: ``tooltrial.tools.mcp``);
``diff``: what differs between two tool sets."""

from tooltrial.tools.base import ToolExecutor, ToolSource, ToolSourceFailed, ToolTimeout
from tooltrial.tools.python import PythonTools, PythonToolSource

__all__ = [
    "PythonToolSource",
    "PythonTools",
    "ToolExecutor",
    "ToolSource",
    "ToolSourceFailed",
    "ToolTimeout",
]
