"""The pytest path in parallel: ``pytest -m experiment --count 3 -n 8`` (pytest-xdist) writes
one set of files for the session, one metadata line each, with no lost or mixed lines."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from support.paths import ROOT

from tooltrial.log.reader import iter_records
from tooltrial.log.records import Metadata, Result
from tooltrial.log.validate import validate
from tooltrial.testing.messages_server import Faults, MessagesServer

SUITE = "tests/experiment/test_experiment.py"


def run_suite(results: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", SUITE, "-m", "experiment"]
    command += ["--tooltrial-results", str(results), "--tooltrial-run-id", "xd", *args]
    return subprocess.run(
        command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=600
    )


def check_files(results: Path, variants: int, reps: int, per_file: int) -> None:
    """Every file whole, one metadata line first, each cell recorded exactly once."""
    files = sorted(results.glob("*.jsonl"))
    assert len(files) == variants * reps
    assert len({f.name.rsplit("_", 1)[1] for f in files}) == 1  # one timestamp for the session
    cells: Counter[tuple[str, str, int]] = Counter()
    for path in files:
        records = list(iter_records(path))  # every line whole and valid
        assert isinstance(records[0], Metadata) and records[0].run_id == "xd"
        assert sum(isinstance(r, Metadata) for r in records) == 1
        results_here = [r for r in records if isinstance(r, Result)]
        assert len(results_here) == len(records) - 1 == per_file
        assert {(r.variant, r.rep) for r in results_here} == {(records[0].variant, records[0].rep)}
        cells.update((r.variant, r.scenario_id, r.rep) for r in results_here)
    assert len(cells) == variants * reps * per_file and set(cells.values()) == {1}


@pytest.mark.slow
def test_eight_workers_share_the_session_files(tmp_path: Path) -> None:
    faults = Faults(latency_s=0.02, latency_jitter_s=0.03)
    with MessagesServer(faults, max_seconds=600) as srv:
        env = {
            "TOOLTRIAL_MODEL": "anthropic:claude-test",
            "ANTHROPIC_BASE_URL": srv.url,
            "ANTHROPIC_API_KEY": "sk-test-not-a-real-key-0000",
        }
        done = run_suite(tmp_path, env, "--count", "3", "-n", "8")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "120 passed" in done.stdout
    assert "8 workers" in done.stdout + done.stderr
    check_files(tmp_path, variants=2, reps=3, per_file=20)
    assert validate(tmp_path, "xd").ok


@pytest.mark.slow
def test_two_workers_on_the_embedded_model(tmp_path: Path) -> None:
    # The real local model, kept to 2 calls (one cell, 2 reps): on 2 cores each call of
    # the 135M model with 10 tool schemas in its prompt takes tens of seconds.
    env = {"TOOLTRIAL_MODEL": "local:smollm2"}
    cell = "baseline-query-agenda-friday"
    done = run_suite(tmp_path, env, "--count", "2", "-n", "2", "-k", cell)
    # A small model may answer wrongly (a failed test); the files must be whole all the same.
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 workers" in done.stdout + done.stderr
    check_files(tmp_path, variants=1, reps=2, per_file=1)
