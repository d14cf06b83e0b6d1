"""Tools written as Python functions over the app: one function per tool, named as the
tool, called as ``function(app, **arguments)``.

``PythonToolSource`` loads a variant's ``implementation`` (a ``.py`` file or a module)
and checks, before any model call, that every tool the variant declares has its function
(a ``DefinitionError`` naming the file otherwise). Its identity is the code's hash, so a
changed tool function changes the variant's hash and cannot silently resume an old run.

``PythonTools`` runs one cell's calls and keeps ``tools.base``'s guarantees: an unknown
tool, arguments that are not a JSON object or fail the tool's JSON Schema, and a tool
that raises all come back as error results; a call past ``timeout_s`` raises
``ToolTimeout``; what a tool returns reaches the model as text or JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import jsonschema

from tooltrial.apps.base import App
from tooltrial.definitions import Variant
from tooltrial.definitions.loading import import_code
from tooltrial.definitions.variants import Tool, implementation_code
from tooltrial.errors import DefinitionError
from tooltrial.tools.base import ToolTimeout
from tooltrial.types import ToolCall, ToolResult, malformed_arguments

ToolFunction = Callable[..., Any]
"""``function(app, **arguments)``: one tool, named as the tool."""


class PythonToolSource:
    """A variant's tools as Python functions (its ``implementation``), checked at load."""

    def __init__(self, variant: Variant, timeout_s: float) -> None:
        self.variant = variant
        self.timeout_s = timeout_s
        self.functions = _functions(variant)
        self.validators = validators_for(variant.tools)

    @property
    def definitions(self) -> tuple[Tool, ...]:
        return self.variant.tools

    @property
    def identity(self) -> dict[str, Any]:
        code = implementation_code(self.variant.implementation)
        digest = {"implementation": hashlib.sha256(code).hexdigest()} if code else {}
        return {"kind": "python", **digest}

    async def prepare(self, app: App) -> None:
        """Nothing left to resolve: the functions were checked when the source was made."""

    @contextlib.asynccontextmanager
    async def bind(self, app: App) -> AsyncIterator[PythonTools]:
        yield self.executor(app)

    def close(self) -> None:
        """Nothing outlives a cell."""

    def executor(self, app: App) -> PythonTools:
        """The tools acting on ``app`` (nothing to release: ``bind`` is this, scoped)."""
        return PythonTools(self.functions, self.definitions, app, self.timeout_s, self.validators)


def _functions(variant: Variant) -> dict[str, ToolFunction]:
    reference = variant.implementation or ""
    module, _ = import_code(reference)
    functions: dict[str, ToolFunction] = {}
    missing = []
    for tool in variant.tools:
        function = getattr(module, tool.name, None)
        if callable(function):
            functions[tool.name] = function
        else:
            missing.append(tool.name)
    if missing:
        raise DefinitionError(
            f"{reference}: variant {variant.name!r} has no function for tool(s) "
            f"{', '.join(missing)}; define def {missing[0]}(app, **arguments) there"
        )
    return functions


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
