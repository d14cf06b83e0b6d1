"""Batch mode in tests: fast settings, the servers' counts, and waiting on a condition.

Time is driven by the test servers (``hold``, ``release``, ``processing_s``) and by
tooltrial's own short poll and gather times here; a test never sleeps to pass: it waits
for a condition it can observe (``wait_until``), with a deadline.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tooltrial.log.reader import iter_records
from tooltrial.log.records import Error, Metadata, Result
from tooltrial.turns.batch.journal import journal_path, read_records
from tooltrial.turns.batch.options import BatchOptions
from tooltrial.types import Cell

KEY = "sk-test-batch-not-a-real-key-0000"
FAST = BatchOptions(poll_s=0.01, poll_max_s=0.05, gather_s=0.05)
FAST_FLAGS = [
    "--batch",
    "--batch-poll",
    "0.01",
    "--batch-poll-max",
    "0.05",
    "--batch-gather",
    "0.05",
]


def wait_until(condition: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    """Poll ``condition`` until it is true (its value is returned) or fail at ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.005)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


async def until(condition: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    """``wait_until`` inside a running loop (the run goes on while this waits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


def lines(results: Path, run_id: str | None = None) -> list[Result | Error]:
    """Every result and error line of the folder (of one run), every line parsed."""
    found: list[Result | Error] = []
    for path in sorted(results.glob("*.jsonl")):
        records = list(iter_records(path))
        assert isinstance(records[0], Metadata)
        if run_id is None or records[0].run_id == run_id:
            found += [r for r in records[1:] if isinstance(r, Result | Error)]
    return found


def results_per_cell(results: Path, run_id: str | None = None) -> Counter[Cell]:
    return Counter(
        Cell(r.model, r.variant, r.scenario_id, r.rep)
        for r in lines(results, run_id)
        if isinstance(r, Result)
    )


def journal(results: Path, run_id: str) -> list[Any]:
    return [record for _, record, _ in read_records(journal_path(results, run_id))]


def journal_types(results: Path, run_id: str) -> Counter[str]:
    return Counter(r.type for r in journal(results, run_id))


def count_results(results: Path) -> int:
    total = 0
    for path in results.glob("*.jsonl"):
        with path.open("rb") as handle:
            total += sum(1 for line in handle if b'"scenario_result"' in line)
    return total


def canonical(body: Any) -> str:
    return json.dumps(body, sort_keys=True)
