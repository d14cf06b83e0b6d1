"""The interface every provider implements.

A provider turns (system prompt, conversation, tools) into a ``ModelResponse``
(``chat``; ``generate`` is the one-message case, and a provider may implement only that,
for single-turn experiments), says what
kind of failure each of its exceptions is (``Model.classify``) and how its API wants a
tool written (``Model.tool_format``); retries, pacing and capture live in the runner.
Nothing outside a provider guesses from an exception's class: the runner and the
tracers ask ``model.classify``.

The base ``classify`` holds the generic rules (HTTP status, timeouts, dropped
connections, unreadable bodies); a provider whose exceptions they misread overrides it.
Guarantees of the generic rules: 401/403 is kind ``auth`` and never retried; 408, 409,
429, 529 and 5xx are retried; any other 4xx is ``rejected`` and not retried; a 200 that
is not a message (``BadResponse``) is ``bad_response``, retried; a server's
``retry-after`` is honoured up to ``MAX_RETRY_AFTER_S``; a failure's message never
contains the value of a known API-key variable.
"""

from __future__ import annotations

import json
import math
from abc import ABC
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tooltrial.definitions.variants import Tool
from tooltrial.errors import UsageError
from tooltrial.redact import redact
from tooltrial.types import Failure, Message, ModelResponse, UserTurn

DEFAULT_MODEL = "local:smollm2"

CHARS_PER_TOKEN = 4
ESTIMATED = f"estimate ({CHARS_PER_TOKEN} characters a token)"
"""How tokens are counted where a model cannot count its own here (``count_tokens``):
about 4 characters a token, the usual rule of thumb for English and JSON under BPE
tokenizers. A rough figure: for SmolLM2 it is 13–17% low on the worked experiments'
tool definitions. Every footprint says how it was counted."""


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass
class Model(ABC):
    """A chat model with tools bound per call. ``temperature=None`` sends none."""

    name: str
    temperature: float | None = 0.2
    max_tokens: int = 512
    timeout_s: float = 120.0
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> str:
        return f"{self.provider}:{self.name}"

    provider = "abstract"

    async def generate(
        self, system: str, prompt: str, tools: Sequence[Tool], seed: int | None = None
    ) -> ModelResponse:
        """One model call for one user message; raises the provider's own exceptions."""
        if not self.converses:
            raise NotImplementedError(f"{type(self).__name__} implements neither generate nor chat")
        return await self.chat(system, [UserTurn(text=prompt)], tools, seed)

    async def chat(
        self,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[Tool],
        seed: int | None = None,
    ) -> ModelResponse:
        """The next model turn of a conversation (user turns, the model's earlier turns
        and the tool results sent back, in order); raises the provider's own exceptions.

        Override it to serve agentic experiments; the default serves a conversation of
        one user message through ``generate``."""
        if len(messages) == 1 and isinstance(messages[0], UserTurn):
            return await self.generate(system, messages[0].text, tools, seed)
        raise _single_requests_only(self)

    @property
    def converses(self) -> bool:
        """Whether this provider holds conversations (overrides ``chat``)."""
        return type(self).chat is not Model.chat

    async def preflight(self) -> None:
        """Fail before the first scenario if the model cannot run with these settings."""
        return None  # most providers have nothing to check

    def settings(self) -> dict[str, Any]:
        """What shaped the calls, for the metadata line (never secrets)."""
        return {"max_tokens": self.max_tokens, "timeout_s": self.timeout_s}

    def count_tokens(self, text: str) -> int | None:
        """Tokens of ``text`` by this model's own tokenizer, or None when it cannot count
        them here (without a call); the footprint of tool definitions is then estimated."""
        return None

    def classify(self, exc: BaseException) -> Failure:
        """What kind of failure ``exc`` (raised by ``generate``/``preflight``) is, and
        whether to retry it. Providers override this for their own exception types."""
        return generic_failure(exc)

    def tool_format(self, tool: Tool) -> dict[str, Any]:
        """The tool as this provider's API takes it (traces and estimates show this)."""
        return tool.openai_format()


def require_chat(model: Model) -> None:
    """Refuse a model that cannot hold a conversation (an agentic experiment needs one)."""
    if not model.converses:
        raise _single_requests_only(model)


def _single_requests_only(model: Model) -> UsageError:
    return UsageError(
        f"{model.spec} answers single requests only ({type(model).__name__} implements "
        "generate, not chat); an experiment with an app needs a provider that holds a "
        "conversation"
    )


class BadResponse(Exception):
    """A reply the provider answered with success (HTTP 200) that is not a message: a
    body of another shape, a block that is not one, usage that is not a count. Retried
    as kind ``bad_response``, like a garbled body."""


MAX_RETRY_AFTER_S = 300.0
"""The longest pause a server's ``retry-after`` may ask for: a larger value (an hour,
``inf``) is capped to this, and one that is not a finite number of seconds is ignored."""


_RETRYABLE_STATUS = {408: "timeout", 409: "conflict", 429: "rate_limit", 529: "overloaded"}
_AUTH_STATUS = frozenset({401, 403})


def generic_failure(exc: BaseException) -> Failure:
    """The generic rules behind ``Model.classify`` (see the module docstring)."""
    status = getattr(exc, "status_code", None)
    message = _safe_message(exc)
    if isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__:
        return Failure("timeout", message, retryable=True)
    if isinstance(status, int):
        return status_failure(status, message, getattr(exc, "response", None))
    if "Connection" in type(exc).__name__ or isinstance(exc, ConnectionError):
        return Failure("connection", message, retryable=True)
    if (
        isinstance(exc, json.JSONDecodeError | BadResponse)
        or "ResponseValidation" in type(exc).__name__
    ):
        return Failure("bad_response", message, retryable=True)
    return Failure(type(exc).__name__, message, retryable=False)


def status_failure(status: int, message: str, response: Any = None) -> Failure:
    """An HTTP error status as a Failure; honours the response's ``retry-after``."""
    if status in _AUTH_STATUS:
        return Failure("auth", message, retryable=False)
    kind = _RETRYABLE_STATUS.get(status) or ("server_error" if status >= 500 else "rejected")
    return Failure(
        kind, message, retryable=kind != "rejected", retry_after_s=_retry_after(response)
    )


def _retry_after(response: Any) -> float | None:
    """The server's ``retry-after`` in seconds, at most ``MAX_RETRY_AFTER_S``; None when
    absent or not a finite, non-negative number (an HTTP date is not honoured)."""
    headers = getattr(response, "headers", None) or {}
    value = headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER_S)


def _safe_message(exc: BaseException) -> str:
    return safe_text(str(exc) or type(exc).__name__)


def safe_text(text: str) -> str:
    """``text`` with the value of every known key variable blanked out
    (``tooltrial.redact``), shortened."""
    return redact(text)[:2000]
