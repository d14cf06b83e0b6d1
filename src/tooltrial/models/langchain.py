"""Anthropic and OpenAI-compatible servers, through LangChain's chat models.

``anthropic:<model>``  ChatAnthropic (honours ANTHROPIC_BASE_URL and
                       ANTHROPIC_CUSTOM_HEADERS, so a local server can stand in for the API)
``openai:<model>``     any OpenAI-compatible server (vLLM, llama.cpp server, Ollama) via
                       ChatOpenAI; base URL from ``base_url`` or OPENAI_BASE_URL

LangChain and the provider SDKs are imported on first use, not with this module.
"""

from __future__ import annotations

import functools
import json
import os
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tooltrial.definitions.variants import Tool
from tooltrial.errors import AuthenticationFailed, ModelSettingRejected
from tooltrial.models.base import BadResponse, Model, safe_text, status_failure
from tooltrial.text import sendable, sendable_data
from tooltrial.types import (
    AssistantTurn,
    Failure,
    Message,
    ModelResponse,
    ToolCall,
    Usage,
    UserTurn,
    malformed_arguments,
    unparsed_arguments,
)

T = TypeVar("T")

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
    cache = usage.get("input_token_details") or {}
    return ModelResponse(
        text=text,
        tool_calls=_tool_calls(message),
        stop_reason=meta.get(stop_key),
        usage=Usage(
            input_tokens=usage.get("input_tokens", 0),
            output_tokens=usage.get("output_tokens", 0),
            cache_read_tokens=cache.get("cache_read") or None,  # 0 or absent: not recorded
            cache_write_tokens=cache.get("cache_creation") or None,
        ),
        response_model=meta.get("model") or meta.get("model_name"),
        content=tuple(blocks),
    )


def _tool_calls(message: Any) -> tuple[ToolCall, ...]:
    """Every tool call, readable or not: LangChain puts calls whose arguments are not valid
    JSON in ``invalid_tool_calls``; they are kept, as written (``unparsed_arguments``)."""
    valid = [
        ToolCall(id=c.get("id") or "", name=c["name"], arguments=c.get("args") or {})
        for c in message.tool_calls
    ]
    invalid = [
        ToolCall(
            id=c.get("id") or "",
            name=c.get("name") or "",
            arguments=unparsed_arguments(c.get("args") or ""),
        )
        for c in getattr(message, "invalid_tool_calls", None) or []
    ]
    return tuple(valid + invalid)


ERROR_PREFIX = "Error: "
"""What an error result's text starts with where the API has no error flag (OpenAI's
Chat Completions: ChatOpenAI drops ``ToolMessage.status``), so every provider's model is
told that a tool failed, not only Anthropic's (``is_error``) and the embedded one's."""


def to_langchain(
    messages: Sequence[Message], keep_blocks: bool, flags_errors: bool = True
) -> list[Any]:
    """A conversation as LangChain messages: tool results as ``ToolMessage``s (status
    ``error`` for an error result, which ChatAnthropic sends as ``is_error``; without
    ``flags_errors`` the text also starts with ``ERROR_PREFIX``)."""
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    converted: list[Any] = []
    for message in messages:
        if isinstance(message, UserTurn):
            converted.append(HumanMessage(sendable(message.text)))
        elif isinstance(message, AssistantTurn):
            converted.append(_ai_message(message.response, keep_blocks, AIMessage))
        else:
            converted.extend(
                ToolMessage(
                    sendable(
                        ERROR_PREFIX + r.content if r.is_error and not flags_errors else r.content
                    ),
                    tool_call_id=r.call_id,
                    status="error" if r.is_error else "success",
                )
                for r in message.results
            )
    return converted


def _ai_message(response: ModelResponse, keep_blocks: bool, ai_message: Any) -> Any:
    """A model turn as sent back: as recorded, but with text no request could carry (a
    lone surrogate) made sendable (``tooltrial.text``)."""
    calls, invalid = [], []
    for call in response.tool_calls:
        raw = malformed_arguments(call.arguments)
        if raw is None:
            args = sendable_data(call.arguments)
            calls.append({"name": call.name, "args": args, "id": call.id})
        else:
            invalid.append({"name": call.name, "args": sendable(raw), "id": call.id, "error": None})
    content: Any = (
        sendable_data(list(response.content))
        if keep_blocks and response.content
        else sendable(response.text)
    )
    return ai_message(content=content, tool_calls=calls, invalid_tool_calls=invalid)


def read_reply(read: Callable[[], T]) -> T:
    """``read()``, which reads a provider's 200 reply; whatever it raises means the reply
    was not a message: ``BadResponse`` (retried as ``bad_response``)."""
    try:
        return read()
    except BadResponse:
        raise
    except Exception as exc:
        raise BadResponse(
            f"the server answered 200 with a reply that is not a message "
            f"({type(exc).__name__}: {str(exc)[:300]})"
        ) from exc


def _arguments_text(value: Any) -> str:
    """Arguments a model wrote that are not an object, as the JSON it wrote."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _checked_anthropic(data: Any) -> Any:
    """An Anthropic Messages reply (the SDK's ``Message``) fit for LangChain to read: a
    message with a list of typed blocks; a ``tool_use`` whose ``input`` is not an object
    (a string, a list, null) keeps what the model wrote, as unreadable arguments
    (``unparsed_arguments``): the model gets an ``invalid_arguments`` result."""
    content = getattr(data, "content", None)
    if not hasattr(data, "model_dump") or not isinstance(content, list):
        raise BadResponse(
            "the server answered 200 with a reply that is not a message "
            f"(a {type(data).__name__} without a list of content blocks)"
        )
    usage = getattr(data, "usage", None)
    for name in ("input_tokens", "output_tokens"):
        count = getattr(usage, name, 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            # Checked here, before LangChain dumps the message: a NaN or a word where a
            # count belongs is an unreadable reply (retried), not a serializer warning.
            raise BadResponse(
                f"the server answered 200 with usage.{name} that is not a count: {count!r:.50}"
            )
    for block in content:
        kind = getattr(block, "type", None)
        if not isinstance(kind, str):
            raise BadResponse(
                f"the server answered 200 with a content block that is not one: {block!r:.200}"
            )
        if kind == "tool_use" and not isinstance(getattr(block, "input", None), dict):
            block.input = unparsed_arguments(_arguments_text(getattr(block, "input", None)))
    return data


def _checked_openai(response: Any) -> Any:
    """A Chat Completions reply fit for LangChain to read, as a dict: a tool call whose
    arguments are JSON but not an object (a string, a list, null) keeps what the model
    wrote, as unreadable arguments."""
    data = response.model_dump(warnings=False) if hasattr(response, "model_dump") else response
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise BadResponse(
            "the server answered 200 with a reply that is not a chat completion "
            f"(a {type(data).__name__} without a list of choices)"
        )
    for choice in data["choices"]:
        message = choice.get("message") if isinstance(choice, dict) else None
        for call in (message or {}).get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
                continue
            raw = function["arguments"]
            try:
                parsed = json.loads(raw)
            except ValueError:
                continue  # not JSON: LangChain keeps it as an invalid tool call
            if not isinstance(parsed, dict):
                function["arguments"] = json.dumps(unparsed_arguments(raw))
    return data


@functools.cache
def _anthropic_client_class() -> Any:
    """``ChatAnthropic`` that reads a reply through ``_checked_anthropic`` and
    ``read_reply``: an unreadable 200 is ``BadResponse``, never a crash."""
    from langchain_anthropic import ChatAnthropic

    class CheckedChatAnthropic(ChatAnthropic):
        def _format_output(self, data: Any, **kwargs: Any) -> Any:
            parent = super()._format_output
            return read_reply(lambda: parent(_checked_anthropic(data), **kwargs))

    return CheckedChatAnthropic


@functools.cache
def _openai_client_class() -> Any:
    """``ChatOpenAI`` that reads a reply through ``_checked_openai`` and ``read_reply``."""
    from langchain_openai import ChatOpenAI

    class CheckedChatOpenAI(ChatOpenAI):
        def _create_chat_result(self, response: Any, *args: Any, **kwargs: Any) -> Any:
            parent = super()._create_chat_result
            return read_reply(lambda: parent(_checked_openai(response), *args, **kwargs))

    return CheckedChatOpenAI


SDK_OPTIONS = ("extra_headers", "extra_query", "extra_body", "timeout")
"""Keys of a LangChain payload that the SDK takes as request options, not body fields."""


def _wire_body(payload: dict[str, Any]) -> dict[str, Any]:
    """The JSON body the provider's SDK sends for ``payload`` (its ``create(**payload)``):
    ``extra_body`` merged in, request options left out. Headers or a query string cannot
    travel in a batch item: such a payload is refused (``ValueError``)."""
    if payload.get("extra_headers") or payload.get("extra_query"):
        raise ValueError("this request sets headers or a query string, which a batch item cannot")
    body = {k: v for k, v in payload.items() if k not in SDK_OPTIONS}
    body.update(payload.get("extra_body") or {})
    return body


class _LangChainModel(Model):
    stop_key = "stop_reason"
    key_env = "API_KEY"
    """The environment variable holding the key (named in advice, never printed)."""

    @abstractmethod
    def _client(self) -> Any: ...

    @abstractmethod
    def _sdk(self) -> Any:
        """The provider SDK module whose exception classes ``classify`` knows."""

    async def chat(
        self,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[Tool],
        seed: int | None = None,
    ) -> ModelResponse:
        client, history = self._prepared(system, messages, tools)
        message = await client.ainvoke(history)
        return read_reply(lambda: _from_langchain(message, self.stop_key))

    def _prepared(
        self, system: str, messages: Sequence[Message], tools: Sequence[Tool]
    ) -> tuple[Any, list[Any]]:
        """The client (tools bound) and the LangChain messages ``chat`` sends."""
        from langchain_core.messages import SystemMessage

        client = self._client()
        if tools:
            client = client.bind_tools([self.tool_format(t) for t in tools])
        sent = to_langchain(messages, self.keeps_blocks, self.flags_errors)
        return client, [SystemMessage(system), *sent]

    def request_body(
        self, system: str, messages: Sequence[Message], tools: Sequence[Tool]
    ) -> dict[str, Any]:
        """The body ``chat`` would send for this turn, built by the same LangChain code
        (``_get_request_payload``), so a batch item is exactly the online request."""
        client, history = self._prepared(system, messages, tools)
        bound = getattr(client, "bound", client)
        kwargs = getattr(client, "kwargs", {})
        return _wire_body(bound._get_request_payload(history, **kwargs))

    def response_from_body(self, body: Any) -> ModelResponse:
        """A provider's response body (as a batch returns it) read by the same LangChain
        code that reads an online answer, so both give the same ``ModelResponse``."""
        result = read_reply(lambda: self._chat_result(body))
        generation = result.generations[0]
        message = generation.message
        # As BaseChatModel.agenerate does after ``_agenerate``: the call's output and the
        # generation's info become the message's metadata (its stop reason, model).
        message.response_metadata = {
            **(result.llm_output or {}),
            **(generation.generation_info or {}),
            **message.response_metadata,
        }
        return _from_langchain(message, self.stop_key)

    @abstractmethod
    def _chat_result(self, body: Any) -> Any:
        """LangChain's ``ChatResult`` of a provider response body."""

    flags_errors = True
    """Whether the API marks a tool result as an error (else ``ERROR_PREFIX``)."""
    keeps_blocks = False
    """Whether an assistant turn goes back with its content blocks as the API returned
    them (Anthropic's tool_use blocks) rather than as text plus tool calls."""

    def classify(self, exc: BaseException) -> Failure:
        """The SDK's own exception types; anything else by the generic rules."""
        sdk = self._sdk()
        message = safe_text(str(exc) or type(exc).__name__)
        if isinstance(exc, sdk.APITimeoutError):  # a subclass of APIConnectionError
            return Failure("timeout", message, retryable=True)
        if isinstance(exc, sdk.APIStatusError):
            return status_failure(exc.status_code, message, exc.response)
        if isinstance(exc, sdk.APIConnectionError):
            return Failure("connection", message, retryable=True)
        if isinstance(exc, sdk.APIResponseValidationError):
            return Failure("bad_response", message, retryable=True)
        return super().classify(exc)

    async def preflight(self) -> None:
        """A one-token call with the real settings: refused credentials or settings stop
        the run here, with advice."""
        from langchain_core.messages import HumanMessage

        client = self._client().bind(max_tokens=1)
        try:
            await client.ainvoke([HumanMessage("ping")])
        except Exception as exc:
            failure = self.classify(exc)
            if failure.kind == "auth":
                raise AuthenticationFailed(self._auth_advice(failure.message)) from None
            if failure.kind == "rejected":
                raise ModelSettingRejected(self._rejection_advice(failure.message)) from None
            raise

    def _auth_advice(self, server_message: str) -> str:
        state = "is set" if os.environ.get(self.key_env) else "is not set"
        return (
            f"{self.spec} refused the credentials: {server_message}\n"
            f"Check {self.key_env} ({state}; its value is never printed): it must hold a "
            "valid key for this server, with access to this model."
        )

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
    key_env = "ANTHROPIC_API_KEY"
    keeps_blocks = True
    _cached: Any = field(default=None, repr=False)

    def _client(self) -> Any:
        if self._cached is None:
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
            self._cached = _anthropic_client_class()(**kwargs)
        return self._cached

    def _sdk(self) -> Any:
        import anthropic

        return anthropic

    def _chat_result(self, body: Any) -> Any:
        import anthropic

        message = body if isinstance(body, anthropic.types.Message) else None
        if message is None:
            message = anthropic.types.Message.model_validate(body)
        return self._client()._format_output(message)

    def tool_format(self, tool: Tool) -> dict[str, Any]:
        return tool.anthropic_format()


@dataclass
class OpenAIModel(_LangChainModel):
    provider = "openai"
    flags_errors = False
    stop_key = "finish_reason"
    key_env = "OPENAI_API_KEY"
    _cached: Any = field(default=None, repr=False)

    def _client(self) -> Any:
        if self._cached is None:
            from pydantic import SecretStr

            kwargs: dict[str, Any] = {
                "model": self.name,
                "base_url": self.options.get("base_url") or os.environ.get("OPENAI_BASE_URL"),
                # Local servers ignore the key but the client insists on one.
                "api_key": SecretStr(os.environ.get("OPENAI_API_KEY") or "not-needed"),
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
                "timeout": self.timeout_s,
                "max_retries": 0,
            }
            self._cached = _openai_client_class()(**kwargs)
        return self._cached

    def _sdk(self) -> Any:
        import openai

        return openai

    def _chat_result(self, body: Any) -> Any:
        return self._client()._create_chat_result(body)
