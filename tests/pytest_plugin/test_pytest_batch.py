"""``pytest --tooltrial-batch``: the collected experiment items go out in shared batches
at the session's start (only those selected), each test writes its own answer with its
batch named, and pytest-xdist is refused (one process writes the batch journal)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.batch import KEY, lines

from tooltrial.log.records import Result
from tooltrial.testing.batch_server import AnthropicBatchServer

ROOT = Path(__file__).resolve().parents[2]


def pytest_run(
    srv: AnthropicBatchServer, results: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH", "LANGCHAIN"))}
    env |= {
        "TOOLTRIAL_MODEL": "anthropic:claude-test",
        "ANTHROPIC_BASE_URL": srv.url,
        "ANTHROPIC_API_KEY": KEY,
        "LANGSMITH_TRACING": "false",
    }
    command = [sys.executable, "-m", "pytest", "tests/experiment/test_experiment.py"]
    command += ["-m", "experiment", "-q", "--tooltrial-results", str(results), *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_selected_items_share_batches_and_name_them(tmp_path: Path) -> None:
    with AnthropicBatchServer(max_seconds=300) as srv:
        done = pytest_run(
            srv,
            tmp_path,
            "-p",
            "no:xdist",
            "--count",
            "2",
            "-k",
            "no-call or create-task",
            "--tooltrial-batch",
            "--tooltrial-batch-poll",
            "0.01",
            "--tooltrial-batch-gather",
            "0.2",
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        batched = [cid for batch in srv.batches for cid, _ in batch.items]
    written = [r for r in lines(tmp_path) if isinstance(r, Result)]
    assert written and len(written) == len(batched) == len(set(batched))
    assert len(srv.batches) <= 2  # the session's items together, not one batch per test
    assert {r.custom_id for r in written} == set(batched)
    assert all(r.batch_id in {b.id for b in srv.batches} for r in written)


def test_batch_mode_refuses_xdist(tmp_path: Path) -> None:
    with AnthropicBatchServer(max_seconds=60) as srv:
        done = pytest_run(srv, tmp_path, "-n", "2", "--tooltrial-batch", "--collect-only")
    assert done.returncode != 0
    assert "--tooltrial-batch runs in one process" in done.stdout + done.stderr
