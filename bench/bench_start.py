"""Time to first request: how long ``tooltrial run`` takes before the model is first asked.

    uv run python bench/bench_start.py                      # this checkout, 7 rounds
    uv run python bench/bench_start.py --other ../old/src   # and another checkout's src/

A one-cell ``anthropic:`` run against the project's Messages API server (in this process,
on 127.0.0.1) is started as a fresh process; the time from ``Popen`` to the server
receiving its first request is the figure. The peer, in the same rounds, is the least any
client can do: a bare script that imports ``langchain_anthropic`` and sends one
``ChatAnthropic`` request. Rounds are interleaved so load drift hits both alike, and the
median is reported as a ratio to the peer's median (never an absolute time: this machine
is shared and noisy). With ``--other SRC``, the same run from another checkout's source
folder (e.g. a worktree of an older commit) is measured in the same rounds, so a
before/after is one run.

It also lists the heavy libraries the one-cell run imported (from the child's own
``sys.modules``), which should be only what an ``anthropic:`` model needs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tooltrial.testing.messages_server import MessagesServer, default_responder

ROOT = Path(__file__).resolve().parent.parent
# Not opentelemetry: the anthropic SDK imports it itself (the bare script does too).
HEAVY = ("polars", "scipy", "numpy", "llama_cpp", "langchain_openai", "tooltrial.tracing.otel")

TOOLTRIAL = """
import sys
from tooltrial.cli import main
code = main(sys.argv[1:])
heavy = [m for m in {heavy!r} if m in sys.modules]
print("HEAVY", ",".join(heavy) or "-")
sys.exit(code)
"""

BARE = """
import asyncio
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import HumanMessage
model = ChatAnthropic(model="bench", max_tokens=16, max_retries=0)
asyncio.run(model.ainvoke([HumanMessage("ping")]))
"""


class FirstRequest:
    """A responder that notes when each request arrives."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.arrivals.append(time.monotonic())
        return default_responder(body)

    def since(self, started: float) -> float:
        with self._lock:
            later = [t for t in self.arrivals if t >= started]
        if not later:
            raise RuntimeError("the process made no request")
        return min(later) - started


def timed(command: list[str], env: dict[str, str], clock: FirstRequest) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return clock.since(started), done.stdout


def tooltrial_command(results: str, root: Path = ROOT) -> list[str]:
    """A one-cell run of ``root``'s own sample experiment (a checkout's code reads the
    definitions of its own time)."""
    run = ["run", str(root / "tests" / "experiment"), "--model", "anthropic:bench"]
    run += ["--variant", "baseline", "--scenario", "create-task-tomorrow-at-3", "--runs", "1"]
    return [sys.executable, "-c", TOOLTRIAL.format(heavy=HEAVY), *run, "--results", results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--other", type=Path, help="another checkout's src/ to compare (its tests/ beside it)"
    )
    args = parser.parse_args()
    clock = FirstRequest()
    with MessagesServer(responder=clock) as server, tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "ANTHROPIC_BASE_URL": server.url, "LANGSMITH_TRACING": "false"}
        env.setdefault("ANTHROPIC_API_KEY", "sk-bench-not-a-real-key")
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        other_env = {**env, "PYTHONPATH": str(args.other.resolve())} if args.other else None
        times: dict[str, list[float]] = {"bare ChatAnthropic": [], "tooltrial": []}
        if other_env:
            times["tooltrial (other)"] = []
        heavy: dict[str, str] = {}
        for round_no in range(args.rounds):
            results = f"{tmp}/r{round_no}"
            times["bare ChatAnthropic"].append(timed([sys.executable, "-c", BARE], env, clock)[0])
            elapsed, out = timed(tooltrial_command(results), env, clock)
            times["tooltrial"].append(elapsed)
            heavy["tooltrial"] = out.rsplit("HEAVY", 1)[-1].strip()
            if other_env:
                command = tooltrial_command(results + "-other", args.other.resolve().parent)
                elapsed, out = timed(command, other_env, clock)
                times["tooltrial (other)"].append(elapsed)
                heavy["tooltrial (other)"] = out.rsplit("HEAVY", 1)[-1].strip()
    floor = statistics.median(times["bare ChatAnthropic"])
    print(f"time to first request, median of {args.rounds} interleaved rounds, as a ratio")
    print("to a bare ChatAnthropic script's (the floor for an anthropic: run):")
    for name, values in times.items():
        print(f"  {name:<22} {statistics.median(values) / floor:5.2f}x")
    for name, modules in heavy.items():
        print(f"  {name}: libraries it needs not, yet imported: {modules}")


if __name__ == "__main__":
    main()
