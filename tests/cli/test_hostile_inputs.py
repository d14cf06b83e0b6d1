"""Hostile inputs, every time: nothing a tool, a model or a definition does breaks a run.

Three tables, each row breaking one thing in a copy of ``tests/mini_agentic`` (variant
``app``, scenario ``move-dentist``: the model calls ``reschedule``), then running the real
``tooltrial run`` in-process against the project's Messages API server
(``--model anthropic:x``, harness: ``tests/support/bad_input.py``):

- ``TOOLS``: the tool misbehaves (returns what cannot be sent, raises anything, is async,
  is slow, breaks its app). The run completes without a traceback, and the cell has a
  result whose conversation shows the model an error result of the expected kind, or
  (where the app's state is unknown) an error line with a reason.
- ``REPLIES``: the model's reply is malformed (tool input that is not an object, a 200
  that is not a message, NaN usage, duplicate tool-use ids, lone surrogates). The run
  completes, the cell is a result (the model got an ``invalid_arguments`` result, or the
  bad reply was retried), the file passes ``tooltrial validate`` and reads back as stored.
- ``DEFINITIONS``: a mistake in a definition file: exit 2, one message naming the file
  and line, no request, no result file touched.
"""

from __future__ import annotations

import json
import math
import shutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.bad_input import Case, Ctx, Setup, edit, invoke, snapshot
from support.paths import TESTS

from tooltrial.log.reader import iter_records
from tooltrial.log.records import Error, Result
from tooltrial.testing.messages_server import MessagesServer, default_responder

MINI = TESTS / "mini_agentic"
CELL = ["--variant", "app", "--scenario", "move-dentist"]
REFERENCE = "".join(
    line + "\n"
    for line in (
        "    reference:",
        "      via: app",
        '      calls: [{tool: reschedule, args: {title: Dentist, due: "2025-03-21"}}]',
    )
)


def run_args(ctx: Ctx, *flags: str) -> list[str]:
    return [
        "run",
        str(ctx.exp),
        "--results",
        str(ctx.results),
        "--model",
        "anthropic:x",
        "--runs",
        "1",
        "--max-attempts",
        "2",
        *flags,
    ]


def tool(body: str) -> Setup:
    """``reschedule`` (the tool the model calls) replaced by ``body``."""

    def setup(c: Ctx) -> None:
        path = c.exp / "app_tools.py"
        path.write_text(path.read_text() + "\n\n" + textwrap.dedent(body))

    return setup


def records(folder: Path) -> list[Any]:
    return [r for p in sorted(folder.glob("*.jsonl")) for r in iter_records(p)]


def tool_results(result: Result) -> list[Any]:
    assert result.conversation is not None
    return [r for m in result.conversation.messages if m.role == "tool" for r in m.results]


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ctx:
    exp = tmp_path / "exp"
    shutil.copytree(MINI, exp, ignore=shutil.ignore_patterns("__pycache__"))
    # No reference replay: it would run the hostile tool at load, before any model turn.
    scenarios = exp / "scenarios.yaml"
    scenarios.write_text(scenarios.read_text().replace(REFERENCE, ""))
    monkeypatch.chdir(tmp_path)
    return Ctx(exp=exp, results=tmp_path / "results", tmp=tmp_path, monkeypatch=monkeypatch)


# --- tools ----------------------------------------------------------------------------------


@dataclass
class ToolRow:
    id: str
    setup: Setup
    error_kind: str | None
    """The ``error_kind`` of the result the model saw (None: an ordinary result)."""
    says: str = ""
    """A substring of that result's content."""
    error_line: str | None = None
    """Instead of a result: the cell's error line has this kind."""


TOOLS = [
    ToolRow(
        "circular-list",
        tool("def reschedule(app, title, due):\n    x = []\n    x.append(x)\n    return x\n"),
        "unsendable_result",
        "Circular reference",
    ),
    ToolRow(
        "circular-dict",
        tool("def reschedule(app, title, due):\n    d = {}\n    d['me'] = d\n    return d\n"),
        "unsendable_result",
        "Circular reference",
    ),
    ToolRow(
        "str-raises",
        tool(
            """
            class Odd:
                def __str__(self):
                    raise RuntimeError('no words')

            def reschedule(app, title, due):
                return {'value': Odd()}
            """
        ),
        "unsendable_result",
        "__str__ raised RuntimeError: no words",
    ),
    ToolRow(
        "lone-surrogate",
        tool("def reschedule(app, title, due):\n    return 'moved \\ud800 ok'\n"),
        None,
        "moved \ufffd ok",
    ),
    ToolRow(
        "lone-surrogate-in-json",
        tool("def reschedule(app, title, due):\n    return {'k\\udfff': ['\\ud800']}\n"),
        None,
        "\ufffd",
    ),
    ToolRow(
        "very-deep-nesting",
        tool(
            "def reschedule(app, title, due):\n    x = []\n    for _ in range(100000):\n"
            "        x = [x]\n    return x\n"
        ),
        "unsendable_result",
        "nested too deeply",
    ),
    ToolRow(
        "key-not-text",
        tool("def reschedule(app, title, due):\n    return {(1, 2): 'pair'}\n"),
        "unsendable_result",
        "cannot be written as JSON",
    ),
    ToolRow(
        "int-too-long",
        tool("def reschedule(app, title, due):\n    return [10 ** 5000]\n"),
        "unsendable_result",
        "cannot be written as JSON",
    ),
    ToolRow(
        "returns-a-generator",
        tool("def reschedule(app, title, due):\n    return (i for i in range(3))\n"),
        "unsendable_result",
        "return a list instead",
    ),
    ToolRow(
        "async-def",
        tool(
            "import asyncio\n\nasync def reschedule(app, title, due):\n"
            "    await asyncio.sleep(0)\n    return 'async moved'\n"
        ),
        None,
        "async moved",
    ),
    ToolRow(
        "async-def-raises",
        tool("async def reschedule(app, title, due):\n    raise LookupError('async nope')\n"),
        "LookupError",
        "async nope",
    ),
    ToolRow(
        "returns-a-coroutine",
        tool(
            "async def _later():\n    return 'later'\n\n"
            "def reschedule(app, title, due):\n    return _later()\n"
        ),
        None,
        "later",
    ),
    ToolRow(
        "raises",
        tool("def reschedule(app, title, due):\n    raise ValueError('bad due')\n"),
        "ValueError",
        "ValueError: bad due",
    ),
    ToolRow(
        "raises-system-exit",
        tool("import sys\n\ndef reschedule(app, title, due):\n    sys.exit(3)\n"),
        "SystemExit",
        "SystemExit: 3",
    ),
    ToolRow(
        "raises-keyboard-interrupt",
        tool("def reschedule(app, title, due):\n    raise KeyboardInterrupt\n"),
        "KeyboardInterrupt",
        "KeyboardInterrupt",
    ),
    ToolRow(
        "exception-str-raises",
        tool(
            """
            class Weird(Exception):
                def __str__(self):
                    raise TypeError('no')

            def reschedule(app, title, due):
                raise Weird('x')
            """
        ),
        "Weird",
        "Weird",
    ),
    ToolRow(
        "returns-bytes",
        tool("def reschedule(app, title, due):\n    return [b'\\xff\\xfe raw']\n"),
        None,
        "raw",
    ),
    ToolRow(
        "returns-nan",
        tool("def reschedule(app, title, due):\n    return {'x': float('nan')}\n"),
        None,
        "NaN",
    ),
    ToolRow(
        "returns-none",
        tool("def reschedule(app, title, due):\n    return None\n"),
        None,
        "null",
    ),
    ToolRow(
        "too-slow",
        tool("import time\n\ndef reschedule(app, title, due):\n    time.sleep(3)\n"),
        "timeout",
        "ran past its 2 s limit",
    ),
    ToolRow(
        "breaks-its-app",
        tool("def reschedule(app, title, due):\n    app.db.close()\n    return 'closed'\n"),
        None,
        error_line="app_broken",
    ),
    ToolRow(
        "breaks-its-app-and-raises",
        tool("def reschedule(app, title, due):\n    app.db.close()\n    raise OSError('gone')\n"),
        None,
        error_line="app_broken",
    ),
]


def test_the_tool_table_is_full() -> None:
    assert len({r.id for r in TOOLS}) == len(TOOLS) >= 20


@pytest.mark.parametrize("row", TOOLS, ids=[r.id for r in TOOLS])
def test_a_hostile_tool(
    row: ToolRow, ctx: Ctx, env: MessagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    row.setup(ctx)
    code = invoke(run_args(ctx, *CELL))
    err = capsys.readouterr().err
    assert "Traceback" not in err and "this is a bug" not in err, err
    lines = [r for r in records(ctx.results) if isinstance(r, Result | Error)]
    assert len(lines) == 1, err
    (line,) = lines
    if row.error_line is not None:
        assert code == 1, err
        assert isinstance(line, Error) and line.kind == row.error_line, line
        assert "state is unknown" in line.message
        return
    assert code == 0, err
    assert isinstance(line, Result), line
    (first, *_) = tool_results(line)
    assert first.error_kind == row.error_kind, first
    assert row.says in first.content
    assert invoke(["validate", str(ctx.results)]) == 0, capsys.readouterr().err


FIVE = "\n".join(
    f"- id: move-{n}\n  prompt: Move the dentist, take {n}.\n  success:\n    reply: {{asks: false}}"
    for n in range(5)
)


def test_an_unsendable_value_at_concurrency_5_costs_only_its_own_cell(
    ctx: Ctx, env: MessagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reported crash: one circular value cancelled the healthy conversations in
    flight (0 of 5 written) and every ``--resume`` crashed again."""
    (ctx.exp / "scenarios.yaml").write_text(FIVE + "\n")
    tool(
        """
        import threading
        _lock, _calls = threading.Lock(), []

        def reschedule(app, title, due):
            with _lock:
                _calls.append(1)
                first = len(_calls) == 1
            if first:
                x = []
                x.append(x)
                return x
            return 'moved'
        """
    )(ctx)
    argv = run_args(ctx, "--variant", "app", "--concurrency", "5", "--run-id", "five")
    assert invoke(argv) == 0, capsys.readouterr().err
    results = [r for r in records(ctx.results) if isinstance(r, Result)]
    assert len(results) == 5
    kinds = sorted(str(tool_results(r)[0].error_kind) for r in results)
    assert kinds == ["None"] * 4 + ["unsendable_result"]
    resume = run_args(ctx, "--concurrency", "5", "--resume", "five")
    assert invoke(resume) == 0, capsys.readouterr().err
    assert "Traceback" not in capsys.readouterr().err
    assert len([r for r in records(ctx.results) if isinstance(r, Result)]) == 5


# --- model replies --------------------------------------------------------------------------

RAW = "__raw__"
"""A responder's reply holding this key is sent as the whole 200 body, as is."""


class RawMessagesServer(MessagesServer):
    """The Messages API server, able to answer a 200 that is not a message."""

    def _message(self, body: dict[str, Any], number: int) -> dict[str, Any]:
        out = self.responder(body)
        if RAW in out:
            return out[RAW]  # type: ignore[no-any-return]
        responder, self.responder = self.responder, lambda _: out  # asked once a request
        try:
            return super()._message(body, number)
        finally:
            self.responder = responder


def first_turn(reply: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[..., Any]:
    """A responder that answers the cell's first model turn with ``reply(body)`` and every
    other request (the preflight, later turns) as the default responder does."""
    state = {"done": False}

    def responder(body: dict[str, Any]) -> dict[str, Any]:
        if body.get("tools") and not state["done"]:
            state["done"] = True
            return reply(body)
        return default_responder(body)

    return responder


def every_turn(reply: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[..., Any]:
    def responder(body: dict[str, Any]) -> dict[str, Any]:
        return reply(body) if body.get("tools") else default_responder(body)

    return responder


def use(input: Any, name: str = "reschedule", id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_use", "name": name, "input": input}
    if id is not None:
        block["id"] = id
    return block


def turn(*blocks: dict[str, Any], stop: str = "tool_use", **extra: Any) -> Any:
    return lambda body: {"content": list(blocks), "stop_reason": stop, **extra}


def raw(message: Any) -> Any:
    return lambda body: {RAW: message}


MESSAGE = {
    "id": "msg_x",
    "type": "message",
    "role": "assistant",
    "model": "x",
    "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 1},
}


@dataclass
class ReplyRow:
    id: str
    responder: Callable[..., Any]
    check: Callable[[Result], None]
    attempts: int = 1
    """The first model turn's attempts (2: the bad reply was retried)."""
    extra: dict[str, Any] = field(default_factory=dict)


def saw(kind: str, says: str = "") -> Callable[[Result], None]:
    """The model got a result of ``error_kind`` ``kind`` for its first call."""

    def check(result: Result) -> None:
        (first, *_) = tool_results(result)
        assert first.error_kind == kind, first
        assert says in first.content, first.content

    return check


def retried(result: Result) -> None:
    assert result.conversation is not None
    assert result.conversation.stop_reason == "answered"


def answered_each_call(result: Result) -> None:
    assert result.conversation is not None
    turns = [m for m in result.conversation.messages if m.role == "assistant"]
    ids = [c.id for c in turns[0].response.tool_calls]
    assert len(ids) == 3 and len(set(ids)) == 3, ids
    answered = [r.call_id for r in tool_results(result)]
    assert answered[:3] == ids


def text_kept(expected: str) -> Callable[[Result], None]:
    def check(result: Result) -> None:
        assert result.conversation is not None
        turns = [m for m in result.conversation.messages if m.role == "assistant"]
        assert turns[0].response.text == expected

    return check


def arguments_kept(expected: Any) -> Callable[[Result], None]:
    def check(result: Result) -> None:
        assert result.conversation is not None
        turns = [m for m in result.conversation.messages if m.role == "assistant"]
        assert turns[0].response.tool_calls[0].arguments == expected

    return check


def with_body(**changes: Any) -> dict[str, Any]:
    return {**MESSAGE, **changes}


REPLIES = [
    ReplyRow("input-is-a-string", first_turn(turn(use("title=Dentist"))), saw("invalid_arguments")),
    ReplyRow("input-is-a-list", first_turn(turn(use(["Dentist"]))), saw("invalid_arguments")),
    ReplyRow("input-is-null", first_turn(turn(use(None))), saw("invalid_arguments")),
    ReplyRow("input-is-a-number", first_turn(turn(use(5))), saw("invalid_arguments")),
    ReplyRow("input-is-true", first_turn(turn(use(True))), saw("invalid_arguments")),
    ReplyRow(
        "input-fails-the-schema",
        first_turn(turn(use({"title": 5}))),
        saw("invalid_arguments"),
    ),
    ReplyRow(
        "unknown-tool",
        first_turn(turn(use({"title": "Dentist"}, name="teleport"))),
        saw("unknown_tool"),
    ),
    ReplyRow("body-not-a-message", first_turn(raw({"hello": "world"})), retried, attempts=2),
    ReplyRow("body-is-a-list", first_turn(raw([1, 2, 3])), retried, attempts=2),
    ReplyRow("content-not-a-list", first_turn(raw(with_body(content="hi"))), retried, attempts=2),
    ReplyRow(
        "block-without-type",
        first_turn(raw(with_body(content=[{"text": "hi"}]))),
        retried,
        attempts=2,
    ),
    ReplyRow(
        "nan-in-usage",
        first_turn(raw(with_body(usage={"input_tokens": math.nan, "output_tokens": 1}))),
        retried,
        attempts=2,
    ),
    ReplyRow(
        "usage-is-text",
        first_turn(raw(with_body(usage={"input_tokens": "many", "output_tokens": 1}))),
        retried,
        attempts=2,
    ),
    ReplyRow(
        "duplicate-tool-use-ids",
        first_turn(
            turn(
                use({"title": "Dentist", "due": "2025-03-21"}, id="toolu_same"),
                use({"title": "Pay rent", "due": "2025-04-01"}, id="toolu_same"),
                use({"title": "Dentist bill", "due": "2025-04-02"}, id="toolu_same"),
            )
        ),
        answered_each_call,
    ),
    ReplyRow(
        "lone-surrogate-in-text",
        first_turn(turn({"type": "text", "text": "odd \ud800 text"}, stop="end_turn")),
        text_kept("odd \ud800 text"),
    ),
    ReplyRow(
        "lone-surrogate-in-arguments",
        first_turn(turn(use({"title": "Dentist \udc00", "due": "2025-03-21"}))),
        arguments_kept({"title": "Dentist \udc00", "due": "2025-03-21"}),
    ),
    ReplyRow(
        "surrogate-pair-in-text",
        first_turn(turn({"type": "text", "text": "smile \U0001f600"}, stop="end_turn")),
        text_kept("smile \U0001f600"),
    ),
    ReplyRow(
        "unknown-stop-reason",
        first_turn(turn({"type": "text", "text": "fine"}, stop="banana")),
        text_kept("fine"),
    ),
]


def test_the_reply_table_is_full() -> None:
    assert len({r.id for r in REPLIES}) == len(REPLIES) >= 15


@pytest.fixture
def raw_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    with RawMessagesServer(max_seconds=60) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-a-real-key-0000")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        for name in ("LANGSMITH_API_KEY", "OTEL_EXPORTER_OTLP_ENDPOINT", "TOOLTRIAL_MODEL"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("LANGSMITH_TRACING", "false")
        yield server


@pytest.mark.parametrize("row", REPLIES, ids=[r.id for r in REPLIES])
def test_a_hostile_reply(
    row: ReplyRow, ctx: Ctx, raw_env: RawMessagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    raw_env.responder = row.responder
    code = invoke(run_args(ctx, *CELL))
    err = capsys.readouterr().err
    assert "Traceback" not in err and "this is a bug" not in err, err
    assert code == 0, err
    (result,) = [r for r in records(ctx.results) if isinstance(r, Result | Error)]
    assert isinstance(result, Result), result
    assert result.conversation is not None
    first = next(m for m in result.conversation.messages if m.role == "assistant")
    assert first.attempts == row.attempts
    row.check(result)
    assert invoke(["validate", str(ctx.results)]) == 0, capsys.readouterr().err
    for path in ctx.results.glob("*.jsonl"):
        path.read_bytes().decode("utf-8")  # valid UTF-8, whatever the model wrote
        for text in path.read_text().splitlines():
            json.loads(text)


# --- definitions ----------------------------------------------------------------------------

SCENARIOS = (MINI / "scenarios.yaml").read_text()
EXPERIMENT = (MINI / "experiment.yaml").read_text()


def line_of(text: str, needle: str) -> int:
    return next(n for n, row in enumerate(text.splitlines(), 1) if needle in row)


LIMITS_LINE = line_of(EXPERIMENT, "limits:")
PROMPT_LINE = line_of(SCENARIOS, "prompt: Move my dentist")
# A fault found after loading names the line of the key at fault (the rows' file is
# SCENARIOS without its reference: see ``ctx``).
BASE = SCENARIOS.replace(REFERENCE, "")
STATE_LINE = line_of(BASE, "- table: tasks")
FORBIDDEN_LINE = line_of(BASE, "    forbidden:")  # a reference inserted here: +1 via, +2 calls
APP_FORBIDDEN_LINE = line_of(BASE, "app: [{tool: remove}]")


LIMITS = "limits: {max_turns: 4, max_tool_calls: 6, tool_timeout_s: 2}\n"


def single_turn(call: str) -> Setup:
    """The experiment made single-turn (no app), its one scenario expecting ``call``."""

    def setup(c: Ctx) -> None:
        text = (c.exp / "experiment.yaml").read_text()
        c.write("experiment.yaml", text.replace("app: app.py:Todo\n", "").replace(LIMITS, ""))
        c.write(
            "scenarios.yaml",
            "- id: move-dentist\n  prompt: Move my dentist appointment.\n"
            f"  expect: {{app: {{calls: [{call}]}}, api: {{kind: no_call}}}}\n",
        )

    return setup


def limits(new: str) -> Setup:
    return edit("experiment.yaml", LIMITS, new + "\n")


def after_prompt(extra: str) -> Setup:
    old = "  prompt: Move my dentist appointment to Friday the 21st.\n"
    return edit("scenarios.yaml", old, old + extra)


DEFINITIONS = [
    Case(
        "max-turns-true",
        [],
        [f"experiment.yaml:{LIMITS_LINE}", "max_turns", "got True"],
        limits("limits: {max_turns: true, max_tool_calls: 6, tool_timeout_s: 2}"),
    ),
    Case(
        "max-tool-calls-numeric-string",
        [],
        [f"experiment.yaml:{LIMITS_LINE}", "max_tool_calls", "got '6'"],
        limits("limits: {max_turns: 4, max_tool_calls: '6', tool_timeout_s: 2}"),
    ),
    Case(
        "tool-timeout-true",
        [],
        [f"experiment.yaml:{LIMITS_LINE}", "tool_timeout_s", "got True"],
        limits("limits: {max_turns: 4, max_tool_calls: 6, tool_timeout_s: true}"),
    ),
    Case(
        "tool-timeout-numeric-string",
        [],
        [f"experiment.yaml:{LIMITS_LINE}", "tool_timeout_s", "got '2'"],
        limits("limits: {max_turns: 4, max_tool_calls: 6, tool_timeout_s: '2'}"),
    ),
    Case(
        "tool-timeout-nan",
        [],
        [f"experiment.yaml:{LIMITS_LINE}", "tool_timeout_s", "must be a number", "got nan"],
        limits("limits: {max_turns: 4, max_tool_calls: 6, tool_timeout_s: .nan}"),
    ),
    Case(
        "tool-timeout-inf",
        [],
        [f"experiment.yaml:{LIMITS_LINE}", "tool_timeout_s", "got inf"],
        limits("limits: {max_turns: 4, max_tool_calls: 6, tool_timeout_s: .inf}"),
    ),
    Case(
        "blank-user-turn",
        [],
        ["scenarios.yaml:", "user_turns", "blank"],
        after_prompt("  user_turns: ['']\n"),
    ),
    Case(
        "whitespace-user-turn",
        [],
        ["scenarios.yaml:", "user_turns", "blank"],
        after_prompt("  user_turns: ['ok', '   ']\n"),
    ),
    Case(
        "blank-prompt",
        [],
        [f"scenarios.yaml:{PROMPT_LINE}", "prompt"],
        edit(
            "scenarios.yaml",
            "prompt: Move my dentist appointment to Friday the 21st.",
            "prompt: '  '",
        ),
    ),
    Case(
        "tool-generator-function",
        [],
        ["app_tools.py:", "generator function", "return the values instead"],
        tool("def reschedule(app, title, due):\n    yield 'moved'\n"),
    ),
    Case(
        "tool-async-generator",
        [],
        ["app_tools.py:", "generator function"],
        tool("async def reschedule(app, title, due):\n    yield 'moved'\n"),
    ),
    Case(
        "tool-cannot-take-the-app",
        [],
        ["app_tools.py:", "cannot be called with the app", "def reschedule(app, ...)"],
        tool("def reschedule():\n    return 'moved'\n"),
    ),
    Case(
        "tool-module-raises-at-import",
        [],
        ["app_tools.py", "RuntimeError", "boom at import"],
        tool("raise RuntimeError('boom at import')\n"),
    ),
    Case(
        "tool-module-syntax-error",
        [],
        ["app_tools.py:", "not valid Python", "fix the syntax"],
        tool("def reschedule(app, title, due)\n    return 1\n"),
    ),
    Case(
        "setup-of-an-unknown-table",
        [],
        [f"scenarios.yaml:{PROMPT_LINE + 1}: scenario 'move-dentist'", "setup of 'nosuch' failed"],
        after_prompt("  setup: {nosuch: [{a: 1}]}\n"),
    ),
    Case(
        "state-check-of-an-unknown-table",
        [],
        [f"scenarios.yaml:{STATE_LINE}: scenario 'move-dentist'", "names table 'taskz'"],
        edit("scenarios.yaml", "      - table: tasks", "      - table: taskz"),
    ),
    Case(
        "reference-call-fails",
        [],
        [f"scenarios.yaml:{FORBIDDEN_LINE + 2}: scenario 'move-dentist'", "reference call #1"],
        edit(
            "scenarios.yaml",
            "    forbidden:",
            "    reference:\n      via: app\n      calls: [{tool: reschedule, args: {titel: x}}]\n"
            "    forbidden:",
        ),
    ),
    Case(
        "forbidden-call-of-an-unknown-tool",
        [],
        [
            f"scenarios.yaml:{APP_FORBIDDEN_LINE}: scenario 'move-dentist'",
            "names tool 'remove_all'",
        ],
        edit("scenarios.yaml", "app: [{tool: remove}]", "app: [{tool: remove_all}]"),
    ),
    Case(
        "reference-through-an-unknown-variant",
        [],
        [f"scenarios.yaml:{FORBIDDEN_LINE + 1}: scenario 'move-dentist'", "variant 'nope'"],
        edit(
            "scenarios.yaml",
            "    forbidden:",
            "    reference:\n      via: nope\n      calls: [{tool: reschedule}]\n    forbidden:",
        ),
    ),
    Case(
        "a-variant-listed-twice-is-not-blamed-on-scenarios",
        [],
        ["experiment.yaml", "variant names must be unique"],
        edit(
            "experiment.yaml",
            "  - variants/app.yaml",
            "  - variants/app.yaml\n  - variants/app.yaml",
        ),
    ),
    Case(
        "expectation-on-an-undeclared-argument",
        [],
        [
            "scenarios.yaml:3: scenario 'move-dentist'",  # single_turn's expect: line
            "expects argument 'titel' of tool 'reschedule'",
            "declares: due, title",
        ],
        single_turn("{tool: reschedule, args: {titel: Dentist}}"),
    ),
]


def test_the_definitions_table_is_full() -> None:
    assert len({c.id for c in DEFINITIONS}) == len(DEFINITIONS) >= 10


@pytest.mark.parametrize("case", DEFINITIONS, ids=[c.id for c in DEFINITIONS])
def test_a_definition_mistake(
    case: Case, ctx: Ctx, env: MessagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx.results.mkdir()
    assert case.setup is not None
    case.setup(ctx)
    before = snapshot(ctx.results)
    code = invoke(run_args(ctx, *CELL, *case.args))
    err = " ".join(capsys.readouterr().err.split())
    assert code == case.code, err
    assert "Traceback" not in err and "this is a bug" not in err, err
    for needle in case.expect:
        assert " ".join(needle.split()) in err, f"{needle!r} not in: {err}"
    assert snapshot(ctx.results) == before
    assert env.requests == [], "no model call may happen for a definition mistake"


def test_every_table_together_has_forty_rows() -> None:
    assert len(TOOLS) + len(REPLIES) + len(DEFINITIONS) >= 40
