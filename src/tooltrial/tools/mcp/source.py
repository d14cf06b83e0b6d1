"""A variant's tools from an MCP server (``Variant.mcp``): the ``ToolSource`` the
Workbench binds, and the executor one cell calls.

``prepare`` (the preflight, before any model call) starts the server once, on a copy of
the app, and lists its tools; the definitions the model is sent are the listed tools as
the variant filters, renames and re-describes them (``listing.resolve``). What the
server reported (name, version, protocol) and how it is started go into ``identity``,
with a digest of the whole listing, so a changed server changes the variant's hash and
cannot silently resume an old run. Any problem is one ``DefinitionError`` naming the
experiment, the variant and the server's command.

``bind(app)`` gives one cell its tools:

- by default a fresh server process, started on the cell's own copy of the app's state
  (``app.paths()`` fill ``{db}``, ``{dir}``); it is ended when the cell ends, before the
  verdict reads the state it left;
- for a ``stateless`` variant, one server per run, shared by its cells (hosted on a
  thread of its own, so cells on any event loop can use it), started on first use,
  started again after it failed, ended by ``close``.

Two variants never share a process, a session or a listing. A cell whose server lists
other tools than at the preflight, exits, hangs at start or breaks the protocol ends as
``ToolSourceFailed`` naming the variant, the command and what differs or happened (the
cell is an error line, retried from a fresh state). A call runs past the experiment's
``tool_timeout_s``: ``ToolTimeout``. Otherwise ``call`` keeps ``tools.base``'s
guarantees: an unknown tool or arguments that are not a JSON object come back as error
results; what the server answers (content, ``is_error``, a JSON-RPC error) reaches the
model as the server gave it (``results``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import shlex
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from tooltrial.apps.base import App, State
from tooltrial.apps.state import diff
from tooltrial.definitions.servers import BUILT_IN_PLACEHOLDERS, McpServer
from tooltrial.definitions.variants import Tool, Variant
from tooltrial.errors import DefinitionError
from tooltrial.tools.base import ToolSourceFailed, ToolTimeout
from tooltrial.tools.diff import diff_tools
from tooltrial.tools.mcp.connection import (
    Called,
    Connection,
    SdkMissing,
    ServerFailed,
    connect,
    free_port,
    sdk,
)
from tooltrial.tools.mcp.listing import resolve
from tooltrial.tools.results import exception_text, tool_result
from tooltrial.types import ToolCall, ToolResult, malformed_arguments


class McpToolSource:
    """A variant's tools as an MCP server lists them (see the module docstring)."""

    def __init__(self, variant: Variant, timeout_s: float, now: datetime, where: str) -> None:
        if variant.mcp is None:
            raise ValueError(f"variant {variant.name!r} names no MCP server")
        self.variant, self.server = variant, variant.mcp
        self.timeout_s, self.now = timeout_s, now
        self.label = f"variant {variant.name!r}: MCP server `{describe(variant.mcp)}`"
        self.where = where
        self._tools: tuple[Tool, ...] | None = None
        self._calls: dict[str, str] = {}
        self._listing: list[dict[str, Any]] = []
        self._identity: dict[str, Any] = {}
        self._shared: _Shared | None = None

    @property
    def definitions(self) -> tuple[Tool, ...]:
        if self._tools is None:
            raise RuntimeError(f"{self.label}: prepare() has not listed its tools yet")
        return self._tools

    @property
    def identity(self) -> dict[str, Any]:
        return self._identity

    @property
    def server_names(self) -> dict[str, str]:
        """The name the model calls each tool by -> the server's name for it."""
        return dict(self._calls)

    async def prepare(self, app: App) -> None:
        """Start the server once on a copy of ``app``, list and resolve its tools."""
        fail = self._definition_error
        try:
            sdk()
        except SdkMissing as exc:
            raise fail(
                f"variant {self.variant.name!r} takes its tools from an MCP server: {exc}"
            ) from None
        self._check_placeholders(app)
        copy = app.clone()
        try:
            async with connect(self.server, self._values(copy), self.label) as server:
                listing = await server.list_tools()
                await server.check()
                info, protocol = server.server_info, server.protocol_version
        except ServerFailed as exc:
            raise fail(f"{exc}\nfix the server or the variant's mcp: settings") from None
        finally:
            copy.close()
        try:
            self._tools, self._calls = resolve(self.server, listing)
        except ValueError as exc:
            raise fail(f"{self.label} {exc}") from None
        self._listing = listing
        self._identity = {
            "kind": "mcp",
            "server": info,
            "protocol_version": protocol,
            **self.server.record(),
            "listing_sha256": listing_digest(listing),
            "calls": {shown: name for shown, name in self._calls.items() if shown != name},
        }

    def _definition_error(self, message: str) -> DefinitionError:
        return DefinitionError(f"{self.where}: {message}")

    def _check_placeholders(self, app: App) -> None:
        named = self.server.placeholder_names()
        provided = set(type(app).path_names)
        unknown = sorted(named - provided - set(BUILT_IN_PLACEHOLDERS))
        if unknown:
            built_in = ", ".join(f"{{{n}}}" for n in BUILT_IN_PLACEHOLDERS)
            own = ", ".join(f"{{{n}}}" for n in type(app).path_names) or "none"
            braced = ", ".join(f"{{{n}}}" for n in unknown)
            raise self._definition_error(
                f"variant {self.variant.name!r}: mcp: {braced} is not a placeholder tooltrial "
                f"fills (built in: {built_in}; the app {type(app).__name__} provides: {own}); "
                "write {{ and }} for literal braces"
            )
        if self.server.stateless and named & provided:
            braced = ", ".join(f"{{{n}}}" for n in sorted(named & provided))
            raise self._definition_error(
                f"variant {self.variant.name!r}: mcp: a stateless server is shared by every "
                f"cell, so it cannot act on a cell's own copy ({braced}): leave out "
                "'stateless: true' to start one per cell"
            )

    def _values(self, app: App | None) -> dict[str, str]:
        """Every placeholder's value for one connection (a fresh port each time)."""
        here = self.server.here or str(Path.cwd())
        values = {"python": sys.executable, "now": self.now.isoformat(), "here": here}
        named = self.server.placeholder_names()
        if "port" in named:
            values["port"] = free_port()
        if app is not None and named & set(type(app).path_names):
            values |= app.paths()
        return values

    @contextlib.asynccontextmanager
    async def bind(self, app: App) -> AsyncIterator[McpTools]:
        if self.server.stateless:
            shared = self._shared = self._shared or _Shared(self)
            yield McpTools(self, shared.call_tool, await shared.opened(), None)
            return
        try:
            async with connect(self.server, self._values(app), self.label) as server:
                self.check_listing(await server.list_tools(), server)
                yield McpTools(self, server.call_tool, server, app)
                await server.check()
        except ServerFailed as exc:
            raise ToolSourceFailed(str(exc), kind="tool_source") from None

    def check_listing(self, listing: list[dict[str, Any]], server: Connection) -> None:
        """``ToolSourceFailed`` naming the difference if the server now lists other
        tools than at the preflight."""
        if listing_digest(listing) == self.identity.get("listing_sha256"):
            return
        changed = diff_tools(self._listing, listing)
        what = (
            changed.summary()
            if not changed.empty
            else "fields other than names, descriptions and input schemas changed"
        )
        raise ToolSourceFailed(
            f"{server.label} lists other tools than at the preflight: {what}",
            kind="tool_source_changed",
        )

    def close(self) -> None:
        """End the shared server of a stateless variant, if one was started."""
        if self._shared is not None:
            self._shared.close()
            self._shared = None


class McpTools:
    """One cell's calls to the server (see the module docstring)."""

    def __init__(
        self,
        source: McpToolSource,
        send: Callable[[str, dict[str, Any]], Awaitable[Called]],
        server: Connection,
        app: App | None,
    ) -> None:
        self.source, self.send, self.server, self.app = source, send, server, app
        self._state: State | None = app.snapshot() if app is not None else None
        self._version = app.state_version() if app is not None else None

    async def call(self, call: ToolCall) -> ToolResult:
        started = time.perf_counter()
        calls = self.source.server_names
        if call.name not in calls:
            known = ", ".join(sorted(calls))
            problem = f"unknown tool {call.name!r}; the tools are: {known}"
            return _result(call, problem, started, error_kind="unknown_tool")
        raw = malformed_arguments(call.arguments)
        if raw is not None:
            problem = f"the arguments are not a JSON object: {raw[:200]}"
            return _result(call, problem, started, error_kind="invalid_arguments")
        try:
            called = await asyncio.wait_for(
                self.send(calls[call.name], dict(call.arguments)), self.source.timeout_s
            )
        except TimeoutError:
            if self.app is not None:  # its own server, hung: end it now, not at close
                self.server.kill()
            raise ToolTimeout(call, self.source.timeout_s) from None
        except ServerFailed as exc:
            raise ToolSourceFailed(str(exc), kind="tool_source") from None
        return _result(call, called.content, started, called.error_kind, self._changes())

    def _changes(self) -> int:
        """Rows the call changed: the difference between the app's state before and
        after it (the server changed it: the app cannot count its own writes), read only
        when the app's ``state_version`` says it may have changed. A state that can no
        longer be read (the server left the database corrupt) ends the cell
        (``ToolSourceFailed``, kind ``app_broken``)."""
        if self.app is None or self._state is None:
            return 0
        try:
            version = self.app.state_version()
            if version is not None and version == self._version:
                return 0  # nothing was committed: no need to read the state
            self._version = version
            after = self.app.snapshot()
        except Exception as exc:
            raise ToolSourceFailed(
                f"{self.source.label}: the app's state could not be read after a call "
                f"({type(exc).__name__}: {exception_text(exc)}); it is unknown, so the "
                "conversation was stopped",
                kind="app_broken",
                retryable=False,
            ) from None
        changed = len(diff(self._state, after))
        self._state = after
        return changed


class _Shared:
    """The one connection of a stateless variant, on a thread and event loop of its own."""

    def __init__(self, source: McpToolSource) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._connection: Connection | None = None
        self._broken = False

    async def opened(self) -> Connection:
        """The live connection, started (again) if needed; ``ToolSourceFailed`` if it
        cannot be."""
        try:
            return await asyncio.to_thread(self._open)
        except ServerFailed as exc:
            raise ToolSourceFailed(str(exc), kind="tool_source") from None

    def _open(self) -> Connection:
        with self._lock:
            if self._connection is not None and not self._broken:
                return self._connection
            self._end()
            loop = asyncio.new_event_loop()
            opened: concurrent.futures.Future[Connection] = concurrent.futures.Future()
            thread = threading.Thread(
                target=loop.run_until_complete,
                args=(self._host(opened),),
                name=f"mcp-{self.source.variant.name}",
                daemon=True,
            )
            self._loop, self._thread, self._broken = loop, thread, False
            thread.start()
            self._connection = opened.result()
            return self._connection

    async def _host(self, opened: concurrent.futures.Future[Connection]) -> None:
        self._stop = asyncio.Event()
        try:
            async with connect(
                self.source.server, self.source._values(None), self.source.label
            ) as c:
                self.source.check_listing(await c.list_tools(), c)
                opened.set_result(c)
                await self._stop.wait()
        except BaseException as exc:
            if not opened.done():
                opened.set_exception(exc)
            elif not isinstance(exc, Exception):
                raise

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Called:
        connection, loop = self._connection, self._loop
        assert connection is not None and loop is not None
        future = asyncio.run_coroutine_threadsafe(connection.call_tool(name, arguments), loop)
        try:
            return await asyncio.wrap_future(future)
        except ServerFailed:
            self._broken = True
            raise

    def close(self) -> None:
        with self._lock:
            self._end()

    def _end(self) -> None:
        loop, thread, stop = self._loop, self._thread, self._stop
        self._loop = self._thread = self._stop = self._connection = None
        if loop is None or thread is None:
            return
        if stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        if not thread.is_alive():
            loop.close()


def describe(server: McpServer) -> str:
    """The server as a person would start it (its command, or its URL)."""
    if server.command is not None:
        words = [server.command, *server.args]
        return " ".join(
            shlex.quote(w) if not w or set(w) & set(" \t'\"\\$`;|&<>") else w for w in words
        )
    return server.url or ""


def listing_digest(listing: list[dict[str, Any]]) -> str:
    blob = json.dumps(listing, sort_keys=True, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def _result(
    call: ToolCall, content: str, started: float, error_kind: str | None = None, changes: int = 0
) -> ToolResult:
    return tool_result(call, content, started, error_kind, changes)
