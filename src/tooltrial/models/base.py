"""The interface every provider implements, and the generic failure classification.

A provider only turns (system prompt, user prompt, tools) into a ``ModelResponse`` and
says what kind of failure an exception is; retries, pacing and capture live in the
runner. A provider whose exceptions the generic rules below misread overrides
``Model.classify``.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tooltrial.definitions.variants import Tool
from tooltrial.types import Failure, ModelResponse

DEFAULT_MODEL = "local:smollm2"


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

    @abstractmethod
    async def generate(
        self, system: str, prompt: str, tools: Sequence[Tool], seed: int | None = None
    ) -> ModelResponse:
        """One model call; raises the provider's own exceptions on failure."""

    async def preflight(self) -> None:
        """Fail before the first scenario if the model cannot run with these settings."""
        return None  # most providers have nothing to check

    def settings(self) -> dict[str, Any]:
        """What shaped the calls, for the metadata line (never secrets)."""
        return {"max_tokens": self.max_tokens, "timeout_s": self.timeout_s}


_RETRYABLE_STATUS = {408: "timeout", 409: "conflict", 429: "rate_limit", 529: "overloaded"}


def classify(exc: BaseException) -> Failure:
    """Map any provider's exception to a Failure the runner knows how to treat."""
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    message = _safe_message(exc)
    if isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__:
        return Failure("timeout", message, retryable=True)
    if isinstance(status, int):
        kind = _RETRYABLE_STATUS.get(status) or ("server_error" if status >= 500 else "rejected")
        return Failure(
            kind, message, retryable=kind != "rejected", retry_after_s=_retry_after(response)
        )
    if "Connection" in type(exc).__name__ or isinstance(exc, ConnectionError):
        return Failure("connection", message, retryable=True)
    if isinstance(exc, json.JSONDecodeError) or "ResponseValidation" in type(exc).__name__:
        return Failure("bad_response", message, retryable=True)
    return Failure(type(exc).__name__, message, retryable=False)


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None) or {}
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _safe_message(exc: BaseException) -> str:
    """The exception's message with anything that looks like a key blanked out."""
    text = str(exc) or type(exc).__name__
    for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"):
        secret = os.environ.get(var)
        if secret and len(secret) >= 8:
            text = text.replace(secret, "***")
    return text[:2000]
