"""Real ``tooltrial run`` processes against the Messages API test server, and what they
leave: the command line, starting one, and counting and checking the results (the resume,
signal and lock tests, and the agentic SIGKILL test).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from support.paths import ROOT
from tooltrial.log.reader import iter_records
from tooltrial.log.records import Metadata, Result
from tooltrial.log.validate import validate
from tooltrial.testing.messages_server import MessagesServer
from tooltrial.types import Cell

FAKE_KEY = "sk-test-not-a-real-key-0000"


def run_args(srv: MessagesServer, results: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--model",
        "anthropic:claude-test",
        "--base-url",
        srv.url,
        "--results",
        str(results),
        *extra,
    ]


def result_cells(results: Path, run_id: str) -> Counter[Cell]:
    """Every result of the run, counted per cell; parsing every line on the way."""
    cells: Counter[Cell] = Counter()
    for path in results.glob("*.jsonl"):
        records = list(iter_records(path))  # raises on any cut or garbled line
        assert isinstance(records[0], Metadata)
        assert not any(isinstance(r, Metadata) for r in records[1:])
        if records[0].run_id == run_id:
            results = [r for r in records if isinstance(r, Result)]
            cells.update(Cell(r.model, r.variant, r.scenario_id, r.rep) for r in results)
    return cells


def assert_complete(results: Path, run_id: str, expected: int) -> None:
    cells = result_cells(results, run_id)
    assert len(cells) == expected
    assert set(cells.values()) == {1}, "a cell was recorded twice"
    assert validate(results, run_id).ok


def count_results(results: Path) -> int:
    total = 0
    for path in results.glob("*.jsonl"):
        with path.open("rb") as handle:
            total += sum(1 for line in handle if b'"scenario_result"' in line)
    return total


def start_run(srv: MessagesServer, results: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "ANTHROPIC_API_KEY": FAKE_KEY, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "tooltrial", *run_args(srv, results, *args)]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
