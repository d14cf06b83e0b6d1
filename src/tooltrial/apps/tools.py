"""Running a model's tool calls: the ``ToolExecutor`` interface and the Python one.

Guarantees of ``PythonTools`` (and what any executor must keep):

- A call never raises into the conversation: an unknown tool, arguments that are not a
  JSON object or fail the tool's JSON Schema, and a tool that raises all come back as a
  ``ToolResult`` with ``is_error`` set and a message the model can act on.
- A tool that runs past ``timeout_s`` raises ``ToolTimeout``; the conversation stops
  there (stop reason ``tool_timeout``) because the app's state is then unknown.
- What a tool returns reaches the model unchanged: text as text, anything else as JSON.

An MCP client is the other executor this interface is shaped for: ``call`` is async and
takes the model's ``ToolCall`` as is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import jsonschema

from tooltrial.apps.base import App
from tooltrial.definitions.variants import Tool
from tooltrial.types import ToolCall, ToolResult, malformed_arguments


class ToolTimeout(Exception):
    """A tool ran past its time limit; the conversation stops."""

    def __init__(self, call: ToolCall, timeout_s: float) -> None:
        super().__init__(f"tool {call.name!r} ran past its {timeout_s:g} s limit")
        self.call = call


class ToolExecutor(Protocol):
    """What the conversation loop needs from a tool set bound to one cell's app."""

    async def call(self, call: ToolCall) -> ToolResult: ...


ToolFunction = Callable[..., Any]
"""``function(app, **arguments)``: one tool, named as the tool."""


class PythonTools:
    """Tools implemented as Python functions over one app instance."""

    def __init__(
        self,
        functions: Mapping[str, ToolFunction],
        tools: Sequence[Tool],
        app: App,
        timeout_s: float,
        validators: Mapping[str, Any] | None = None,
    ) -> None:
        self.functions = functions
        self.tools = {tool.name: tool for tool in tools}
        self.app = app
        self.timeout_s = timeout_s
        self.validators = validators if validators is not None else validators_for(tools)

    async def call(self, call: ToolCall) -> ToolResult:
        """Run the call in a daemon thread, within the time limit. Not the loop's default
        executor: a tool that never returns cannot be cancelled, and ``asyncio.run``
        waits for the default executor's threads at exit; a daemon thread is abandoned."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[ToolResult] = loop.create_future()

        def work() -> None:
            settle: Callable[[Any], None]
            try:
                outcome: Any = self.run(call)
                settle = done.set_result
            except BaseException as exc:  # reaches the awaiting task, not this thread
                outcome, settle = exc, done.set_exception
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                loop.call_soon_threadsafe(_settle, done, settle, outcome)

        threading.Thread(target=work, name=f"tool-{call.name}", daemon=True).start()
        try:
            return await asyncio.wait_for(done, self.timeout_s)
        except TimeoutError:
            raise ToolTimeout(call, self.timeout_s) from None

    def run(self, call: ToolCall) -> ToolResult:
        """Run the call here and now, without a time limit (reference replays)."""
        started = time.perf_counter()
        before = self.app.changes()
        refused = self._refusal(call)
        if refused is not None:
            kind, problem = refused
            return _result(call, problem, started, error_kind=kind)
        try:
            value = self.functions[call.name](self.app, **call.arguments)
        except Exception as exc:  # the tool's own failure is a result the model sees
            kind = type(exc).__name__
            return _result(call, f"{kind}: {exc}", started, self.app, before, error_kind=kind)
        return _result(call, encode(value), started, self.app, before)

    def _refusal(self, call: ToolCall) -> tuple[str, str] | None:
        """Why the call cannot run at all (its error kind, and words the model can act
        on), or None."""
        if call.name not in self.functions:
            known = ", ".join(sorted(self.functions))
            return "unknown_tool", f"unknown tool {call.name!r}; the tools are: {known}"
        raw = malformed_arguments(call.arguments)
        if raw is not None:
            return "invalid_arguments", f"the arguments are not a JSON object: {raw[:200]}"
        errors = sorted(self.validators[call.name].iter_errors(call.arguments), key=str)
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.absolute_path) or "(arguments)"
            return "invalid_arguments", f"invalid arguments at {where}: {first.message}"
        return None


def _settle(done: asyncio.Future[Any], settle: Callable[[Any], None], outcome: Any) -> None:
    if not done.done():  # a timed-out call's future was cancelled
        settle(outcome)


def validators_for(tools: Sequence[Tool]) -> dict[str, Any]:
    """A JSON Schema validator per tool (build once per variant, share across cells)."""
    return {tool.name: jsonschema.Draft202012Validator(tool.input_schema) for tool in tools}


def encode(value: Any) -> str:
    """A tool's return value as the text the model gets: text as is, else JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _result(
    call: ToolCall,
    content: str,
    started: float,
    app: App | None = None,
    before: int = 0,
    error_kind: str | None = None,
) -> ToolResult:
    return ToolResult(
        call_id=call.id,
        name=call.name,
        content=content,
        is_error=error_kind is not None,
        error_kind=error_kind,
        size=len(content.encode()),
        changes=app.changes() - before if app is not None else 0,
        duration_s=round(time.perf_counter() - started, 6),
    )
