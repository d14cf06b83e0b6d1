"""From what an MCP server lists to the tools the model is sent.

Plain data in (each listed tool as the server sent it: ``name``, ``description``,
``inputSchema``, …), ``Tool`` definitions out, with the map from the name the model
calls to the name the server knows. Every name the variant uses must be one the server
lists, every resulting name must be one providers accept and appear once, and every
input schema must be valid JSON Schema describing an object; anything else is a
``ValueError`` saying what to change in the variant, which the preflight turns into a
``DefinitionError`` naming the variant's file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from tooltrial.definitions.servers import TOOL_NAME, McpServer
from tooltrial.definitions.variants import Tool


def resolve(
    server: McpServer, listed: Sequence[Mapping[str, Any]]
) -> tuple[tuple[Tool, ...], dict[str, str]]:
    """The tools the model is sent (the listed ones, filtered, renamed and re-described
    as the variant says, in the server's order) and model name -> server name."""
    names = [str(tool.get("name")) for tool in listed]
    _known(server, names)
    overrides = {o.name: o for o in server.tools}
    chosen = [t for t in listed if _kept(server, str(t.get("name")))]
    tools: list[Tool] = []
    calls: dict[str, str] = {}
    for raw in chosen:
        name = str(raw.get("name"))
        override = overrides.get(name)
        shown = override.rename if override and override.rename else name
        if not TOOL_NAME.match(shown):
            raise ValueError(
                f"the server lists tool {name!r}, a name providers refuse (1 to 64 letters, "
                f"digits, '_' or '-'): rename it under the variant's tools: "
                f"(- {{name: {name!r}, rename: {_suggest(name)}}}) or exclude it"
            )
        if shown in calls:
            raise ValueError(
                f"two tools would be called {shown!r} ({calls[shown]!r} and {name!r}): "
                "rename one under the variant's tools:"
            )
        description = override.description if override and override.description else None
        try:
            tool = Tool(
                name=shown,
                description=description or str(raw.get("description") or ""),
                input_schema=dict(raw.get("inputSchema") or raw.get("input_schema") or {}),
            )
        except ValidationError as exc:
            problem = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            raise ValueError(
                f"the server lists tool {name!r} with an input schema tooltrial cannot send "
                f"a model ({problem}); fix the server, or exclude the tool"
            ) from None
        tools.append(tool)
        calls[shown] = name
    if not tools:
        raise ValueError(
            "no tool is left for the model (the server lists: "
            f"{', '.join(names) or 'nothing'}); check include and exclude"
        )
    return tuple(tools), calls


def _known(server: McpServer, names: list[str]) -> None:
    named = [*(server.include or ()), *server.exclude, *(o.name for o in server.tools)]
    unknown = sorted({n for n in named if n not in names})
    if unknown:
        raise ValueError(
            f"the variant names tool(s) {', '.join(unknown)}, which the server does not "
            f"list (it lists: {', '.join(sorted(names)) or 'nothing'}); use the server's names"
        )


def _kept(server: McpServer, name: str) -> bool:
    return (server.include is None or name in server.include) and name not in server.exclude


def _suggest(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)[:64]
    return cleaned or "tool"
