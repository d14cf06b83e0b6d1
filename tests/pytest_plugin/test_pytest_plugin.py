"""The pytest front end: the experiment plan's commands, run as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.paths import ROOT

from tooltrial.log.reader import iter_records
from tooltrial.log.records import Metadata, Result
from tooltrial.log.validate import validate
from tooltrial.testing.messages_server import MessagesServer

EXPERIMENT_TEST = "tests/experiment/test_experiment.py"


def pytest_run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH", "LANGCHAIN"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", EXPERIMENT_TEST, "-m", "experiment", *args],
        cwd=ROOT,
        env=clean | (env or {}),
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture
def srv() -> Iterator[MessagesServer]:
    with MessagesServer(max_requests=1000, max_seconds=300) as server:
        yield server


def anthropic_env(srv: MessagesServer) -> dict[str, str]:
    return {
        "TOOLTRIAL_MODEL": "anthropic:claude-test",
        "ANTHROPIC_BASE_URL": srv.url,
        "ANTHROPIC_API_KEY": "sk-ant-test-not-a-real-key",
    }


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.glob("*.jsonl")}


def test_collect_only_gives_120_items():
    done = pytest_run("--count", "3", "--collect-only", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "120 tests collected" in done.stdout


def test_the_default_test_command_skips_the_experiment():
    done = subprocess.run(
        [sys.executable, "-m", "pytest", EXPERIMENT_TEST, "--collect-only", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "no tests collected (40 deselected)" in done.stdout


def test_plan_command_writes_six_complete_files_then_partial_rerun(srv, tmp_path):
    results = tmp_path / "results"
    env = anthropic_env(srv)
    done = pytest_run(
        "--count", "3", "--reruns", "2", "--reruns-delay", "5", "-v",
        "--tooltrial-results", str(results), env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "120 passed" in done.stdout
    assert "collected 120  passed 120  failed 0  rerun 0" in done.stdout
    files = sorted(results.glob("*.jsonl"))
    assert len(files) == 6
    for path in files:
        records = list(iter_records(path))
        assert isinstance(records[0], Metadata) and records[0].runs == 3
        assert len(records) == 21 and all(isinstance(r, Result) for r in records[1:])
        assert {r.rep for r in records[1:]} == {records[0].rep}
    assert validate(results).ok

    before = snapshot(results)
    rerun = pytest_run(
        "--count", "3", "-k", "no-call-weather", "--tooltrial-results", str(results), env=env
    )
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    after = snapshot(results)
    assert {k: after[k] for k in before} == before, "earlier files are never changed"
    new = sorted(set(after) - set(before))
    assert len(new) == 6, "a partial rerun writes new timestamped files"
    assert sum(len(list(iter_records(results / n))) - 1 for n in new) == 6
    assert validate(results).ok


def test_rep_number_is_one_without_count(srv, tmp_path):
    done = pytest_run(
        "-k", "baseline-no-call-weather", "--tooltrial-results", str(tmp_path),
        env=anthropic_env(srv),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]
    (path,) = tmp_path.glob("*.jsonl")
    assert path.name.startswith("baseline_run1_")
    assert [r.rep for r in iter_records(path)] == [1, 1]


def test_a_model_that_rejects_temperature_stops_the_session(tmp_path):
    with MessagesServer(reject_params={"claude-strict": {"temperature"}}) as strict:
        env = anthropic_env(strict) | {"TOOLTRIAL_MODEL": "anthropic:claude-strict"}
        done = pytest_run("--tooltrial-results", str(tmp_path / "r"), env=env)
        assert len(strict.requests) == 1
    assert done.returncode == 3
    assert "anthropic:claude-strict rejected the settings" in done.stdout + done.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_embedded_model_handful_of_real_calls(tmp_path):
    """CI's guard on the local path: real SmolLM2 calls through the pytest front end."""
    done = pytest_run(
        "--count", "2", "-k", "no-call-small-talk or create-task-tomorrow-at-3",
        "--tooltrial-results", str(tmp_path),
        env={"TOOLTRIAL_MODEL": "local:smollm2"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "8 passed" in done.stdout
    files = sorted(tmp_path.glob("*.jsonl"))
    assert len(files) == 4
    for path in files:
        meta, *results = iter_records(path)
        assert isinstance(meta, Metadata) and meta.model == "local:smollm2"
        assert meta.temperature == 0.2 and meta.settings["gguf"].endswith(".gguf")
        for result in results:
            assert result.usage.input_tokens > 100 and result.usage.output_tokens > 0
            assert result.response_text or result.tool_calls
