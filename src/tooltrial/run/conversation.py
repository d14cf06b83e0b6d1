"""The agent loop of one agentic cell: model, tools, model, ... until the model answers
or a limit stops it.

Guarantees, and how they are kept:

- Tools run only here, once per call the model made, in the order it made them; a model
  turn that has to be retried is retried by ``next_turn`` alone (the runner's retry loop
  around one model call), so a retry never runs a tool again.
- Each tool call of a turn has an id of its own (``types.with_unique_call_ids``: a
  repeated or missing id is renamed before the turn is recorded or sent back), so every
  result answers exactly one call.
- A conversation ends with exactly one stop reason (``tooltrial.types.STOP_REASONS``):
  ``answered`` when the model replies without a tool call and the user (``users.User``)
  has nothing more to say; otherwise the limit that stopped it. A limit never leaves a
  user message unanswered: the user's next message is sent only if the model may answer.
  Tool calls of a turn that hits a limit are not run: the model would never see their
  results, and the state would hold changes no turn accounts for.
- A model turn that still fails after its retries ends the cell with that ``Failure``
  (recorded as an error line, never as a result, and run again by ``--resume``); except
  a later turn that no longer fits the model's context window (kind ``context_window``),
  which ends the conversation with that stop reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from tooltrial.definitions.agentic import Limits
from tooltrial.tools import ToolExecutor, ToolTimeout
from tooltrial.turns import TurnFailed
from tooltrial.types import (
    AssistantTurn,
    Message,
    ToolResult,
    ToolTurn,
    UserTurn,
    with_unique_call_ids,
)
from tooltrial.users import User

NextTurn = Callable[[Sequence[Message]], Awaitable[AssistantTurn | TurnFailed]]
"""The model's next turn given the conversation so far (retried inside), or how it
failed."""


@dataclass(frozen=True)
class Ended:
    """A conversation that ran to its end (whatever the verdict)."""

    messages: tuple[Message, ...]
    stop_reason: str


async def converse(
    prompt: str,
    user: User,
    limits: Limits,
    tools: ToolExecutor,
    next_turn: NextTurn,
) -> Ended | TurnFailed:
    """Run the loop from the user's ``prompt``; see the module docstring."""
    messages: list[Message] = [UserTurn(text=prompt)]
    turns = calls_made = tokens = 0
    while True:
        reply = await next_turn(tuple(messages))
        if isinstance(reply, TurnFailed):
            if reply.failure.kind == "context_window" and turns:
                # Not a failure of the cell: this conversation no longer fits the model,
                # and running it again would end the same way.
                return Ended(tuple(messages), "context_window")
            return reply
        reply = _with_unique_ids(reply)
        messages.append(reply)
        turns += 1
        tokens += reply.response.usage.input_tokens + reply.response.usage.output_tokens
        calls = reply.response.tool_calls
        said = None if calls else await user.reply(tuple(messages))
        if not calls and said is None:
            return Ended(tuple(messages), "answered")
        stop = _limit_reached(limits, turns, tokens, calls_made + len(calls))
        if stop is not None:
            return Ended(tuple(messages), stop)
        if said is not None:
            messages.append(UserTurn(text=said))
            continue
        results: list[ToolResult] = []
        for call in calls:
            try:
                results.append(await tools.call(call))
            except ToolTimeout as exc:
                results.append(timed_out(exc))
                messages.append(ToolTurn(results=tuple(results)))
                return Ended(tuple(messages), "tool_timeout")
        calls_made += len(calls)
        messages.append(ToolTurn(results=tuple(results)))


def _with_unique_ids(turn: AssistantTurn) -> AssistantTurn:
    """The turn with each tool call's id unique (``types.with_unique_call_ids``)."""
    response = with_unique_call_ids(turn.response)
    return turn if response is turn.response else turn.model_copy(update={"response": response})


def _limit_reached(limits: Limits, turns: int, tokens: int, calls: int) -> str | None:
    """Which limit, if any, forbids another model turn (checked before running tools)."""
    if calls > limits.max_tool_calls:
        return "max_tool_calls"
    if tokens >= limits.max_tokens:
        return "max_tokens"
    if turns >= limits.max_turns:
        return "max_turns"
    return None


def timed_out(exc: ToolTimeout) -> ToolResult:
    """The result the model would get for a call that ran past its time limit."""
    text = str(exc)
    return ToolResult(
        call_id=exc.call.id,
        name=exc.call.name,
        content=text,
        is_error=True,
        error_kind="timeout",
        size=len(text.encode()),
    )
