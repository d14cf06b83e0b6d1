"""Tools written as Python functions over the app: one function per tool, named as the
tool, called as ``function(app, **arguments)``.

``PythonToolSource`` loads a variant's ``implementation`` (a ``.py`` file or a module)
and checks, before any model call, that every tool the variant declares has its function
that can take the app first, and is no generator (a ``DefinitionError`` naming the file
and line otherwise). Its identity is the code's hash, so a changed tool function changes
the variant's hash and cannot silently resume an old run.

``PythonTools`` runs one cell's calls and keeps ``tools.base``'s guarantees: an unknown
tool, arguments that are not a JSON object or fail the tool's JSON Schema, and a tool
that raises (anything, ``SystemExit`` included) all come back as error results; an
``async def`` tool is awaited; a call past ``timeout_s`` raises ``ToolTimeout``; what a
tool returns reaches the model as text or JSON, and a value that has neither form is an
error result (``tools.results``); a tool that leaves the app unusable ends the cell
(``ToolSourceFailed``, kind ``app_broken``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import inspect
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
from tooltrial.tools.base import ToolSourceFailed, ToolTimeout
from tooltrial.tools.results import (
    UNSENDABLE,
    Unsendable,
    exception_text,
    result_text,
    tool_result,
    unsendable_message,
)
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
            _check_function(reference, variant, tool.name, function)
        else:
            missing.append(tool.name)
    if missing:
        raise DefinitionError(
            f"{reference}: variant {variant.name!r} has no function for tool(s) "
            f"{', '.join(missing)}; define def {missing[0]}(app, **arguments) there"
        )
    return functions


def _check_function(reference: str, variant: Variant, name: str, function: Any) -> None:
    """Refuse, at load, a tool function that could never give the model a result: a
    generator (its values would never be sent) or one that cannot take the app."""
    where = _where(reference, function)
    if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
        raise DefinitionError(
            f"{where}: tool {name!r} of variant {variant.name!r} is a generator function "
            "(it yields); return the values instead (a list, or text)"
        )
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return  # a builtin or C function: nothing to check
    try:
        signature.bind_partial(None)
    except TypeError:
        raise DefinitionError(
            f"{where}: tool {name!r} of variant {variant.name!r} cannot be called with "
            f"the app: it is def {name}{signature}; write def {name}(app, ...) (the app "
            "comes first, the arguments as keywords)"
        ) from None


def _where(reference: str, function: Any) -> str:
    """``file:line`` of a function's definition, or the implementation as given."""
    try:
        code = inspect.unwrap(function).__code__
        return f"{code.co_filename}:{code.co_firstlineno}"
    except AttributeError:
        return reference


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
        """Run the call here and now, without a time limit (reference replays). Whatever
        the tool raises or returns is a result (``tools.results``); a tool that leaves
        the app unusable (its change count cannot be read) raises ``ToolSourceFailed``
        (kind ``app_broken``): the app's state is unknown, so the cell stops."""
        started = time.perf_counter()
        before = self._changes(call, "before")
        refused = self._refusal(call)
        if refused is not None:
            kind, problem = refused
            return tool_result(call, problem, started, error_kind=kind)
        try:
            value = self.functions[call.name](self.app, **call.arguments)
            if inspect.isawaitable(value):  # an async def tool
                value = _awaited(value)
        except (Exception, SystemExit, GeneratorExit) as exc:
            return self._raised(call, exc, started, before)
        except KeyboardInterrupt as exc:  # Ctrl-C reaches the main thread, never a tool's
            if threading.current_thread() is threading.main_thread():
                raise
            return self._raised(call, exc, started, before)
        try:
            text = result_text(value)
        except Unsendable as problem:
            changes = self._changes(call, "after") - before
            message = unsendable_message(call, problem)
            return tool_result(call, message, started, error_kind=UNSENDABLE, changes=changes)
        return tool_result(call, text, started, changes=self._changes(call, "after") - before)

    def _raised(
        self, call: ToolCall, exc: BaseException, started: float, before: int
    ) -> ToolResult:
        """The tool's own failure: a result the model sees."""
        kind = type(exc).__name__
        changes = self._changes(call, "after") - before
        message = f"{kind}: {exception_text(exc)}"
        return tool_result(call, message, started, error_kind=kind, changes=changes)

    def _changes(self, call: ToolCall, when: str) -> int:
        """The app's change count; ``ToolSourceFailed`` if the app can no longer say."""
        try:
            return int(self.app.changes())
        except Exception as exc:
            raise ToolSourceFailed(
                f"the app {type(self.app).__name__} could not be read {when} tool "
                f"{call.name!r} ran ({type(exc).__name__}: {exception_text(exc)}): its "
                "state is unknown, so the conversation was stopped",
                kind="app_broken",
                retryable=False,
            ) from None

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


def _awaited(value: Any) -> Any:
    """What an awaitable a tool returned (an ``async def`` tool) gives, awaited on a
    loop of its own (in a thread of its own when this thread runs a loop already)."""

    async def wait() -> Any:
        return await value

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wait())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, wait()).result()
