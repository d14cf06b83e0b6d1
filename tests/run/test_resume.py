"""``tooltrial run --resume``: a crashed, killed or interrupted run completes with every cell
recorded exactly once, and a resume never silently changes what the run measures."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.paths import ROOT
from support.processes import (
    assert_complete,
    count_results,
    result_cells,
    run_args,
    start_run,
)

from tooltrial.cli import main
from tooltrial.errors import ResumeError
from tooltrial.log.reader import iter_records
from tooltrial.run.resume import read_run
from tooltrial.testing.messages_server import Faults, MessagesServer

EXPERIMENT_DIR = ROOT / "tests" / "experiment"
pytestmark = pytest.mark.usefixtures("fake_key")  # tests/run/conftest.py


# --- fast: in-process, against the server ----------------------------------------------


def cell_calls(srv: MessagesServer) -> int:
    """Requests for cells, leaving out the one-token preflight calls."""
    return sum(1 for r in srv.requests if r.body and r.body.get("max_tokens") != 1)


def test_resume_reruns_only_errors_and_missing_cells(tmp_path: Path) -> None:
    # Requests 2-5 fail (1 is the preflight): with one attempt each, four error lines.
    faults = Faults(on_requests={n: "500" for n in range(2, 6)})
    base = ["--runs", "2", "--variant", "applike", "--scenario", "query-agenda-friday"]
    base += ["--scenario", "create-task-next-friday", "--scenario", "delete-task-by-title"]
    with MessagesServer(faults, max_seconds=60) as srv:
        args = run_args(srv, tmp_path, str(EXPERIMENT_DIR), *base, "--run-id", "r1")
        assert main([*args, "--max-attempts", "1"]) == 1  # errors: incomplete
        assert sum(result_cells(tmp_path, "r1").values()) == 2
        prior = read_run(tmp_path, "r1")
        assert len(prior.remaining()) == 4  # error lines do not count as done
        before = cell_calls(srv)
        assert main(run_args(srv, tmp_path, "--resume", "r1")) == 0
        assert cell_calls(srv) == before + 4  # only the 4 cells without a result
        assert main(run_args(srv, tmp_path, "--resume", "r1")) == 0  # nothing left
        assert cell_calls(srv) == before + 4
    assert_complete(tmp_path, "r1", 6)
    stamps = {p.name.rsplit("_", 1)[1] for p in tmp_path.glob("*.jsonl")}
    assert len(stamps) == 2  # the resume wrote new files, leaving the old ones as they were
    metas = [next(iter_records(p)) for p in tmp_path.glob("*.jsonl")]
    assert {m.run_id for m in metas} == {"r1"} and {m.scenario_ids[0] for m in metas} == {
        "query-agenda-friday"
    }


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--model", "anthropic:another"], "its model was anthropic:claude-test"),
        (["--temperature", "0.9"], "its temperature was 0.2, now 0.9"),
        (["--runs", "3"], "its runs was 1, now 3"),
        (["--variant", "baseline"], "drop --variant/--scenario"),
        (["--run-id", "other"], "differs from --resume"),
    ],
)
def test_resume_refuses_changed_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    with MessagesServer(Faults(on_requests={2: "500"}), max_seconds=60) as srv:
        args = run_args(srv, tmp_path, str(EXPERIMENT_DIR), "--runs", "1", "--run-id", "r2")
        main([*args, "--scenario", "query-agenda-friday", "--max-attempts", "1"])
        files = {p: p.read_bytes() for p in tmp_path.iterdir()}
        capsys.readouterr()
        assert main([*run_args(srv, tmp_path, "--resume", "r2"), *flags]) == 2
    assert message in capsys.readouterr().err
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == files  # nothing touched


def test_resume_refuses_a_changed_variant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "exp"
    shutil.copytree(EXPERIMENT_DIR, copy)
    results = tmp_path / "results"
    with MessagesServer(Faults(on_requests={2: "500"}), max_seconds=60) as srv:
        args = run_args(srv, results, str(copy), "--runs", "1", "--run-id", "r3")
        main([*args, "--scenario", "query-agenda-friday", "--max-attempts", "1"])
        variant = copy / "variants" / "applike.yaml"
        text = variant.read_text()
        variant.write_text(text.replace("system_prompt: |\n", "system_prompt: |\n  Be brief.\n", 1))
        capsys.readouterr()
        assert main(run_args(srv, results, "--resume", "r3")) == 2
    err = capsys.readouterr().err
    assert "its variant 'applike' was sha256:" in err and "start a new run" in err


def test_resume_of_an_unknown_run_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--resume", "nope", "--results", str(tmp_path)]) == 2
    assert "no files of run 'nope'" in capsys.readouterr().err
    with pytest.raises(ResumeError):
        read_run(tmp_path, "nope")


# --- slow: a real process, killed ------------------------------------------------------


def wait_for(results: Path, process: subprocess.Popen[str], results_seen: int) -> None:
    """Until the files exist and hold at least this many results (or the run ended)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if list(results.glob("*.jsonl")) and count_results(results) >= results_seen:
            return
        time.sleep(0.005)
    if process.poll() is None:
        process.kill()
        pytest.fail(f"no {results_seen} results within 60 s")


@pytest.fixture
def slow_server() -> Iterator[MessagesServer]:
    # Some latency and a few faults, so calls are in flight and retrying when the kill lands.
    faults = Faults(
        latency_s=0.03,
        latency_jitter_s=0.04,
        rate_500=0.1,
        rate_429=0.05,
        retry_after_s=0.05,
        seed=7,
    )
    with MessagesServer(faults, max_seconds=300) as srv:
        yield srv


@pytest.mark.slow
@pytest.mark.parametrize("kill_points", [[0], [1], [57], [30, 90]], ids=str)
def test_sigkill_then_resume_records_each_cell_once(
    slow_server: MessagesServer, tmp_path: Path, kill_points: list[int]
) -> None:
    first = [str(EXPERIMENT_DIR), "--runs", "3", "--concurrency", "6", "--run-id", "k"]
    earlier: dict[Path, bytes] = {}
    for n, kill_at in enumerate(kill_points):
        args = first if n == 0 else ["--resume", "k", "--concurrency", "6"]
        process = start_run(slow_server, tmp_path, *args)
        wait_for(tmp_path, process, kill_at)
        process.send_signal(signal.SIGKILL)
        assert process.wait(30) == -signal.SIGKILL  # killed mid-run, not finished
        result_cells(tmp_path, "k")  # whatever moment it died, every line is whole
        assert {p: p.read_bytes() for p in earlier} == earlier, "earlier files untouched"
        earlier = {p: p.read_bytes() for p in tmp_path.glob("*.jsonl")}
    finish = start_run(slow_server, tmp_path, "--resume", "k", "--concurrency", "6")
    _, err = finish.communicate(timeout=120)
    assert finish.returncode == 0, err
    assert {p: p.read_bytes() for p in earlier} == earlier, "the resume never touches them"
    assert_complete(tmp_path, "k", 120)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_prints_the_resume_command(
    slow_server: MessagesServer, tmp_path: Path
) -> None:
    process = start_run(
        slow_server,
        tmp_path,
        str(EXPERIMENT_DIR),
        "--runs",
        "3",
        "--concurrency",
        "6",
        "--run-id",
        "c",
    )
    wait_for(tmp_path, process, 20)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    resume = next(line for line in err.splitlines() if line.startswith("resume with: "))
    command = resume.removeprefix("resume with: ").split()
    assert command[:4] == ["tooltrial", "run", "--resume", "c"]
    done = sum(result_cells(tmp_path, "c").values())
    assert 20 <= done < 120
    finish = start_run(slow_server, tmp_path, *command[4:], *command[2:4])
    _, err = finish.communicate(timeout=120)
    assert finish.returncode == 0, err
    assert f"{120 - done} calls" in err
    assert_complete(tmp_path, "c", 120)
