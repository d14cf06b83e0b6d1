"""Helpers for the MCP tests: experiments of their own around real server processes
(``tests/mcp_servers``), a scripted model that plays fixed steps, and a count of the
server processes still alive (read from /proc, by a token in their command line)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tooltrial.definitions import Experiment
from tooltrial.testing.scripted import Request, ScriptedModel, reply
from tooltrial.types import ModelResponse

TESTS = Path(__file__).resolve().parent.parent
SERVERS = TESTS / "mcp_servers"
FAULTS = SERVERS / "faults.py"
TODO_APP = TESTS / "mini_agentic" / "app.py"

ECHO_SCENARIOS = """\
- id: echo
  prompt: Say hello through echo.
  success: {only_these_change: true}
"""


def write_experiment(
    folder: Path,
    variants: Mapping[str, str],
    scenarios: str = ECHO_SCENARIOS,
    app: str = f"{TODO_APP}:Todo",
    limits: str = "{max_turns: 4, max_tool_calls: 6, tool_timeout_s: 3}",
) -> Path:
    """An experiment folder: ``variants`` maps a variant's name to its YAML body (the
    lines after ``name:``)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for name, body in variants.items():
        (folder / f"{name}.yaml").write_text(f"name: {name}\nsystem_prompt: Use the tools.\n{body}")
        names.append(f"{name}.yaml")
    (folder / "scenarios.yaml").write_text(scenarios)
    (folder / "experiment.yaml").write_text(
        f"name: mcp-test\nfixed_timestamp: '2025-03-12T09:00:00+00:00'\napp: {app}\n"
        f"limits: {limits}\nvariants: [{', '.join(names)}]\nscenarios: scenarios.yaml\n"
    )
    return folder


def faults_server(mode: str, starts: Path | None = None, extra: str = "") -> str:
    """The YAML of a variant whose tools come from ``faults.py MODE``."""
    args = [str(FAULTS), mode, *(["--starts", str(starts)] if starts else [])]
    quoted = ", ".join(f'"{a}"' for a in args)
    return f'mcp:\n  command: "{{python}}"\n  args: [{quoted}]\n{extra}'


Step = ModelResponse | Callable[[Request], ModelResponse]


def steps(*played: Step) -> ScriptedModel:
    """A model whose k-th turn in every conversation plays ``played[k]`` (the last one
    repeats); a callable step is given the request (to read the tool results)."""

    def script(request: Request) -> ModelResponse:
        turn = sum(1 for m in request.messages if getattr(m, "role", "") == "assistant")
        step = played[min(turn, len(played) - 1)]
        return step(request) if callable(step) else step

    return ScriptedModel(name="steps", script=script)


def call(name: str, **arguments: Any) -> ModelResponse:
    return reply(calls=[(name, arguments)])


def say_result(request: Request) -> ModelResponse:
    """Answer with the first tool result's content."""
    return reply(request.results[0].content if request.results else "nothing came back")


def processes_with(token: str) -> list[int]:
    """The pids of live processes whose command line holds ``token``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        if "State:\tZ" in status:
            continue  # a zombie: dead, waiting for its parent to read its status
        if token.encode() in cmdline:
            found.append(int(entry))
    return found


def until_none_with(token: str, within_s: float = 20.0) -> list[int]:
    """Poll until no live process holds ``token`` (or the time is up): those left."""
    deadline = time.monotonic() + within_s
    while (left := processes_with(token)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def outcomes_by_cell(outcomes: Sequence[Any]) -> dict[tuple[str, str], Any]:
    return {(o.cell.variant, o.cell.scenario_id): o for o in outcomes}


def as_experiment(folder: Path) -> Experiment:
    from tooltrial import load_experiment

    return load_experiment(folder)
