"""``tools.results`` and ``tools.python``: whatever a tool returns or raises is a result
the model sees; a tool that breaks its app stops the cell (``app_broken``)."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from tooltrial.apps import SQLiteApp
from tooltrial.definitions import Tool
from tooltrial.text import has_surrogates
from tooltrial.tools import ToolSourceFailed
from tooltrial.tools.python import PythonTools
from tooltrial.tools.results import UNSENDABLE, Unsendable, exception_text, result_text
from tooltrial.types import ToolCall


class Bad:
    def __str__(self) -> str:
        raise RuntimeError("no words")


def circular() -> list[Any]:
    x: list[Any] = []
    x.append(x)
    return x


def deep() -> list[Any]:
    x: list[Any] = []
    for _ in range(100_000):
        x = [x]
    return x


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (circular(), "Circular reference"),
        ({"b": Bad()}, "__str__ raised RuntimeError: no words"),
        (deep(), "nested too deeply"),
        ({(1, 2): 3}, "cannot be written as JSON"),
        ([10**5000], "cannot be written as JSON"),
        ((i for i in range(2)), "return a list instead"),
    ],
    ids=["circular", "str-raises", "deep", "tuple-key", "long-int", "generator"],
)
def test_a_value_without_a_text_form_is_unsendable(value: Any, why: str) -> None:
    with pytest.raises(Unsendable, match=why.replace("(", r"\(")):
        result_text(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", "plain"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
        ({"k\udfff": ["\ud83d\ude00"]}, '{"k\ufffd": ["\U0001f600"]}'),
        (None, "null"),
        ([1, 2], "[1, 2]"),
    ],
)
def test_what_can_be_sent_is_sent(value: Any, text: str) -> None:
    assert result_text(value) == text
    assert not has_surrogates(result_text(value))


def test_an_exception_whose_str_raises_still_has_words() -> None:
    class Weird(Exception):
        def __str__(self) -> str:
            raise TypeError("no")

    assert "Weird" in exception_text(Weird("x"))


class Todo(SQLiteApp):
    schema = "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);"


TOOL = Tool(name="f", description="F.")


def tools_with(function: Any) -> PythonTools:
    app = Todo(datetime(2025, 1, 1, tzinfo=UTC))
    return PythonTools(functions={"f": function}, tools=[TOOL], app=app, timeout_s=2)


def call() -> ToolCall:
    return ToolCall(id="c1", name="f", arguments={})


@pytest.mark.parametrize(
    ("function", "kind", "says"),
    [
        (lambda app: circular(), UNSENDABLE, "cannot be sent to the model"),
        (lambda app: sys.exit(3), "SystemExit", "SystemExit: 3"),
        (lambda app: (_ for _ in ()).throw(KeyboardInterrupt()), "KeyboardInterrupt", ""),
        (lambda app: 1 / 0, "ZeroDivisionError", "division by zero"),
    ],
    ids=["unsendable", "system-exit", "keyboard-interrupt", "raises"],
)
async def test_whatever_a_tool_does_is_a_result(function: Any, kind: str, says: str) -> None:
    result = await tools_with(function).call(call())
    assert result.is_error and result.error_kind == kind
    assert says in result.content


async def test_an_async_tool_is_awaited() -> None:
    async def f(app: Any) -> str:
        await asyncio.sleep(0)
        return "awaited"

    result = await tools_with(f).call(call())
    assert not result.is_error and result.content == "awaited"


def test_an_async_tool_is_awaited_outside_a_loop_too() -> None:
    async def f(app: Any) -> list[int]:
        return [1]

    assert tools_with(f).run(call()).content == "[1]"


async def test_a_tool_that_breaks_its_app_stops_the_cell() -> None:
    def f(app: Any) -> str:
        app.db.close()
        return "closed"

    with pytest.raises(ToolSourceFailed) as failed:
        await tools_with(f).call(call())
    assert failed.value.kind == "app_broken"
    assert "state is unknown" in str(failed.value)
