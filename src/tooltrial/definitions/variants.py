"""Variants: a named tool set plus the system prompt that introduces it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tooltrial.definitions.servers import McpServer


class Tool(BaseModel):
    """A tool as the model sees it: name, description and JSON Schema of its input."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str
    input_schema: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )

    @field_validator("input_schema")
    @classmethod
    def _is_json_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.path) or "(root)"
            raise ValueError(
                f"input_schema is not valid JSON Schema at {where}: {exc.message}"
            ) from None
        if schema.get("type") != "object":
            raise ValueError('input_schema must describe an object ("type": "object")')
        return schema

    def openai_format(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.input_schema,
            },
        }

    def anthropic_format(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
        }


class Variant(BaseModel):
    """One arm of the experiment: what the model is told and which tools it gets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    system_prompt: str
    tools: tuple[Tool, ...] = ()
    implementation: str | None = None
    """Agentic experiments: the Python file (``.py``, relative to the variant's file when
    loaded from one) or module holding one function per tool, each named as its tool;
    see ``tooltrial.apps``."""
    mcp: McpServer | None = None
    """Agentic experiments: the MCP server the tools come from, instead of ``tools`` and
    ``implementation`` (see ``tooltrial.definitions.servers``). The tools are those it
    lists, resolved at the preflight; in a definition, ``tools:`` beside ``mcp:`` holds
    what the variant changes of them (``name``, ``rename``, ``description``)."""

    @model_validator(mode="before")
    @classmethod
    def _server_tools_are_overrides(cls, data: Any) -> Any:
        """Beside ``mcp:``, ``tools:`` lists overrides of the server's tools: they belong
        to the server's settings (``McpServer.tools``)."""
        if isinstance(data, dict) and isinstance(data.get("mcp"), dict) and "tools" in data:
            data = dict(data)
            data["mcp"] = {**data["mcp"], "tools": data.pop("tools")}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> Variant:
        if self.mcp is not None and self.implementation is not None:
            raise ValueError(
                "give 'mcp' (tools from a server) or 'implementation' (Python functions), not both"
            )
        if self.mcp is None and not self.tools:
            raise ValueError("'tools' is missing or empty: list the variant's tools")
        return self

    @field_validator("tools")
    @classmethod
    def _unique_tool_names(cls, tools: tuple[Tool, ...]) -> tuple[Tool, ...]:
        names = [t.name for t in tools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tool names must be unique; repeated: {', '.join(dupes)}")
        return tools

    @property
    def tool_names(self) -> frozenset[str]:
        """The tools it declares (none for an MCP variant: its server lists them)."""
        return frozenset(t.name for t in self.tools)

    @cached_property
    def definition_hash(self) -> str:
        """Changes whenever anything the model sees of this variant changes, or the code
        of its tools (an ``implementation`` file) does; ``tool_set_hash`` of what it
        declares."""
        code = implementation_code(self.implementation)
        identity: dict[str, Any] = {}
        if code is not None:
            identity["implementation"] = hashlib.sha256(code).hexdigest()
        if self.mcp is not None:
            identity["mcp"] = self.mcp.model_dump(mode="json")
        return tool_set_hash(self.system_prompt, self.tools, identity)


def tool_set_hash(system_prompt: str, tools: Sequence[Tool], identity: Mapping[str, Any]) -> str:
    """A variant's hash: changes whenever anything the model sees of it changes (its
    prompt, a tool's name, description or schema) or what runs its tools does (the tool
    source's ``identity``, minus its ``kind``, so Python tools hash as they always have)."""
    fields: dict[str, Any] = {
        "system_prompt": system_prompt,
        "tools": [t.model_dump() for t in tools],
        **{key: value for key, value in identity.items() if key != "kind"},
    }
    blob = json.dumps(fields, sort_keys=True)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def implementation_code(reference: str | None) -> bytes | None:
    """The source of an implementation given as a .py file (a module's is not read)."""
    if reference is None:
        return None
    file = reference.partition(":")[0]
    try:
        return Path(file).read_bytes() if file.endswith(".py") else None
    except OSError:
        return None  # binding the experiment reports the missing file
