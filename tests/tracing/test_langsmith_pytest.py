"""The 120-item worked experiment on the embedded model, through pytest and LangSmith's
pytest integration, with traces going to the local LangSmith stand-in and OTLP spans to
a local receiver at once. One run checks both backends and the planted keys.

Slow: 120 real calls of SmolLM2-135M (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from pathlib import Path

import pytest
from support.paths import ROOT
from support.tracing import attributes, otlp_receiver

from tooltrial.testing.langsmith_server import LangSmithServer

PLANTED = {
    "LANGSMITH_API_KEY": "lsv2-PLANTED-4f0c2d9e8b7a6c5d4e3f2a1b0c9d8e7f",
    "ANTHROPIC_API_KEY": "sk-ant-PLANTED-9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
}
VARIANTS, SCENARIOS, REPS = 2, 20, 3
CALLS = VARIANTS * SCENARIOS * REPS


async def run_experiment(results: Path, langsmith_url: str, otlp_url: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "OTEL_"))}
    env |= PLANTED | {
        "LANGSMITH_ENDPOINT": langsmith_url,
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_url,
        "TOOLTRIAL_RUN_ID": "exp-120",
        "TOOLTRIAL_MODEL": "local:smollm2",
    }
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "pytest", "tests/experiment/test_experiment.py"],
        *["-m", "experiment", "--count", str(REPS), "-q", "-p", "no:cacheprovider"],
        *["--tooltrial-results", str(results), "-W", "default"],
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=1500)
    return process.returncode or 0, output.decode(errors="replace")


def result_lines(results: Path) -> list[dict]:
    lines = []
    for path in sorted(results.glob("*.jsonl")):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        lines += [r for r in records if r["type"] == "scenario_result"]
    return lines


@pytest.mark.slow
async def test_120_calls_one_trace_each_in_langsmith_and_otel(tmp_path):
    with LangSmithServer() as langsmith:
        async with otlp_receiver() as collector:
            code, output = await run_experiment(tmp_path, langsmith.url, collector.url)
            spans = await collector.wait_for(CALLS, timeout_s=60)
        runs, operations = langsmith.runs, langsmith.operations
        feedback, received, examples = langsmith.feedback, langsmith.received, langsmith.examples

    assert code == 0, output[-3000:]
    assert f"{CALLS} passed" in output
    assert "TracingWarning" not in output

    # JSONL: 6 files of 20 results, each naming its LangSmith run.
    lines = result_lines(tmp_path)
    assert len(lines) == CALLS
    assert len(list(tmp_path.glob("*.jsonl"))) == VARIANTS * REPS
    cells = Counter((x["variant"], x["scenario_id"], x["rep"]) for x in lines)
    assert len(cells) == CALLS and set(cells.values()) == {1}

    # LangSmith: one llm run per call, under the test's run, with variant, run id and rep.
    calls = {rid: run for rid, run in runs.items() if run.get("run_type") == "llm"}
    assert set(calls) == {line["trace_id"] for line in lines}
    posts = Counter(op.run["id"] for op in operations if op.kind == "post")
    assert all(posts[rid] == 1 for rid in calls)  # none sent twice
    for line in lines:
        run = calls[line["trace_id"]]
        meta = run["extra"]["metadata"]
        assert (meta["variant"], meta["scenario_id"], meta["rep"]) == (
            line["variant"],
            line["scenario_id"],
            line["rep"],
        )
        assert meta["run_id"] == "exp-120" and meta["model"] == "local:smollm2"
        assert {f"variant:{line['variant']}", f"rep:{line['rep']}", "run:exp-120"} <= set(
            run["tags"]
        )
        parent = runs[run["parent_run_id"]]  # the test's run, from LangSmith's integration
        example = examples[parent["reference_example_id"]]  # holds what t.log_inputs logged
        assert (example["inputs"]["rep"], example["inputs"]["variant"]) == (
            line["rep"],
            line["variant"],
        )
        assert run["session_name"] == parent["session_name"]
        assert parent["session_name"].startswith("tooltrial local:smollm2 baseline vs applike")
    tests = [run for run in runs.values() if run.get("run_type") != "llm"]
    assert len(tests) == CALLS
    reps = {f["run_id"]: f["score"] for f in feedback if f["key"] == "rep"}
    assert len(reps) == CALLS
    assert all(
        reps[run["id"]] == examples[run["reference_example_id"]]["inputs"]["rep"] for run in tests
    )

    # OpenTelemetry: one GenAI span per call with the same attributes.
    assert len(spans) == CALLS
    span_cells = Counter(
        (a["tooltrial.variant"], a["tooltrial.scenario_id"], a["tooltrial.rep"])
        for a in map(attributes, spans)
    )
    assert span_cells == cells
    for span in spans:
        attrs = attributes(span)
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.request.model"] == "smollm2"
        assert attrs["tooltrial.run_id"] == "exp-120"

    # The planted keys are nowhere: output, files, what both backends received.
    seen = [output, *(p.read_text() for p in tmp_path.glob("*.jsonl"))]
    seen += [r.body.decode(errors="replace") + json.dumps(r.headers) for r in received]
    seen += [str(span) for span in spans]
    for key in PLANTED.values():
        assert not [text for text in seen if key in text], "a planted key leaked"
