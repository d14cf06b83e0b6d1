"""What a conversation turn on the embedded model costs over llama.cpp's own speed. One
command:

    uv run python bench/bench_agentic_embedded.py             # 2 variants × 2 scenarios × 3 reps
    uv run python bench/bench_agentic_embedded.py --reps 1

Conversations of tests/mini_agentic (a to-do app; up to 4 model turns each) on the
embedded SmolLM2, through the real runner at concurrency 1, in a seeded random order.
For every model turn it records the prompt's tokens, how many of them llama.cpp already
held (in its context, or as a saved prefix state), how many it evaluated, and the tokens
generated. The moment a turn ends (the runner reports it to the tracer after timing it),
it is replayed with bare ``eval`` calls on a second ``Llama`` of the same file and
settings (so the conversation's context is untouched): the turn's new prompt tokens in
one batch at the position they sit in, then one token at a time for as many tokens as
the turn generated. That is llama.cpp's own time for the turn's tokens, measured next to
the turn so the machine's load falls on both alike; the same replay with the whole prompt
shows what a turn would cost without prefix reuse. A warm-up conversation (grammars
built, pages touched) runs first and is not counted.

Prints, per turn number: mean tokens (prompt, held in the context, evaluated, generated),
the ratio of the harness's turn time (``AssistantTurn.latency_s``: the runner's timing of
``model.chat``) to llama.cpp's time for those tokens, and the ratio of whole-prompt to
new-token llama.cpp time; then the same over all turns, llama.cpp's speeds on this
machine, and where the rest of a turn's time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llama_cpp import Llama

from tooltrial import load_experiment
from tooltrial.definitions import Experiment
from tooltrial.log.writer import WriterPool
from tooltrial.models import get_model
from tooltrial.models.local import (
    LocalModel,
    _common_prefix,
    _threads,
    render_conversation,
    smollm2_path,
)
from tooltrial.run.plan import metadata_for, order_cells, plan_cells
from tooltrial.run.runner import Runner
from tooltrial.tracing.base import Span, Tracer
from tooltrial.types import AssistantTurn, Cell, Failure, Message, ModelResponse, Order, Outcome

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "tests" / "mini_agentic"


@dataclass
class Turn:
    """One model turn as the harness ran it, and llama.cpp's time for its tokens."""

    prompt: list[int]
    held: int  # prompt tokens the context held, or a saved prefix state (PrefixStates)
    evaluated: int = 0  # prompt tokens evaluated before the turn's first sample
    steps: int = 0  # completions (protocol steps) begun
    first_eval: bool = False
    evaluated_all: int = 0  # every token evaluated in the turn (all steps, prefix states)
    eval_s: float = 0.0  # time in llama.cpp eval calls during the turn
    generated: int = 0
    harness_s: float = 0.0
    llama_s: float = 0.0  # bare llama.cpp: new prompt tokens + generated tokens
    whole_s: float = 0.0  # bare llama.cpp: the whole prompt + generated tokens
    prompt_s: float = 0.0  # of llama_s, the prompt batch
    number: int = 0

    @property
    def new(self) -> int:
        return len(self.prompt) - self.held


@dataclass
class Meter:
    """Wraps the model's turns and llama.cpp's eval on its ``Llama`` to fill ``Turn``s, and
    replays each turn on ``twin`` (a second ``Llama`` of the same file and settings, so
    the conversation's context is left as it is)."""

    model: LocalModel
    llama: Any
    twin: Any
    pending: list[Turn] = field(default_factory=list)
    replay_s: float = 0.0  # wall time spent replaying (not part of any turn's time)

    def install(self) -> None:
        chat, evaluate, complete = self.model._chat, self.llama.eval, self.llama.create_completion
        saved = self.model._llama().prefixes.states

        def each_turn(system: str, messages: Any, tools: Any, seed: int) -> ModelResponse:
            text = render_conversation(system, messages, tools)
            prompt = self.llama.tokenize(text.encode(), special=True)
            context = list(self.llama.input_ids[: self.llama.n_tokens])
            held = [len(_common_prefix(prompt, context))]
            held += [len(key) for key in saved if tuple(prompt[: len(key)]) == key]
            turn = Turn(prompt, max(held))
            self.pending.append(turn)
            response = chat(system, messages, tools, seed)
            turn.generated = response.usage.output_tokens
            return response

        def each_step(*args: Any, **kwargs: Any) -> Any:
            self.pending[-1].steps += 1
            return complete(*args, **kwargs)

        def each_eval(tokens: Any) -> None:
            started = time.perf_counter()
            evaluate(tokens)
            turn = self.pending[-1]
            turn.eval_s += time.perf_counter() - started
            turn.evaluated_all += len(tokens)
            # a prefix evaluated to be saved, then the first step's prompt
            if turn.steps == 0 or (turn.steps == 1 and not turn.first_eval):
                turn.evaluated += len(tokens)
                turn.first_eval = turn.steps == 1

        self.model._chat = each_turn  # type: ignore[method-assign]
        self.llama.eval = each_eval
        self.llama.create_completion = each_step

    def replay(self, turn: Turn) -> None:
        """llama.cpp's own time for the turn's tokens, from the held prefix and from zero."""
        started = time.perf_counter()
        turn.prompt_s, gen_s = self._timed(turn.prompt, turn.held, turn.generated)
        turn.llama_s = turn.prompt_s + gen_s
        whole_prompt_s, gen_s = self._timed(turn.prompt, 0, turn.generated)
        turn.whole_s = whole_prompt_s + gen_s
        self.replay_s += time.perf_counter() - started

    def _timed(self, prompt: list[int], held: int, generated: int) -> tuple[float, float]:
        twin = self.twin
        twin.reset()
        if held:
            twin.eval(prompt[:held])
        started = time.perf_counter()
        twin.eval(prompt[held:])
        prompt_s = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(generated):
            twin.eval(prompt[-1:])  # one token a step; its identity does not change the cost
        return prompt_s, time.perf_counter() - started


class ReplaySpan(Span):
    """Replays each model turn the moment it ends: the runner reports the turn here after
    timing it, so the replay is in no turn's time, and it sits next to the turn it copies."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter

    def model_turn(
        self, history: Sequence[Message], turn: AssistantTurn | Failure, started: float
    ) -> None:
        assert isinstance(turn, AssistantTurn) and not turn.cached, turn
        measured = self.meter.pending[-1]
        measured.harness_s = turn.latency_s
        self.meter.replay(measured)


class ReplayTracer(Tracer):
    def __init__(self, meter: Meter) -> None:
        self.meter = meter

    @contextlib.asynccontextmanager
    async def trace(self, cell: Cell, system: str, prompt: str) -> AsyncIterator[Span]:
        yield ReplaySpan(self.meter)


def conversations(
    model: LocalModel, experiment: Experiment, cells: list[Cell], meter: Meter, results: Path
) -> list[tuple[Outcome, list[Turn], float]]:
    """Run ``cells`` through the runner; each conversation with its turns and its wall
    time less the replays."""
    done: list[tuple[Outcome, list[Turn], float]] = []

    def ended(outcome: Outcome) -> None:
        turns, meter.pending = meter.pending, []
        replay_s, meter.replay_s = meter.replay_s, 0.0
        assert outcome.conversation is not None, outcome.failure
        assert len(outcome.conversation.assistant_turns) == len(turns)
        for number, turn in enumerate(turns, 1):
            turn.number = number
        done.append((outcome, turns, outcome.latency_s - replay_s))

    pool = WriterPool(
        run_id="bench-agentic-embedded",
        git_commit=None,
        metadata=metadata_for(experiment, model, 1),
        directory=results,
    )
    runner = Runner(experiment, model, on_outcome=ended, tracer=ReplayTracer(meter))
    try:
        asyncio.run(runner.run(cells, pool))
    finally:
        pool.close_all()
    return done


def ratio(num: float, den: float) -> str:
    return f"{num / den:5.2f}" if den else "    -"


def report(done: list[tuple[Outcome, list[Turn], float]]) -> None:
    turns = [t for _, ts, _ in done for t in ts]
    header = (
        f"{'turn':>4} {'n':>3} {'prompt':>6} {'held':>5} {'new':>4} {'evaluated':>9} "
        f"{'generated':>9} {'harness/llama.cpp':>17} {'(median)':>8} {'whole/new':>9}"
    )
    print("per turn (means of tokens; time ratios are sums over the turns, then the median):")
    print(header)
    groups = sorted({t.number for t in turns})
    for label, group in [(str(n), [t for t in turns if t.number == n]) for n in groups] + [
        ("all", turns)
    ]:

        def mean(f: Any, group: list[Turn] = group) -> float:
            return statistics.fmean(f(t) for t in group)

        print(
            f"{label:>4} {len(group):>3} {mean(lambda t: len(t.prompt)):6.0f} "
            f"{mean(lambda t: t.held):5.0f} {mean(lambda t: t.new):4.0f} "
            f"{mean(lambda t: t.evaluated):9.0f} {mean(lambda t: t.generated):9.0f} "
            f"{ratio(sum(t.harness_s for t in group), sum(t.llama_s for t in group)):>17} "
            f"{statistics.median(t.harness_s / t.llama_s for t in group):8.2f} "
            f"{ratio(sum(t.whole_s for t in group), sum(t.llama_s for t in group)):>9}"
        )
    later = [t for t in turns if t.number > 1]
    exact = sum(t.evaluated == t.new for t in later)
    evaluated = sum(t.evaluated for t in later)
    print(
        f"turns 2+: {exact} of {len(later)} evaluated exactly their new prompt tokens; "
        f"evaluated/new prompt tokens {evaluated / sum(t.new for t in later):.3f}, "
        f"evaluated/whole prompt {evaluated / sum(len(t.prompt) for t in later):.3f}"
    )
    prompt_tokens = sum(t.new for t in turns)
    prompt_s = sum(t.prompt_s for t in turns)
    generated = sum(t.generated for t in turns)
    gen_s = sum(t.llama_s - t.prompt_s for t in turns)
    print(
        f"llama.cpp on this Llama: prompt eval {prompt_tokens / prompt_s:.0f} tok/s, "
        f"generation {generated / gen_s:.0f} tok/s (bare eval calls, no sampling)"
    )
    harness = sum(t.harness_s for t in turns)
    evaluated_all = sum(t.evaluated_all for t in turns)
    print(
        f"of the harness's turn time, {sum(t.eval_s for t in turns) / harness:.0%} is in "
        f"llama.cpp eval calls ({evaluated_all / (prompt_tokens + generated):.2f}× the "
        "tokens the replay evaluates: the newline the protocol writes after each step, and "
        "what its last free-text step wrote); the rest is sampling (grammar-constrained), "
        "tokenizing and Python"
    )
    wall = sum(w for _, _, w in done)
    print(f"conversation wall time / its model turns' time: {wall / harness:.3f} (tools, judge)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each cell (3)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random order (1)")
    args = parser.parse_args()

    experiment = load_experiment(EXPERIMENT)
    model = get_model(
        "local:smollm2", temperature=experiment.temperature, max_tokens=experiment.max_tokens
    )
    assert isinstance(model, LocalModel)
    asyncio.run(model.preflight())
    twin = Llama(
        model_path=str(smollm2_path()),
        n_ctx=model.n_ctx,
        n_threads=_threads(),
        n_threads_batch=_threads(),
        verbose=False,
    )
    meter = Meter(model, model._llama().llama, twin)
    meter.install()
    cells = order_cells(plan_cells(experiment, model.spec, args.reps), Order("random", args.seed))
    with tempfile.TemporaryDirectory() as tmp:
        warm = conversations(model, experiment, cells[:1], meter, Path(tmp) / "warm-up")
        print(f"warm-up conversation (not counted): {len(warm[0][1])} turns")
        done = conversations(model, experiment, cells, meter, Path(tmp) / "bench")
    stops: dict[str, int] = {}
    for outcome, _, _ in done:
        assert outcome.conversation is not None
        stops[outcome.conversation.stop_reason] = stops.get(outcome.conversation.stop_reason, 0) + 1
    print(
        f"{len(done)} conversations (2 variants × 2 scenarios × {args.reps} reps, random order, "
        f"seed {args.seed}, concurrency 1), {sum(len(t) for _, t, _ in done)} model turns; "
        f"stop reasons: {', '.join(f'{k} {v}' for k, v in sorted(stops.items()))}"
    )
    report(done)


if __name__ == "__main__":
    main()
