"""What a model's reply may hold, and what tooltrial makes of it (``models.base``,
``models.langchain``, ``types.with_unique_call_ids``, ``turns.live``'s waits)."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace
from typing import Any

import pytest

from tooltrial.models import get_model
from tooltrial.models.base import MAX_RETRY_AFTER_S, BadResponse, generic_failure, status_failure
from tooltrial.models.langchain import _checked_anthropic, _checked_openai, read_reply
from tooltrial.turns import RetryPolicy, TurnRequest
from tooltrial.turns.live import LiveTurns
from tooltrial.turns.pacing import Pacer
from tooltrial.types import (
    AssistantTurn,
    Cell,
    ModelResponse,
    ToolCall,
    Usage,
    UserTurn,
    malformed_arguments,
    with_unique_call_ids,
)


def response(*ids: str) -> ModelResponse:
    calls = tuple(ToolCall(id=i, name="t", arguments={"n": n}) for n, i in enumerate(ids))
    blocks = tuple({"type": "tool_use", "id": i, "name": "t", "input": {}} for i in ids)
    return ModelResponse(
        text="", tool_calls=calls, stop_reason="tool_use", usage=Usage(), content=blocks
    )


@pytest.mark.parametrize(
    ("ids", "unique"),
    [
        (("a", "a", "a"), ("a", "a_2", "a_3")),
        (("a", "", "b"), ("a", "call_2", "b")),
        (("a", "a", "a_2"), ("a", "a_2_", "a_2")),
    ],
)
def test_tool_use_ids_are_made_unique_in_calls_and_blocks(ids: tuple[str, ...], unique: Any):
    fixed = with_unique_call_ids(response(*ids))
    assert tuple(c.id for c in fixed.tool_calls) == unique
    assert tuple(b["id"] for b in fixed.content) == unique
    assert [c.arguments for c in fixed.tool_calls] == [{"n": n} for n in range(len(ids))]


def test_unique_ids_are_left_alone() -> None:
    original = response("a", "b")
    assert with_unique_call_ids(original) is original


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2", 2.0),
        ("99999", MAX_RETRY_AFTER_S),
        ("inf", None),
        ("nan", None),
        ("-5", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        (None, None),
    ],
)
def test_a_retry_after_is_bounded(header: str | None, seconds: float | None) -> None:
    headers = {} if header is None else {"retry-after": header}
    failure = status_failure(429, "slow down", SimpleNamespace(headers=headers))
    assert failure.retryable and failure.retry_after_s == seconds


def test_no_wait_is_longer_than_the_cap() -> None:
    failure = status_failure(429, "x", SimpleNamespace(headers={"retry-after": "1e9"}))
    delay = RetryPolicy().delay(1, failure, random.Random(0))
    assert delay <= MAX_RETRY_AFTER_S


def test_an_unreadable_200_is_a_retried_bad_response() -> None:
    with pytest.raises(BadResponse) as raised:
        read_reply(lambda: [][0])
    failure = generic_failure(raised.value)
    assert failure.kind == "bad_response" and failure.retryable


@pytest.mark.parametrize("body", [{"hello": 1}, SimpleNamespace(content="text")])
def test_a_body_that_is_not_a_message_is_a_bad_response(body: Any) -> None:
    with pytest.raises(BadResponse, match="not a message"):
        _checked_anthropic(body)


@pytest.mark.parametrize("value", ["title=x", ["x"], None, 5])
def test_tool_input_that_is_not_an_object_keeps_what_the_model_wrote(value: Any) -> None:
    block = SimpleNamespace(type="tool_use", input=value)
    message = SimpleNamespace(content=[block], model_dump=lambda: {})
    _checked_anthropic(message)
    assert malformed_arguments(block.input) is not None


@pytest.mark.parametrize("raw", ['"x"', "[1]", "null", "3"])
def test_openai_arguments_that_are_not_an_object_keep_what_the_model_wrote(raw: str) -> None:
    call = {"id": "c", "type": "function", "function": {"name": "t", "arguments": raw}}
    data = {"choices": [{"message": {"role": "assistant", "tool_calls": [call]}}]}
    _checked_openai(data)
    assert "_unparsed" in call["function"]["arguments"]


def test_nan_is_not_a_token_count() -> None:
    with pytest.raises(ValueError):
        Usage(input_tokens=math.nan, output_tokens=1)  # type: ignore[arg-type]


class TooMany(Exception):
    status_code = 429
    response = SimpleNamespace(headers={"retry-after": "3600"})


async def test_a_long_wait_is_bounded_and_announced() -> None:
    """A server asking for an hour gets ``MAX_RETRY_AFTER_S``, and the wait is said."""
    model = get_model("anthropic:x", base_url="http://127.0.0.1:9")
    replies: list[Any] = [
        TooMany("slow down"),
        ModelResponse(text="ok", tool_calls=(), stop_reason="end_turn", usage=Usage()),
    ]

    async def chat(*args: Any, **kwargs: Any) -> ModelResponse:
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply  # type: ignore[no-any-return]

    object.__setattr__(model, "chat", chat)
    waits: list[float] = []
    said: list[str] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    now = [0.0]

    def clock() -> float:
        return now[0] + sum(waits)

    turns = LiveTurns(
        [model],
        pacer=Pacer(clock=clock, sleep=sleep),
        sleep=sleep,
        warn=lambda topic, message: said.append(message),
    )
    cell = Cell(model="anthropic:x", variant="v", scenario_id="s", rep=1)
    request = TurnRequest(cell=cell, system="s", messages=(UserTurn(text="hi"),), tools=())
    turn = await turns.next_turn(request)
    assert isinstance(turn, AssistantTurn) and turn.attempts == 2
    assert max(waits) == MAX_RETRY_AFTER_S
    assert len(said) == 1 and "asked to wait 300 s" in said[0]
