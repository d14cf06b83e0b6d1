"""The records of a results file, one JSON object a line, and how a line is parsed.

The first line of every file is a ``Metadata`` record; then ``Result`` and ``Error``
records. An agentic cell's ``Result`` also holds its whole ``conversation``; its
``response_text``, ``usage`` and ``latency_s`` are then the final reply, the totals over
the conversation and its wall time, so every reader of plain results reads it too. The
metadata carries ``format_version``: files written by tooltrial 0.1 have none and read as
version 1; a file from a newer tooltrial is refused with advice rather than misread.

From format 4 the metadata also records the run as it was defined: its kind
(``single-turn`` or ``agentic``), primary metric, the variant as the model saw it (system
prompt, every tool's definition exactly as resolved, where the tools came from), the
scenarios it planned and what the tool definitions cost in tokens, counted by the model
that ran; so a results folder reports without its definition files.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tooltrial._version import __version__
from tooltrial.definitions import Scenario, Tool
from tooltrial.definitions.experiment import Kind, PrimaryMetric
from tooltrial.errors import CorruptLine
from tooltrial.types import (
    CheckResult,
    Conversation,
    Message,
    Order,
    RowChange,
    ToolCall,
    Usage,
    conversation_counts,
)

FORMAT_VERSION = 5
"""2: the model is part of a cell (several models may share a folder). 3: a result may
hold a conversation (agentic experiments). 4: the metadata records the definition as it
ran (``kind``, ``primary_metric``, ``variant_definition``, ``scenarios``,
``tool_footprint``). 5: a result answered in batch mode names its ``batch_id`` and
``custom_id`` (and each assistant turn of a conversation its ``batch``); ``usage`` may
hold ``cache_read_tokens`` / ``cache_write_tokens``; the metadata's ``settings.batch``
records batch mode. These fields are written only when present, so a file of version 4
reads unchanged."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolFootprint(_Record):
    """What a variant's tool definitions cost in each prompt, for one model: characters
    as that model's API takes them, and tokens as ``counted_by`` says (the model's own
    tokenizer, or an estimate of ~4 characters a token)."""

    chars: int
    tokens: int
    counted_by: str


class VariantDefinition(_Record):
    """A variant as the model saw it: its system prompt (before the fixed "now" is
    appended), each tool's name, description and input schema exactly as resolved, and
    where the tools came from (``tool_source``: ``{"kind": "python", ...}``; a variant of a
    single-turn experiment declares its tools: ``{"kind": "declared"}``)."""

    name: str
    description: str = ""
    system_prompt: str
    tools: list[Tool]
    tool_source: dict[str, Any]


class Metadata(_Record):
    type: Literal["metadata"] = "metadata"
    format_version: int = 1
    """1: files written by tooltrial 0.1 (no such field); see FORMAT_VERSION."""
    run_id: str
    experiment: str
    variant: str
    rep: int
    model: str
    temperature: float | None
    fixed_timestamp: str
    zero_persona: bool
    git_commit: str | None
    tooltrial_version: str = __version__
    variant_hash: str
    scenario_ids: list[str]
    runs: int | None = None
    created_at: str = Field(default_factory=utc_now)
    settings: dict[str, Any] = Field(default_factory=dict)
    """Anything else that shaped the run (max_tokens, cache use, provider options, order)."""
    kind: Kind | None = None
    """Format 4 on; before, a file's kind is read from its results."""
    primary_metric: PrimaryMetric | None = None
    variant_definition: VariantDefinition | None = None
    scenarios: list[Scenario] | None = None
    """The scenarios the run planned (``scenario_ids``), as defined."""
    tool_footprint: ToolFootprint | None = None

    @property
    def order(self) -> Order:
        """The order the run called its cells in (``settings.order``; absent: blocked).
        Compare time-dependent metrics (latency) between variants only when randomised."""
        return Order.of(self.settings)


class ConversationRecord(_Record):
    """An agentic cell's conversation as recorded: how it ended and was judged (part by
    part), the counts the report uses, the state diff and every message."""

    success: bool
    stop_reason: str
    turns: int
    """Model turns."""
    tool_calls: int
    tool_errors: int
    checks: list[CheckResult]
    diff: list[RowChange]
    messages: list[Message]

    @classmethod
    def of(cls, conversation: Conversation) -> ConversationRecord:
        return cls(
            success=conversation.success,
            stop_reason=conversation.stop_reason,
            **conversation_counts(conversation.messages),
            checks=list(conversation.checks),
            diff=list(conversation.diff),
            messages=list(conversation.messages),
        )


class Result(_Record):
    type: Literal["scenario_result"] = "scenario_result"
    run_id: str
    scenario_id: str
    variant: str
    rep: int
    response_text: str
    tool_calls: list[ToolCall]
    stop_reason: str | None
    usage: Usage
    latency_s: float
    model: str
    response_model: str | None = None
    temperature: float | None
    timestamp: str = Field(default_factory=utc_now)
    attempts: int = 1
    retry_wait_s: float = 0.0
    cached: bool = False
    trace_id: str | None = None
    content: list[dict[str, Any]] = Field(default_factory=list)
    """Every content block the provider returned, as returned (full provenance)."""
    conversation: ConversationRecord | None = None
    """Agentic cells: the whole conversation and its verdict."""
    batch_id: str | None = Field(default=None, exclude_if=lambda v: v is None)
    """Batch mode: the provider batch that answered the cell (a conversation: its last
    turn; each assistant turn names its own ``batch``)."""
    custom_id: str | None = Field(default=None, exclude_if=lambda v: v is None)
    """Batch mode: the item's id within that batch."""


class Error(_Record):
    type: Literal["scenario_error"] = "scenario_error"
    run_id: str
    scenario_id: str
    variant: str
    rep: int
    kind: str
    message: str
    attempts: int
    retry_wait_s: float = 0.0
    model: str
    timestamp: str = Field(default_factory=utc_now)


Record = Metadata | Result | Error
_RECORD_TYPES: dict[str, type[_Record]] = {
    "metadata": Metadata,
    "scenario_result": Result,
    "scenario_error": Error,
}


def parse_line(path: Path, line_no: int, raw: bytes) -> Record:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CorruptLine(path, line_no, f"not valid JSON ({exc.msg})") from None
    kind = data.get("type") if isinstance(data, dict) else None
    record_type = _RECORD_TYPES.get(kind)  # type: ignore[arg-type]
    if record_type is None:
        raise CorruptLine(path, line_no, f"unknown record type {kind!r}")
    if kind == "metadata" and data.get("format_version", 1) > FORMAT_VERSION:
        raise CorruptLine(
            path,
            line_no,
            f"format_version {data['format_version']} is newer than this tooltrial reads "
            f"({FORMAT_VERSION}); upgrade tooltrial to read it",
        )
    try:
        return record_type.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise CorruptLine(path, line_no, f"{kind} record: {loc}: {first['msg']}") from None
