"""Where a variant's tools come from, and how one cell calls them.

A ``ToolSource`` is one variant's tool set, resolved: ``prepare(app)`` resolves it once,
before any model call (an MCP server is started and lists its tools; a problem is a
``DefinitionError``), then the definitions the model is sent (``definitions``, exactly as
the source gave them), what produced them (``identity``: plain JSON data, recorded in
every file's metadata and hashed into the variant's hash, so a changed source cannot
silently resume an old run), and, for a cell of an agentic experiment, ``bind(app)``: an
async context manager that yields a ``ToolExecutor`` acting on that cell's app and
releases whatever it opened (a thread, a server process) when the cell ends, however it
ends. ``close()`` releases what outlives a cell (a server shared by a variant's cells).

What every executor keeps (the conversation loop relies on it):

- ``call`` never raises into the conversation, except ``ToolTimeout``: an unknown tool,
  arguments that are not a JSON object or fail the tool's schema, and a tool that fails
  all come back as a ``ToolResult`` with ``is_error`` set, ``error_kind`` naming the kind
  in a word, and a message the model can act on.
- A call that runs past the experiment's ``tool_timeout_s`` raises ``ToolTimeout``: the
  app's state is then unknown, so the conversation stops (stop reason ``tool_timeout``).
- What a tool returns reaches the model unchanged: text as text, anything else as JSON.
- A failure of the source itself (not of one tool call) raises ``ToolSourceFailed``,
  from ``bind`` or ``call``: the cell ends as an error line, never half a result.

Sources: ``python`` (one Python function per tool, over the app) and ``mcp`` (the tools
an MCP server lists, called through the official SDK; its own folder, imported only for
a variant that names a server).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from tooltrial.apps.base import App
from tooltrial.definitions.variants import Tool
from tooltrial.types import ToolCall, ToolResult


class ToolTimeout(Exception):
    """A tool ran past its time limit; the conversation stops."""

    def __init__(self, call: ToolCall, timeout_s: float) -> None:
        super().__init__(f"tool {call.name!r} ran past its {timeout_s:g} s limit")
        self.call = call


class ToolSourceFailed(Exception):
    """The tool source itself broke (a server that would not start, died mid-cell, broke
    its protocol, or now lists other tools than at the preflight): not a tool's result
    the model can act on, so the cell ends as an error line (kind ``kind``) and is run
    again from a fresh state, per the run's retry policy and by ``--resume``."""

    def __init__(self, message: str, kind: str = "tool_source", retryable: bool = True) -> None:
        super().__init__(message)
        self.kind, self.retryable = kind, retryable


class ToolExecutor(Protocol):
    """What the conversation loop needs from a tool set bound to one cell's app."""

    async def call(self, call: ToolCall) -> ToolResult: ...


class ToolSource(Protocol):
    """One variant's tools: their definitions, their origin, and a binding per cell."""

    @property
    def definitions(self) -> tuple[Tool, ...]:
        """The tools as the model is sent them, in order."""
        ...

    @property
    def identity(self) -> dict[str, Any]:
        """What produced the definitions (``{"kind": "python", ...}``): JSON data."""
        ...

    async def prepare(self, app: App) -> None:
        """Resolve the definitions before any model call (``app``: the seeded state, for
        a source that must look; it is not changed). ``DefinitionError`` if they cannot."""
        ...

    def bind(self, app: App) -> AbstractAsyncContextManager[ToolExecutor]:
        """The tools acting on ``app`` for one cell; closed when the cell ends."""
        ...

    def close(self) -> None:
        """Release what outlives a cell; the source is not used after."""
        ...
