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
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tooltrial._version import __version__
from tooltrial.definitions import Scenario, Tool
from tooltrial.definitions.agentic import Limits
from tooltrial.definitions.experiment import Kind, PrimaryMetric
from tooltrial.definitions.limits import LIMITS
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

    @field_validator("rep", "runs")
    @classmethod
    def _rep_in_range(cls, value: int | None) -> int | None:
        return _a_rep(value)

    @field_validator("fixed_timestamp")
    @classmethod
    def _a_moment(cls, value: str) -> str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value[:40]!r} is not an ISO 8601 date and time") from None
        if moment.tzinfo is None:
            raise ValueError(f"{value!r} has no UTC offset")
        return value

    @model_validator(mode="after")
    def _settings_readable(self) -> Metadata:
        problem = _settings_problem(self.settings)
        if problem is not None:
            raise ValueError(f"settings.{problem}")
        return self

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

    @field_validator("rep")
    @classmethod
    def _rep_in_range(cls, value: int) -> int | None:
        return _a_rep(value)

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

    @field_validator("rep")
    @classmethod
    def _rep_in_range(cls, value: int) -> int | None:
        return _a_rep(value)


def _a_rep(value: int | None) -> int | None:
    """A rep or a number of runs: within the range ``--runs`` takes (so a file that
    claims a billion runs is refused, never planned or listed)."""
    problem = LIMITS["runs"].problem(value) if value is not None else None
    if problem is not None:
        raise ValueError(problem)
    return value


_PLAN_LISTS = ("models", "variants", "scenario_ids")
_TEXTS = ("experiment_source", "app", "cache", "front_end")


def _settings_problem(settings: dict[str, Any]) -> str | None:
    """What in a metadata line's ``settings`` a reader could not use, or None."""
    for key in _TEXTS:
        if settings.get(key) is not None and not isinstance(settings[key], str):
            return f"{key}: must be text"
    max_tokens = settings.get("max_tokens")
    if max_tokens is not None and LIMITS["max_tokens"].problem(max_tokens):
        return f"max_tokens: {LIMITS['max_tokens'].problem(max_tokens)}"
    try:
        Order.of(settings)
    except (TypeError, ValueError) as exc:
        return f"order: {exc}"
    plan = settings.get("plan")
    if plan is not None:
        if not isinstance(plan, dict):
            return "plan: must be a mapping"
        for key in _PLAN_LISTS:
            names = plan.get(key)
            if names is not None and not (
                isinstance(names, list) and all(isinstance(n, str) for n in names)
            ):
                return f"plan.{key}: must be a list of names"
        if plan.get("runs") is not None and LIMITS["runs"].problem(plan["runs"]):
            return f"plan.runs: {LIMITS['runs'].problem(plan['runs'])}"
    setup = settings.get("setup")
    if setup is not None and not (
        isinstance(setup, dict) and all(isinstance(v, str) for v in setup.values())
    ):
        return "setup: must be a mapping of part to hash"
    limits = settings.get("limits")
    if limits is not None:
        try:
            Limits.model_validate(limits)
        except ValidationError as exc:
            first = exc.errors()[0]
            return f"limits.{'.'.join(map(str, first['loc']))}: {first['msg']}"
    return None


Record = Metadata | Result | Error
_RECORD_TYPES: dict[str, type[_Record]] = {
    "metadata": Metadata,
    "scenario_result": Result,
    "scenario_error": Error,
}


MAX_DEPTH = 100
"""The deepest nesting of arrays and objects a line may hold (a conversation's tool
arguments are a few levels down); deeper is refused as corrupt, never recursed into."""


def parse_line(path: Path, line_no: int, raw: bytes) -> Record:
    """One committed line as its record, or ``CorruptLine`` naming the file and line and
    what is wrong: not UTF-8 (a compressed file), not JSON (``NaN`` and infinities are not
    JSON), nested deeper than ``MAX_DEPTH``, an unknown record type, a ``format_version``
    that is not a whole number or is newer than this tooltrial, or a record whose fields
    do not fit it."""
    data = _json(path, line_no, raw)
    kind = data.get("type") if isinstance(data, dict) else None
    record_type = _RECORD_TYPES.get(kind) if isinstance(kind, str) else None
    if record_type is None:
        raise CorruptLine(path, line_no, f"unknown record type {_short(kind)}")
    if kind == "metadata":
        _check_format_version(path, line_no, data.get("format_version", 1))
    try:
        return record_type.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise CorruptLine(path, line_no, f"{kind} record: {loc}: {first['msg']}") from None


def _json(path: Path, line_no: int, raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if raw.startswith(b"\x1f\x8b"):  # gzip's magic number
            why = "a gzip-compressed file, not JSON lines: decompress it"
        else:
            why = f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
        raise CorruptLine(path, line_no, why) from None
    try:
        data = json.loads(text, parse_constant=_not_json, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise CorruptLine(path, line_no, f"not valid JSON ({exc.msg})") from None
    except ValueError as exc:
        raise CorruptLine(path, line_no, f"not valid JSON ({exc})") from None
    except RecursionError:
        raise CorruptLine(path, line_no, f"nested more than {MAX_DEPTH} levels deep") from None
    if _too_deep(raw, data):
        raise CorruptLine(path, line_no, f"nested more than {MAX_DEPTH} levels deep")
    return data


def _not_json(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


def _finite(token: str) -> float:
    number = float(token)
    if not math.isfinite(number):
        raise ValueError(f"{token[:20]} is too large for a number")
    return number


def _too_deep(raw: bytes, data: Any) -> bool:
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False  # cannot nest deeper than its brackets: the common case, in C
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        if depth > MAX_DEPTH:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _check_format_version(path: Path, line_no: int, version: Any) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CorruptLine(
            path,
            line_no,
            f"format_version {_short(version)} is not a format version (a whole number "
            f"from 1 to {FORMAT_VERSION})",
        )
    if version > FORMAT_VERSION:
        raise CorruptLine(
            path,
            line_no,
            f"format_version {version} is newer than this tooltrial reads "
            f"({FORMAT_VERSION}); upgrade tooltrial to read it",
        )


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "…"
