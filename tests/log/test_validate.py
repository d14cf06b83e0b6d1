"""`tooltrial validate`: the plan's completeness checks, aware of partial reruns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tooltrial.cli import main
from tooltrial.log.validate import validate
from tooltrial.log.writer import WriterPool
from tooltrial.types import ToolCall, Usage

IDS = ["a", "b", "c"]
META = {
    "experiment": "e",
    "model": "local:smollm2",
    "temperature": 0.2,
    "fixed_timestamp": "2025-03-12T09:00:00+00:00",
    "zero_persona": True,
    "variant_hash": "sha256:0",
    "scenario_ids": IDS,
    "runs": 2,
}


def write_run(
    directory: Path, skip: tuple[str, ...] = (), empty: tuple[str, ...] = (), reps: int = 2
) -> WriterPool:
    pool = WriterPool("run-1", "abc", {"v": META, "w": META}, directory=directory)
    for variant in ("v", "w"):
        for rep in range(1, reps + 1):
            for scenario in IDS:
                if (variant, rep, scenario) in skip or scenario in skip:
                    continue
                write(pool, variant, rep, scenario, text="" if scenario in empty else "ok")
    pool.close_all()
    return pool


def write(pool: WriterPool, variant: str, rep: int, scenario: str, text: str = "ok") -> None:
    pool.get(variant, rep).write_result(
        scenario_id=scenario,
        variant=variant,
        rep=rep,
        response_text=text,
        tool_calls=[],
        stop_reason="end_turn",
        usage=Usage(),
        latency_s=0.1,
        model="local:smollm2",
        temperature=0.2,
    )


def problems(directory: Path) -> list[str]:
    return [f"{p.where}: {p.what}" for p in validate(directory).problems]


def test_complete_run_passes(tmp_path, capsys):
    write_run(tmp_path)
    assert problems(tmp_path) == []
    assert main(["validate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "complete" in out and "3/3" in out


def test_python_dash_m_works(tmp_path):
    write_run(tmp_path, skip=("b",))
    done = subprocess.run(
        [sys.executable, "-m", "tooltrial", "validate", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    out = " ".join(done.stdout.split())
    assert "local:smollm2 e/v run 1: 1 scenario(s) without a result: b" in out


def test_missing_scenario_and_missing_run_file(tmp_path):
    write_run(tmp_path, skip=(("w", 1, "c"),), reps=1)  # metadata promises 2 runs
    found = problems(tmp_path)
    assert "local:smollm2 e/w run 1: 1 scenario(s) without a result: c" in found
    assert "local:smollm2 e/v run 2: no file: this run never started" in found
    assert "local:smollm2 e/w run 2: no file: this run never started" in found


def test_empty_and_tool_only_answers_are_results_counted_not_problems(tmp_path):
    pool = write_run(tmp_path, empty=("b",))
    pool.get("w", 2).write_result(
        scenario_id="b",
        variant="w",
        rep=2,
        response_text="",
        tool_calls=[ToolCall(id="1", name="add_task", arguments={})],
        stop_reason="tool_use",
        usage=Usage(),
        latency_s=0.1,
        model="local:smollm2",
        temperature=0.2,
    )
    pool.close_all()
    result = validate(tmp_path)
    found = [f"{p.where}: {p.what}" for p in result.problems]
    assert found == [] and result.ok  # an empty answer is the model's answer: a result
    assert next(a for a in result.arms if (a.variant, a.rep) == ("v", 1)).empty == ["b"]
    tool_only = "its latest result is tool-only"
    assert not any(p.startswith("local:smollm2 e/w run 2") for p in found), tool_only
    assert next(a for a in result.arms if (a.variant, a.rep) == ("w", 2)).tool_only == 1


def test_partial_rerun_latest_result_counts(tmp_path):
    write_run(tmp_path, skip=(("v", 2, "a"),), empty=("c",))
    assert problems(tmp_path)
    rerun = WriterPool("run-1", "abc", {"v": META, "w": META}, directory=tmp_path)
    for variant in ("v", "w"):
        for rep in (1, 2):
            write(rerun, variant, rep, "c")
    write(rerun, "v", 2, "a")
    rerun.close_all()
    assert problems(tmp_path) == []
    arm = next(a for a in validate(tmp_path).arms if (a.variant, a.rep) == ("v", 2))
    assert len(arm.files) == 2


def test_error_lines_never_count_as_results(tmp_path):
    pool = write_run(tmp_path, skip=(("v", 1, "a"),))
    pool.get("v", 1).write_error(
        scenario_id="a",
        variant="v",
        rep=1,
        kind="rate_limit",
        message="429",
        attempts=6,
        model="local:smollm2",
    )
    pool.close_all()
    assert problems(tmp_path) == [
        "local:smollm2 e/v run 1: 1 scenario(s) without a result (1 failed after retries: a): a"
    ]


def test_corrupt_line_is_reported_with_file_and_line(tmp_path, capsys):
    pool = write_run(tmp_path)
    path = tmp_path / pool.filename("w", 1)
    before = path.read_bytes()
    with path.open("ab") as handle:
        handle.write(b'{"type": "scenario_result", oops\n')
    assert main(["validate", str(tmp_path)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert f"{path}:5: not valid JSON" in out
    assert path.read_bytes().startswith(before), "validate never changes a file"


def test_run_id_filter_and_empty_folder(tmp_path):
    write_run(tmp_path)
    assert validate(tmp_path, run_id="run-1").ok
    assert not validate(tmp_path, run_id="other").ok
    assert problems(tmp_path / "nothing") == [f"{tmp_path / 'nothing'}: no such folder"]
    (tmp_path / "empty").mkdir()
    assert problems(tmp_path / "empty") == [f"{tmp_path / 'empty'}: no .jsonl result files here"]


@pytest.mark.parametrize("first", ['{"type": "scenario_result"}', "[]"])
def test_a_file_must_start_with_metadata(tmp_path, first):
    (tmp_path / "x.jsonl").write_text(first + "\n")
    found = problems(tmp_path)
    assert any(p.startswith(f"{tmp_path / 'x.jsonl'}:1") for p in found)
