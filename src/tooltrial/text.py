"""Text as tooltrial sends and stores it, whatever it holds.

Python text may hold what UTF-8 cannot encode: a lone surrogate (``"\\ud800"``), which a
JSON body may carry as an escape and Python's ``json`` reads without complaint. Two rules,
one per direction:

- **sent** (to a model, as a tool result or back in a conversation): ``sendable`` turns
  each lone surrogate into U+FFFD (a surrogate pair written as two escapes becomes the
  one character it stands for), so a request can always be encoded;
- **stored** (a result line, a cache entry): ``json_text`` writes JSON that is valid
  UTF-8 and reads back identically. Lone surrogates are written as JSON escapes
  (``\\ud800``), which ``json.loads`` turns back into the same text; so a reply is stored
  exactly as the model gave it.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

_SURROGATE = re.compile("[\ud800-\udfff]")


def has_surrogates(text: str) -> bool:
    """Whether ``text`` holds a code point UTF-8 cannot encode (a lone surrogate)."""
    return _SURROGATE.search(text) is not None


def sendable(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (pairs joined): encodable."""
    if not has_surrogates(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def sendable_data(value: Any) -> Any:
    """``value`` (JSON-like data) with every string ``sendable``, keys included."""
    if isinstance(value, str):
        return sendable(value)
    if isinstance(value, dict):
        return {sendable_data(k): sendable_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [sendable_data(v) for v in value]
    return value


def json_text(value: BaseModel | Any) -> str:
    """``value`` (a pydantic model, or JSON-like data) as one line of compact JSON that
    is valid UTF-8 and reads back as the same text (see the module docstring)."""
    if isinstance(value, BaseModel):
        try:
            return value.model_dump_json()
        except PydanticSerializationError:
            data = value.model_dump()  # text that UTF-8 cannot encode: written below
    else:
        data = value
    dumped = json.dumps(_plain(data), ensure_ascii=False, separators=(",", ":"), default=_other)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)


def _plain(value: Any) -> Any:
    """What pydantic's JSON would make of ``value``: non-finite floats as null, bytes as
    text, keys as text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, BaseModel):
        return _plain(value.model_dump())
    return value


def _key(key: Any) -> Any:
    return key if isinstance(key, str | int | float | bool) or key is None else _other(key)


def _other(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")  # stored as escapes, recoverable
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
