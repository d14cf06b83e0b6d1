"""What a randomised order costs the embedded model. One command:

    uv run python bench/bench_order.py              # 2 variants × 6 scenarios × 1 rep, ABBA
    uv run python bench/bench_order.py --scenarios 3 --rounds 1

The same N calls to the embedded SmolLM2 (tests/experiment, through the real runner), in
one process, in blocked order (variant by variant) and in a seeded random order. Before
each pass the saved prompt prefixes (``PrefixStates``) and the context are cleared, so
each pass pays for evaluating each variant's prefix once. Passes alternate
blocked, random, random, blocked (``--rounds 2``) so a change in the machine's load
during the bench falls on both orders alike.

Prints, per order: wall time, prompt tokens evaluated (prefixes included), generated
tokens, saved-prefix restores and the time they took; then random/blocked wall time as a
ratio (target ≤ 1.10), and how many prompt tokens the restores spared (what the random
order would have evaluated again without saved prefixes).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tooltrial import load_experiment
from tooltrial.log.writer import WriterPool
from tooltrial.models import get_model
from tooltrial.models.local import LocalModel
from tooltrial.run.plan import metadata_for, order_cells, plan_cells
from tooltrial.run.runner import Runner
from tooltrial.types import Cell, Order

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "tests" / "experiment"


@dataclass
class Counts:
    wall_s: float = 0.0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    restores: int = 0
    restore_s: float = 0.0
    spared_tokens: int = 0
    calls: int = 0

    def add(self, other: Counts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Meter:
    """Counts what the llama.cpp context evaluates: prompt tokens (a completion's first
    evaluation, and prefixes evaluated to be saved) and generated tokens (the rest)."""

    def __init__(self, llama: Any) -> None:
        self.llama, self.counts = llama, Counts()
        self.in_completion = self.first = False
        eval_, complete, load = llama.eval, llama.create_completion, llama.load_state

        def counted_eval(tokens: Any) -> None:
            if not self.in_completion or self.first:
                self.counts.prompt_tokens += len(tokens)
                self.first = False
            else:
                self.counts.generated_tokens += len(tokens)
            eval_(tokens)

        def counted_completion(*args: Any, **kwargs: Any) -> Any:
            self.in_completion = self.first = True
            try:
                return complete(*args, **kwargs)
            finally:
                self.in_completion = False

        def timed_load(state: Any) -> None:
            started = time.perf_counter()
            load(state)
            self.counts.restore_s += time.perf_counter() - started
            self.counts.restores += 1
            self.counts.spared_tokens += state.n_tokens

        llama.eval, llama.create_completion, llama.load_state = (
            counted_eval,
            counted_completion,
            timed_load,
        )


def one_pass(model: LocalModel, cells: list[Cell], meter: Meter, results: Path) -> Counts:
    loaded = model._llama()
    loaded.prefixes.states.clear()  # each pass evaluates each variant's prefix once
    loaded.llama.reset()
    meter.counts = Counts()
    pool = WriterPool(
        run_id="bench-order",
        git_commit=None,
        metadata=metadata_for(load_experiment(EXPERIMENT), model, 1),
        directory=results,
    )
    runner = Runner(load_experiment(EXPERIMENT), model)
    started = time.perf_counter()
    try:
        asyncio.run(runner.run(cells, pool))
    finally:
        pool.close_all()
    meter.counts.wall_s = time.perf_counter() - started
    meter.counts.calls = len(cells)
    return meter.counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=6, help="scenarios per variant (6)")
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds: 2 = B,R,R,B (2)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random order (1)")
    args = parser.parse_args()

    experiment = load_experiment(EXPERIMENT)
    model = get_model(
        "local:smollm2", temperature=experiment.temperature, max_tokens=experiment.max_tokens
    )
    assert isinstance(model, LocalModel)
    started = time.perf_counter()
    asyncio.run(model.preflight())
    print(f"model loaded in {time.perf_counter() - started:.1f} s")
    meter = Meter(model._llama().llama)
    ids = experiment.scenario_ids[: args.scenarios]
    blocked = plan_cells(experiment, model.spec, 1, scenario_ids=ids)
    orders = {"blocked": blocked, "random": order_cells(blocked, Order("random", args.seed))}
    switches = {
        name: sum(a.variant != b.variant for a, b in itertools.pairwise(cells))
        for name, cells in orders.items()
    }
    print(
        f"{len(blocked)} calls a pass ({len(ids)} scenarios × 2 variants × 1 rep); "
        f"variant switches: blocked {switches['blocked']}, random {switches['random']}"
    )
    totals = {name: Counts() for name in orders}
    sequence = ["blocked", "random", "random", "blocked"] * (args.rounds // 2)
    sequence += ["blocked", "random"] * (args.rounds % 2)
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(sequence):
            counts = one_pass(model, orders[name], meter, Path(tmp) / str(i))
            totals[name].add(counts)
            print(
                f"  pass {i + 1} {name:7}: {counts.wall_s:6.1f} s, "
                f"{counts.prompt_tokens} prompt tokens evaluated, "
                f"{counts.generated_tokens} generated, {counts.restores} restores "
                f"({counts.restore_s * 1000:.0f} ms)"
            )
    passes = {name: sequence.count(name) for name in orders}
    print("per pass (mean):")
    for name, t in totals.items():
        n = passes[name]
        print(
            f"  {name:7}: {t.wall_s / n:6.1f} s wall, {t.prompt_tokens / n:7.0f} prompt tokens "
            f"evaluated, {t.generated_tokens / n:5.0f} generated, {t.restores / n:4.1f} "
            f"restores ({t.restore_s / max(1, t.restores) * 1000:.1f} ms each), "
            f"{t.spared_tokens / n:6.0f} prompt tokens spared by restores"
        )
    ratio = (totals["random"].wall_s / passes["random"]) / (
        totals["blocked"].wall_s / passes["blocked"]
    )
    print(f"random/blocked wall time: {ratio:.3f} (target ≤ 1.10)")


if __name__ == "__main__":
    main()
