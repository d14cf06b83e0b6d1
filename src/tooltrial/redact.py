"""Known key values never reach anything tooltrial writes.

The values of the known key variables (``KEY_VARIABLES``, and every variable whose name
ends in ``_API_KEY``; values of 8 characters or more) are replaced by ``***`` in
everything tooltrial writes: result lines, the response cache, the batch journal, trace
payloads, messages, and every log record (``install_log_redaction``: whatever the logger
and level, headers an SDK logs included). That covers what a model echoes back — a key in
a reply's text or in a tool call's arguments is stored as ``***``.

One function does it, ``redact``, on the text about to be written (JSON included: a key
is letters, digits, ``-`` and ``_``, written the same inside JSON; a value JSON would
escape is looked for in its escaped form too); ``redact_data`` walks JSON-like data for
writers that take data rather than text (the tracers).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

KEY_VARIABLES = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "OPENAI_API_KEY",
    "LANGSMITH_API_KEY",
    "LANGCHAIN_API_KEY",
)
"""Variables whose values are keys (with every ``*_API_KEY`` variable)."""
MIN_LENGTH = 8
"""Shorter values are not keys (and replacing them would garble ordinary text)."""
MASK = "***"


def known_secrets() -> tuple[str, ...]:
    """The values to redact now, longest first (so a key that contains another goes whole)."""
    found = {
        value
        for name, value in os.environ.items()
        if (name in KEY_VARIABLES or name.endswith("_API_KEY")) and len(value) >= MIN_LENGTH
    }
    forms = found | {json.dumps(v)[1:-1] for v in found}  # as JSON would write it
    return tuple(sorted(forms, key=len, reverse=True))


def redact(text: str) -> str:
    """``text`` with every known key value replaced by ``***``."""
    for secret in known_secrets():
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_data(value: Any) -> Any:
    """``value`` (JSON-like data: dicts, lists, text) with every string ``redact``-ed."""
    secrets = known_secrets()
    if not secrets:
        return value
    return _walk(value, secrets)


def _walk(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {_walk(k, secrets): _walk(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_walk(v, secrets) for v in value)
    return value


_installed = threading.Lock()
_factory: Any = None


def install_log_redaction() -> None:
    """Redact every log record from now on, in this process: the record factory formats
    a record's message (and its traceback) and redacts it, so no handler, filter or
    level lets a key through. Idempotent."""
    global _factory
    with _installed:
        if _factory is not None:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if not known_secrets():
                return record
            try:
                message = record.getMessage()
            except Exception:  # a malformed record: leave it to logging to report
                return record
            safe = redact(message)
            if safe != message:
                record.msg, record.args = safe, None
            if record.exc_info and not record.exc_text:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            return record

        _factory = factory
        logging.setLogRecordFactory(factory)
