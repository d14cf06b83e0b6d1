"""The recipe in docs/pytest.md ("Your own experiment as a pytest suite"), run as
written: its two files beside a `tooltrial init` experiment, pytest with
--strict-markers, outside this repository's configuration."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from support.paths import ROOT

from tooltrial.cli import main
from tooltrial.log.validate import validate
from tooltrial.testing.messages_server import MessagesServer


def documented_files() -> dict[str, str]:
    page = (ROOT / "docs" / "pytest.md").read_text()
    blocks = re.findall(r'```python title="([^"]+)"\n(.*?)```', page, re.S)
    return {name: code for name, code in blocks}


def test_the_documented_suite_runs_its_cells(env: MessagesServer, tmp_path: Path):
    files = documented_files()
    assert set(files) == {"conftest.py", "test_experiment.py"}
    folder = tmp_path / "exp"
    assert main(["init", str(folder)]) == 0
    for name, code in files.items():
        (folder / name).write_text(code)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not this repository's settings
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "exp", "-m", "experiment", "--strict-markers"),
            *("-q", "-p", "no:cacheprovider", "--tooltrial-model", "anthropic:claude-test"),
        ],
        cwd=tmp_path,
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "12 passed" in done.stdout  # 2 variants x 6 scenarios, one rep
    assert validate(tmp_path / "results").ok
