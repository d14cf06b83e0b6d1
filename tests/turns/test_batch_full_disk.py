"""A full disk while writing the batch journal stops a batch run — it never hangs it — with
exit 2 and the resume command; the journal is left with whole lines only, and
``--resume`` then ends every cell exactly once without submitting any custom id twice.

The fault is injected into ``os.write`` for the journal (``<results>/batches/j.jsonl``):
the write of one kind of record puts half its bytes on disk, then fails with ENOSPC, as a
disk filling up mid-write does. One row per moment that matters: before the create call
(``group``), after it but before the batch id is on disk (``submitted``: the batch exists
and must be found, not sent again), the OpenAI input file's id (``uploaded``, written
from inside the create call), and while collecting (``outcomes``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.batch import FAST_FLAGS, KEY, journal, results_per_cell

from tooltrial.cli import main
from tooltrial.log.validate import validate
from tooltrial.testing.batch_server import AnthropicBatchServer, OpenAIBatchServer
from tooltrial.turns.batch.journal import journal_path

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ["create-task-tomorrow-at-3", "no-call-weather", "multi-task-and-event"]
CELLS = 2 * len(SCENARIOS)  # two variants, one run
DEADLINE_S = 60
"""A run that hangs is interrupted (exit 130) so the test fails rather than waits."""


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("LANGSMITH_TRACING", "false")
    for name in ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "LANGSMITH_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    def interrupt(_number: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def full_disk_on(monkeypatch: pytest.MonkeyPatch, record: str) -> list[int]:
    """The journal's write of the first ``record`` line puts half its bytes down, then
    fails with ENOSPC; every other write goes through. Counts the failed writes."""
    real, failed = os.write, [0]
    marker = f'"type":"{record}"'.encode()

    def write(fd: int, data: bytes) -> int:
        target = os.readlink(f"/proc/self/fd/{fd}")
        if "/batches/" in target and marker in bytes(data) and not failed[0]:
            failed[0] += 1
            real(fd, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    return failed


def resume(argv: list[str], spec: str, capsys: pytest.CaptureFixture[str]) -> int:
    """``tooltrial run --resume``: in this process, but for OpenAI in a new one, as a user
    would run it (langchain-openai keeps one async HTTP client per base URL for the
    whole process, bound to the first run's event loop: a second run of an ``openai:``
    model in one process fails with "Event loop is closed")."""
    if spec.startswith("openai"):
        command = [sys.executable, "-m", "tooltrial", *argv]
        done = subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE_S)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.returncode
    with deadline(DEADLINE_S):
        code = main(argv)
    assert code == 0, capsys.readouterr().err[-3000:]
    return code


@pytest.mark.parametrize(
    ("record", "spec"),
    [
        ("group", "anthropic:claude-test"),
        ("submitted", "anthropic:claude-test"),
        ("uploaded", "openai:gpt-test"),
        ("outcomes", "anthropic:claude-test"),
    ],
)
def test_a_full_disk_while_journaling_stops_the_run_and_resume_finishes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], record: str, spec: str
) -> None:
    results = tmp_path / "results"
    server = AnthropicBatchServer if spec.startswith("anthropic") else OpenAIBatchServer
    with server(max_seconds=120) as srv:
        url = srv.url if spec.startswith("anthropic") else srv.base_url
        site = ["--model", spec, "--base-url", url, "--results", str(results)]
        first = ["run", str(ROOT / "tests" / "experiment"), *site, "--runs", "1"]
        first += ["--run-id", "j", "--variant", "baseline", "--variant", "applike"]
        first += [a for s in SCENARIOS for a in ("--scenario", s)] + FAST_FLAGS
        with pytest.MonkeyPatch.context() as fault, deadline(DEADLINE_S):
            failed = full_disk_on(fault, record)
            code = main(first)
        text = " ".join(capsys.readouterr().err.split())
        assert failed == [1], f"no {record} record was written"
        assert code == 2, text[-3000:]
        assert "could not write (No space left on device (ENOSPC))" in text
        assert f"tooltrial run --resume j --results {results}" in text
        assert "Traceback" not in text and "this is a bug" not in text

        written = journal_path(results, "j").read_bytes()
        assert written.endswith(b"\n"), "a torn line was left in the journal"
        assert all(json.loads(line) for line in written.splitlines())
        assert record not in {r.type for r in journal(results, "j")}, "the failed line stays"

        assert resume(["run", "--resume", "j", *site], spec, capsys) == 0
        created = srv.created_ids
        assert created and max(created.values()) == 1, "a custom id was submitted twice"
    per_cell = results_per_cell(results, "j")
    assert len(per_cell) == CELLS and set(per_cell.values()) == {1}, "each cell exactly once"
    assert validate(results, "j").ok
    assert journal_path(results, "j").read_bytes().startswith(written), "the journal only grows"
