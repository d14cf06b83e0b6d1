"""What the Messages API test server answers, as functions of a request body: the
single-turn ``default_responder`` (a tool call when tools are offered, text once a tool
result comes back) and the helpers every responder shares.

A responder gets the request's parsed JSON body and returns ``{"content": [blocks],
"stop_reason": ...}`` (optionally ``usage``); the server adds ids, usage and the
envelope, and streams it when asked. A responder that raises ``ResponderRefused`` gets
the client a 400 ``invalid_request_error`` (not retried); any other exception, a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Responder = Callable[[dict[str, Any]], dict[str, Any]]


class ResponderRefused(Exception):
    """Raised by a responder for a request it will not answer: the client gets a 400
    ``invalid_request_error`` with the message (not retried, unlike a 500)."""


def placeholder(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """A value satisfying the common parts of a JSON schema (required fields only)."""
    defs = defs if defs is not None else schema.get("$defs", schema.get("definitions", {}))
    if "$ref" in schema:  # pydantic emits local refs: "#/$defs/Name"
        return placeholder(defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), defs)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return placeholder(schema[key][0], defs)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):  # e.g. ["string", "null"]: prefer the non-null type
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: placeholder(props.get(k, {}), defs) for k in schema.get("required", [])}
    if kind == "array":
        items = schema.get("items")
        return [placeholder(items, defs)] * max(1, schema.get("minItems", 1)) if items else []
    simple = {"string": "example", "integer": 1, "number": 1, "boolean": True, "null": None}
    return simple.get(kind, "example")


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(b.get("text", "") for b in content if isinstance(b, dict))


def sent_tool_results(body: Any) -> list[dict[str, Any]]:
    """The ``tool_result`` blocks of a request's last message (what was just sent back)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not messages or not isinstance(messages[-1], dict):
        return []
    content = messages[-1].get("content")
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]


def default_responder(body: dict[str, Any]) -> dict[str, Any]:
    """Call a tool when tools are offered, answer in text once a tool result comes back."""
    messages = body.get("messages") or [{}]
    last = messages[-1].get("content", "")
    results = [b for b in last if isinstance(b, dict) and b.get("type") == "tool_result"]
    tools = [t for t in body.get("tools") or [] if "name" in t]
    choice = body.get("tool_choice") or {}
    if results or not tools or choice.get("type") == "none":
        said = text_of(results[-1].get("content", "")) if results else text_of(last)
        return {
            "content": [{"type": "text", "text": f"Done. {said[:200]}"}],
            "stop_reason": "end_turn",
        }
    wanted = choice.get("name") or next(
        (t["name"] for t in tools if t["name"] in text_of(last)), None
    )
    tool = next((t for t in tools if t["name"] == wanted), tools[0])
    return {
        "content": [
            {"type": "text", "text": f"I'll use {tool['name']}."},
            {
                "type": "tool_use",
                "name": tool["name"],
                "input": placeholder(tool.get("input_schema", {})),
            },
        ],
        "stop_reason": "tool_use",
    }
