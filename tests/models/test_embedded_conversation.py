"""The embedded model holds a conversation: how one is rendered (no model load), that each
turn's prompt extends what the previous turn evaluated, and, on the real model
(``slow``), that tool results reach it and a turn evaluates only its new tokens."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from support.paths import TESTS

from tooltrial import load_experiment, run_experiment
from tooltrial.definitions.variants import Tool
from tooltrial.log.reader import read_results
from tooltrial.models import get_model, local
from tooltrial.models.local import (
    END,
    LocalModel,
    PrefixStates,
    render_conversation,
    render_prefix,
    render_prompt,
    render_result,
)
from tooltrial.types import (
    STOP_REASONS,
    AssistantTurn,
    Message,
    ModelResponse,
    ToolResult,
    ToolTurn,
    UserTurn,
)

MINI = TESTS / "mini_agentic"
SYSTEM = "You manage the user's to-do list."
TOOLS = (
    Tool(
        name="list_tasks",
        description="List tasks.",
        input_schema={"type": "object", "properties": {"query": {"type": "string"}}},
    ),
    Tool(
        name="update_task",
        description="Change a task by id.",
        input_schema={
            "type": "object",
            "properties": {"id": {"type": "integer"}, "due": {"type": "string"}},
            "required": ["id"],
        },
    ),
)


class ScriptedLlama:
    """Stands in for llama.cpp's ``Llama``: each completion step answers from the script
    and every prompt is kept. Tokens are bytes; prefix states are empty shells."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.prompts: list[str] = []
        self.completions: list[str] = []
        self.n_tokens = 0
        self.input_ids = np.zeros(0, dtype=np.intc)

    def tokenize(self, text: bytes, special: bool = True) -> list[int]:
        return list(text)

    def create_completion(self, prompt: str, max_tokens: int, **_: Any) -> dict[str, Any]:
        text = self.script.pop(0)
        self.prompts.append(prompt)
        self.completions.append(text)
        usage = {"completion_tokens": min(max_tokens, 1 + len(text) // 4)}
        return {"choices": [{"text": text, "finish_reason": "stop"}], "usage": usage}

    def reset(self) -> None: ...
    def eval(self, tokens: list[int]) -> None: ...
    def load_state(self, state: Any) -> None: ...

    def save_state(self) -> Any:
        return SimpleNamespace(scores=np.zeros((1, 1)))


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> tuple[LocalModel, ScriptedLlama]:
    """A LocalModel whose loaded llama.cpp is a ``ScriptedLlama``."""
    model, llama = LocalModel("smollm2", n_ctx=77_777), ScriptedLlama()
    loaded = local._Loaded(llama, threading.Lock(), PrefixStates())
    monkeypatch.setitem(local._LOADED, ("smollm2", 77_777), loaded)
    return model, llama


def turn(model: LocalModel, llama: ScriptedLlama, messages: list[Message], *script: str) -> str:
    """Run the model's next turn from ``script``; append it; return the text it evaluated
    and generated (its last step's prompt and completion, and the end of its turn)."""
    llama.script = list(script)
    response = asyncio.run(model.chat(SYSTEM, messages, TOOLS, seed=3))
    assert not llama.script, "every scripted step was used"
    messages.append(AssistantTurn(response=response))
    return llama.prompts[-1] + llama.completions[-1] + END


def conversation(model: LocalModel, llama: ScriptedLlama) -> tuple[list[Message], list[str]]:
    """Two tool calls, an ok and an error result, a question, the user's answer."""
    messages: list[Message] = [UserTurn(text="Move my dentist appointment.")]
    written = [
        turn(
            model,
            llama,
            messages,
            "functions.list_tasks:",
            '{ "query": "Dentist" }',
            "functions.update_task",  # the free-text probe begins a second call
            '{"id": 1, "due": "2025-03-21"}',
            "",  # the probe: the model ends its turn
        )
    ]
    first, second = messages[-1].response.tool_calls  # type: ignore[union-attr]
    messages.append(
        ToolTurn(
            results=(
                ToolResult(call_id=first.id, name=first.name, content='[{"id": 1}]'),
                ToolResult(
                    call_id=second.id,
                    name=second.name,
                    content="KeyError: 'no task 1'",
                    is_error=True,
                ),
            )
        )
    )
    written.append(turn(model, llama, messages, "message:", "\nWhich one? "))
    messages.append(UserTurn(text="The first."))
    return messages, written


def test_a_conversation_renders_in_chatml_with_the_model_s_own_words(scripted):
    messages, _ = conversation(*scripted)
    tail = (
        "Move my dentist appointment.<|im_end|>\n"
        "<|im_start|>assistant\n"
        'functions.list_tasks:\n{ "query": "Dentist" }\n'
        'functions.update_task:\n{"id": 1, "due": "2025-03-21"}\n<|im_end|>\n'
        '<|im_start|>tool\nfunctions.list_tasks returned:\n[{"id": 1}]<|im_end|>\n'
        "<|im_start|>tool\nfunctions.update_task returned an error:\n"
        "KeyError: 'no task 1'<|im_end|>\n"
        "<|im_start|>assistant\nmessage:\n\nWhich one? <|im_end|>\n"  # as written
        "<|im_start|>user\nThe first.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert render_conversation(SYSTEM, messages, TOOLS) == render_prefix(SYSTEM, TOOLS) + tail


def test_each_turn_s_prompt_starts_with_what_the_last_turn_evaluated(scripted):
    model, llama = scripted
    messages, written = conversation(model, llama)
    assistant = [i for i, m in enumerate(messages) if isinstance(m, AssistantTurn)]
    for index, text in zip(assistant, written, strict=True):
        following = render_conversation(SYSTEM, messages[: index + 2], TOOLS)
        assert following.startswith(text), (index, text[-80:], following[len(text) - 80 :])


def test_call_ids_are_unique_per_turn_and_results_answer_them(scripted):
    model, llama = scripted
    messages, _ = conversation(model, llama)
    turn(model, llama, messages, "functions.list_tasks:", "{}", "")
    calls = [c.id for m in messages if isinstance(m, AssistantTurn) for c in m.response.tool_calls]
    assert calls == ["call_1_0", "call_1_1", "call_3_0"]
    (results,) = [m for m in messages if isinstance(m, ToolTurn)]
    assert [r.call_id for r in results.results] == calls[:2]


def test_one_message_is_the_single_turn_prompt_byte_for_byte(scripted):
    model, llama = scripted
    llama.script = ["message:", "Hi!"]
    response = asyncio.run(model.generate(SYSTEM, "Plan Mia's <party>", TOOLS, 3))
    assert llama.prompts[0] == render_prompt(SYSTEM, "Plan Mia's <party>", TOOLS)
    assert response.text == "Hi!" and not response.tool_calls


def test_error_results_are_marked_as_errors_in_the_text():
    ok = ToolResult(call_id="call_1_0", name="remove", content="removed")
    failed = ok.model_copy(update={"content": "TimeoutError: too slow", "is_error": True})
    assert render_result(ok) == "<|im_start|>tool\nfunctions.remove returned:\nremoved<|im_end|>\n"
    assert render_result(failed) == (
        "<|im_start|>tool\nfunctions.remove returned an error:\nTimeoutError: too slow<|im_end|>\n"
    )


# --- the real model ----------------------------------------------------------------------


class Turns:
    """Per model turn of the embedded model: the prompts it was given and the tokens
    llama.cpp evaluated for its first step (the prompt tokens not already in the context)."""

    def __init__(self, model: LocalModel, monkeypatch: pytest.MonkeyPatch) -> None:
        self.llama = model._llama().llama
        self.prompts: list[list[str]] = []
        self.evaluated: list[int] = []
        chat, complete, evaluate = model._chat, self.llama.create_completion, self.llama.eval

        def each_turn(*args: Any) -> ModelResponse:
            self.prompts.append([])
            self.evaluated.append(-1)
            return chat(*args)

        def each_step(prompt: str, **kwargs: Any) -> Any:
            self.prompts[-1].append(prompt)
            return complete(prompt, **kwargs)

        def each_eval(tokens: Any) -> None:
            if self.evaluated and self.evaluated[-1] < 0 and len(self.prompts[-1]) == 1:
                self.evaluated[-1] = len(tokens)  # the first step's prompt evaluation
            evaluate(tokens)

        monkeypatch.setattr(model, "_chat", each_turn)
        monkeypatch.setattr(self.llama, "create_completion", each_step)
        monkeypatch.setattr(self.llama, "eval", each_eval)

    def tokens(self, text: str) -> list[int]:
        return list(self.llama.tokenize(text.encode(), special=True))


@pytest.mark.slow
def test_an_agentic_cell_on_the_embedded_model_is_well_formed(tmp_path, monkeypatch):
    experiment = load_experiment(MINI)
    model = get_model("local:smollm2", temperature=experiment.temperature, max_tokens=64)
    assert isinstance(model, LocalModel)
    turns = Turns(model, monkeypatch)
    result = run_experiment(
        experiment, model, runs=1, results=tmp_path, variants=["api"], scenarios=["move-dentist"]
    )
    (outcome,) = result.outcomes
    conversation = outcome.conversation
    assert conversation is not None, outcome.failure
    assert conversation.stop_reason in STOP_REASONS
    messages = conversation.messages
    tool_turns = [i for i, m in enumerate(messages) if isinstance(m, ToolTurn)]
    assert tool_turns, "this cell's first turn calls a tool (seeded); choose one that does"
    first = messages[tool_turns[0]].results[0]  # type: ignore[union-attr]
    second_turn = turns.prompts[1][0]
    assert render_result(first) in second_turn and first.content in second_turn
    ids: list[str] = []
    for i, message in enumerate(messages):
        if not isinstance(message, AssistantTurn) or not message.response.tool_calls:
            continue
        calls = [c.id for c in message.response.tool_calls]
        ids += calls
        if i + 1 == len(messages):  # a limit stopped the conversation before they ran
            assert conversation.stop_reason != "answered"
            continue
        results = messages[i + 1]
        assert isinstance(results, ToolTurn)
        assert [r.call_id for r in results.results] == calls
    assert len(ids) == len(set(ids))
    (line,) = read_results([tmp_path]).values()
    assert line.conversation is not None and line.conversation.turns == len(turns.prompts)


@pytest.mark.slow
def test_the_second_turn_evaluates_only_its_new_tokens(monkeypatch):
    model = get_model("local:smollm2", temperature=0.2, max_tokens=64)
    assert isinstance(model, LocalModel)
    turns = Turns(model, monkeypatch)
    messages: list[Message] = [UserTurn(text="Move my dentist appointment to Friday.")]
    first = asyncio.run(model.chat(SYSTEM, messages, TOOLS, seed=11))
    messages.append(AssistantTurn(response=first))
    if first.tool_calls:
        results = tuple(
            ToolResult(call_id=c.id, name=c.name, content='[{"id": 1, "title": "Dentist"}]')
            for c in first.tool_calls
        )
        messages.append(ToolTurn(results=results))
    else:
        messages.append(UserTurn(text="The one on the 14th."))
    asyncio.run(model.chat(SYSTEM, messages, TOOLS, seed=11))
    before = turns.tokens(render_conversation(SYSTEM, messages[:1], TOOLS))
    whole = turns.tokens(render_conversation(SYSTEM, messages, TOOLS))
    # the first turn's prompt and reply, as rendered for the second
    held = turns.tokens(render_conversation(SYSTEM, messages[:2], TOOLS).rsplit(END, 1)[0])
    new = len(whole) - len(held)
    assert turns.evaluated[1] == new, (turns.evaluated, len(before), len(held), len(whole))
    assert new < len(whole) - len(before)
