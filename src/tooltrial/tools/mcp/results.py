"""What the model gets from an MCP tool call: the server's result as text.

Plain data in (a ``CallToolResult`` dumped to JSON-like dicts), text out; no SDK
import. The rule, and why:

- the content blocks reach the model in order, one per line group: text as text; an
  embedded text resource as its text under a ``[resource URI]`` line; anything the model
  cannot be sent as text (an image, audio, a binary resource, a resource link, a block
  type this version does not know) as one bracketed line describing it (kind, MIME type,
  size, URI), so nothing the server returned disappears without a trace;
- ``structuredContent`` reaches the model as JSON when the server sent no content
  blocks. A server that follows the specification also sends its structured result as a
  text block, and MCP clients give models the content blocks, so the model here sees
  what it would see in production.
- ``is_error`` is the server's own flag, unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def model_text(content: Sequence[Mapping[str, Any]], structured: Any = None) -> str:
    """The text the model is sent for a result with these content blocks."""
    if not content and structured is not None:
        return json.dumps(structured, ensure_ascii=False)
    return "\n".join(_block(block) for block in content)


def _block(block: Mapping[str, Any]) -> str:
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind in ("image", "audio"):
        return f"[{kind}: {block.get('mimeType') or block.get('mime_type')}, {_size(block)}]"
    if kind == "resource_link":
        name = block.get("name")
        return f"[resource link: {block.get('uri')}{f' ({name})' if name else ''}]"
    if kind == "resource":
        resource = block.get("resource") or {}
        uri, mime = resource.get("uri"), resource.get("mimeType") or resource.get("mime_type")
        if "text" in resource:
            return f"[resource {uri}]\n{resource['text']}"
        return f"[resource {uri}: {mime}, {_size(resource, 'blob')}]"
    return f"[a content block of type {kind!r} that tooltrial cannot show the model]"


def _size(block: Mapping[str, Any], field: str = "data") -> str:
    data = str(block.get(field) or "")
    return f"{len(data) * 3 // 4 - data[-2:].count('=')} bytes"
