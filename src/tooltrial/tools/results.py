"""What a tool gave back, as the text the model gets: the one place every tool source
(Python functions, MCP servers) turns a tool's value or failure into a ``ToolResult``.

Whatever a tool returns or raises, the result is text that can be sent and stored:

- text as it is, except that a lone surrogate (which no request can carry) becomes
  U+FFFD (``tooltrial.text.sendable``);
- anything else as JSON (``default=str`` for dates, decimals and the like); a value that
  has no JSON form — a circular structure, nesting too deep to encode, a key that is not
  text, an object whose ``__str__`` raises, a generator — is ``Unsendable``, which the
  sources turn into an error result (``error_kind`` ``unsendable_result``) saying what to
  return instead;
- an exception as ``Kind: message``, even when its own ``__str__`` raises.
"""

from __future__ import annotations

import inspect
import json
import time
from typing import Any

from tooltrial.text import sendable
from tooltrial.types import ToolCall, ToolResult

UNSENDABLE = "unsendable_result"
"""The ``error_kind`` of a result whose value could not be made into text."""


class Unsendable(Exception):
    """A tool's return value has no text or JSON form; the message says why."""


def result_text(value: Any) -> str:
    """A tool's return value as the text the model gets (see the module docstring)."""
    if isinstance(value, str):
        return sendable(str.__str__(value))
    try:
        text = json.dumps(value, ensure_ascii=False, default=_fallback)
    except Unsendable:
        raise
    except RecursionError:
        raise Unsendable("it is nested too deeply to write as JSON") from None
    except ValueError as exc:  # a circular reference, an int too long to print
        raise Unsendable(f"it cannot be written as JSON ({exc})") from None
    except TypeError as exc:  # a key that is not text
        raise Unsendable(f"it cannot be written as JSON ({exc})") from None
    return sendable(text)


def _fallback(value: Any) -> Any:
    if inspect.isgenerator(value) or inspect.isasyncgen(value):
        raise Unsendable(f"it is a {type(value).__name__}; return a list instead")
    if inspect.isawaitable(value):
        raise Unsendable(f"it is an awaitable ({type(value).__name__}) that was not awaited")
    try:
        return str(value)
    except Exception as exc:
        name = type(value).__name__
        raise Unsendable(
            f"it holds a {name} whose __str__ raised {type(exc).__name__}: {exception_text(exc)}"
        ) from None


def unsendable_message(call: ToolCall, problem: Unsendable) -> str:
    """What the model is told about a value its tool returned that cannot be sent."""
    return (
        f"the tool {call.name!r} returned a value that cannot be sent to the model: "
        f"{problem}; a tool must return text or JSON-able data"
    )


def exception_text(exc: BaseException) -> str:
    """``str(exc)``, or the best that can be had when that raises too (never raises)."""
    for describe in (str, repr):
        try:
            return sendable(describe(exc))
        except Exception:
            continue
    return f"<{type(exc).__name__} that cannot be shown>"


def tool_result(
    call: ToolCall,
    content: str,
    started: float,
    error_kind: str | None = None,
    changes: int = 0,
) -> ToolResult:
    """The ``ToolResult`` of one call: ``content`` made sendable, its size in UTF-8 bytes,
    and the time since ``started`` (``time.perf_counter()``)."""
    content = sendable(content)
    return ToolResult(
        call_id=call.id,
        name=call.name,
        content=content,
        is_error=error_kind is not None,
        error_kind=error_kind,
        size=len(content.encode()),
        changes=changes,
        duration_s=round(time.perf_counter() - started, 6),
    )
