"""A scripted user: the scenario's ``user_turns``, one per model answer, in order.

The script is the same for every variant, so it holds the user fixed across them: the
second message is sent after the first answer whatever that answer said.
"""

from __future__ import annotations

from collections.abc import Sequence

from tooltrial.types import Message


class ScriptedUser:
    """Replies with the next scripted turn; done when none is left."""

    def __init__(self, turns: Sequence[str]) -> None:
        self._left = list(turns)

    async def reply(self, messages: Sequence[Message]) -> str | None:
        return self._left.pop(0) if self._left else None
