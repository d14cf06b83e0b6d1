"""What tools from an MCP server cost a run, as ratios. One command:

    uv run python bench/bench_mcp.py              # 7 rounds of 5 cells, 500 calls
    uv run python bench/bench_mcp.py --quick      # 3 rounds of 3 cells, 60 calls

On the worked example's server (``tests/mcp_agentic/server.py``, version 1, stdio, on a
copy of the tasks-calendar database) against the same tools in-process
(``tests/agentic``), each measured in the same rounds, interleaved, medians reported:

1. Per cell: what a fresh server per cell costs. tooltrial's ``bind`` of an MCP variant
   (the cell's database moved to a file, the server started through the launcher, the
   handshake, the tools listed and compared with the preflight's, then the server ended)
   over the bare SDK doing the least it can for the same server (``mcp.Client`` on the
   same command: handshake, list, close), and over a bare Python process start
   (``python -c pass``: the floor of any server process).
2. Per call: one call of ``list_tasks`` (page 2) through tooltrial's MCP executor over
   the same call through tooltrial's in-process executor (the Python function in a
   worker thread), and over the bare SDK's ``call_tool`` on an open session (what
   tooltrial adds: the before/after state diff that counts changed rows, the result
   conversion).

Absolute times are never printed: this machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tooltrial import load_experiment
from tooltrial.definitions import Experiment
from tooltrial.run.workbench import _app_class, tool_source
from tooltrial.types import ToolCall

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "tests" / "mcp_agentic" / "server.py"
CALL = ToolCall(id="bench", name="list_tasks", arguments={"page": 2})


def experiments() -> tuple[Experiment, Experiment]:
    mcp = load_experiment(ROOT / "tests" / "mcp_agentic")
    local = load_experiment(ROOT / "tests" / "agentic")
    keep = tuple(s for s in mcp.scenarios if s.id == "thanks")
    return mcp.model_copy(update={"scenarios": keep}), local.model_copy(update={"scenarios": keep})


async def timed(coroutine) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    await coroutine
    return time.perf_counter() - started


async def tooltrial_cell(source, app) -> None:  # type: ignore[no-untyped-def]
    copy = app.clone()
    try:
        async with source.bind(copy):
            pass
    finally:
        copy.close()


async def bare_cell(app, now: str) -> None:  # type: ignore[no-untyped-def]
    from mcp import Client, StdioServerParameters

    copy = app.clone()
    db = copy.paths()["db"]
    try:
        args = [str(SERVER), "--version", "1", "--db", db, "--now", now]
        params = StdioServerParameters(command=sys.executable, args=args, cwd=str(SERVER.parent))
        async with Client(params, cache=None) as client:
            await client.list_tools()
    finally:
        copy.close()


async def process_start() -> None:
    await asyncio.to_thread(subprocess.run, [sys.executable, "-c", "pass"], check=True)


async def calls(mcp_source, local_source, app, now: str, count: int) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    """Per-call times, the three ways interleaved call by call."""
    from mcp import Client, StdioServerParameters

    times: dict[str, list[float]] = {"mcp": [], "in-process": [], "bare SDK": []}
    mcp_app, local_app, bare_app = app.clone(), app.clone(), app.clone()
    db = bare_app.paths()["db"]
    args = [str(SERVER), "--version", "1", "--db", db, "--now", now]
    params = StdioServerParameters(command=sys.executable, args=args, cwd=str(SERVER.parent))
    try:
        async with mcp_source.bind(mcp_app) as served, Client(params, cache=None) as client:
            await client.list_tools()
            local = local_source.executor(local_app)
            for _ in range(count):  # one of each in turn: drift hits all three alike
                times["mcp"].append(await timed(served.call(CALL)))
                times["in-process"].append(await timed(local.call(CALL)))
                times["bare SDK"].append(await timed(client.call_tool("list_tasks", {"page": 2})))
    finally:
        for each in (mcp_app, local_app, bare_app):
            each.close()
    return times


async def main(rounds: int, cells: int, count: int) -> None:
    mcp, local = experiments()
    app_class = _app_class(mcp.app or "")
    app = app_class(mcp.fixed_timestamp)
    now = mcp.fixed_timestamp.isoformat()
    mcp_source = tool_source(mcp.variant("baseline"), mcp)
    local_source = tool_source(local.variant("baseline"), local)
    await mcp_source.prepare(app)
    await local_source.prepare(app)
    starts: dict[str, list[float]] = {"tooltrial": [], "bare SDK": [], "python -c pass": []}
    for _ in range(rounds):
        for _ in range(cells):
            starts["tooltrial"].append(await timed(tooltrial_cell(mcp_source, app)))
            starts["bare SDK"].append(await timed(bare_cell(app, now)))
            starts["python -c pass"].append(await timed(process_start()))
    per_call = await calls(mcp_source, local_source, app, now, count)
    app.close()
    median = {name: statistics.median(values) for name, values in starts.items()}
    call = {name: statistics.median(values) for name, values in per_call.items()}
    rows = [
        (f"per cell, a fresh stdio server (median of {rounds * cells}, interleaved):", None),
        (
            "  tooltrial's bind over the bare SDK's session",
            median["tooltrial"] / median["bare SDK"],
        ),
        (
            "  tooltrial's bind over a bare process start",
            median["tooltrial"] / median["python -c pass"],
        ),
        (f"per call, list_tasks (median of {count}, interleaved):", None),
        ("  through MCP over in-process", call["mcp"] / call["in-process"]),
        ("  through tooltrial's MCP over the bare SDK's", call["mcp"] / call["bare SDK"]),
    ]
    for label, ratio in rows:
        print(label if ratio is None else f"{label:<48} {ratio:8.2f}x")
    print(
        f"a cell's server start costs as much as {median['tooltrial'] / call['mcp']:,.0f} calls "
        f"through MCP, {median['tooltrial'] / call['in-process']:,.0f} in-process"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if shutil.which(sys.executable) is None:
        sys.exit("no interpreter")
    with tempfile.TemporaryDirectory():
        if args.quick:
            asyncio.run(main(rounds=3, cells=3, count=60))
        else:
            asyncio.run(main(rounds=7, cells=5, count=500))
