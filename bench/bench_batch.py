"""Batch mode at scale: a single-turn run of N cells through the Message Batches test
server, what tooltrial adds to the provider's processing time, and its peak memory. One
command:

    uv run python bench/bench_batch.py             # N = 1,000 and 10,000; P = 5 s
    uv run python bench/bench_batch.py --quick     # N = 200 and 2,000
    uv run python bench/bench_batch.py --max-items 1000   # batches of 1,000, 4 in flight

For each N, a fresh ``AnthropicBatchServer`` (a subprocess, so its CPU and memory are
not ours) processes every batch for P seconds; a fresh ``tooltrial`` process (so its
peak RSS is its own) runs the worked experiment's 40 cells × N/40 reps in batch mode
(the engine timed after its preflight, as ``bench_runner`` does) and writes every line.
Reported, as figures that do not depend on this machine's speed:

- overhead = wall time − the server's processing time (the time at least one batch was
  processing), in total and per 1,000 cells: building and fingerprinting the requests,
  the journal, submitting, polling (tooltrial notices an ended batch within
  ``--batch-poll-max``), collecting, and writing every fsync'd line;
- peak RSS at each N, its growth over the process's RSS before the run, and the growth
  per 1,000 cells. What grows is the cells waiting on their batches (their tasks and
  the turns they wait for; a request's body is built only when its batch is formed):
  with ``--max-items M`` at most 4 × M cells wait at once (``--batch-in-flight`` 4), so
  that part stops at the window. What stays linear is the journal's bookkeeping: each
  attempt's id, fingerprint, status and where its answer lies in the journal file (the
  answer itself is read back from there when a turn is asked again, not kept), about
  2.4 KB a cell: ``--sizes 1000,10000,20000`` shows it as the growth from 10k to 20k.
  The run keeps no outcome (``keep_outcomes=False``, as the command line runs): each is
  on disk once written.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "tests" / "experiment"
KEY = "sk-bench-not-a-real-key"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def child_run(cells: int, url: str, results: Path, max_items: int | None) -> dict[str, float]:
    from tooltrial import load_experiment
    from tooltrial.models import get_model
    from tooltrial.run.options import RunOptions
    from tooltrial.run.session import open_run
    from tooltrial.turns.batch.options import BatchOptions

    experiment = load_experiment(EXPERIMENT)
    per_rep = len(experiment.variants) * len(experiment.scenarios)
    reps = -(-cells // per_rep)
    model = get_model("anthropic:claude-test", base_url=url, max_tokens=experiment.max_tokens)
    batch = BatchOptions(poll_s=0.2, poll_max_s=0.5, gather_s=0.5, max_items=max_items)
    options = RunOptions(
        results=results, runs=reps, order="blocked", batch=batch, keep_outcomes=False
    )  # as the command line runs: outcomes are on disk, not kept
    with open_run(experiment, model, options) as run:
        assert await run.preflight() is None
        before = current_rss_mb()
        started = time.perf_counter()
        await run.engine.run(run.cells, run.pool)
        wall = time.perf_counter() - started
    lines = sum(len(p.read_bytes().splitlines()) - 1 for p in run.files)  # less metadata
    assert run.errors == 0 and lines == reps * per_rep == len(run.cells)
    return {"cells": lines, "wall_s": wall, "rss_before_mb": before, "peak_mb": rss_mb()}


def child(args: argparse.Namespace) -> None:
    os.environ["ANTHROPIC_API_KEY"] = KEY
    os.environ["LANGSMITH_TRACING"] = "false"
    result = asyncio.run(child_run(args.child, args.url, Path(args.results), args.max_items))
    print("RESULT " + json.dumps(result), flush=True)


def measure(cells: int, processing: float, folder: Path, max_items: int | None) -> dict[str, float]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tooltrial.testing.batch_server",
            "--processing",
            str(processing),
            "--max-seconds",
            "3600",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    match = re.search(r"http://127\.0\.0\.1:\d+", server.stdout.readline())
    if not match:
        server.kill()
        raise RuntimeError("the batch server did not start")
    try:
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(cells),
                "--url",
                match.group(0),
                "--results",
                str(folder),
                *(["--max-items", str(max_items)] if max_items else []),
            ],
            capture_output=True,
            text=True,
            timeout=3600,
        )
    finally:
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=120)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"the run failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    found = json.loads(line.removeprefix("RESULT "))
    stats = json.loads(out.strip().splitlines()[-1])
    found["processing_s"] = stats["processing_s"]
    found["batches"] = stats["batches"]
    found["most_submissions_of_one_id"] = stats["most_submissions_of_one_id"]
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,10000", help="N, comma-separated")
    p.add_argument("--processing", type=float, default=5.0, help="P: seconds a batch processes")
    p.add_argument("--quick", action="store_true", help="N = 200 and 2,000")
    p.add_argument("--max-items", type=int, help="--batch-max-items (default: none)")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--results", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    sizes = [200, 2000] if args.quick else [int(n) for n in args.sizes.split(",")]
    print(
        f"machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}; P = {args.processing}s;"
        f" --batch-max-items {args.max_items or 'none'}"
    )
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            row = measure(n, args.processing, Path(tmp), args.max_items)
        rows.append(row)
        overhead = row["wall_s"] - row["processing_s"]
        growth = row["peak_mb"] - row["rss_before_mb"]
        print(
            f"N={row['cells']:>6}: {row['batches']} batch(es), wall {row['wall_s']:.1f}s, server "
            f"processing {row['processing_s']:.1f}s → overhead {overhead:.1f}s "
            f"({overhead / row['cells'] * 1000:.2f}s per 1k cells, {overhead / row['wall_s']:.0%}"
            f" of wall); peak RSS {row['peak_mb']:.0f} MB ({row['rss_before_mb']:.0f} MB before "
            f"the run: +{growth:.0f} MB, {growth / row['cells'] * 1000:.1f} MB per 1k cells); "
            f"most submissions of one custom id: {row['most_submissions_of_one_id']}",
            flush=True,
        )
    if len(rows) >= 2:
        small, big = rows[0], rows[-1]
        size = big["cells"] / small["cells"]
        grow = (big["peak_mb"] - big["rss_before_mb"]) / max(
            1e-9, small["peak_mb"] - small["rss_before_mb"]
        )
        over = (big["wall_s"] - big["processing_s"]) / max(
            1e-9, small["wall_s"] - small["processing_s"]
        )
        print(
            f"{size:.0f}x the cells: {over:.1f}x the overhead, {grow:.1f}x the memory growth, "
            f"{big['peak_mb'] / small['peak_mb']:.2f}x the peak RSS"
        )


if __name__ == "__main__":
    main()
