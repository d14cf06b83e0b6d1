"""The order cells are called in: seeded random within each rep (the default), recorded in
the metadata, kept by ``--resume``, the same under pytest; ``blocked`` keeps variant by
variant. And why it matters: against a server whose latency drifts upward over the run,
blocked order makes the second variant look slower; random order does not."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from support.paths import ROOT

from tooltrial import load_experiment
from tooltrial.cli import main
from tooltrial.definitions import Experiment
from tooltrial.definitions.variants import Tool
from tooltrial.log.reader import iter_records
from tooltrial.log.records import Metadata, Result
from tooltrial.models.base import Model
from tooltrial.models.local import PrefixStates, render_prefix, render_prompt, render_question
from tooltrial.run.options import RunOptions
from tooltrial.run.plan import new_order, order_cells, plan_cells
from tooltrial.run.resume import read_run
from tooltrial.run.session import open_run
from tooltrial.testing.messages_server import Faults, MessagesServer, RecordedRequest
from tooltrial.turns import cell_seed
from tooltrial.types import Cell, ModelResponse, Order, Usage

EXPERIMENT_DIR = ROOT / "tests" / "experiment"
MODEL = "anthropic:claude-test"
FAKE_KEY = "sk-test-not-a-real-key-0000"


@pytest.fixture(scope="module")
def experiment() -> Experiment:
    return load_experiment(EXPERIMENT_DIR)


@pytest.fixture(autouse=True)
def fake_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)


# --- the permutation -------------------------------------------------------------------


def test_same_seed_same_order_reps_in_sequence(experiment: Experiment) -> None:
    cells = plan_cells(experiment, [MODEL, "openai:other"], 3)
    first = order_cells(cells, Order("random", 7))
    assert first == order_cells(list(reversed(cells)), Order("random", 7))  # input order moot
    assert sorted(first) == sorted(cells)  # a permutation: every cell once
    assert [c.rep for c in first] == sorted(c.rep for c in first)  # rep 1's, then rep 2's…
    assert first != order_cells(cells, Order("random", 8))
    one_rep = [c for c in first if c.rep == 1]
    assert {c.variant for c in one_rep[:10]} == {"baseline", "applike"}  # interleaved
    again = [Cell(c.model, c.variant, c.scenario_id, 2) for c in one_rep]
    assert [c for c in first if c.rep == 2] != again  # each rep its own permutation
    assert order_cells(cells, Order("blocked")) == cells  # blocked: plan_cells' order


def test_a_subset_keeps_its_relative_order(experiment: Experiment) -> None:
    # What --resume, an xdist worker's share and -k rely on.
    order = Order("random", 11)
    full = order_cells(plan_cells(experiment, MODEL, 2), order)
    subset = [c for i, c in enumerate(full) if i % 3]
    assert order_cells(reversed(subset), order) == subset


def test_order_is_recorded_and_old_files_read_blocked() -> None:
    assert Order("random", 5).record() == {"kind": "random", "seed": 5}
    assert Order.of({"order": {"kind": "random", "seed": 5}}) == Order("random", 5)
    assert Order.of({}) == Order("blocked") and not Order.of({}).randomised
    meta = Metadata(
        run_id="old",
        experiment="e",
        variant="v",
        rep=1,
        model=MODEL,
        temperature=0.2,
        fixed_timestamp="2025-03-12T09:00:00+00:00",
        zero_persona=True,
        git_commit=None,
        variant_hash="sha256:x",
        scenario_ids=["s"],
        settings={"max_tokens": 256},
    )
    assert meta.order == Order("blocked")
    assert new_order("random", 3) == Order("random", 3)
    assert new_order("random").seed is not None  # a fresh seed, to record
    assert new_order("blocked") == Order("blocked")


# --- the CLI: recorded, repeated, resumed ----------------------------------------------


def run_args(srv: MessagesServer, results: Path, *extra: str) -> list[str]:
    """A new run of the worked experiment (with --resume: that run)."""
    experiment = [] if "--resume" in extra else [str(EXPERIMENT_DIR)]
    where = ["--base-url", srv.url, "--results", str(results)]
    return ["run", *experiment, "--model", MODEL, *where, *extra]


def called(experiment: Experiment, requests: Sequence[RecordedRequest]) -> list[tuple[str, str]]:
    """(variant, scenario) of each cell request, in arrival order (preflights left out)."""
    by_prompt = {s.prompt: s.id for s in experiment.scenarios}
    by_tools = {frozenset(t.name for t in v.tools): v.name for v in experiment.variants}
    out = []
    for r in requests:
        if not r.body or r.body.get("max_tokens") == 1:
            continue
        content = r.body["messages"][0]["content"]
        prompt = content if isinstance(content, str) else content[0]["text"]
        out.append((by_tools[frozenset(t["name"] for t in r.body["tools"])], by_prompt[prompt]))
    return out


def metadata(results: Path) -> list[Metadata]:
    heads = [next(iter_records(p)) for p in sorted(results.glob("*.jsonl"))]
    return [m for m in heads if isinstance(m, Metadata)]


SMALL = ["--scenario", "query-agenda-friday", "--scenario", "create-task-next-friday"]
SMALL += ["--scenario", "delete-task-by-title"]


def test_cli_runs_the_seeded_order_and_records_it(
    experiment: Experiment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with MessagesServer(max_seconds=60) as srv:
        assert main(run_args(srv, tmp_path / "a", *SMALL, "--runs", "2", "--order-seed", "42")) == 0
        assert main(run_args(srv, tmp_path / "b", *SMALL, "--runs", "2", "--order-seed", "42")) == 0
        assert main(run_args(srv, tmp_path / "c", *SMALL, "--runs", "2", "--order", "blocked")) == 0
        sequence = called(experiment, srv.requests)
    err = capsys.readouterr().err
    assert "order: random (seed 42); --order-seed 42 repeats it" in err
    assert "order: blocked" in err
    ids = SMALL[1::2]
    cells = plan_cells(experiment, MODEL, 2, scenario_ids=ids)
    expected = [(c.variant, c.scenario_id) for c in order_cells(cells, Order("random", 42))]
    assert sequence[:12] == expected and sequence[12:24] == expected  # same seed, same order
    assert sequence[24:] == [(c.variant, c.scenario_id) for c in cells]  # blocked: as planned
    assert {str(m.settings["order"]) for m in metadata(tmp_path / "a")} == {
        str({"kind": "random", "seed": 42})
    }
    assert {m.order for m in metadata(tmp_path / "c")} == {Order("blocked")}


def test_a_fresh_seed_is_printed_and_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with MessagesServer(max_seconds=60) as srv:
        assert main(run_args(srv, tmp_path, "--scenario", "no-call-small-talk", "--runs", "1")) == 0
    seeds = {m.order.seed for m in metadata(tmp_path)}
    assert len(seeds) == 1 and None not in seeds
    assert f"order: random (seed {seeds.pop()})" in capsys.readouterr().err


def test_resume_keeps_the_recorded_order(
    experiment: Experiment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Requests 2, 4, 6 and 7 fail (1 is the preflight) with one attempt each.
    faults = Faults(on_requests={n: "500" for n in (2, 4, 6, 7)})
    with MessagesServer(faults, max_seconds=60) as srv:
        args = [*SMALL, "--runs", "2", "--order-seed", "9", "--run-id", "o1"]
        assert main([*run_args(srv, tmp_path, *args), "--max-attempts", "1"]) == 1
        remaining = read_run(tmp_path, "o1").remaining()
        assert len(remaining) == 4
        before = len(srv.requests)
        capsys.readouterr()
        for refused in (["--order", "blocked"], ["--order-seed", "10"]):
            assert main([*run_args(srv, tmp_path, "--resume", "o1"), *refused]) == 2
            assert "--resume keeps it" in capsys.readouterr().err
        assert main(run_args(srv, tmp_path, "--resume", "o1", "--order-seed", "9")) == 0
        resumed = called(experiment, srv.requests[before:])
    full = order_cells(
        plan_cells(experiment, MODEL, 2, scenario_ids=SMALL[1::2]), Order("random", 9)
    )
    assert remaining == [c for c in full if c in set(remaining)]  # the run's own order
    assert resumed == [(c.variant, c.scenario_id) for c in remaining]
    assert {m.order for m in metadata(tmp_path)} == {Order("random", 9)}  # new files too


@dataclass
class Recording(Model):
    """Records the order calls start in; answers after a short, varying wait."""

    provider = "fake"
    started: list[int] = field(default_factory=list)

    async def generate(
        self, system: str, prompt: str, tools: Sequence[Tool], seed: int | None = None
    ) -> ModelResponse:
        self.started.append(seed or 0)
        await asyncio.sleep(0.001 * (len(self.started) % 5))
        return ModelResponse(text="ok", tool_calls=(), stop_reason="end_turn", usage=Usage())


def test_with_concurrency_the_start_order_follows_the_permutation(
    experiment: Experiment, tmp_path: Path
) -> None:
    model = Recording("rec")
    options = RunOptions(results=tmp_path, runs=2, order="random", order_seed=3, concurrency=8)
    with open_run(experiment, model, options) as run:
        asyncio.run(run.execute())
    cells = order_cells(plan_cells(experiment, model.spec, 2), Order("random", 3))
    assert list(run.cells) == cells
    assert model.started == [cell_seed(c) for c in cells]


# --- the pytest front end --------------------------------------------------------------


def collected(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH", "LANGCHAIN"))}
    command = [sys.executable, "-m", "pytest", "tests/experiment/test_experiment.py"]
    return subprocess.run(
        [*command, "-m", "experiment", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=clean | (env or {}),
        capture_output=True,
        text=True,
        timeout=300,
    )


def item_ids(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_pytest_items_follow_the_seeded_order_rep_by_rep() -> None:
    seeded = item_ids(
        collected("--collect-only", "-q", "--count", "2", "--tooltrial-order-seed", "4")
    )
    again = item_ids(
        collected("--collect-only", "-q", "--count", "2", "--tooltrial-order-seed", "4")
    )
    other = item_ids(
        collected("--collect-only", "-q", "--count", "2", "--tooltrial-order-seed", "5")
    )
    blocked = collected("--collect-only", "-q", "--count", "2", "--tooltrial-order", "blocked")
    assert len(seeded) == 80 and seeded == again and seeded != other
    assert sorted(seeded) == sorted(item_ids(blocked))
    assert all(i.endswith("-1-2]") for i in seeded[:40])  # rep 1's items, then rep 2's
    assert all(i.endswith("-2-2]") for i in seeded[40:])
    assert {i.split("[")[1].split("-")[0] for i in seeded[:8]} == {"baseline", "applike"}
    assert item_ids(blocked)[:2] == [  # pytest's own order: pytest-repeat's reps together
        "tests/experiment/test_experiment.py::test_scenario[baseline-create-task-tomorrow-at-3-1-2]",
        "tests/experiment/test_experiment.py::test_scenario[baseline-create-task-tomorrow-at-3-2-2]",
    ]


def test_pytest_records_the_order_in_the_metadata(tmp_path: Path) -> None:
    with MessagesServer(max_seconds=120) as srv:
        env = {
            "TOOLTRIAL_MODEL": MODEL,
            "ANTHROPIC_BASE_URL": srv.url,
            "ANTHROPIC_API_KEY": FAKE_KEY,
        }
        done = collected(
            "-k", "small-talk", "--tooltrial-order-seed", "6",
            "--tooltrial-results", str(tmp_path), env=env,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "tooltrial: experiment order random (seed 6)" in done.stdout
    metas = metadata(tmp_path)
    assert len(metas) == 2 and {m.order for m in metas} == {Order("random", 6)}
    assert {m.settings["front_end"] for m in metas} == {"pytest"}


# --- the embedded model's saved prefixes (a stand-in for llama.cpp) ----------------------


class FakeLlama:
    """What PrefixStates uses of llama_cpp.Llama, counting evaluated tokens."""

    def __init__(self) -> None:
        self.input_ids = np.zeros(64, dtype=np.intc)
        self.n_tokens = 0
        self.evaluated = 0

    def reset(self) -> None:
        self.n_tokens = 0

    def eval(self, tokens: list[int]) -> None:
        self.input_ids[self.n_tokens : self.n_tokens + len(tokens)] = tokens
        self.n_tokens += len(tokens)
        self.evaluated += len(tokens)

    def save_state(self) -> Any:
        scores = np.ones((8, 3), dtype=np.single)
        return SimpleNamespace(
            input_ids=self.input_ids.copy(), n_tokens=self.n_tokens, scores=scores
        )

    def load_state(self, state: Any) -> None:
        self.input_ids, self.n_tokens = state.input_ids.copy(), state.n_tokens

    def complete(self, prompt: list[int]) -> None:
        """Like Llama.generate: keep the common prefix, evaluate the rest, add 2 tokens."""
        keep = 0
        while keep < min(self.n_tokens, len(prompt)) and self.input_ids[keep] == prompt[keep]:
            keep += 1
        self.n_tokens = keep
        self.eval([*prompt[keep:], 90, 91])


def test_prefix_states_restore_each_variants_prefix() -> None:
    llama, states = FakeLlama(), PrefixStates()
    a, b = [1, 2, 3, 4, 5, 6], [1, 7, 8, 9, 10, 11]
    for prefix, question in [(a, [20]), (b, [21]), (a, [22]), (a, [23]), (b, [24])]:
        states.prepare(llama, prefix)
        assert llama.input_ids[: len(prefix)].tolist() == prefix
        llama.complete(prefix + question)
    assert (states.saved, states.restored, states.kept) == (2, 2, 1)
    # each prefix evaluated once (12 tokens), then only the question and the answer
    assert llama.evaluated == 12 + 5 * 3
    assert all(s.scores.shape == (1, 3) for s in states.states.values())  # lean copies


def test_prefix_states_drop_the_least_recently_used() -> None:
    llama, states = FakeLlama(), PrefixStates(limit=1)
    for prefix in ([1, 2], [3, 4], [1, 2]):
        states.prepare(llama, prefix)
    assert (states.saved, states.restored, len(states.states)) == (3, 0, 1)


def test_the_prompt_is_the_prefix_and_the_question(experiment: Experiment) -> None:
    variant = experiment.variant("applike")
    system = experiment.system_prompt(variant)
    text = render_prompt(system, "Hi", variant.tools)
    assert text == render_prefix(system, variant.tools) + render_question("Hi")
    assert text.startswith("<|im_start|>system\n") and text.endswith(
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )


# --- why: a server whose latency drifts upward ------------------------------------------

RAMP = 0.01  # seconds more per request
DRIFT = ["--scenario", "query-agenda-friday", "--scenario", "create-task-next-friday"]
DRIFT += ["--scenario", "delete-task-by-title", "--scenario", "no-call-small-talk"]
DRIFT += ["--scenario", "create-event-monday-morning", "--scenario", "update-complete-buy-milk"]
SEEDS = (1, 2, 3)


def latency_bias(results: Path) -> float:
    """applike − baseline latency: the mean over scenarios of each scenario's difference
    of rep means (the report's paired comparison), from the log's latency_s."""
    latency: dict[tuple[str, str], list[float]] = defaultdict(list)
    for path in results.glob("*.jsonl"):
        for r in iter_records(path):
            if isinstance(r, Result):
                latency[(r.scenario_id, r.variant)].append(r.latency_s)
    scenarios = {s for s, _ in latency}
    return statistics.mean(
        statistics.mean(latency[(s, "applike")]) - statistics.mean(latency[(s, "baseline")])
        for s in scenarios
    )


def test_random_order_removes_the_bias_drift_puts_on_blocked_order(
    experiment: Experiment, tmp_path: Path
) -> None:
    # 2 variants × 6 scenarios × 2 reps, one call at a time; request n waits (n - 1) × RAMP.
    faults = Faults(latency_ramp_s=RAMP, latency_ramp_max_s=1.0)
    design = [*DRIFT, "--runs", "2", "--concurrency", "1"]
    bias: dict[str, float] = {}
    for name, order in [("blocked", ["--order", "blocked"])] + [
        (f"seed {s}", ["--order-seed", str(s)]) for s in SEEDS
    ]:
        with MessagesServer(faults, max_seconds=60) as srv:  # a fresh ramp for each run
            assert main(run_args(srv, tmp_path / name, *design, *order)) == 0
        bias[name] = latency_bias(tmp_path / name)
    # Blocked: baseline's 12 calls, then applike's: applike looks 12 × RAMP slower.
    assert 0.8 * 12 * RAMP < bias["blocked"] < 1.5 * 12 * RAMP, bias
    for seed in SEEDS:
        assert abs(bias[f"seed {seed}"]) < 0.35 * bias["blocked"], bias


def test_random_order_is_unbiased_over_many_seeds(experiment: Experiment) -> None:
    # The same comparison on request positions alone (what the ramp turns into latency).
    cells = plan_cells(experiment, MODEL, 2, scenario_ids=DRIFT[1::2])

    def position_bias(order: list[Cell]) -> float:
        where = {c: i for i, c in enumerate(order)}
        per = [
            statistics.mean(where[Cell(MODEL, "applike", s, r)] for r in (1, 2))
            - statistics.mean(where[Cell(MODEL, "baseline", s, r)] for r in (1, 2))
            for s in DRIFT[1::2]
        ]
        return statistics.mean(per)

    assert position_bias(cells) == 12  # blocked
    biases = [position_bias(order_cells(cells, Order("random", s))) for s in range(400)]
    assert abs(statistics.mean(biases)) < 0.3  # unbiased (sd of the mean ≈ 0.07)
    assert sum(abs(b) < 0.35 * 12 for b in biases) / len(biases) > 0.97
    assert all(abs(position_bias(order_cells(cells, Order("random", s)))) < 3 for s in SEEDS)


def test_the_latency_ramp_is_bounded() -> None:
    faults = Faults(latency_s=0.1, latency_ramp_s=0.05, latency_ramp_max_s=0.2)
    assert [round(faults.draw(n)[1], 3) for n in (1, 2, 3, 5, 50)] == [0.1, 0.15, 0.2, 0.3, 0.3]
    with pytest.raises(ValueError, match="latency_ramp"):
        Faults(latency_ramp_s=-1)
    with pytest.raises(ValueError, match="latency_ramp"):
        Faults(latency_ramp_s=1, latency_ramp_max_s=3600)
