"""Signals and concurrent use: SIGTERM stops a run as cleanly as Ctrl-C; one process writes
a run at a time (its lock dies with it, even by SIGKILL); a finished run's id is not reused.

The SIGTERM and lock tests start real ``tooltrial run`` processes against the Messages API
test server and watch their files (no sleeping to pass).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.paths import ROOT
from support.processes import (  # the same real-process helpers as the SIGKILL tests
    FAKE_KEY,
    count_results,
    result_cells,
    run_args,
    start_run,
)

from tooltrial.cli import main
from tooltrial.log.reader import iter_records
from tooltrial.log.validate import validate
from tooltrial.run.lock import SIGTERM_EXIT, RunInProgress, RunLock, lock_path
from tooltrial.testing.messages_server import Faults, MessagesServer

EXPERIMENT_DIR = ROOT / "tests" / "experiment"
CELLS = 40  # 2 variants x 20 scenarios, one run
pytestmark = pytest.mark.usefixtures("fake_key")  # tests/run/conftest.py


def every_line_whole(results: Path) -> None:
    for path in results.glob("*.jsonl"):
        assert path.read_bytes().endswith(b"\n"), f"{path} ends in a torn line"
        list(iter_records(path))


def preflights(srv: MessagesServer) -> int:
    return sum(1 for r in srv.requests if r.body and r.body.get("max_tokens") == 1)


def wait_for_results(results: Path, process: subprocess.Popen[str], at_least: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the run ended early ({process.returncode}): {process.stderr.read()}")  # type: ignore[union-attr]
        if count_results(results) >= at_least:
            return
        time.sleep(0.005)
    process.kill()
    pytest.fail(f"no {at_least} results within 60 s")


@pytest.fixture
def slow_server() -> Iterator[MessagesServer]:
    # 40 cells at ~0.15 s each, two at a time: a run of several seconds, stopped early.
    with MessagesServer(Faults(latency_s=0.12, latency_jitter_s=0.06, seed=3)) as srv:
        yield srv


# --- SIGTERM -----------------------------------------------------------------------------


def test_sigterm_stops_cleanly_then_resume_completes(
    slow_server: MessagesServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(EXPERIMENT_DIR), "--runs", "1", "--concurrency", "2", "--run-id", "t"]
    process = start_run(slow_server, tmp_path, *args)
    wait_for_results(tmp_path, process, 3)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == SIGTERM_EXIT == 143, err
    assert "Traceback" not in err and "stopped (SIGTERM):" in err
    resume = next(line for line in err.splitlines() if line.startswith("resume with: "))
    command = resume.removeprefix("resume with: ").split()
    assert command == ["tooltrial", "run", "--resume", "t", "--results", str(tmp_path)]
    every_line_whole(tmp_path)
    done = sum(result_cells(tmp_path, "t").values())
    assert 3 <= done < CELLS
    assert not lock_path(tmp_path, "t").exists()  # a clean stop removes its lock file

    assert main(run_args(slow_server, tmp_path, *command[2:], "--concurrency", "8")) == 0
    assert f"{CELLS - done} cells left" in capsys.readouterr().err
    cells = result_cells(tmp_path, "t")
    assert len(cells) == CELLS and set(cells.values()) == {1}, "each cell recorded once"
    assert validate(tmp_path, "t").ok


# --- one writer per run ------------------------------------------------------------------


def test_a_second_writer_is_refused_and_the_lock_dies_with_the_first(
    slow_server: MessagesServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(EXPERIMENT_DIR), "--runs", "1", "--concurrency", "2", "--run-id", "L"]
    first = start_run(slow_server, tmp_path, *args)
    wait_for_results(tmp_path, first, 1)
    files = sorted(tmp_path.glob("*.jsonl"))
    assert preflights(slow_server) == 1
    for second in (["--resume", "L"], [*args]):  # resuming it, or starting it again
        assert main(run_args(slow_server, tmp_path, *second)) == 2
        err = capsys.readouterr().err
        assert f"run L is being written by another process (pid {first.pid}" in err, err
        assert "tooltrial run --resume L" in err
    assert first.poll() is None, "the first run went on"
    assert sorted(tmp_path.glob("*.jsonl")) == files  # no file from the refused ones
    assert preflights(slow_server) == 1  # and no request: a second run starts with one

    first.send_signal(signal.SIGKILL)
    assert first.wait(30) == -signal.SIGKILL
    assert lock_path(tmp_path, "L").exists()  # left behind by SIGKILL, but not held
    assert main(run_args(slow_server, tmp_path, "--resume", "L", "--concurrency", "8")) == 0
    cells = result_cells(tmp_path, "L")
    assert len(cells) == CELLS and set(cells.values()) == {1}
    assert not lock_path(tmp_path, "L").exists()


def test_the_lock_in_one_process(tmp_path: Path) -> None:
    first = RunLock(tmp_path, "r")
    with first:
        assert lock_path(tmp_path, "r").exists()
        with pytest.raises(RunInProgress, match=rf"run r .*\(pid {os.getpid()}, tooltrial run"):
            RunLock(tmp_path, "r").acquire()
        RunLock(tmp_path, "other").acquire()  # other runs are free
    assert not lock_path(tmp_path, "r").exists()
    with RunLock(tmp_path, "r"):  # free again
        pass


def test_a_lock_file_removed_under_a_waiting_taker_is_not_shared(tmp_path: Path) -> None:
    """A taker that opened the file just before its holder removed it must not lock that
    orphan while a third process locks the new file under the name."""
    holder = RunLock(tmp_path, "r")
    holder.acquire()
    orphan = os.open(lock_path(tmp_path, "r"), os.O_RDWR)  # opened before the release
    holder.release()
    try:
        import fcntl

        fcntl.flock(orphan, fcntl.LOCK_EX | fcntl.LOCK_NB)  # now "held" by someone, orphaned
        with RunLock(tmp_path, "r"):  # the name's new file, not the orphan
            assert lock_path(tmp_path, "r").exists()
            assert os.fstat(orphan).st_ino != os.stat(lock_path(tmp_path, "r")).st_ino
    finally:
        os.close(orphan)


# --- a finished run's id -----------------------------------------------------------------


def test_reusing_a_finished_runs_id_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = [str(EXPERIMENT_DIR), "--runs", "1", "--scenario", "query-agenda-friday"]
    with MessagesServer() as srv:
        assert main(run_args(srv, tmp_path, *small, "--run-id", "f")) == 0
        before = {p: p.read_bytes() for p in tmp_path.iterdir()}
        requests = len(srv.requests)
        capsys.readouterr()
        assert main(run_args(srv, tmp_path, *small, "--run-id", "f")) == 2
        err = capsys.readouterr().err
        assert "run f already exists: 2 files in" in err
        assert "tooltrial run --resume f" in err and "another --run-id" in err
        assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing touched
        assert len(srv.requests) == requests
        assert main(run_args(srv, tmp_path, "--resume", "f")) == 0  # as suggested: complete


# --- pytest-xdist: the workers of one session are one run ----------------------------------


def run_suite(
    srv: MessagesServer, results: Path, run_id: str, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TOOLTRIAL_MODEL": "anthropic:claude-test",
        "ANTHROPIC_BASE_URL": srv.url,
        "ANTHROPIC_API_KEY": FAKE_KEY,
    }
    command = [sys.executable, "-m", "pytest", "tests/experiment/test_experiment.py"]
    command += ["-m", "experiment", "-k", "query-agenda-friday or create-task-next-friday"]
    command += ["--tooltrial-results", str(results), "--tooltrial-run-id", run_id, *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow  # ~30 s on two busy cores: starting the workers is most of it
def test_xdist_workers_share_the_run_and_its_lock(tmp_path: Path) -> None:
    """The controller holds the lock; its two workers write the run without tripping it."""
    with MessagesServer() as srv:
        done = run_suite(srv, tmp_path, "xd", "-n", "2")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "4 passed" in done.stdout and "2 workers" in done.stdout + done.stderr
    cells = result_cells(tmp_path, "xd")
    assert len(cells) == 4 and set(cells.values()) == {1}
    assert not lock_path(tmp_path, "xd").exists()


def test_an_xdist_session_on_a_run_in_progress_stops_before_its_workers(tmp_path: Path) -> None:
    with MessagesServer() as srv, RunLock(tmp_path, "busy"):
        refused = run_suite(srv, tmp_path, "busy", "-n", "2")
        assert srv.requests == []
    out = refused.stdout + refused.stderr
    assert refused.returncode == 2, out[-2000:]
    assert f"run busy is being written by another process (pid {os.getpid()}" in out
    assert "workers" not in out  # stopped before starting any
    assert list(tmp_path.glob("*.jsonl")) == []
