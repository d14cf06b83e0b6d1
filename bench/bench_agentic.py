"""How close an agentic run gets to the bound the provider's latency sets, and what the
harness costs per model turn. One command:

    uv run python bench/bench_agentic.py            # N=400 conversations, L=0.2 s, C=32
    uv run python bench/bench_agentic.py --quick    # N=96, L=0.1 s, C=16 (about 20 s)

Against the project's Messages API server in a subprocess (its CPU is not ours) playing
a scripted agent (``--agent``, ``tooltrial.testing.scripted_agent``): every conversation
is 5 model turns, 4 tool rounds (``list_tasks``, each query read from the result before
it) and a final answer, on ``tests/mini_agentic``'s app and API tools.

1. Latency-bound: N conversations through the real runner and ChatAnthropic at
   concurrency C (a fresh app per conversation, tools run, each verdict judged, each
   line written and fsync'd). Wall time as a ratio to N·5·L/C, the best any client can
   do, measured inside this process.
2. Harness CPU per turn: process CPU time of that run, minus that of bare
   ``ChatAnthropic.ainvoke`` making the same requests (the same messages and tool
   results, tools pre-bound, same concurrency and connection pool) in the same process
   and event loop, divided by the N·5 turns. What is left is tooltrial's own cost:
   scheduling, the model wrapper, running tools in threads, snapshots, diff and
   verdict, pydantic records and the JSONL write. The target is under 2 ms a turn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_runner import measured, test_server

from tooltrial import load_experiment
from tooltrial.definitions import Experiment
from tooltrial.models import Model, get_model
from tooltrial.run.options import RunOptions
from tooltrial.run.plan import plan_cells
from tooltrial.run.session import open_run
from tooltrial.run.workbench import Workbench
from tooltrial.testing.scripted_agent import ScriptedAgent, call, result, say
from tooltrial.types import Cell, ToolCall

ROOT = Path(__file__).resolve().parent.parent
MINI = ROOT / "tests" / "mini_agentic"
TURNS = 5
os.environ.setdefault("ANTHROPIC_API_KEY", "sk-bench-not-a-real-key")

AGENT = ScriptedAgent(
    [
        {
            "offers": "list_tasks",
            "steps": [
                call("list_tasks", query="Dentist"),
                call("list_tasks", query=result("1.title")),  # "Dentist bill"
                call("list_tasks", query=result("0.title")),
                call("list_tasks", query=result("0.title")),
                say(result("0.title")),
            ],
        }
    ]
)
SCENARIOS = [
    ("find-dentist", "When is my dentist appointment?"),
    ("find-bill", "Is the dentist bill paid?"),
    ("find-both", "What do I have about the dentist?"),
    ("find-due", "Which dentist task is due first?"),
]


def write_experiment(folder: Path) -> Experiment:
    """mini_agentic's app and API variant, four look-up scenarios, room for 5 turns."""
    variant = (MINI / "variants" / "api.yaml").read_text()
    (folder / "api.yaml").write_text(variant.replace("../api_tools.py", str(MINI / "api_tools.py")))
    (folder / "scenarios.yaml").write_text(
        "".join(
            f"- id: {sid}\n  prompt: {prompt}\n  success: {{only_these_change: true}}\n"
            for sid, prompt in SCENARIOS
        )
    )
    (folder / "experiment.yaml").write_text(
        "name: bench-agentic\n"
        'fixed_timestamp: "2025-03-12T09:00:00+00:00"\n'
        f"app: {MINI / 'app.py'}:Todo\n"
        "limits: {max_turns: 8, max_tool_calls: 10}\n"
        "variants: [api.yaml]\n"
        "scenarios: scenarios.yaml\n"
    )
    return load_experiment(folder)


class BareConversations:
    """The same conversations with nothing but LangChain: pre-bound client, a semaphore,
    and tool results looked up (each distinct call ran once, before any measurement)."""

    def __init__(self, experiment: Experiment, model: Model, workbench: Workbench) -> None:
        (variant,) = experiment.variants
        self.experiment, self.system = experiment, experiment.system_prompt(variant)
        llm = model._client()  # type: ignore[attr-defined]
        self.client = llm.bind_tools([t.anthropic_format() for t in variant.tools])
        self.workbench = workbench
        self.results: dict[str, str] = {}

    def tool_result(self, cell: Cell, name: str, args: dict[str, Any]) -> str:
        key = json.dumps([cell.scenario_id, name, args], sort_keys=True)
        if key not in self.results:  # only during the warm-up
            app = self.workbench.fresh(cell.scenario_id)
            tools = self.workbench.sources[cell.variant].executor(app)  # type: ignore[attr-defined]
            self.results[key] = tools.run(ToolCall(id="x", name=name, arguments=args)).content
        return self.results[key]

    async def run(self, cells: list[Cell], concurrency: int) -> int:
        """Every cell's conversation; the number of model turns taken."""
        from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage

        gate = asyncio.Semaphore(concurrency)
        turns = 0

        async def one(cell: Cell) -> None:
            nonlocal turns
            prompt = self.experiment.scenario(cell.scenario_id).prompt
            history: list[Any] = [SystemMessage(self.system), HumanMessage(prompt)]
            async with gate:
                while True:
                    reply = await self.client.ainvoke(history)
                    turns += 1
                    history.append(reply)
                    if not reply.tool_calls:
                        return
                    history += [
                        ToolMessage(
                            self.tool_result(cell, c["name"], c["args"]), tool_call_id=c["id"]
                        )
                        for c in reply.tool_calls
                    ]

        await asyncio.gather(*(one(cell) for cell in cells))
        return turns


async def latency_bound(args: argparse.Namespace, url: str, results: Path) -> dict[str, float]:
    experiment = write_experiment(results)
    model = get_model("anthropic:claude-test", base_url=url, max_tokens=experiment.max_tokens)
    reps = -(-args.conversations // len(experiment.scenarios))
    cells = plan_cells(experiment, model.spec, reps)[: args.conversations]
    settings = RunOptions(results=results, runs=reps, order="blocked", concurrency=args.concurrency)
    with open_run(experiment, model, settings) as built:
        assert await built.preflight() is None and built.workbench is not None
        bare = BareConversations(experiment, model, built.workbench)
        # Warm-up: open the C connections both measured phases reuse; learn the tool results.
        await bare.run(cells[: args.concurrency], args.concurrency)
        with measured() as base:
            bare_turns = await bare.run(cells, args.concurrency)
        with measured() as run:
            await built.engine.run(cells, built.pool)  # the engine, preflight done
        outcomes = built.outcomes
    conversations = [o.conversation for o in outcomes]
    assert all(c is not None and c.stop_reason == "answered" for c in conversations)
    turns = sum(len(c.assistant_turns) for c in conversations if c is not None)
    n = len(cells)
    assert turns == bare_turns == n * TURNS, (turns, bare_turns)
    bound = n * TURNS * args.latency / args.concurrency
    return {
        "bound_s": bound,
        "runner_wall_s": run.wall,
        "runner_ratio": run.wall / bound,
        "bare_wall_s": base.wall,
        "bare_ratio": base.wall / bound,
        "runner_cpu_ms_per_turn": run.cpu / turns * 1000,
        "bare_cpu_ms_per_turn": base.cpu / turns * 1000,
        "harness_cpu_ms_per_turn": (run.cpu - base.cpu) / turns * 1000,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--conversations", type=int, default=400, help="N")
    p.add_argument("--latency", type=float, default=0.2, help="L, the server's latency (s)")
    p.add_argument("--concurrency", type=int, default=32, help="C")
    p.add_argument("--quick", action="store_true", help="N=96, L=0.1, C=16")
    args = p.parse_args()
    if args.quick:
        args.conversations, args.latency, args.concurrency = 96, 0.1, 16
    print(f"machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}", flush=True)
    flags = ("--latency", str(args.latency), "--agent", AGENT.to_json())
    with tempfile.TemporaryDirectory() as tmp, test_server(*flags) as (url, stats):
        lat = asyncio.run(latency_bound(args, url, Path(tmp)))
    n, c, latency = args.conversations, args.concurrency, args.latency
    print(
        f"[1] N={n} conversations x {TURNS} turns, L={latency}s, C={c}: bound N·{TURNS}·L/C = "
        f"{lat['bound_s']:.2f}s\n"
        f"    tooltrial runner   {lat['runner_wall_s']:.2f}s  ratio {lat['runner_ratio']:.3f}\n"
        f"    bare ChatAnthropic {lat['bare_wall_s']:.2f}s  ratio {lat['bare_ratio']:.3f}"
        f"  (runner / bare: {lat['runner_wall_s'] / lat['bare_wall_s']:.3f})\n"
        f"[2] CPU per turn: runner {lat['runner_cpu_ms_per_turn']:.2f} ms, bare "
        f"{lat['bare_cpu_ms_per_turn']:.2f} ms → harness {lat['harness_cpu_ms_per_turn']:.2f} "
        f"ms/turn (target < 2)\n"
        f"    server: {json.dumps(stats)}",
        flush=True,
    )


if __name__ == "__main__":
    main()
