"""Tools from an MCP server: ``source`` (the ``ToolSource`` and a cell's executor),
``connection`` (the official SDK, imported on first use only), ``launcher`` (how every
server process is started so it cannot outlive tooltrial), ``listing`` (listed tools to
definitions) and ``results`` (a tool result as the model gets it)."""

from tooltrial.tools.mcp.connection import ServerFailed
from tooltrial.tools.mcp.source import McpTools, McpToolSource, describe

__all__ = ["McpToolSource", "McpTools", "ServerFailed", "describe"]
