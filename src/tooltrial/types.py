"""Plain data shared by every layer: what a model returned, what went wrong, which cell
of the experiment a call belongs to, and (agentic experiments) the conversation a cell
had and how it was judged. Nothing here imports the rest of tooltrial.

``ToolCall``, ``Usage``, ``ModelResponse`` and the conversation types are frozen pydantic
models, so they serialise themselves (``model_dump`` / ``model_validate``) the same way
for the JSONL log, the response cache and the traces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolCall(_Frozen):
    id: str
    name: str
    arguments: dict[str, Any]


def _absent(value: Any) -> bool:
    return value is None


class Usage(_Frozen):
    """Tokens a model turn used. ``input_tokens`` counts every prompt token, the cached
    ones too; ``cache_read_tokens`` / ``cache_write_tokens`` say how many of them were
    read from or written to the provider's prompt cache (None: not reported, and not
    written to the log, so lines without them are as before)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int | None = Field(default=None, exclude_if=_absent)
    cache_write_tokens: int | None = Field(default=None, exclude_if=_absent)


class ModelResponse(_Frozen):
    """One model reply: text, tool calls and every content block as the provider gave it."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    stop_reason: str | None
    usage: Usage
    response_model: str | None = None
    content: tuple[dict[str, Any], ...] = ()


def with_unique_call_ids(response: ModelResponse) -> ModelResponse:
    """``response`` with every tool call's id non-empty and unique within the turn (each
    result answers its call by id, so two calls sharing one could not both be answered).
    A repeated or missing id becomes ``<id>_<n>`` (n: the call's place, from 1), in the
    tool calls and in the ``tool_use`` content blocks that carry them (matched in order),
    so the turn is sent back as recorded. A turn whose ids are fine is returned as is."""
    ids = [call.id for call in response.tool_calls]
    if all(ids) and len(set(ids)) == len(ids):
        return response
    taken, renamed = set(ids), []
    seen: set[str] = set()
    for place, old in enumerate(ids, start=1):
        new = old
        if not old or old in seen:
            new = f"{old or 'call'}_{place}"
            while new in taken:
                new += "_"
            taken.add(new)
        seen.add(old)
        renamed.append(new)
    calls = tuple(
        call.model_copy(update={"id": new})
        for call, new in zip(response.tool_calls, renamed, strict=True)
    )
    blocks = [b for b in response.content if b.get("type") == "tool_use"]
    content = response.content
    if len(blocks) == len(calls):
        fresh = iter(renamed)
        content = tuple(
            {**b, "id": next(fresh)} if b.get("type") == "tool_use" else b for b in response.content
        )
    return response.model_copy(update={"tool_calls": calls, "content": content})


# --- conversations (agentic experiments) ------------------------------------------------


class ToolResult(_Frozen):
    """What one tool call returned, as sent back to the model.

    ``content`` is the text the model receives (a tool's JSON-able return value is sent
    as JSON); ``is_error`` marks a tool that raised, an unknown tool, arguments that fail
    the tool's JSON Schema, or a timeout; ``error_kind`` then says which, in a word
    (``timeout``, ``unknown_tool``, ``invalid_arguments``, or the class name of what the
    tool raised), for traces and counts that must not parse the text. ``size`` is
    ``content``'s length in UTF-8 bytes; ``changes`` how many rows the call changed in the
    app (0 for a pure read)."""

    call_id: str
    name: str
    content: str
    is_error: bool = False
    error_kind: str | None = None
    size: int = 0
    changes: int = 0
    duration_s: float = 0.0


class UserTurn(_Frozen):
    role: Literal["user"] = "user"
    text: str


class BatchRef(_Frozen):
    """Which provider batch answered a model turn, and under which item id."""

    batch_id: str
    custom_id: str


class AssistantTurn(_Frozen):
    """One model turn: the reply, and how getting it went (a retried call is one turn).
    ``batch``: the batch item that answered it (batch mode; absent otherwise, and then
    not written)."""

    role: Literal["assistant"] = "assistant"
    response: ModelResponse
    latency_s: float = 0.0
    attempts: int = 1
    retry_wait_s: float = 0.0
    cached: bool = False
    batch: BatchRef | None = Field(default=None, exclude_if=_absent)


class ToolTurn(_Frozen):
    """The results of every tool call of the assistant turn before it, in call order."""

    role: Literal["tool"] = "tool"
    results: tuple[ToolResult, ...]


Message = Annotated[UserTurn | AssistantTurn | ToolTurn, Field(discriminator="role")]
"""One entry of a conversation, as sent to a model (``Model.chat``) and as recorded."""


class CheckResult(_Frozen):
    """One part of a success verdict: its name, whether it held, and why not."""

    name: str
    ok: bool
    detail: str = ""


class RowChange(_Frozen):
    """One row of the app's state that differs between two snapshots (``before`` None:
    added; ``after`` None: removed)."""

    table: str
    key: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


STOP_REASONS = (
    "answered",
    "max_turns",
    "max_tool_calls",
    "max_tokens",
    "tool_timeout",
    "context_window",
)
"""Why a conversation ended: the model answered without a tool call and no scripted user
turn was left, a limit stopped it (``definitions.agentic.Limits``), or the conversation
outgrew the model's context window (a model turn failed with kind ``context_window``)."""


def conversation_counts(messages: Sequence[Message]) -> dict[str, int]:
    """What a conversation's line records as its counts: model turns, tool calls that
    ran, and those that came back as errors (the one rule; ``validate`` rechecks it)."""
    results = [r for m in messages if isinstance(m, ToolTurn) for r in m.results]
    return {
        "turns": sum(isinstance(m, AssistantTurn) for m in messages),
        "tool_calls": len(results),
        "tool_errors": sum(r.is_error for r in results),
    }


def empty_answer(text: str, tool_calls: Sequence[object]) -> bool:
    """An empty answer: no text (whitespace is none) and no tool call.

    The one rule for it (``final_answer_empty`` for a conversation): it is the model's
    answer, so it is a result — the report counts it and scores it (it is never right),
    ``--resume`` treats its cell as done, and ``validate`` counts it ("empty") without
    calling the run incomplete; the judge fails a conversation's ``answered`` part when
    its final answer is empty."""
    return not text.strip() and not tool_calls


def final_answer_empty(messages: Sequence[Message], stop_reason: str) -> bool:
    """A conversation that stopped as answered with an empty final answer
    (:func:`empty_answer`); one a limit stopped never is."""
    turns = [m for m in messages if isinstance(m, AssistantTurn)]
    if stop_reason != "answered" or not turns:
        return False
    last = turns[-1].response
    return empty_answer(last.text, last.tool_calls)


class Conversation(_Frozen):
    """A whole agentic cell: every message, why it stopped, the change it made to the app
    (initial → final state) and the verdict on it, part by part."""

    messages: tuple[Message, ...]
    stop_reason: str
    checks: tuple[CheckResult, ...]
    diff: tuple[RowChange, ...] = ()

    @property
    def success(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def assistant_turns(self) -> list[AssistantTurn]:
        return [m for m in self.messages if isinstance(m, AssistantTurn)]

    @property
    def tool_results(self) -> list[ToolResult]:
        return [r for m in self.messages if isinstance(m, ToolTurn) for r in m.results]

    @property
    def usage(self) -> Usage:
        turns = self.assistant_turns
        return Usage(
            input_tokens=sum(t.response.usage.input_tokens for t in turns),
            output_tokens=sum(t.response.usage.output_tokens for t in turns),
        )

    @property
    def final_text(self) -> str:
        turns = self.assistant_turns
        return turns[-1].response.text if turns else ""


# --- outcomes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """What went wrong with a call, in the terms the runner acts on."""

    kind: str
    message: str
    retryable: bool
    retry_after_s: float | None = None


@dataclass(frozen=True, order=True)
class Cell:
    """One call of the experiment grid: (model, variant, scenario, rep).

    ``model`` is the model's spec (``provider:name``), so runs of several models can share
    a results folder without their cells collapsing into one."""

    model: str
    variant: str
    scenario_id: str
    rep: int


@dataclass
class Outcome:
    """How one cell ended: a response, or the failure of its last attempt. An agentic
    cell's ``response`` is its last model reply and ``conversation`` the whole of it."""

    cell: Cell
    response: ModelResponse | None
    failure: Failure | None
    attempts: int
    retry_wait_s: float
    latency_s: float
    model: str = ""
    temperature: float | None = None
    trace_id: str | None = None
    cached: bool = False
    conversation: Conversation | None = None
    batch: BatchRef | None = None
    """The batch item that answered the cell (its last model turn, for a conversation)."""


UNPARSED = "_unparsed"
"""Arguments a model wrote that are not a JSON object are kept as ``{UNPARSED: raw}``."""


def unparsed_arguments(raw: str) -> dict[str, Any]:
    """How a tool call's unreadable arguments are stored: as written, never dropped."""
    return {UNPARSED: raw}


def malformed_arguments(arguments: Any) -> str | None:
    """The raw text when ``arguments`` are the stored form of unreadable ones, else None."""
    if isinstance(arguments, dict) and set(arguments) == {UNPARSED}:
        raw = arguments[UNPARSED]
        return raw if isinstance(raw, str) else repr(raw)
    return None


@dataclass(frozen=True)
class Order:
    """The order a run called its cells in, as recorded in every file's metadata
    (``settings["order"]``).

    ``random``: within each rep (reps in sequence) the cells follow a permutation fixed by
    ``seed``, so anything that drifts over a run (server load, rate limits, cache warming)
    falls on every variant alike. ``blocked``: variant by variant, as every run did before
    the field existed; files without it read as blocked. Only a randomised run
    supports comparing time-dependent metrics (latency) between variants."""

    kind: Literal["blocked", "random"] = "blocked"
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("blocked", "random"):
            raise ValueError(f"order must be 'blocked' or 'random', not {self.kind!r}")
        if self.kind == "random" and self.seed is None:
            raise ValueError("a random order needs its seed")

    @property
    def randomised(self) -> bool:
        return self.kind == "random"

    def record(self) -> dict[str, Any]:
        """What metadata records: ``{"kind": "random", "seed": N}`` or ``{"kind": "blocked"}``."""
        return {"kind": self.kind, "seed": self.seed} if self.randomised else {"kind": "blocked"}

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> Order:
        """The order recorded in a file's metadata settings (none recorded: blocked)."""
        recorded = settings.get("order")
        if not isinstance(recorded, Mapping):
            return cls()
        kind = recorded.get("kind", "blocked")
        seed = recorded.get("seed")
        return cls(kind, int(seed) if seed is not None else None)

    def describe(self) -> str:
        return f"random (seed {self.seed})" if self.randomised else "blocked (variant by variant)"
