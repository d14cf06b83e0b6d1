"""Third-party MCP servers from PyPI, each installed in a virtual environment of its own
(as users run them with ``uvx`` or ``pipx``; a server's pins never touch tooltrial's
lock), cached between runs under ``$XDG_CACHE_HOME/tooltrial/test-mcp-servers``:

- ``mcp-server-sqlite`` (needs ``mcp<2``; a 2.x client talks to it), on each cell's own
  copy of the app's database (``--db-path {db}``): its tools are listed, called, and the
  verdict reads what it wrote;
- ``mcp-server-time``, stateless: one process serves every cell of its variant.

Slow (installing takes a while the first time); skipped, saying why, only when the
package registry cannot be reached.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.mcp import processes_with, steps, write_experiment

from tooltrial import run_experiment
from tooltrial.testing.scripted import Request, reply
from tooltrial.types import ModelResponse, ToolTurn

pytestmark = pytest.mark.slow

NOTES_APP = """
from tooltrial.apps import SQLiteApp


class Notes(SQLiteApp):
    schema = "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);"

    def seed(self):
        self.db.executemany("INSERT INTO notes (text) VALUES (?)", [("milk",), ("call Ana",)])
"""
NOTES_SCENARIOS = """\
- id: add-note
  prompt: Add a note saying 'buy bread'.
  success:
    state:
      - {table: notes, where: {text: buy bread}}
- id: count-notes
  prompt: How many notes do I have?
  success:
    reply: {mentions: ["2"]}
"""
TIME_SCENARIOS = """\
- id: tokyo
  prompt: It is 09:00 UTC. What time is it in Tokyo?
  success:
    reply: {mentions: ["18:00"]}
"""


def uv_command() -> list[str]:
    """``uv``, as a program on PATH or as ``python3 -m uv`` (how CI installs it)."""
    if found := shutil.which("uv"):
        return [found]
    for python in filter(None, (shutil.which("python3"), sys.executable)):
        probe = subprocess.run([python, "-m", "uv", "--version"], capture_output=True)
        if probe.returncode == 0:
            return [python, "-m", "uv"]
    pytest.fail("uv is needed to make the servers' own environments: pip install uv")


def server_env(name: str, *requirements: str) -> Path:
    """A virtual environment holding ``requirements``, made once and cached."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache / "tooltrial" / "test-mcp-servers" / name
    done = venv / ".installed"
    wanted = "\n".join(requirements)
    if done.exists() and done.read_text() == wanted:
        return venv
    uv = uv_command()
    shutil.rmtree(venv, ignore_errors=True)
    commands = [
        [*uv, "venv", "--quiet", "--python", "3.11", str(venv)],
        [*uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), *requirements],
    ]
    for command in commands:
        made = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if made.returncode != 0:
            unreachable = ("Failed to fetch", "dns error", "Could not connect", "tcp connect")
            if any(s in made.stderr for s in unreachable):
                pytest.skip(f"the package registry cannot be reached: {made.stderr[-300:]}")
            pytest.fail(f"{' '.join(command)} failed:\n{made.stderr[-2000:]}")
    done.write_text(wanted)
    return venv


def sql_agent(request: Request) -> ModelResponse:
    """Lists the tables, then writes or reads with SQL, then answers from the result."""
    turn = sum(1 for m in request.messages if isinstance(m, ToolTurn))
    if turn == 0:
        return reply(calls=[("list_tables", {})])
    if turn == 1 and "buy bread" in request.prompt:
        return reply(
            calls=[("write_query", {"query": "INSERT INTO notes (text) VALUES ('buy bread')"})]
        )
    if turn == 1:
        return reply(calls=[("read_query", {"query": "SELECT count(*) AS n FROM notes"})])
    return reply(f"Done: {request.results[0].content}")


def test_mcp_server_sqlite_acts_on_each_cells_own_database(tmp_path: Path) -> None:
    venv = server_env("sqlite", "mcp<2", "mcp-server-sqlite==2025.4.25")
    (tmp_path / "notes.py").write_text(NOTES_APP)
    command = venv / "bin" / "mcp-server-sqlite"
    folder = write_experiment(
        tmp_path / "e",
        {"sqlite": f'mcp: {{command: "{command}", args: [--db-path, "{{db}}"]}}\n'},
        NOTES_SCENARIOS,
        app=f"{tmp_path / 'notes.py'}:Notes",
        limits="{max_turns: 4, max_tool_calls: 4, tool_timeout_s: 20}",
    )
    model = steps(sql_agent)
    run = run_experiment(folder, model, runs=2, results=tmp_path / "r", order="blocked")
    assert [o.failure for o in run.outcomes] == [None] * 4
    by_cell = {(o.cell.scenario_id, o.cell.rep): o for o in run.outcomes}
    for rep in (1, 2):  # each cell started from the seeded copy: one note added, once
        added = by_cell[("add-note", rep)].conversation
        assert added.success, added.checks
        (change,) = added.diff
        assert (change.table, change.after) == ("notes", {"id": 3, "text": "buy bread"})
        counted = by_cell[("count-notes", rep)]
        assert counted.conversation.success and "'n': 2" in counted.response.text
    listed = by_cell[("add-note", 1)].conversation.tool_results[0]
    assert listed.name == "list_tables" and "notes" in listed.content
    source = run.outcomes[0]
    assert source.conversation.tool_results[1].changes == 1  # read from the file it wrote


def test_mcp_server_time_is_one_process_for_a_stateless_variant(tmp_path: Path) -> None:
    venv = server_env("time", "mcp-server-time")
    command = venv / "bin" / "mcp-server-time"
    server = f'{{command: "{command}", args: [--local-timezone, UTC], stateless: true}}'
    folder = write_experiment(
        tmp_path / "e",
        {"time": f"mcp: {server}\n"},
        TIME_SCENARIOS,
        limits="{max_turns: 3, max_tool_calls: 3, tool_timeout_s: 20}",
    )
    convert = {"source_timezone": "UTC", "time": "09:00", "target_timezone": "Asia/Tokyo"}

    def answer(request: Request) -> ModelResponse:
        live = processes_with(str(command))
        assert len(live) == 2, live  # the shared server and its launcher, no other
        return reply(f"In Tokyo: {request.results[0].content}")

    model = steps(reply(calls=[("convert_time", convert)]), answer)
    run = run_experiment(folder, model, runs=3, results=tmp_path / "r")
    assert [o.conversation.success for o in run.outcomes] == [True] * 3
    assert "T18:00:00+09:00" in run.outcomes[0].response.text
    assert processes_with(str(command)) == []  # ended with the run
