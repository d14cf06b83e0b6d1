"""A model that answers from a script, in-process: for tooltrial's tests and yours.

    from tooltrial.testing.scripted import ScriptedModel, reply

    model = ScriptedModel(
        name="demo",
        experiment=experiment,  # lets the script name cells by (variant, scenario id)
        script={
            ("applike", "no-call-small-talk"): "You're welcome!",
            ("applike", "create-task-tomorrow-at-3"): reply(
                calls=[("add_task", {"title": "Call the plumber", "due": "2025-03-13T15:00"})]
            ),
            ("*", "no-call-weather"): [TimeoutError, "Sunny."],  # fails once, then answers
        },
    )
    Runner(experiment, model).call(Cell(model.spec, "applike", "no-call-small-talk", 1))

``script`` is a mapping or a function of a ``Request``. A reply is a ``ModelResponse``
(``reply(...)`` builds one), plain text, an exception (instance or class: raised), or a
list of these, taken one per call of the same cell (attempts and retries count; the last
one repeats).

Guarantees: no network, no threads, no randomness; the same script answers the same
way every time. Mapping keys may use ``"*"`` for any variant or scenario; the exact key
wins. A call with no scripted reply raises ``Unscripted``, which ``classify`` reports as
kind ``unscripted``, never retried, so the cell is recorded as a ``scenario_error``.
A subclass (a plugin's provider, say) overrides ``classify`` for its own exceptions.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from tooltrial.definitions import Experiment
from tooltrial.definitions.variants import Tool
from tooltrial.models.base import Model
from tooltrial.types import (
    Failure,
    Message,
    ModelResponse,
    ToolCall,
    ToolResult,
    ToolTurn,
    Usage,
    UserTurn,
)

Script: TypeAlias = "Mapping[tuple[str, str], Any] | Callable[[Request], Any]"
"""Replies by (variant, scenario id), or a function of the ``Request``; see above."""


class Unscripted(LookupError):
    """The script has no reply for this call."""


@dataclass(frozen=True)
class Request:
    """One call as the script sees it."""

    system: str
    prompt: str
    tools: tuple[Tool, ...]
    seed: int | None
    variant: str | None
    """Known when the model was given the experiment (and the system prompt is its)."""
    scenario_id: str | None
    """Known when the model was given the experiment and exactly one scenario has this prompt."""
    call: int
    """1 for the first call of this cell (same system, prompt and seed), 2 for the next…
    (in a conversation, each model turn is the next call)"""
    messages: tuple[Message, ...] = ()
    """The conversation so far (agentic experiments; one user turn otherwise)."""

    @property
    def results(self) -> tuple[ToolResult, ...]:
        """The tool results the model was just sent (none if the last turn was not tools)."""
        last = self.messages[-1] if self.messages else None
        return last.results if isinstance(last, ToolTurn) else ()


def reply(text: str = "", calls: Iterable[tuple[str, Mapping[str, Any]]] = ()) -> ModelResponse:
    """A response with this text and these (tool name, arguments) calls."""
    tool_calls = tuple(
        ToolCall(id=f"call_{i}", name=name, arguments=dict(args))
        for i, (name, args) in enumerate(calls)
    )
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    blocks += [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in tool_calls
    ]
    written = text + json.dumps([c.arguments for c in tool_calls])
    return ModelResponse(
        text=text,
        tool_calls=tool_calls,
        stop_reason="tool_use" if tool_calls else "end_turn",
        usage=Usage(output_tokens=max(1, len(written) // 4)),
        content=tuple(blocks),
    )


@dataclass
class ScriptedModel(Model):
    """Answers each call from ``script``; see the module docstring."""

    provider = "scripted"
    script: Script | None = None
    experiment: Experiment | None = None
    _calls: Counter[tuple[str, str, int | None]] = field(default_factory=Counter, repr=False)

    async def chat(
        self,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[Tool],
        seed: int | None = None,
    ) -> ModelResponse:
        first = messages[0] if messages else None
        prompt = first.text if isinstance(first, UserTurn) else ""
        request = self._request(system, prompt, tuple(tools), seed, tuple(messages))
        answer = self._answer(request)
        response = _as_response(answer, request)
        usage = Usage(
            input_tokens=_input_tokens(self, request),
            output_tokens=response.usage.output_tokens,
        )
        return response.model_copy(update={"usage": usage, "response_model": self.spec})

    def classify(self, exc: BaseException) -> Failure:
        if isinstance(exc, Unscripted):
            return Failure("unscripted", str(exc), retryable=False)
        return super().classify(exc)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "script": type(self).__module__}

    def _request(
        self,
        system: str,
        prompt: str,
        tools: tuple[Tool, ...],
        seed: int | None,
        messages: tuple[Message, ...],
    ) -> Request:
        self._calls[(system, prompt, seed)] += 1
        variant, scenario_id = _cell_of(self.experiment, system, prompt, tools)
        call = self._calls[(system, prompt, seed)]
        return Request(system, prompt, tools, seed, variant, scenario_id, call, messages)

    def _answer(self, request: Request) -> Any:
        if callable(self.script):
            return self.script(request)
        if isinstance(self.script, Mapping):
            return _lookup(self.script, request)
        raise TypeError("ScriptedModel needs script= a mapping or a function of a Request")


def _cell_of(
    experiment: Experiment | None, system: str, prompt: str, tools: tuple[Tool, ...] = ()
) -> tuple[str | None, str | None]:
    """The (variant, scenario) of a call: the variant by its system prompt and tools
    (variants may share a prompt), the scenario by its prompt."""
    if experiment is None:
        return None, None
    names = [t.name for t in tools]
    variants = [
        v.name
        for v in experiment.variants
        if experiment.system_prompt(v) == system and [t.name for t in v.tools] == names
    ]
    scenarios = [s.id for s in experiment.scenarios if s.prompt == prompt]
    return (
        variants[0] if len(variants) == 1 else None,
        scenarios[0] if len(scenarios) == 1 else None,
    )


def _lookup(script: Mapping[tuple[str, str], Any], request: Request) -> Any:
    variant, scenario = request.variant or "?", request.scenario_id or "?"
    for key in ((variant, scenario), ("*", scenario), (variant, "*"), ("*", "*")):
        if key in script:
            return script[key]
    raise Unscripted(
        f"no scripted reply for variant {variant!r}, scenario {scenario!r} "
        "(give the model the experiment to name cells, or use a script function)"
    )


def _as_response(answer: Any, request: Request) -> ModelResponse:
    if isinstance(answer, list):
        if not answer:
            raise Unscripted(f"an empty list of replies for {request.scenario_id!r}")
        answer = answer[min(request.call, len(answer)) - 1]
    if isinstance(answer, type) and issubclass(answer, BaseException):
        raise answer(f"scripted failure (call {request.call})")
    if isinstance(answer, BaseException):
        raise answer
    if isinstance(answer, str):
        return reply(answer)
    if isinstance(answer, ModelResponse):
        return answer
    raise TypeError(f"a scripted reply must be a ModelResponse, text or exception: {answer!r}")


def _input_tokens(model: Model, request: Request) -> int:
    tools = json.dumps([model.tool_format(t) for t in request.tools])
    later = sum(len(m.model_dump_json()) for m in request.messages[1:])
    return (len(request.system) + len(request.prompt) + len(tools) + later) // 4
