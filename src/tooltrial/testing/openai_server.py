"""A local HTTP server that speaks OpenAI's Chat Completions API, so the real
``ChatOpenAI`` client (``openai:<model>``) plays whole conversations offline.

    agent = ScriptedAgent([{"prompt": "dentist", "steps": [call("list_tasks"), say("Done.")]}])
    with OpenAIServer(agent) as srv:
        os.environ["OPENAI_BASE_URL"] = srv.base_url  # http://127.0.0.1:<port>/v1

Guarantees, the same as ``MessagesServer``'s (whose machinery it reuses, faults included):
it binds 127.0.0.1 only, runs in a thread with its own event loop, stops itself after
``max_requests`` requests or ``max_seconds``, and records every request with credentials
redacted (the ``Authorization`` header is ``***``: a key is never logged or stored).

What it speaks: ``POST /v1/chat/completions``, without streaming (``ChatOpenAI.ainvoke``
does not stream unless ``streaming=True``; a request with ``"stream": true`` is refused
with a 400, so a streaming client fails at once instead of waiting). The answer is a
``chat.completion``: ``choices[0].message`` with ``content`` and ``tool_calls`` (``id``,
``type: function``, ``function: {name, arguments}`` with the arguments as a JSON string),
``finish_reason`` (``tool_calls``, ``stop``, or ``length`` when a text reply passes
``max_completion_tokens``), ``usage`` (estimated prompt and completion tokens), ``model``.

Who answers: a ``ScriptedAgent``'s policies, unchanged (see ``scripted_agent``). The
request is read as their ``Exchange``: the first ``user`` message, the ``system``
messages, the tools by function name and ``parameters``, the turn (assistant messages so
far), and the tool results just sent: the trailing ``role: "tool"`` messages, in the
order of the calls (matched by ``tool_call_id``) of the assistant message before them.
Without an agent, or where it defers (no tools offered, mode ``default``), the default
answers: text when no tools are offered or a result just came back, else a call of the
first tool with placeholder arguments.

Tool errors: a ``tool`` message has no error flag in this API (ChatOpenAI drops
``ToolMessage.status``), so the server cannot know a result is an error from the wire. A
result counts as one for the policies (``on_error``) only when ``errors``, a predicate on
its content, says so: by default none does. The content always arrives, as the client
sent it (``tool_results()``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from typing import Any, NamedTuple

from tooltrial.testing.messages_server import Faults, MessagesServer, Reply, _json_reply, _tokens
from tooltrial.testing.responders import ResponderRefused, placeholder, text_of
from tooltrial.testing.scripted_agent import AgentReply, Exchange, ScriptedAgent, SentResult

__all__ = ["OpenAIServer", "ReceivedToolMessage", "openai_exchange", "sent_tool_messages"]

PATH = "/v1/chat/completions"
PROMPT_KEYS = ("messages", "tools", "tool_choice")  # what prompt_tokens counts


class ReceivedToolMessage(NamedTuple):
    """A ``role: "tool"`` message as the server received it, among the trailing ones of a
    request (the results the client just sent back; earlier ones are history)."""

    number: int  # the request that carried it
    tool_call_id: str
    content: str
    outcome: str  # the request's outcome: a result resent after a fault appears again


def _no_errors(content: str) -> bool:
    return False


def _error(status: int, kind: str, message: str) -> Reply:
    return _json_reply(
        status, {"error": {"message": message, "type": kind, "param": None, "code": None}}
    )


def _messages(body: Any) -> list[dict[str, Any]]:
    messages = body.get("messages") if isinstance(body, dict) else None
    return [m for m in messages or [] if isinstance(m, dict)]


def sent_tool_messages(body: Any) -> list[dict[str, Any]]:
    """The trailing ``tool`` messages of a request, in the order of the calls they answer."""
    messages = _messages(body)
    start = len(messages)
    while start and messages[start - 1].get("role") == "tool":
        start -= 1
    asked = (messages[start - 1].get("tool_calls") or []) if start else []
    order = {c.get("id"): n for n, c in enumerate(asked) if isinstance(c, dict)}
    return sorted(messages[start:], key=lambda m: order.get(m.get("tool_call_id"), len(order)))


def openai_exchange(body: dict[str, Any], errors: Callable[[str], bool] = _no_errors) -> Exchange:
    """A Chat Completions request, as the scripted agent's policies read it."""
    messages = _messages(body)
    functions = [t.get("function") for t in body.get("tools") or [] if isinstance(t, dict)]
    tools = {f["name"]: f.get("parameters") or {} for f in functions if f and "name" in f}
    first = next((text_of(m.get("content") or "") for m in messages if m.get("role") == "user"), "")
    system = " ".join(
        text_of(m.get("content") or "")
        for m in messages
        if m.get("role") in ("system", "developer")
    )
    turn = sum(1 for m in messages if m.get("role") == "assistant")
    sent = (text_of(m.get("content") or "") for m in sent_tool_messages(body))
    results = tuple(SentResult(content, errors(content)) for content in sent)
    return Exchange(first, system, tools, turn, results)


def default_reply(exchange: Exchange) -> AgentReply:
    """Text when no tools are offered or a result just came back, else call the first tool."""
    if exchange.results or not exchange.tools:
        said = exchange.results[-1].content if exchange.results else exchange.first_user
        return AgentReply(f"Done. {said[:200]}")
    name, schema = next(iter(exchange.tools.items()))
    return AgentReply(None, ((name, placeholder(schema)),))


def completion(body: dict[str, Any], reply: AgentReply, number: int) -> dict[str, Any]:
    """``reply`` as a ``chat.completion`` answering request ``number``."""
    calls = [
        {
            "id": f"call_{number:06d}_{i}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)},
        }
        for i, (name, arguments) in enumerate(reply.calls)
    ]
    text, finish = reply.text, "tool_calls" if calls else "stop"
    output = _tokens([text, calls])
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if not calls and isinstance(limit, int) and output > limit:  # cut the text off
        text, finish, output = (text or "")[: limit * 4], "length", limit
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    prompt = _tokens({k: body[k] for k in PROMPT_KEYS if k in body})
    return {
        "id": f"chatcmpl-{number:020d}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": output,
            "total_tokens": prompt + output,
        },
    }


class OpenAIServer(MessagesServer):
    """Chat Completions API double on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        agent: ScriptedAgent | None = None,
        faults: Faults | None = None,
        *,
        errors: Callable[[str], bool] | None = None,
        port: int = 0,
        max_requests: int = 100_000,
        max_seconds: float = 600.0,
        api_keys: Collection[str] | None = None,
    ) -> None:
        """``errors``: which tool results the agent takes for errors (by content; none by
        default). ``api_keys``: when given, any other key gets a 401."""
        super().__init__(
            faults, port=port, max_requests=max_requests, max_seconds=max_seconds, api_keys=api_keys
        )
        self.agent, self.errors = agent, errors or _no_errors

    @property
    def base_url(self) -> str:
        """What ``OPENAI_BASE_URL`` (or the ``base_url`` option) is set to."""
        return f"{self.url}/v1"

    def tool_results(self) -> list[ReceivedToolMessage]:  # type: ignore[override]
        """Every tool message the server received, request by request (a request resent
        after a fault carries its results again: tell them apart by ``outcome``)."""
        return [
            ReceivedToolMessage(
                r.number, str(m.get("tool_call_id", "")), text_of(m.get("content") or ""), r.outcome
            )
            for r in self.requests
            if r.path == PATH
            for m in sent_tool_messages(r.body)
        ]

    def _respond(
        self, method: str, path: str, headers: dict[str, str], body: Any, number: int
    ) -> Reply:
        if method != "POST" or path != PATH:
            return _error(404, "invalid_request_error", f"Unknown request URL: {method} {path}")
        key = headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not key:
            return _error(401, "invalid_request_error", "You didn't provide an API key.")
        if self.api_keys is not None and key not in self.api_keys:
            return _error(401, "invalid_request_error", "Incorrect API key provided.")
        if not isinstance(body, dict):
            return _error(400, "invalid_request_error", "The body must be a JSON object.")
        for field in ("model", "messages"):
            if field not in body:
                return _error(
                    400, "invalid_request_error", f"Missing required parameter: {field!r}."
                )
        if body.get("stream"):
            return _error(400, "invalid_request_error", "This test server does not stream.")
        try:
            reply = self._reply(body)
        except ResponderRefused as exc:
            return _error(400, "invalid_request_error", str(exc))
        except Exception as exc:  # a broken agent is the server's fault, like a real 500
            return _error(500, "server_error", f"agent failed: {exc!r}")
        return _json_reply(
            200, completion(body, reply, number), **{"x-request-id": f"req_{number}"}
        )

    def _reply(self, body: dict[str, Any]) -> AgentReply:
        exchange = openai_exchange(body, self.errors)
        reply = self.agent.reply(exchange) if self.agent else None
        return default_reply(exchange) if reply is None else reply
