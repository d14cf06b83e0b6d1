"""A scripted agent for the Messages API test server: it decides each reply from the
conversation it is sent (above all, the tool results and their ``is_error``), so tests
drive the real ``ChatAnthropic`` client and the whole runner through conversations.

    from tooltrial.testing.scripted_agent import ScriptedAgent, call, result, say

    agent = ScriptedAgent([
        {"prompt": "dentist", "offers": "update_task", "steps": [
            call("list_tasks", query="Dentist"),
            call("update_task", id=result("0.id"), due="2025-03-21"),
            say("Moved to Friday the 21st.", on_error=say("Sorry, that failed.")),
        ]},
        {"prompt": "forever", "mode": "always_tool"},
    ])
    with MessagesServer(responder=agent) as srv: ...

In another process the same policies are JSON: ``python -m
tooltrial.testing.messages_server --agent policies.json`` (a file, or the JSON itself; or
the ``TOOLTRIAL_SERVER_AGENT`` variable).

Rules, and what they guarantee:

- A request is answered by the first policy whose ``prompt`` (a case-insensitive
  substring of the first user message), ``system`` (of the system prompt) and ``offers``
  (a tool name the request offers) all hold; left out, each holds. A request offering no
  tools (the runner's one-token preflight) gets the server's default responder. One with
  tools that no policy matches is refused (400, naming the policies), so a mistyped key
  fails at once instead of playing another script.
- Stateless: a reply depends on the request alone. Turn n (the number of assistant
  messages already in the conversation) plays step n, and past the last step the last
  one repeats. So a retried request gets the same reply, concurrent conversations never
  mix, and a conversation started again after a crash plays from its first step.
- A step is a final text (stop reason ``end_turn``), or tool calls (``tool_use``, after
  the step's text if it has one); its ``on_error`` step is played instead when any tool
  result just sent is an error.
- ``{"$result": "0.id"}``, anywhere in a step's input or text, is a value from the tool
  results just sent: the first result's content (parsed when it is JSON), then the path
  (dot-separated keys and list indexes; ``""`` is the whole value); ``"call": k`` takes
  the k-th result (from 0). A path that is not there is refused (400) with the content.
- Mode ``always_tool`` never answers: every turn calls a tool (the one the first user
  message names, else the first offered) with placeholder arguments from its schema,
  whatever came back; for limit tests. Mode ``default`` is the default responder.

The policies read a request through ``Exchange`` (first user message, system prompt, the
tools offered, the turn number, the tool results just sent) and answer an ``AgentReply``
(text, tool calls), whatever the API: ``ScriptedAgent.__call__`` is the Messages API's
front, ``openai_server`` has the Chat Completions one (``ScriptedAgent.reply``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tooltrial.testing.responders import (
    ResponderRefused,
    default_responder,
    placeholder,
    sent_tool_results,
    text_of,
)

AGENT_ENV = "TOOLTRIAL_SERVER_AGENT"
"""Where ``python -m tooltrial.testing.messages_server`` finds policies without --agent."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Call(_Strict):
    call: str
    """The tool's name."""
    input: dict[str, Any] = Field(default_factory=dict)


class Step(_Strict):
    """One model turn: ``text``, tool calls (``call`` + ``input``, or ``calls``), or both."""

    text: Any = None
    call: str | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    calls: tuple[Call, ...] = ()
    on_error: Step | None = None

    @model_validator(mode="after")
    def _says_something(self) -> Step:
        if self.call is not None and self.calls:
            raise ValueError("a step takes 'call' or 'calls', not both")
        if self.call is None and self.input:
            raise ValueError("'input' needs the 'call' it is for")
        if self.text is None and self.call is None and not self.calls:
            raise ValueError("a step needs 'text', 'call' or 'calls'")
        return self

    @property
    def tool_calls(self) -> tuple[Call, ...]:
        return (Call(call=self.call, input=self.input),) if self.call else self.calls


class Policy(_Strict):
    """How to answer the conversations it matches (see the module docstring)."""

    prompt: str = ""
    system: str = ""
    offers: str | None = None
    mode: Literal["steps", "always_tool", "default"] = "steps"
    steps: tuple[Step, ...] = ()

    @model_validator(mode="after")
    def _playable(self) -> Policy:
        if self.mode == "steps" and not self.steps:
            raise ValueError("a policy needs 'steps' (or a mode: always_tool, default)")
        if self.mode != "steps" and self.steps:
            raise ValueError(f"mode {self.mode!r} takes no 'steps'")
        return self

    def matches(self, first_user: str, system: str, offered: Sequence[str]) -> bool:
        return (
            self.prompt.casefold() in first_user.casefold()
            and self.system.casefold() in system.casefold()
            and (self.offers is None or self.offers in offered)
        )

    def label(self) -> str:
        parts = [f"{k}={v!r}" for k, v in (("prompt", self.prompt), ("system", self.system))]
        return " ".join([*(p for p in parts if not p.endswith("=''")), f"offers={self.offers!r}"])


class _Policies(_Strict):
    policies: tuple[Policy, ...]


class ScriptedAgent:
    """A ``MessagesServer`` responder that plays ``policies`` (see the module docstring);
    ``OpenAIServer`` plays them through ``reply``.

    ``policies``: ``Policy`` objects or their JSON form (a list, or ``{"policies": [...]}``);
    a malformed policy raises ``ValueError`` naming what is wrong, before any request."""

    def __init__(self, policies: Sequence[Policy | Mapping[str, Any]] | Mapping[str, Any]):
        raw = policies.get("policies") if isinstance(policies, Mapping) else policies
        try:
            self.policies = _Policies.model_validate({"policies": raw}).policies
        except ValidationError as exc:
            raise ValueError(f"scripted agent: bad policies: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> ScriptedAgent:
        """From JSON text, or the path of a JSON file."""
        stripped = text.strip()
        if not stripped.startswith(("{", "[")):
            stripped = Path(stripped).read_text()
        try:
            return cls(json.loads(stripped))
        except json.JSONDecodeError as exc:
            raise ValueError(f"scripted agent: policies are not JSON: {exc}") from None

    @classmethod
    def from_env(cls) -> ScriptedAgent | None:
        value = os.environ.get(AGENT_ENV)
        return cls.from_json(value) if value else None

    def to_json(self) -> str:
        """The policies as JSON, for a server in another process (``--agent``)."""
        return _Policies(policies=self.policies).model_dump_json(exclude_defaults=True)

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        """The Messages API responder: ``body`` read as an ``Exchange``, the reply as blocks."""
        reply = self.reply(anthropic_exchange(body))
        return default_responder(body) if reply is None else anthropic_reply(reply)

    def reply(self, exchange: Exchange) -> AgentReply | None:
        """What the matching policy says to ``exchange``; ``None`` when the API's own
        default responder is to answer (no tools offered, or mode ``default``)."""
        if not exchange.tools:
            return None
        offered = list(exchange.tools)
        policy = next(
            (p for p in self.policies if p.matches(exchange.first_user, exchange.system, offered)),
            None,
        )
        if policy is None:
            known = "; ".join(p.label() for p in self.policies)
            raise ResponderRefused(
                f"scripted agent: no policy matches the prompt {exchange.first_user[:80]!r} "
                f"(tools {', '.join(offered)}); the policies: {known}"
            )
        if policy.mode == "default":
            return None
        if policy.mode == "always_tool":
            return _always_tool(exchange)
        step = policy.steps[min(exchange.turn, len(policy.steps) - 1)]
        return _play(step, exchange.results)


class SentResult(NamedTuple):
    """A tool result the client just sent back, as the policies read it."""

    content: str
    is_error: bool


class Exchange(NamedTuple):
    """What the policies read of a request, whatever API it came through."""

    first_user: str
    """The first user message's text (what ``prompt`` matches)."""
    system: str
    tools: dict[str, dict[str, Any]]
    """The tools offered, in order: name -> JSON schema of the arguments."""
    turn: int
    """Assistant messages already in the conversation: the step to play."""
    results: tuple[SentResult, ...]
    """The tool results just sent, in the order of the calls they answer."""


class AgentReply(NamedTuple):
    """One model turn: text (or None), then tool calls (name, arguments) in order."""

    text: str | None
    calls: tuple[tuple[str, dict[str, Any]], ...] = ()


def anthropic_exchange(body: dict[str, Any]) -> Exchange:
    """A Messages API request body, as the policies read it."""
    tools = {
        t["name"]: t.get("input_schema") or {}
        for t in body.get("tools") or []
        if isinstance(t, dict) and "name" in t
    }
    messages = body.get("messages") or []
    first = text_of(messages[0].get("content", "")) if messages else ""
    turn = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")
    results = tuple(
        SentResult(text_of(r.get("content", "")), bool(r.get("is_error")))
        for r in sent_tool_results(body)
    )
    return Exchange(first, text_of(body.get("system", "")), tools, turn, results)


def anthropic_reply(reply: AgentReply) -> dict[str, Any]:
    """An ``AgentReply`` as Messages API content blocks (text first) and stop reason."""
    content: list[dict[str, Any]] = []
    if reply.text is not None:
        content.append({"type": "text", "text": reply.text})
    for name, arguments in reply.calls:
        content.append({"type": "tool_use", "name": name, "input": arguments})
    return {"content": content, "stop_reason": "tool_use" if reply.calls else "end_turn"}


def _play(step: Step, results: tuple[SentResult, ...]) -> AgentReply:
    if step.on_error is not None and any(r.is_error for r in results):
        return _play(step.on_error, results)
    said = None
    if step.text is not None:  # a text resolved from a result may be any JSON value
        text = _resolve(step.text, results)
        said = text if isinstance(text, str) else _dumps(text)
    made = tuple((c.call, _resolve(c.input, results)) for c in step.tool_calls)
    return AgentReply(said, made)


def _always_tool(exchange: Exchange) -> AgentReply:
    name = next((n for n in exchange.tools if n in exchange.first_user), next(iter(exchange.tools)))
    return AgentReply(None, ((name, placeholder(exchange.tools[name])),))


def result(path: str = "", call: int = 0) -> dict[str, Any]:
    """A value from the tool results just sent: ``result("0.id")``."""
    return {"$result": path, "call": call} if call else {"$result": path}


def call(name: str, /, **arguments: Any) -> dict[str, Any]:
    """A step calling one tool: ``call("update_task", id=result("0.id"), due="...")``
    (with text before the call: ``calls(call(...), text=...)``)."""
    return {"call": name, "input": arguments}


def calls(*steps: Mapping[str, Any], text: str | None = None) -> dict[str, Any]:
    """A step calling several tools in one turn: ``calls(call("a"), call("b", x=1))``."""
    made = [{"call": s["call"], "input": s.get("input", {})} for s in steps]
    return {"calls": made, "text": text} if text is not None else {"calls": made}


def say(text: Any, on_error: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A final text (``on_error``: the step played instead after a failed tool)."""
    return {"text": text, "on_error": dict(on_error)} if on_error else {"text": text}


def _resolve(value: Any, results: tuple[SentResult, ...]) -> Any:
    """``value`` with every ``{"$result": path}`` replaced by what it points at."""
    if isinstance(value, dict):
        if "$result" in value and set(value) <= {"$result", "call"}:
            return _lookup(str(value["$result"]), int(value.get("call", 0)), results)
        return {k: _resolve(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, results) for v in value]
    return value


def _lookup(path: str, index: int, results: tuple[SentResult, ...]) -> Any:
    if not -len(results) <= index < len(results):
        raise ResponderRefused(
            f"scripted agent: {{'$result': {path!r}}} needs tool result #{index}, but "
            f"{len(results)} came back"
        )
    text = results[index].content
    try:
        value: Any = json.loads(text)
    except ValueError:
        value = text
    for part in filter(None, path.split(".")):
        try:
            value = value[int(part)] if isinstance(value, list) else value[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise ResponderRefused(
                f"scripted agent: no {part!r} at {path!r} in the tool result {text[:300]!r}"
            ) from None
    return value


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
