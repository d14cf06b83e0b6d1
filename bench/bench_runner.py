"""How close ``tooltrial run`` gets to the bounds the provider sets. One command:

    uv run python bench/bench_runner.py            # N=1000, L=0.5 s, C=32; R=600 rpm
    uv run python bench/bench_runner.py --quick    # smaller N, a minute and a half

Against the project's Messages API server (run in a subprocess, so its CPU is not ours):

1. Latency-bound: N calls with fixed server latency L and no failures, through the real
   runner and ChatAnthropic at concurrency C. Wall time as a ratio to N·L/C (the best any
   client can do), measured inside this process.
2. Harness CPU per call: process CPU time of that run, minus the CPU time of the same N
   calls made with bare ``ChatAnthropic.ainvoke`` (same prompts, tools, concurrency and
   connection pool) in the same process and event loop, divided by N. What is left is
   tooltrial's own cost: task scheduling, pacing, the model wrapper, pydantic records and
   the fsync'd JSONL write of every line.
3. The sequential pytest path (``pytest -m experiment``, one call at a time) on the same
   server, for comparison: its wall time as a ratio to n·L, and the speed-up of the runner.
4. Rate-bound: the server enforces R requests a minute (429 + retry-after beyond it) and
   the client runs with ``--rpm R``. Wall time as a ratio to N/R minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tooltrial import load_experiment
from tooltrial.definitions import Experiment
from tooltrial.models import Model, get_model
from tooltrial.run.options import RunOptions
from tooltrial.run.plan import plan_cells
from tooltrial.run.session import open_run
from tooltrial.types import Cell

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "tests" / "experiment"
os.environ.setdefault("ANTHROPIC_API_KEY", "sk-bench-not-a-real-key")


@contextmanager
def test_server(*flags: str) -> Iterator[tuple[str, dict[str, int]]]:
    """The Messages API test server in a subprocess; yields its URL, then its stats."""
    command = [
        sys.executable,
        "-m",
        "tooltrial.testing.messages_server",
        "--max-seconds",
        "1800",
        *flags,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"the test server did not start: {line!r}")
    stats: dict[str, int] = {}
    try:
        yield match.group(0), stats
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        stats.update(json.loads(out.strip().splitlines()[-1]))


def reps_for(experiment: Experiment, n: int) -> int:
    return -(-n // (len(experiment.variants) * len(experiment.scenarios)))


def cells_for(experiment: Experiment, model: str, n: int) -> list[Cell]:
    return plan_cells(experiment, model, reps_for(experiment, n))[:n]


def options(experiment: Experiment, n: int, results: Path, **more: Any) -> RunOptions:
    """A blocked run of enough reps to hold ``cells_for``'s cells."""
    return RunOptions(results=results, runs=reps_for(experiment, n), order="blocked", **more)


async def bare_calls(experiment: Experiment, model: Model, cells: list[Cell], c: int) -> None:
    """The same calls with nothing but LangChain: pre-bound clients and a semaphore."""
    from langchain_core.messages import HumanMessage, SystemMessage

    llm = model._client()  # type: ignore[attr-defined]
    bound = {
        v.name: (
            llm.bind_tools([t.anthropic_format() for t in v.tools]),
            experiment.system_prompt(v),
        )
        for v in experiment.variants
    }
    gate = asyncio.Semaphore(c)

    async def one(cell: Cell) -> None:
        client, system = bound[cell.variant]
        prompt = experiment.scenario(cell.scenario_id).prompt
        async with gate:
            await client.ainvoke([SystemMessage(system), HumanMessage(prompt)])

    await asyncio.gather(*(one(cell) for cell in cells))


class measured:
    """Wall and process CPU seconds of the block."""

    def __enter__(self) -> measured:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


async def latency_bound(args: argparse.Namespace, url: str, results: Path) -> dict[str, float]:
    experiment = load_experiment(EXPERIMENT)
    model = get_model("anthropic:claude-test", base_url=url, max_tokens=experiment.max_tokens)
    cells = cells_for(experiment, model.spec, args.calls)
    settings = options(experiment, args.calls, results, concurrency=args.concurrency)
    with open_run(experiment, model, settings) as built:
        assert await built.preflight() is None
        # Warm-up: open the C connections both measured phases will reuse.
        await bare_calls(experiment, model, cells[: args.concurrency], args.concurrency)
        with measured() as bare:
            await bare_calls(experiment, model, cells, args.concurrency)
        with measured() as run:
            await built.engine.run(cells, built.pool)  # the engine, preflight done
        outcomes = built.outcomes
    assert all(o.response is not None for o in outcomes), "a call failed in a fault-free run"
    bound = args.calls * args.latency / args.concurrency
    return {
        "bound_s": bound,
        "runner_wall_s": run.wall,
        "runner_ratio": run.wall / bound,
        "bare_wall_s": bare.wall,
        "bare_ratio": bare.wall / bound,
        "runner_cpu_s": run.cpu,
        "bare_cpu_s": bare.cpu,
        "harness_cpu_ms_per_call": (run.cpu - bare.cpu) / args.calls * 1000,
        "runner_cpu_ms_per_call": run.cpu / args.calls * 1000,
    }


def pytest_path(args: argparse.Namespace, url: str, results: Path) -> dict[str, float]:
    """The sequential path, in its own process; pytest's own "passed in" time is used."""
    command = [sys.executable, "-m", "pytest", "tests/experiment/test_experiment.py"]
    command += ["-m", "experiment", "-q", "-p", "no:xdist", "--count", str(args.pytest_reps)]
    command += ["--tooltrial-results", str(results)]
    env = {**os.environ, "TOOLTRIAL_MODEL": "anthropic:claude-test", "ANTHROPIC_BASE_URL": url}
    env["LANGSMITH_TRACING"] = "false"  # tracing is not what this measures
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    match = re.search(r"(\d+) passed(?:, [^\n]*?)? in ([\d.]+)s", done.stdout)
    if done.returncode != 0 or not match:
        raise RuntimeError(f"the pytest path failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    n, wall = int(match.group(1)), float(match.group(2))
    return {"calls": n, "wall_s": wall, "ratio": wall / (n * args.latency)}


async def rate_bound(args: argparse.Namespace, url: str, results: Path) -> dict[str, float]:
    experiment = load_experiment(EXPERIMENT)
    model = get_model("anthropic:claude-test", base_url=url, max_tokens=experiment.max_tokens)
    cells = cells_for(experiment, model.spec, args.rpm_calls)
    settings = options(
        experiment, args.rpm_calls, results, concurrency=args.concurrency, rpm=args.rpm_limit
    )
    with open_run(experiment, model, settings) as built:
        assert await built.preflight() is None  # counts against the limit, like any request
        with measured() as run:
            await built.engine.run(cells, built.pool)
        outcomes = built.outcomes
    assert all(o.response is not None for o in outcomes)
    retries = sum(o.attempts - 1 for o in outcomes)
    bound = args.rpm_calls / args.rpm_limit * 60
    return {"bound_s": bound, "wall_s": run.wall, "ratio": run.wall / bound, "retries": retries}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=1000, help="N for the latency-bound run")
    p.add_argument("--latency", type=float, default=0.5, help="L, the server's latency (s)")
    p.add_argument("--concurrency", type=int, default=32, help="C")
    p.add_argument("--pytest-reps", type=int, default=1, help="--count of the pytest path")
    p.add_argument("--rpm-limit", type=int, default=600, help="R, the server's limit")
    p.add_argument("--rpm-calls", type=int, default=1200, help="N for the rate-bound run")
    p.add_argument("--skip", action="append", default=[], choices=["pytest", "rpm"])
    p.add_argument("--quick", action="store_true", help="N=300, L=0.2, R=300 with 400 calls")
    args = p.parse_args()
    if args.quick:
        args.calls, args.latency, args.rpm_limit, args.rpm_calls = 300, 0.2, 300, 400
    print(f"machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp)
        with test_server("--latency", str(args.latency)) as (url, stats):
            lat = asyncio.run(latency_bound(args, url, results / "a"))
            print(
                f"[1] N={args.calls} L={args.latency}s C={args.concurrency}: bound N·L/C = "
                f"{lat['bound_s']:.2f}s\n"
                f"    tooltrial runner  {lat['runner_wall_s']:.2f}s"
                f"  ratio {lat['runner_ratio']:.3f}\n"
                f"    bare ainvoke      {lat['bare_wall_s']:.2f}s  ratio {lat['bare_ratio']:.3f}\n"
                f"[2] CPU: runner {lat['runner_cpu_ms_per_call']:.2f} ms/call, bare "
                f"{lat['bare_cpu_s'] / args.calls * 1000:.2f} ms/call → harness "
                f"{lat['harness_cpu_ms_per_call']:.2f} ms/call",
                flush=True,
            )
            if "pytest" not in args.skip:
                seq = pytest_path(args, url, results / "b")
                per_call = seq["wall_s"] / seq["calls"]
                speedup = per_call * args.calls / lat["runner_wall_s"]
                print(
                    f"[3] pytest path, sequential: {seq['calls']} calls in {seq['wall_s']:.2f}s, "
                    f"ratio to n·L {seq['ratio']:.3f}; for N={args.calls} that is "
                    f"~{per_call * args.calls:.0f}s, {speedup:.1f}x the runner's time",
                    flush=True,
                )
        if "rpm" not in args.skip:
            flags = ("--latency", "0.05", "--rpm-limit", str(args.rpm_limit))
            with test_server(*flags) as (url, stats):
                rpm = asyncio.run(rate_bound(args, url, results / "c"))
            print(
                f"[4] N={args.rpm_calls} under R={args.rpm_limit} rpm (client --rpm "
                f"{args.rpm_limit}): bound N/R = {rpm['bound_s']:.1f}s, took "
                f"{rpm['wall_s']:.1f}s, ratio {rpm['ratio']:.3f}; server 429s: "
                f"{stats.get('rate_limited', 0)}, client retries: {rpm['retries']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
