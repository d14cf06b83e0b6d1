"""Where a model turn comes from.

A ``TurnSource`` answers one ``TurnRequest`` — the cell, the system prompt, the
conversation so far and the tools, all plain data — with the model's next turn, or with
``TurnFailed`` once it has given up on it. Whatever the source (a live call with pacing,
retries and a cache: ``live.LiveTurns``; a provider's batch API next), the conversation
loop, the judge and the log see the same ``AssistantTurn``, so a cell's line does not
depend on how its turns were obtained.

Guarantees every source keeps: a request is answered at most once per ``next_turn`` call
(retries happen inside it, so a retried turn never runs a tool again); a turn that fails
is a ``TurnFailed`` carrying its last failure, never an exception (except cancellation
and a ``TooltrialError`` that stops the run); ``preflight`` checks each named model before
any cell of it is called.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from tooltrial.definitions.variants import Tool
from tooltrial.types import AssistantTurn, Cell, Failure, Message, UserTurn


@dataclass(frozen=True)
class TurnRequest:
    """What a model is sent for one turn of one cell."""

    cell: Cell
    system: str
    messages: tuple[Message, ...]
    """The conversation so far; it starts with the scenario's prompt as a user turn."""
    tools: tuple[Tool, ...]

    @property
    def prompt(self) -> str:
        """The scenario's prompt: the first user message."""
        first = self.messages[0]
        assert isinstance(first, UserTurn), "a conversation starts with the user"
        return first.text


@dataclass(frozen=True)
class TurnFailed:
    """A model turn that still failed after its retries: its last failure, how many
    attempts it took and how long they waited (what the cell's error line records)."""

    failure: Failure
    attempts: int
    retry_wait_s: float


class TurnSource(Protocol):
    """Where a run's model turns come from."""

    async def preflight(self, models: Iterable[str]) -> tuple[str, Failure] | None:
        """Check each model (a spec) before its first cell; the spec and last failure of
        the first that never got through, or None."""
        ...

    def cached(self, request: TurnRequest) -> bool:
        """Whether the request would be answered without calling its model."""
        ...

    async def next_turn(self, request: TurnRequest) -> AssistantTurn | TurnFailed:
        """The model's next turn, or how it failed after the source's retries."""
        ...
