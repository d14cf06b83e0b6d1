"""The user's side of a conversation.

A conversation starts with the scenario's ``prompt``. Each time the model answers
without a tool call, the conversation loop asks the cell's ``User`` for the next
message: a text to send, or ``None`` when the user has nothing more to say, and the
conversation ends with stop reason ``answered``. One ``User`` serves one cell, so it may
keep state across turns; it must not depend on anything but the conversation it is shown
and the scenario it was made for, so every variant meets the same user.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tooltrial.definitions import Scenario
from tooltrial.types import Message
from tooltrial.users.scripted import ScriptedUser


class User(Protocol):
    """Where the user's next message comes from."""

    async def reply(self, messages: Sequence[Message]) -> str | None:
        """The next user message after the model's answer (the last of ``messages``),
        or None: the user is done."""
        ...


def user_for(scenario: Scenario) -> User:
    """The user of one cell of ``scenario``: its scripted turns (the only kind yet)."""
    return ScriptedUser(scenario.user_turns)
