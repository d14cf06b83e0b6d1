"""Plain-data pieces of the MCP source, without a server: what differs between two tool
sets (``tools.diff``), a server's result as the model gets it (``tools.mcp.results``),
and listed tools to definitions (``tools.mcp.listing``); and ``tooltrial tools``."""

from __future__ import annotations

import json
import re

import pytest

from tooltrial.cli import main
from tooltrial.definitions.servers import McpServer, ToolOverride
from tooltrial.tools.diff import diff_tools, schema_paths
from tooltrial.tools.mcp.listing import resolve
from tooltrial.tools.mcp.results import model_text


def tool(name: str, description: str = "", **properties: object) -> dict:
    schema = {"type": "object", "properties": properties}
    return {"name": name, "description": description, "input_schema": schema}


# --- tools.diff ------------------------------------------------------------------------


def test_a_diff_names_added_removed_renamed_and_changed_tools():
    before = [
        tool("get_task", "Get a task.", id={"type": "integer"}),
        tool("delete_task", "DELETE /tasks/{id}", id={"type": "integer"}),
        tool("ping", "Ping."),
        tool("list", "List them.", page={"type": "integer"}),
    ]
    after = [
        tool("fetch_task", "Get a task.", id={"type": "integer"}),  # renamed
        tool("delete_task", "Delete a task, by id.", id={"type": "integer"}),
        tool("list", "List them.", page={"type": "integer", "minimum": 1}),
        tool("search", "Search.", text={"type": "string"}),
    ]
    changed = diff_tools(before, after)
    assert changed.added == ("search",) and changed.removed == ("ping",)
    assert [(r.before, r.after) for r in changed.renamed] == [("get_task", "fetch_task")]
    (described,) = changed.descriptions
    assert (described.name, described.after) == ("delete_task", "Delete a task, by id.")
    (schema,) = changed.schemas
    assert (schema.name, schema.paths) == ("list", ("/properties/page/minimum",))
    assert changed.lines() == [
        "added search",
        "removed ping",
        "renamed get_task -> fetch_task",
        "description of delete_task: 'DELETE /tasks/{id}' -> 'Delete a task, by id.'",
        "schema of list differs at /properties/page/minimum",
    ]
    assert json.loads(json.dumps(changed.as_dict()))["added"] == ["search"]
    assert diff_tools(before, before).empty


def test_a_rename_prefers_the_tool_with_the_same_description():
    same = {"id": {"type": "integer"}}
    before = [tool("get", "Get one.", **same)]
    after = [tool("remove", "Remove one.", **same), tool("fetch", "Get one.", **same)]
    (renamed,) = diff_tools(before, after).renamed
    assert renamed.after == "fetch"


def test_schema_paths_are_json_pointers():
    a = {"properties": {"a/b": {"type": "string"}}, "required": ["x"]}
    b = {"properties": {"a/b": {"type": "integer"}, "c": {}}, "required": ["x", "y"]}
    assert schema_paths(a, b) == ["/properties/a~1b/type", "/properties/c", "/required"]


# --- tools.mcp.results ---------------------------------------------------------------------


def test_every_content_block_reaches_the_model_as_text():
    content = [
        {"type": "text", "text": "first"},
        {"type": "image", "data": "aGVsbG8=", "mimeType": "image/png"},
        {"type": "audio", "data": "AAAA", "mimeType": "audio/wav"},
        {"type": "resource_link", "uri": "file:///a.txt", "name": "a.txt"},
        {"type": "resource", "resource": {"uri": "mem://n", "text": "embedded"}},
        {"type": "resource", "resource": {"uri": "mem://b", "blob": "AAAA", "mimeType": "x/y"}},
        {"type": "hologram"},
    ]
    assert model_text(content).splitlines() == [
        "first",
        "[image: image/png, 5 bytes]",
        "[audio: audio/wav, 3 bytes]",
        "[resource link: file:///a.txt (a.txt)]",
        "[resource mem://n]",
        "embedded",
        "[resource mem://b: x/y, 3 bytes]",
        "[a content block of type 'hologram' that tooltrial cannot show the model]",
    ]


def test_structured_content_is_json_when_there_is_no_content_block():
    assert model_text([], {"a": 1, "é": [1]}) == '{"a": 1, "é": [1]}'
    assert model_text([{"type": "text", "text": "1"}], {"result": 1}) == "1"
    assert model_text([]) == ""


# --- tools.mcp.listing ------------------------------------------------------------------


LISTED = [
    {"name": "read", "description": "Read.", "inputSchema": {"type": "object"}},
    {"name": "write", "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}}},
    {"name": "drop", "description": "Drop.", "inputSchema": {"type": "object"}},
]


def test_listed_tools_are_filtered_renamed_and_described_in_the_servers_order():
    server = McpServer(
        command="srv",
        exclude=("drop",),
        tools=(
            ToolOverride(name="write", rename="save", description="Save it."),
            ToolOverride(name="read", description="Read it."),
        ),
    )
    tools, calls = resolve(server, LISTED)
    assert [(t.name, t.description) for t in tools] == [("read", "Read it."), ("save", "Save it.")]
    assert calls == {"read": "read", "save": "write"}
    only = resolve(McpServer(command="srv", include=("write",)), LISTED)[0]
    assert [t.name for t in only] == ["write"] and only[0].description == ""


@pytest.mark.parametrize(
    ("server", "said"),
    [
        (McpServer(command="s", include=("nope",)), "names tool(s) nope, which the server"),
        (McpServer(command="s", include=()), "no tool is left for the model"),
        (
            McpServer(command="s", tools=(ToolOverride(name="read", rename="write"),)),
            "two tools would be called 'write'",
        ),
    ],
)
def test_what_cannot_be_sent_is_refused_with_the_fix(server, said):
    with pytest.raises(ValueError, match=re.escape(said)):
        resolve(server, LISTED)


# --- tooltrial tools ---------------------------------------------------------------------


def test_tools_prints_each_variants_tools_footprint_and_diff(capsys):
    code = main(["tools", "tests/agentic", "--model", "anthropic:claude-x", "--json"])
    assert code == 0
    shown = json.loads(capsys.readouterr().out)
    baseline, applike = shown["variants"]["baseline"], shown["variants"]["applike"]
    assert [t["name"] for t in baseline["tools"]][:2] == ["list_tasks", "get_task"]
    assert baseline["source"]["kind"] == "python"
    assert applike["footprint"]["tokens"] == -(-applike["footprint"]["chars"] // 4)
    (diff,) = shown["diffs"]
    assert (diff["from"], diff["to"]) == ("baseline", "applike")
    assert "find" in diff["added"] and "list_tasks" in diff["removed"]
    main(["tools", "tests/agentic", "--model", "anthropic:claude-x", "--variant", "applike"])
    text = capsys.readouterr().out
    assert "applike: 14 tools" in text and "find(text)" in text and "->" not in text


def test_tools_shows_what_a_re_described_server_changes(capsys):
    """The same MCP server, two variants: only the descriptions the variant gives differ."""
    args = ["tools", "tests/mcp_agentic/experiment-described.yaml", "--model", "anthropic:x"]
    assert main([*args, "--variant", "baseline", "--variant", "baseline-described"]) == 0
    text = capsys.readouterr().out
    assert "from MCP server tasks-calendar 1.0.0 (stdio: {python} server.py" in text
    diff = text.split("baseline -> baseline-described")[1].strip().splitlines()
    assert [line.split(":")[0].strip() for line in diff] == [
        "description of list_tasks",
        "description of update_task",
    ]


def test_an_mcp_variant_in_python_takes_tools_as_overrides():
    from tooltrial.definitions import McpServer, Variant

    variant = Variant(
        name="v2",
        system_prompt="Use the tools.",
        mcp={"command": "uvx", "args": ["my-server@2", "--db", "{db}"]},
        tools=[{"name": "get_task", "rename": "fetch_task"}],
    )
    assert isinstance(variant.mcp, McpServer) and variant.tools == ()
    assert variant.mcp.tools[0].rename == "fetch_task"
    assert variant.mcp.placeholder_names() == {"db"}
    assert variant.mcp.record() == {
        "transport": "stdio",
        "command": ["uvx", "my-server@2", "--db", "{db}"],
        "stateless": False,
    }
