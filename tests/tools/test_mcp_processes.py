"""MCP server processes never outlive the run: after a normal end, Ctrl-C (SIGINT),
SIGTERM and SIGKILL of a real ``tooltrial run`` process, mid-conversation, no server
process (nor its launcher) is left. Counted from /proc by a token in their command line.

The run: the Messages API test server's scripted agent calls ``echo`` on every turn
(``always_tool``), with latency, so conversations are in flight, each with its own server
process, when the signal lands. Stopped runs use servers whose ``echo`` hangs, and the
signal lands once a call is in flight: such a server does not exit when its stdin
closes, so only the launcher's parent-death signal and process group can end it.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from support.mcp import faults_server, processes_with, until_none_with, write_experiment
from support.processes import start_run

from tooltrial.testing.messages_server import Faults, MessagesServer
from tooltrial.testing.scripted_agent import ScriptedAgent

pytestmark = pytest.mark.usefixtures("fake_key")

ALWAYS_ECHO = ScriptedAgent([{"prompt": "echo", "mode": "always_tool"}])


def experiment(tmp_path: Path, mode: str = "ok") -> tuple[Path, str]:
    token = str(tmp_path / "starts")
    limits = "{max_turns: 6, max_tool_calls: 6, tool_timeout_s: 60}"
    folder = write_experiment(
        tmp_path / "e", {"srv": faults_server(mode, tmp_path / "starts")}, limits=limits
    )
    return folder, token


def calls_in_flight(process: subprocess.Popen[str], token: str) -> None:
    """Until a cell's server has begun an ``echo`` call (or the run ended)."""
    deadline = time.monotonic() + 60
    calls = Path(f"{token}.calls")
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the run ended early: {process.stderr.read()}")  # type: ignore[union-attr]
        if calls.exists() and calls.read_text():
            return
        time.sleep(0.01)
    process.kill()
    pytest.fail("no tool call began within 60 s")


@pytest.mark.parametrize(
    "how",
    [
        signal.SIGKILL,
        pytest.param(signal.SIGTERM, marks=pytest.mark.slow),
        pytest.param(signal.SIGINT, marks=pytest.mark.slow),
    ],
    ids=lambda s: signal.Signals(s).name,
)
def test_no_server_outlives_a_stopped_run(tmp_path: Path, how: int) -> None:
    folder, token = experiment(tmp_path, "hang")
    faults = Faults(latency_s=0.15, latency_jitter_s=0.05, seed=5)
    with MessagesServer(faults, responder=ALWAYS_ECHO, max_seconds=120) as srv:
        run = start_run(srv, tmp_path / "r", str(folder), "--runs", "4", "--concurrency", "2")
        calls_in_flight(run, token)
        assert len(processes_with(token)) >= 2  # a launcher and its server, at least
        run.send_signal(how)
        run.communicate(timeout=60)
    assert run.returncode == {signal.SIGKILL: -9, signal.SIGTERM: 143, signal.SIGINT: 130}[how]
    assert until_none_with(token) == []


@pytest.mark.slow  # the fast tests check it in-process (test_mcp_source)
def test_no_server_outlives_a_finished_run(tmp_path: Path) -> None:
    folder, token = experiment(tmp_path)
    with MessagesServer(responder=ALWAYS_ECHO, max_seconds=120) as srv:
        run = start_run(srv, tmp_path / "r", str(folder), "--runs", "2")
        _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert len(Path(token).read_text().splitlines()) == 3  # the preflight, then 2 cells
    assert processes_with(token) == []
