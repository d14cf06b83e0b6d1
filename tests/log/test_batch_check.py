"""``tooltrial validate`` on a batch-mode folder: lines that name their batch must match
an item the run's journal records as succeeded; a folder without its journal, or a line
naming an item the journal does not hold, is a problem, named by file and line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.batch import FAST, FAST_FLAGS, KEY

from tooltrial.cli import main
from tooltrial.log.validate import validate
from tooltrial.testing.batch_server import AnthropicBatchServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def batch_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("batch")
    with AnthropicBatchServer(max_seconds=60) as srv, pytest.MonkeyPatch.context() as env:
        env.setenv("ANTHROPIC_API_KEY", KEY)
        args = ["run", str(ROOT / "tests" / "experiment"), "--model", "anthropic:claude-test"]
        args += ["--base-url", srv.url, "--runs", "1", "--results", str(folder), "--run-id", "v"]
        args += ["--scenario", "no-call-weather", *FAST_FLAGS]
        assert main(args) == 0
    assert FAST.poll_s < 1
    return folder


def test_a_batch_folder_validates(batch_folder: Path) -> None:
    assert validate(batch_folder).ok


def test_a_line_the_journal_does_not_know_is_a_problem(batch_folder: Path, tmp_path: Path) -> None:
    copy = tmp_path / "r"
    shutil.copytree(batch_folder, copy)
    path = sorted(copy.glob("*.jsonl"))[0]
    lines = path.read_text().splitlines()
    line = json.loads(lines[1])
    line["custom_id"] = "tt-not-in-the-journal"
    path.write_text("\n".join([*lines[:1], json.dumps(line), *lines[2:]]) + "\n")
    problems = validate(copy).problems
    assert any(p.where == f"{path}:2" and "tt-not-in-the-journal" in p.what for p in problems), (
        problems
    )


def test_a_folder_without_its_journal_says_so(batch_folder: Path, tmp_path: Path) -> None:
    copy = tmp_path / "r"
    shutil.copytree(batch_folder, copy)
    shutil.rmtree(copy / "batches")
    assert any("has no batch journal" in p.what for p in validate(copy).problems)
