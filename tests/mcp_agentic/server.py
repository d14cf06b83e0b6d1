"""The tasks-and-calendar app's MCP server, in two versions, built with the SDK's
``MCPServer`` (FastMCP, renamed in mcp 2):

    python server.py --version 1 --db app.db [--now 2025-03-12T09:00:00+00:00] [--http PORT]

Version 1 is REST-shaped (the tools of ``tests/agentic/baseline_tools.py``), version 2
app-shaped (``applike_tools.py``). The server acts on the database file it is given (a
cell's own copy: ``--db {db}`` in the variant), through the app's own class
(``TasksCalendar.open``), so every rule the app enforces holds here too. It reuses the
existing tool functions and lists each tool with the schema and description of the
in-process variant (``tests/agentic/variants/*.yaml``): a tool is registered with that
schema as its input schema (``_SchemaTool``), rather than one derived from the function's
signature, so the MCP variants and the in-process ones show the model the same tools and
answer the same calls with the same text. Arguments are checked against that schema and
the function is run by tooltrial's Python executor (``PythonTools.run``), so a refusal or
a raised error reads exactly as it does in-process, flagged ``isError``.

Stdio by default; ``--http PORT`` serves streamable HTTP on 127.0.0.1:PORT at ``/mcp``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools.base import Tool as RegisteredTool
from mcp.server.mcpserver.utilities.func_metadata import func_metadata
from mcp.types import CallToolResult, TextContent

from tooltrial.definitions.loading import import_code
from tooltrial.definitions.variants import Tool
from tooltrial.tools.python import PythonTools
from tooltrial.types import ToolCall

AGENTIC = Path(__file__).resolve().parent.parent / "agentic"
SHAPES = {"1": "baseline", "2": "applike"}
NOW = "2025-03-12T09:00:00+00:00"


def _no_arguments() -> None:
    """The signature the SDK inspects; the listed schema is the variant's own."""


class _SchemaTool(RegisteredTool):
    """A tool listed with a given JSON Schema, whose call runs ``tools.run``."""

    tools: Any = None

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False):
        call = ToolCall(id="mcp", name=self.name, arguments=arguments)
        result = self.tools.run(call)
        text = TextContent(type="text", text=result.content)
        return CallToolResult(content=[text], is_error=result.is_error)


def build(version: str, db: str, now: datetime) -> MCPServer:
    """Version ``version`` of the server, acting on the database file ``db``."""
    shape = SHAPES[version]
    variant = yaml.safe_load((AGENTIC / "variants" / f"{shape}.yaml").read_text())
    tools = [Tool.model_validate(t) for t in variant["tools"]]
    functions, _ = import_code(str(AGENTIC / f"{shape}_tools.py"))
    module, name = import_code(f"{AGENTIC / 'app.py'}:TasksCalendar")
    app = getattr(module, name).open(db, now)
    executor = PythonTools({t.name: getattr(functions, t.name) for t in tools}, tools, app, 60)
    metadata = func_metadata(_no_arguments, structured_output=False)
    registered = [
        _SchemaTool(
            fn=_no_arguments,
            name=t.name,
            description=t.description,
            parameters=t.input_schema,
            fn_metadata=metadata,
            is_async=False,
            tools=executor,
        )
        for t in tools
    ]
    return MCPServer(
        "tasks-calendar", version=f"{version}.0.0", tools=registered, log_level="WARNING"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", choices=sorted(SHAPES), required=True)
    parser.add_argument("--db", required=True, help="the database file to act on")
    parser.add_argument("--now", default=NOW, help="the app's fixed 'now' (ISO 8601)")
    parser.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP")
    args = parser.parse_args(argv)
    if not Path(args.db).is_file():
        parser.error(f"--db {args.db}: no such file")
    server = build(args.version, args.db, datetime.fromisoformat(args.now))
    if args.http is None:
        server.run()
    else:
        server.run("streamable-http", host="127.0.0.1", port=args.http)


if __name__ == "__main__":
    sys.exit(main())
