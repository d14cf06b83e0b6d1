"""One connection to an MCP server, through the official SDK (``mcp``, imported here
only, on first use).

``connect(server, values, label)`` starts the server and yields a ``Connection`` once it
has answered the handshake; leaving the block closes the session and ends the server's
processes, however the block ends. Its guarantees:

- every process is started through ``launcher.py`` as the leader of a process group of
  its own, with a parent-death signal: it ends when the connection closes (the SDK's
  stdio shutdown: stdin closed, then SIGTERM and SIGKILL to the group; for an HTTP
  server tooltrial started, SIGTERM then SIGKILL), and when tooltrial dies, even by
  SIGKILL;
- the server's stderr goes to a file of the connection's own, and its last lines end
  every message about a server that failed (``ServerFailed``): one that cannot be
  started, exits or closes the connection, does not answer the handshake within
  ``startup_timeout_s``, or breaks the protocol (a line on stdout that is not
  JSON-RPC, a malformed result, structured content against its own output schema);
- nothing is cached between connections or calls (the SDK's response cache is off), so
  every listing is the server's answer now;
- a JSON-RPC error answering a tool call is a result the model can act on (the
  specification's way to refuse an unknown tool or bad arguments), not a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

from tooltrial._version import __version__
from tooltrial.definitions.servers import McpServer, fill
from tooltrial.tools.mcp.results import model_text

LAUNCHER = Path(__file__).with_name("launcher.py")
STDERR_TAIL = 1500
"""Characters of a failed server's stderr quoted in its message."""
CONNECTION_CLOSED = -32000


class ServerFailed(Exception):
    """The server itself failed (see the module docstring); the message says how."""


class SdkMissing(Exception):
    """The ``mcp`` package is not installed, or is too old."""


class Called(NamedTuple):
    """A tool call's outcome as the model gets it."""

    content: str
    is_error: bool
    error_kind: str | None


def sdk() -> Any:
    """The ``mcp`` module; ``SdkMissing`` saying how to install it."""
    try:
        import mcp
    except ImportError:
        raise SdkMissing("the MCP SDK is not installed: pip install 'tooltrial[mcp]'") from None
    if not hasattr(mcp, "Client"):
        raise SdkMissing("the installed MCP SDK is older than 2.3: pip install 'tooltrial[mcp]'")
    return mcp


@dataclass
class Connection:
    """A live session with one server process (or one shared remote server)."""

    client: Any
    label: str
    errlog: IO[str]
    faults: list[str] = field(default_factory=list)
    """Transport faults seen so far (each a protocol break)."""
    pidfile: Path | None = None
    """Where the launcher wrote its process group's id (None: no process of ours)."""
    listing_timeout_s: float = 30.0

    def kill(self) -> None:
        """End the server's processes now (SIGKILL to its group): for a server that
        hangs, whose state is unknown anyway. Closing the connection then finds it gone."""
        with contextlib.suppress(OSError, ValueError):
            if self.pidfile is not None:
                os.killpg(int(self.pidfile.read_text()), signal.SIGKILL)

    @property
    def server_info(self) -> dict[str, Any]:
        info = self.client.server_info
        return {"name": info.name, "version": info.version} if info is not None else {}

    @property
    def protocol_version(self) -> str:
        return str(self.client.protocol_version)

    async def list_tools(self) -> list[dict[str, Any]]:
        """Every tool the server lists now, page by page, as the server sent it, within
        the server's ``startup_timeout_s``."""
        mcp = sdk()
        tools: list[dict[str, Any]] = []
        cursor = None
        try:
            async with asyncio.timeout(self.listing_timeout_s):
                for _ in range(1000):
                    page = await self._guarded(self.client.list_tools(cursor=cursor))
                    tools += [
                        t.model_dump(mode="json", by_alias=True, exclude_none=True)
                        for t in page.tools
                    ]
                    cursor = page.next_cursor
                    if cursor is None:
                        return tools
        except TimeoutError:
            what = f"did not list its tools within {self.listing_timeout_s:g} s"
            raise ServerFailed(self.failure(what)) from None
        except mcp.MCPError as exc:
            what = f"refused to list its tools (MCP error {exc.code}: {exc.message})"
            raise ServerFailed(self.failure(what)) from None
        raise ServerFailed(self.failure("lists tools on more than 1000 pages"))

    async def call_tool(self, name: str, arguments: Mapping[str, Any]) -> Called:
        """One call, as the model gets it; ``ServerFailed`` if the server broke."""
        mcp = sdk()
        try:
            result = await self._guarded(self.client.call_tool(name, dict(arguments)))
        except mcp.MCPError as exc:
            return Called(f"MCP error {exc.code}: {exc.message}", True, "mcp_error")
        await self.check()
        dumped = result.model_dump(mode="json", by_alias=True)
        text = model_text(dumped.get("content") or [], result.structured_content)
        return Called(text, bool(result.is_error), "tool_error" if result.is_error else None)

    async def _guarded(self, request: Any) -> Any:
        """``request``'s answer. The server's JSON-RPC error answering it is raised as
        the SDK's ``MCPError``; anything else that goes wrong talking to it (it closed the
        connection, sent what the protocol does not allow, the transport broke) is
        ``ServerFailed``."""
        mcp = sdk()
        try:
            return await request
        except mcp.MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                raise ServerFailed(self.failure("closed the connection (did it exit?)")) from None
            raise
        except (ValueError, RuntimeError) as exc:  # pydantic's ValidationError is a ValueError
            raise ServerFailed(
                self.failure(f"broke the MCP protocol ({_first_line(exc)})")
            ) from None
        except Exception as exc:
            raise ServerFailed(self.failure(f"is unreachable ({_first_line(exc)})")) from None

    async def check(self) -> None:
        """``ServerFailed`` if the server has broken the protocol so far (the SDK hands
        a fault over in a task of its own: let it run first)."""
        for _ in range(3):
            await asyncio.sleep(0)
        if self.faults:
            raise ServerFailed(self.failure(f"broke the MCP protocol ({self.faults[0]})"))

    def failure(self, what: str) -> str:
        return f"{self.label} {what}{stderr_tail(self.errlog)}"


def stderr_tail(errlog: IO[str]) -> str:
    """The end of what the server wrote on stderr, as the end of a message."""
    with contextlib.suppress(OSError, ValueError):
        errlog.flush()
        errlog.seek(0, os.SEEK_END)
        size = errlog.tell()
        errlog.seek(max(0, size - STDERR_TAIL * 4))
        text = errlog.read().strip()[-STDERR_TAIL:]
        if text:
            return f"; its stderr ends:\n{text}"
    return "; it wrote nothing on stderr"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


def leaf(exc: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def server_env(server: McpServer, values: Mapping[str, str]) -> dict[str, str]:
    """The SDK's safe default environment, the variables the variant inherits by name,
    and its own."""
    from mcp.client.stdio import get_default_environment

    inherited = {k: os.environ[k] for k in server.inherit_env if k in os.environ}
    own = {k: fill(v, dict(values)) for k, v in server.env.items()}
    return {**get_default_environment(), **inherited, **own}


def launched(server: McpServer, values: Mapping[str, str], pidfile: Path) -> list[str]:
    """The command line that starts the server through the launcher."""
    assert server.command is not None
    command = [fill(a, dict(values)) for a in (server.command, *server.args)]
    launcher = [sys.executable, "-I", "-S", str(LAUNCHER), str(os.getpid()), str(pidfile)]
    return [*launcher, "--", *command]


@contextlib.asynccontextmanager
async def connect(
    server: McpServer, values: Mapping[str, str], label: str
) -> AsyncIterator[Connection]:
    """A session with the server ``server`` describes, placeholders filled from
    ``values`` (see the module docstring). What the block raises leaves it as raised
    (the SDK's task groups would wrap it in an exception group); anything else raised
    while the connection closes is ``ServerFailed``."""
    raised: list[BaseException] = []
    try:
        async with _session(server, values, label) as connection:
            try:
                yield connection
            except BaseException as exc:
                raised.append(exc)
                raise
    except BaseException as exc:
        error = leaf(exc)
        if (raised and error is raised[0]) or not isinstance(error, Exception):
            raise error from None  # the block's own (or a cancellation), as raised
        if isinstance(error, ServerFailed):
            raise error from None
        raise ServerFailed(f"{label} failed as it was closed ({_first_line(error)})") from None


@contextlib.asynccontextmanager
async def _session(
    server: McpServer, values: Mapping[str, str], label: str
) -> AsyncIterator[Connection]:
    mcp = sdk()
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errlog,
        tempfile.TemporaryDirectory(prefix="tooltrial-mcp-") as scratch,
    ):
        pidfile = Path(scratch) / "launcher.pid" if server.command is not None else None
        async with contextlib.AsyncExitStack() as stack:
            faults: list[str] = []

            async def on_message(message: Any) -> None:
                if isinstance(message, Exception):
                    faults.append(_first_line(message))

            if server.url is None:
                assert pidfile is not None
                command = launched(server, values, pidfile)
                params = mcp.StdioServerParameters(
                    command=command[0],
                    args=command[1:],
                    env=server_env(server, values),
                    cwd=_cwd(server, values),
                )
                transport = mcp.stdio_client(params, errlog=errlog)
            else:
                if pidfile is not None:
                    http = _http_server(server, values, label, errlog, pidfile)
                    await stack.enter_async_context(http)
                from mcp.client.streamable_http import streamable_http_client

                transport = streamable_http_client(fill(server.url, dict(values)))
            client = mcp.Client(
                transport,
                cache=None,
                message_handler=on_message,
                client_info=mcp.Implementation(name="tooltrial", version=__version__),
            )
            connection = Connection(
                client, label, errlog, faults, pidfile, server.startup_timeout_s
            )
            try:  # not anyio's fail_after: the session outlives this block, its scope cannot
                async with asyncio.timeout(server.startup_timeout_s):
                    await stack.enter_async_context(client)
            except TimeoutError:
                raise ServerFailed(
                    connection.failure(
                        f"did not answer the MCP handshake within {server.startup_timeout_s:g} s "
                        "(raise startup_timeout_s if it is only slow)"
                    )
                ) from None
            except Exception as exc:
                raise ServerFailed(connection.failure(_start_problem(leaf(exc)))) from None
            yield connection


def _start_problem(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"could not be started ({exc.strerror or exc})"
    code = getattr(exc, "code", None)
    if code == CONNECTION_CLOSED:
        return "exited (or closed its stdout) before answering the MCP handshake"
    return f"failed the MCP handshake ({_first_line(exc)})"


def _cwd(server: McpServer, values: Mapping[str, str]) -> str:
    here = Path(server.here) if server.here else Path.cwd()
    return str(here / fill(server.cwd, dict(values))) if server.cwd else str(here)


@contextlib.asynccontextmanager
async def _http_server(
    server: McpServer, values: Mapping[str, str], label: str, errlog: IO[str], pidfile: Path
) -> AsyncIterator[None]:
    """An HTTP server process started for this connection, up once its port accepts a
    connection; ended (its whole group) when the block ends."""
    command = launched(server, values, pidfile)
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=errlog,
            stderr=errlog,
            cwd=_cwd(server, values),
            env=server_env(server, values),
            start_new_session=True,
        )
    except OSError as exc:
        raise ServerFailed(f"{label} could not be started ({exc.strerror or exc})") from None
    try:
        await _until_listening(process, server, values, label, errlog)
        yield
    finally:
        await _end(process)


async def _until_listening(
    process: asyncio.subprocess.Process,
    server: McpServer,
    values: Mapping[str, str],
    label: str,
    errlog: IO[str],
) -> None:
    """Wait until the URL's port accepts a TCP connection (polled), the process exits,
    or the startup time runs out."""
    from urllib.parse import urlsplit

    url = urlsplit(fill(server.url or "", dict(values)))
    host, port = url.hostname or "127.0.0.1", url.port or (443 if url.scheme == "https" else 80)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + server.startup_timeout_s
    while True:
        if process.returncode is not None:
            raise ServerFailed(
                f"{label} exited (status {process.returncode}) before listening on {host}:{port}"
                f"{stderr_tail(errlog)}"
            )
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if loop.time() > deadline:
                raise ServerFailed(
                    f"{label} did not listen on {host}:{port} within "
                    f"{server.startup_timeout_s:g} s{stderr_tail(errlog)}"
                ) from None
            await asyncio.sleep(0.02)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


async def _end(process: asyncio.subprocess.Process) -> None:
    """SIGTERM to the launcher (which ends its group), SIGKILL to the group if it is
    still there after the launcher's grace period."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(4.0):
            await process.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
