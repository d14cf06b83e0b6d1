"""An MCP server (the SDK's ``MCPServer``) that misbehaves on request, for tooltrial's
fault tests; a real server process, over stdio (or ``--http PORT``).

    python faults.py MODE [--starts FILE] [--http PORT]

Tools: ``echo(text)`` (answers ``text``), ``whoami()`` (this process's pid, and how many
calls it has served), ``add(a, b)``, ``shout(text)`` (an error result: ``is_error``),
``getenv(name)`` (an environment variable, or ``(unset)``).
It reports version ``$FAULTS_VERSION`` (default 0.1.0). Every start appends a line to
``--starts FILE`` (so a test can count processes started), and every ``echo`` call, when
it begins, a line to ``FILE.calls``.

Modes: ``ok``; ``exit`` (exits with status 3 before the handshake, after a line on
stderr); ``exit-later`` (the same, from the second start on); ``slow-start`` (sleeps
an hour before serving); ``die`` (the first ``echo`` kills the process); ``die-once``
(the same, only for the first ``echo`` ever served with this ``--starts`` file); ``hang`` (``echo``
never returns); ``garbage`` (``echo`` first writes a line that is not JSON-RPC on the
protocol's stdout, as a server that logs to stdout does: the SDK guards its own
``sys.stdout``, so this writes to a copy of fd 1 taken at start); ``bad-result``
(``whoami`` answers structured content against its own output schema); ``bad-schema``
(``add``'s input schema is not valid JSON Schema); ``bad-name`` (one tool is named
``a.b``); ``changing`` (from the second start on, lists one more
tool, ``extra``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent


def _first_death(starts: Path | None) -> bool:
    """True the first time it is asked for this ``--starts`` file."""
    marker = Path(f"{starts}.died")
    if marker.exists():
        return False
    marker.write_text("died")
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode")
    parser.add_argument("--starts", type=Path)
    parser.add_argument("--http", type=int)
    args = parser.parse_args()
    earlier = 0
    if args.starts is not None:
        earlier = len(args.starts.read_text().splitlines()) if args.starts.exists() else 0
        with args.starts.open("a") as starts:
            starts.write(f"{os.getpid()}\n")
    wire = os.dup(1)  # the protocol's stdout, before the SDK guards it
    if args.mode == "exit" or (args.mode == "exit-later" and earlier > 0):
        print("faults.py: exiting on purpose before the handshake", file=sys.stderr)
        sys.exit(3)
    if args.mode == "slow-start":
        time.sleep(3600)
    version = os.environ.get("FAULTS_VERSION", "0.1.0")
    server = MCPServer("faults", version=version, log_level="WARNING")
    served = {"calls": 0}

    @server.tool()
    def echo(text: str) -> str:
        """Answer with the text."""
        served["calls"] += 1
        if args.starts is not None:
            with Path(f"{args.starts}.calls").open("a") as calls:
                calls.write(f"{os.getpid()}\n")
        if args.mode == "die" or (args.mode == "die-once" and _first_death(args.starts)):
            print("faults.py: dying mid-call on purpose", file=sys.stderr, flush=True)
            os._exit(4)
        if args.mode == "hang":
            time.sleep(3600)
        if args.mode == "garbage":
            os.write(wire, b"this line is not JSON-RPC\n")
        return text

    @server.tool()
    def whoami() -> CallToolResult:
        """This server process's pid and the calls it has served."""
        served["calls"] += 1
        answer: dict = {"pid": os.getpid(), "calls": served["calls"]}
        if args.mode == "bad-result":
            answer = {"pid": "not a number"}
        text = TextContent(type="text", text=json.dumps(answer))
        return CallToolResult(content=[text], structured_content=answer)

    @server.tool(name="a.b" if args.mode == "bad-name" else "add")
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def getenv(name: str) -> str:
        """An environment variable of this process."""
        return os.environ.get(name, "(unset)")

    @server.tool()
    def shout(text: str) -> CallToolResult:
        """Always an error result."""
        return CallToolResult(content=[TextContent(type="text", text=text.upper())], is_error=True)

    if args.mode == "changing" and earlier > 0:

        @server.tool()
        def extra() -> str:
            """A tool that was not there at the first start."""
            return "extra"

    if args.mode == "bad-result":  # advertised, so the client checks it
        tool = server._tool_manager.get_tool("whoami")
        tool.fn_metadata.output_schema = {
            "type": "object",
            "properties": {"pid": {"type": "integer"}},
            "required": ["pid"],
        }
    if args.mode == "bad-schema":
        tool = server._tool_manager.get_tool("add")
        tool.parameters = {"type": "object", "properties": {"a": {"type": "integr"}}}
    if args.http is None:
        server.run()
    else:
        server.run("streamable-http", host="127.0.0.1", port=args.http)


if __name__ == "__main__":
    main()
