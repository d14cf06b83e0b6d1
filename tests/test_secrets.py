"""Planted keys never leave the process environment: ``tooltrial run`` is run with fake
ANTHROPIC and LANGSMITH keys, with the tracing services up and then broken, and every
output is searched for them: stdout, stderr, a DEBUG log of every library, the JSONL
files (an error line included), and what the LangSmith stand-in and the OTLP receiver got
(less the auth headers, which the stand-in records as ``***``); for single calls and for
conversations (``tests/mini_agentic``: a run tree / span tree per cell)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from support.tracing import otlp_receiver

from tooltrial.testing.langsmith_server import LangSmithServer, free_port_url
from tooltrial.testing.messages_server import (
    Faults,
    MessagesServer,
    Reply,
    default_responder,
)

ROOT = Path(__file__).parent.parent
PLANTED = {
    "ANTHROPIC_API_KEY": "sk-ant-PLANTED-0d1e2a3d4b5e6e7f8a9b0c1d2e3f4a5b",
    "LANGSMITH_API_KEY": "lsv2-PLANTED-b4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9",
}
SCENARIOS = ["create-task-tomorrow-at-3", "create-event-monday-morning"]
AGENTIC_SCENARIOS = ["move-dentist", "confirm-delete"]
CALL = """
import logging, sys
logging.basicConfig(filename=sys.argv[1], level=logging.DEBUG)
from tooltrial.cli import main
sys.exit(main(sys.argv[2:]))
"""


async def tooltrial_run(
    results: Path,
    log: Path,
    messages: str,
    langsmith: str,
    otlp: str,
    timeout: str = "10",
    experiment: str = "tests/experiment",
    scenarios: list[str] = SCENARIOS,
    extra: tuple[str, ...] = (),
) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "OTEL_"))}
    env |= PLANTED | {"LANGSMITH_ENDPOINT": langsmith, "OTEL_EXPORTER_OTLP_ENDPOINT": otlp}
    env["OTEL_EXPORTER_OTLP_TIMEOUT"] = timeout  # seconds the exporter retries a dead one
    args = ["run", experiment, "--model", "anthropic:claude-test", "--base-url", messages]
    args += ["--runs", "1", "--results", str(results), "--max-attempts", "1", "--run-id", "sec"]
    for scenario in scenarios:
        args += ["--scenario", scenario]
    args += extra
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CALL,
        str(log),
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, out.decode() + err.decode()


def leaks(texts: list[str]) -> list[str]:
    return [key for key in PLANTED.values() for text in texts if key in text]


def jsonl_texts(results: Path) -> list[str]:
    return [path.read_text() for path in sorted(results.glob("*.jsonl"))]


async def test_no_planted_key_in_any_output_with_services_up(tmp_path):
    # Request 1 is the preflight; request 2, the first cell, fails: an error line.
    faults = Faults(on_requests={2: "500"})
    with MessagesServer(faults, max_seconds=120) as messages, LangSmithServer() as langsmith:
        async with otlp_receiver() as collector:
            code, output = await tooltrial_run(
                tmp_path, tmp_path / "debug.log", messages.url, langsmith.url, collector.url
            )
            spans = await collector.wait_for(2 * len(SCENARIOS))
        received = [
            r.body.decode(errors="replace") + json.dumps(r.headers) for r in langsmith.received
        ]
        runs = langsmith.runs

    files = jsonl_texts(tmp_path)
    assert code == 1, output  # the one failed cell
    assert "scenario_error" in "".join(files) and "500" in "".join(files)
    assert len(runs) == len(spans) == 2 * len(SCENARIOS)  # the search covers real traces
    log = (tmp_path / "debug.log").read_text()
    assert "langsmith" in log  # the DEBUG log did capture the libraries
    texts = [output, log, *files, *received, *(str(s) for s in spans)]
    assert leaks(texts) == []


async def test_no_planted_key_in_any_output_with_services_broken(tmp_path):
    with MessagesServer(max_seconds=120) as messages, LangSmithServer(fail_status=500) as ls:
        code, output = await tooltrial_run(
            tmp_path, tmp_path / "debug.log", messages.url, ls.url, free_port_url(), timeout="2"
        )
        received = [r.body.decode(errors="replace") + json.dumps(r.headers) for r in ls.received]

    assert code == 0, output
    assert output.count("warning:") == 2, output  # one for LangSmith, one for OpenTelemetry
    assert "LangSmith: traces are not sent" in output and "OpenTelemetry: 4 of 4" in output
    assert "Traceback" not in output
    texts = [output, (tmp_path / "debug.log").read_text(), *jsonl_texts(tmp_path), *received]
    assert leaks(texts) == []


async def test_no_planted_key_in_a_conversation_trace(tmp_path):
    # Request 1 is the preflight; request 3, the first cell's second turn, fails: an
    # llm run with an error under that cell's conversation.
    faults = Faults(on_requests={3: "500"})
    with MessagesServer(faults, max_seconds=120) as messages, LangSmithServer() as langsmith:
        async with otlp_receiver() as collector:
            code, output = await tooltrial_run(
                tmp_path,
                tmp_path / "debug.log",
                messages.url,
                langsmith.url,
                collector.url,
                experiment="tests/mini_agentic",
                scenarios=AGENTIC_SCENARIOS,
            )
            # 4 cells (2 variants x 2 scenarios), each 2 model turns and 1 tool call
            spans = await collector.wait_for(4 * 4)
        received = [
            r.body.decode(errors="replace") + json.dumps(r.headers) for r in langsmith.received
        ]
        runs = langsmith.runs

    assert code == 1, output  # the one failed cell
    kinds = sorted(run["run_type"] for run in runs.values())
    assert kinds == ["chain"] * 4 + ["llm"] * 8 + ["tool"] * 4  # the search covers trees
    assert len([run for run in runs.values() if "error" in run]) == 2  # the turn, its cell
    assert sorted(s.name.split()[0] for s in spans) == (
        ["chat"] * 8 + ["execute_tool"] * 4 + ["invoke_agent"] * 4
    )
    texts = [output, (tmp_path / "debug.log").read_text(), *jsonl_texts(tmp_path)]
    texts += [*received, *(str(s) for s in spans)]
    assert leaks(texts) == []


KEY = PLANTED["ANTHROPIC_API_KEY"]


def echoing(body: dict[str, Any]) -> dict[str, Any]:
    """A model that repeats the key: in its text, and in a tool call's arguments."""
    reply = default_responder(body)
    for block in reply["content"]:
        if block["type"] == "text":
            block["text"] += f" The key is {KEY}."
        elif block["type"] == "tool_use":
            block["input"] = {k: f"{KEY}" for k in block["input"]}
    return reply


class EchoingServer(MessagesServer):
    """Also echoes the key back in a response header (logged by the SDK at DEBUG)."""

    def _respond(self, *args: Any, **kwargs: Any) -> Reply:
        reply = super()._respond(*args, **kwargs)
        return reply._replace(headers={**reply.headers, "x-echo": KEY})


async def test_a_key_the_model_echoes_is_written_nowhere(tmp_path):
    """Every file the run writes (results, cache, DEBUG log), its output and its traces
    are searched for a key the model echoed in its text, its tool arguments (so also in
    the tool's result) and a response header."""
    results, cache = tmp_path / "results", tmp_path / "cache"
    server = EchoingServer(responder=echoing, max_seconds=120)
    with server as messages, LangSmithServer() as langsmith:
        async with otlp_receiver() as collector:
            code, output = await tooltrial_run(
                results,
                tmp_path / "debug.log",
                messages.url,
                langsmith.url,
                collector.url,
                experiment="tests/mini_agentic",
                scenarios=AGENTIC_SCENARIOS,
                extra=("--cache", str(cache), "--variant", "app"),
            )
            spans = await collector.wait_for(2 * 4)
        received = [r.body.decode(errors="replace") for r in langsmith.received]
    assert code == 0, output
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.parent.parent for p in files if p.suffix == ".json"} == {cache}
    written = "".join(jsonl_texts(results))
    assert "***" in written and "x-echo" in (tmp_path / "debug.log").read_text()
    texts = [output, *(p.read_text(errors="replace") for p in files)]
    texts += [*received, *(str(s) for s in spans)]
    assert leaks(texts) == []
