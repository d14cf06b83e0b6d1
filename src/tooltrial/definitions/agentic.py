"""What an agentic experiment adds to the definitions: the app its tools act on, the
limits of a conversation, and a scenario's success criteria.

An experiment is agentic when it names an ``app`` (``app.py:TasksCalendar`` or
``package.module:Class``); each variant then names the Python file or module that
implements its tools (``implementation:``, one function per tool, same name). Success is
judged by the app's final state, not by which calls were made, so one definition serves
every variant:

- ``state``: rows that must exist with acceptable values, or must be gone (the matchers of
  ``tooltrial.definitions.scenarios`` apply to column values);
- ``only_these_change`` (default true): any other row that changed fails the check;
- ``reference``: calls whose replay, through one variant's tools on a fresh copy, gives
  the expected final state (tau-bench's way);
- ``forbidden``: calls that must not succeed, per variant (``'*'``: every variant);
- ``reply``: text the final reply must mention, and whether the model must ask the user
  before changing anything (a clarifying question or a confirmation).

This module only checks shapes; ``tooltrial.apps`` imports the code and checks that
tables, columns and tool functions exist, before any call.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tooltrial.definitions.calls import ExpectedCall, check_matcher
from tooltrial.definitions.limits import check_value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Limits(_Frozen):
    """When a conversation is stopped if the model has not answered; each is recorded
    as the conversation's stop reason (``tooltrial.types.STOP_REASONS``)."""

    max_turns: int = 10
    """Model turns (calls) per conversation."""
    max_tool_calls: int = 30
    max_tokens: int = 60_000
    """Input plus output tokens over the whole conversation."""
    tool_timeout_s: float = 10.0

    @field_validator("max_turns", "max_tool_calls", "max_tokens", "tool_timeout_s", mode="before")
    @classmethod
    def _in_range(cls, value: Any, info: ValidationInfo) -> Any:
        """Strict and in range (``definitions.limits``): no booleans, numeric strings,
        NaN or infinity."""
        key = "conversation_tokens" if info.field_name == "max_tokens" else info.field_name
        return check_value(str(key), value)


class RowCheck(_Frozen):
    """Rows of ``table`` selected by ``where`` (matchers on columns).

    Without ``gone``: exactly ``count`` rows (default 1) match ``where`` in the final
    state, and each of them matches ``values``. With ``gone: true``: no row matches
    ``where`` in the final state."""

    table: str
    where: dict[str, Any]
    values: dict[str, Any] = Field(default_factory=dict)
    count: StrictInt = Field(default=1, ge=0)
    gone: bool = False

    @model_validator(mode="after")
    def _valid(self) -> RowCheck:
        if not self.where:
            raise ValueError(f"a check on {self.table!r} needs 'where' to select its rows")
        for column, value in {**self.where, **self.values}.items():
            check_matcher(value, f"column {column!r} of {self.table!r}")
        if self.gone and self.values:
            raise ValueError("a 'gone' check takes no 'values'")
        return self


class ReferenceCall(_Frozen):
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


class Reference(_Frozen):
    """Calls through variant ``via``'s tools whose final state is the expected one."""

    via: str
    calls: tuple[ReferenceCall, ...]


class ReplyCheck(_Frozen):
    mentions: tuple[str, ...] = ()
    """Text the final reply must contain (case-insensitive)."""
    asks: bool = False
    """The model must ask the user (a reply with a '?' and no tool call) before it
    changes anything."""

    @field_validator("mentions")
    @classmethod
    def _not_blank(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not text.strip() for text in value):
            raise ValueError("a 'mentions' entry is blank; write the text the reply must contain")
        return value


class Success(_Frozen):
    """What must hold at the end of the conversation; every part, recorded separately."""

    state: tuple[RowCheck, ...] = ()
    only_these_change: bool = True
    """Rows that neither ``state`` nor ``reference`` names must be unchanged."""
    reference: Reference | None = None
    forbidden: dict[str, tuple[ExpectedCall, ...]] = Field(default_factory=dict)
    reply: ReplyCheck | None = None

    def forbidden_for(self, variant: str) -> tuple[ExpectedCall, ...]:
        return self.forbidden.get(variant, self.forbidden.get("*", ()))


CHECK_NAMES = ("answered", "state", "unchanged", "reference", "forbidden", "reply")
"""The parts of a verdict, in the order they are recorded and reported: the model
answered (no limit stopped it), the state checks, nothing else changed, the reference
state, no forbidden action, the reply checks."""
