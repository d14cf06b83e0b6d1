"""Batch mode survives ``kill -9`` anywhere: a real ``tooltrial run --batch`` process is
killed at five points — before its submit reached the provider, between the submit and
its record, while polling, while collecting, halfway through writing results — then
``--resume`` finishes it. Every cell ends with exactly one result, no custom id is ever
in two batches (the server counts), the results files as they were are unchanged and
the journal only grew. The same for an agentic run, killed in its second turn.

The batch server runs in the test; it holds the run at each point (``BatchFaults``), so
the kill lands where it should without sleeping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.batch import FAST_FLAGS, KEY, count_results, results_per_cell, wait_until

from tooltrial.log.validate import validate
from tooltrial.testing.batch_server import AnthropicBatchServer, BatchFaults
from tooltrial.testing.scripted_agent import ScriptedAgent, call, result, say
from tooltrial.turns.batch.journal import journal_path

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = ROOT / "tests" / "experiment"
MINI = ROOT / "tests" / "mini_agentic"
POLICIES: list[dict[str, Any]] = [
    {
        "prompt": "dentist",
        "offers": "update_task",
        "steps": [
            call("list_tasks", query="Dentist"),
            call("update_task", id=result("0.id"), due="2025-03-21"),
            say("Moved it to Friday the 21st."),
        ],
    },
    {
        "prompt": "dentist",
        "offers": "reschedule",
        "steps": [call("reschedule", title="Dentist", due="2025-03-21"), say(result())],
    },
    {"prompt": "rent", "steps": [say("Delete 'Pay rent'?")]},
]


def start(srv: AnthropicBatchServer, results: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH", "LANGCHAIN"))}
    env |= {"ANTHROPIC_API_KEY": KEY, "LANGSMITH_TRACING": "false", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "tooltrial", "run", "--model", "anthropic:claude-test"]
    command += ["--base-url", srv.url, "--results", str(results), *args]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def kill_when(process: subprocess.Popen[str], condition: Any, what: str) -> None:
    try:
        wait_until(lambda: condition() or process.poll() is not None, 120, what)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
    _, err = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, f"it ended before the kill: {err[-2000:]}"


def kill_then_resume(
    srv: AnthropicBatchServer,
    results: Path,
    first: list[str],
    condition: Any,
    what: str,
    cells: int,
) -> None:
    kill_when(start(srv, results, *first, "--run-id", "k", *FAST_FLAGS), condition, what)
    files = {p: p.read_bytes() for p in results.glob("*.jsonl")}
    journal = journal_path(results, "k").read_bytes()
    srv.batch_faults = BatchFaults()  # the provider goes on as usual
    resumed = start(srv, results, "--resume", "k")  # no batch flags: the run's own
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    per_cell = results_per_cell(results, "k")
    assert len(per_cell) == cells and set(per_cell.values()) == {1}, "each cell exactly once"
    assert validate(results, "k").ok
    created = srv.created_ids
    assert created and max(created.values()) == 1, "a custom id was submitted twice"
    assert {p: p.read_bytes() for p in files} == files, "earlier files changed"
    assert journal_path(results, "k").read_bytes().startswith(journal), "the journal only grows"


SINGLE = [str(EXPERIMENT), "--runs", "1"]
POINTS = {
    "before-submit": (BatchFaults(hold_create="before"), lambda s: s.creates_held),
    "between-submit-and-record": (BatchFaults(hold_create="after"), lambda s: s.creates_held),
    "while-polling": (
        BatchFaults(hold=True),
        lambda s: s.batches and s.batches[-1].looks >= 2,
    ),
    "while-collecting": (BatchFaults(hold_results_after=2), lambda s: s.results_sent >= 2),
}


@pytest.mark.parametrize("point", list(POINTS))
def test_single_turn_killed_then_resumed(tmp_path: Path, point: str) -> None:
    faults, condition = POINTS[point]
    with AnthropicBatchServer(batch_faults=faults, max_seconds=600) as srv:
        kill_then_resume(srv, tmp_path, SINGLE, lambda: condition(srv), point, 40)
        if point == "between-submit-and-record":
            assert len(srv.batches) == 1, "the batch the killed run made was collected"


def test_single_turn_killed_halfway_through_writing_results(tmp_path: Path) -> None:
    # 400 cells in one batch: the first 256 results are journaled and written while the
    # stream holds the rest; the kill lands among those lines.
    faults = BatchFaults(hold_results_after=300)
    with AnthropicBatchServer(batch_faults=faults, max_seconds=600) as srv:
        first = [str(EXPERIMENT), "--runs", "10"]
        kill_then_resume(srv, tmp_path, first, lambda: count_results(tmp_path) >= 128, "", 400)
        assert len(srv.batches) == 1, "what was collected before the kill is not asked again"


AGENTIC = {  # killed in the conversations' second turn (the first batch passes)
    "before-submit": (BatchFaults(hold_create="before", from_batch=2), lambda s: s.creates_held),
    "between-submit-and-record": (
        BatchFaults(hold_create="after", from_batch=2),
        lambda s: s.creates_held,
    ),
    "while-polling": (
        BatchFaults(hold=True, from_batch=2),
        lambda s: len(s.batches) == 2 and s.batches[1].looks >= 2,
    ),
    "while-collecting": (
        BatchFaults(hold_results_after=1, from_batch=2),
        lambda s: s.results_sent >= 13,
    ),
}


@pytest.mark.parametrize("point", [*AGENTIC, "halfway-through-writing"])
def test_agentic_killed_then_resumed(tmp_path: Path, point: str) -> None:
    if point == "halfway-through-writing":
        # The rent conversations end after the first batch; the dentist ones wait on the
        # second, held: the kill lands among the first lines.
        faults = BatchFaults(hold=True, from_batch=2)
        results = tmp_path

        def condition(_: AnthropicBatchServer) -> bool:
            return count_results(results) >= 3
    else:
        faults, condition = AGENTIC[point]
    agent = ScriptedAgent(POLICIES)
    with AnthropicBatchServer(responder=agent, batch_faults=faults, max_seconds=600) as srv:
        first = [str(MINI), "--runs", "3"]
        kill_then_resume(srv, tmp_path, first, lambda: condition(srv), point, 12)
        first_turns = [b for b in srv.batches if len(b.items) == 12]
        assert len(first_turns) == 1, "no conversation's first turn was asked twice"
