"""The model is an axis of the experiment: runs of several models share a folder, each model
keeps every cell, ``validate`` and ``--resume`` work per model, and with one model the file
names and the pytest collection are what they always were.

Both models are served by one Messages API server (it answers whatever model is named),
through the real ``ChatAnthropic`` client."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from support.paths import ROOT

from tooltrial.cli import main
from tooltrial.errors import ResultsError, UsageError
from tooltrial.log.reader import iter_records, latest_results, result_files
from tooltrial.log.records import Error, Metadata, Result
from tooltrial.log.validate import validate
from tooltrial.log.writer import WriterPool
from tooltrial.models import get_model
from tooltrial.testing.messages_server import MessagesServer
from tooltrial.turns import LiveTurns, Pacer
from tooltrial.types import Usage

EXPERIMENT_DIR = ROOT / "tests" / "experiment"
FAKE_KEY = "sk-test-not-a-real-key-0000"
A, B = "anthropic:model-a", "anthropic:model-b"
SCENARIOS = ["query-agenda-friday", "create-task-next-friday", "delete-task-by-title"]
PYTEST = [sys.executable, "-m", "pytest", "tests/experiment/test_experiment.py", "-m", "experiment"]
PER_MODEL = 2 * 2 * len(SCENARIOS)  # variants × runs × scenarios


@pytest.fixture(autouse=True)
def fake_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)


def run_args(srv: MessagesServer, results: Path, *extra: str) -> list[str]:
    return ["run", "--base-url", srv.url, "--results", str(results), *extra]


def new_run(srv: MessagesServer, results: Path, run_id: str, *models: str) -> int:
    scenarios = [arg for s in SCENARIOS for arg in ("--scenario", s)]
    flags = [arg for m in models for arg in ("--model", m)]
    args = [str(EXPERIMENT_DIR), *flags, "--runs", "2", *scenarios, "--run-id", run_id]
    return main(run_args(srv, results, *args, "--concurrency", "4"))


def results_per_model(results: Path) -> Counter[str]:
    lines = [r for p in results.glob("*.jsonl") for r in iter_records(p)]
    return Counter(r.model for r in latest_results(lines).values())


def cell_calls(srv: MessagesServer) -> Counter[str]:
    """Requests for cells per model name, leaving out the one-token preflight calls."""
    return Counter(r.body["model"] for r in srv.requests if r.body and r.body["max_tokens"] != 1)


def test_two_models_in_one_run_keep_every_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with MessagesServer(max_seconds=60) as srv:
        assert new_run(srv, tmp_path, "two", A, B) == 0
        assert cell_calls(srv) == {"model-a": PER_MODEL, "model-b": PER_MODEL}
    names = sorted(p.name for p in tmp_path.glob("*.jsonl"))
    assert len(names) == 8  # 2 models × 2 variants × 2 runs
    assert len(list(tmp_path.glob("baseline_run1_*.jsonl"))) == 2
    assert sum("_run1_anthropic-model-a_" in n for n in names) == 2
    for path in tmp_path.glob("*.jsonl"):
        meta, *lines = iter_records(path)
        assert isinstance(meta, Metadata) and meta.settings["plan"]["models"] == [A, B]
        assert {r.model for r in lines} == {meta.model}  # each file holds its model's cells
    assert results_per_model(tmp_path) == {A: PER_MODEL, B: PER_MODEL}
    result = validate(tmp_path)
    assert result.ok and {a.model for a in result.arms} == {A, B} and len(result.arms) == 8
    capsys.readouterr()
    monkeypatch.setenv("COLUMNS", "200")  # the table on one line per arm
    assert main(["validate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "model" in out and "model-a" in out and "model-b" in out and "complete" in out


def test_resume_runs_exactly_the_missing_cells_of_one_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with MessagesServer(max_seconds=60) as srv:
        assert new_run(srv, tmp_path, "r", A, B) == 0
        (lost,) = tmp_path.glob("applike_run2_anthropic-model-b_*.jsonl")
        lost.unlink()  # model-b's applike run 2: all 3 cells gone
        (cut,) = tmp_path.glob("baseline_run1_anthropic-model-b_*.jsonl")
        cut.write_bytes(b"".join(cut.read_bytes().splitlines(keepends=True)[:2]))  # 2 gone
        assert not validate(tmp_path).ok
        before = cell_calls(srv)
        capsys.readouterr()
        assert main(run_args(srv, tmp_path, "--resume", "r", "--model", A)) == 2
        assert "not given now: anthropic:model-b" in capsys.readouterr().err
        assert main(run_args(srv, tmp_path, "--resume", "r")) == 0
        assert cell_calls(srv) - before == {"model-b": 5}
    assert results_per_model(tmp_path) == {A: PER_MODEL, B: PER_MODEL}
    assert validate(tmp_path, "r").ok


def test_two_single_model_runs_in_one_folder_do_not_collapse(tmp_path: Path) -> None:
    with MessagesServer(max_seconds=60) as srv:
        assert new_run(srv, tmp_path, "ra", A) == 0
        assert new_run(srv, tmp_path, "rb", B) == 0
    assert not any("model" in p.name for p in tmp_path.glob("*.jsonl"))  # one model: plain names
    assert results_per_model(tmp_path) == {A: PER_MODEL, B: PER_MODEL}
    result = validate(tmp_path)
    assert result.ok and {(a.model, len(a.latest)) for a in result.arms} == {(A, 3), (B, 3)}


META = {
    "experiment": "e",
    "temperature": 0.2,
    "fixed_timestamp": "2025-03-12T09:00:00+00:00",
    "zero_persona": True,
    "variant_hash": "sha256:0",
    "scenario_ids": ["s"],
    "runs": 1,
}


def test_one_model_file_names_are_unchanged(tmp_path: Path) -> None:
    one = WriterPool("r", None, {("local:smollm2", "v"): {**META, "model": "local:smollm2"}})
    assert one.filename("v", 2) == f"v_run2_{one.timestamp}.jsonl"
    legacy = WriterPool("r", None, {"v": {**META, "model": "local:smollm2"}}, tmp_path)
    assert legacy.get("v", 1).path.name == f"v_run1_{legacy.timestamp}.jsonl"
    legacy.close_all()
    two = WriterPool("r", None, {(m, "v"): {**META, "model": m} for m in ("openai:x/y_1", A)})
    assert two.filename("v", 1, "openai:x/y_1") == f"v_run1_openai-x-y-1_{two.timestamp}.jsonl"
    with pytest.raises(KeyError, match="name the model"):
        two.get("v", 1)


def pytest_collect(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TOOLTRIAL_MODEL"}
    return subprocess.run(
        [*PYTEST, "--collect-only", "-q", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_pytest_collection_one_model_as_before_and_one_item_per_model_for_several() -> None:
    one = pytest_collect("--count", "3", "-k", "no-call-weather")
    assert "test_scenario[baseline-no-call-weather-1-3]" in one.stdout
    assert "6/120 tests collected" in one.stdout
    two = pytest_collect("--count", "3", "--tooltrial-model", f"{A},{B}", "-k", "no-call")
    assert "test_scenario[anthropic-model-b-applike-no-call-weather-3-3]" in two.stdout
    assert "/240 tests collected" in two.stdout


def test_pytest_runs_each_test_for_each_model(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH", "LANGCHAIN"))}
    with MessagesServer(max_seconds=60) as srv:
        env = clean | {"ANTHROPIC_BASE_URL": srv.url, "ANTHROPIC_API_KEY": FAKE_KEY}
        models = ["--tooltrial-model", A, "--tooltrial-model", B]
        done = subprocess.run(
            [*PYTEST, "-k", "no-call-weather", "--tooltrial-results", str(tmp_path), *models],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "4 passed" in done.stdout
    assert len(list(tmp_path.glob("*_run1_anthropic-model-?_*.jsonl"))) == 4
    assert results_per_model(tmp_path) == {A: 2, B: 2}
    arms = validate(tmp_path).arms  # a partial (-k) run: each model's two arms, one result each
    assert sorted((a.model, len(a.latest)) for a in arms) == [(A, 1), (A, 1), (B, 1), (B, 1)]


def test_each_model_has_its_own_pacer_and_one_spec_is_one_model() -> None:
    a, b = (get_model(m, base_url="http://127.0.0.1:9") for m in (A, B))
    pacer = Pacer(rpm=60)
    turns = LiveTurns([a, b], pacer=pacer)
    assert turns.pacers[A] is pacer and turns.pacers[B] is not pacer
    assert turns.pacers[B].rpm == 60
    assert LiveTurns([a]).by_spec == {A: a}
    with pytest.raises(UsageError, match="named twice"):
        LiveTurns([a, get_model(A)])


def result(scenario: str, timestamp: str, text: str, model: str = A) -> Result:
    return Result(
        run_id="r",
        scenario_id=scenario,
        variant="v",
        rep=1,
        response_text=text,
        tool_calls=[],
        stop_reason="end_turn",
        usage=Usage(),
        latency_s=0.1,
        model=model,
        temperature=0.2,
        timestamp=timestamp,
    )


def test_latest_results_applies_the_rule() -> None:
    early, late = "2025-03-12T09:00:00.000+00:00", "2025-03-12T09:00:01.000+00:00"
    error = Error(
        run_id="r", scenario_id="s", variant="v", rep=1, kind="x", message="m", attempts=1,
        model=A, timestamp="2025-03-12T10:00:00.000+00:00",
    )  # fmt: skip
    records = [
        result("s", late, "later timestamp"),
        result("s", early, "earlier timestamp, later line"),
        result("t", early, "tie, earlier line"),
        result("t", early, "tie, later line"),
        error,  # the newest line of all, but errors never count
        result("s", early, "another model's cell", model=B),
    ]
    latest = latest_results(records)
    assert {k: r.response_text for k, r in latest.items()} == {
        (A, "v", "s", 1): "later timestamp",
        (A, "v", "t", 1): "tie, later line",
        (B, "v", "s", 1): "another model's cell",
    }
    assert latest_results([error]) == {}


def test_result_files_takes_folders_and_files_and_names_a_missing_path(tmp_path: Path) -> None:
    (tmp_path / "b.jsonl").write_text("")
    (tmp_path / "a.jsonl").write_text("")
    (tmp_path / "notes.txt").write_text("")
    other = tmp_path / "sub"
    other.mkdir()
    (other / "c.jsonl").write_text("")
    found = result_files([tmp_path, other / "c.jsonl"])
    assert found == [tmp_path / "a.jsonl", tmp_path / "b.jsonl", other / "c.jsonl"]
    with pytest.raises(ResultsError, match="nowhere: no such file or folder"):
        result_files([tmp_path, tmp_path / "nowhere"])
