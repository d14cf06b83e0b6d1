"""The library, used as the README shows: load, run, read, validate, analyse, report.

Against the project's Messages API server through the real ``ChatAnthropic`` client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import tooltrial
from tooltrial.testing.messages_server import MessagesServer
from tooltrial.turns import RetryPolicy

EXPERIMENT_DIR = Path(__file__).parent / "experiment"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[MessagesServer]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-a-real-key-0000")
    with MessagesServer(max_seconds=60) as srv:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.url)
        yield srv


def test_the_readme_library_example(server: MessagesServer, tmp_path: Path) -> None:
    results = tmp_path / "results"
    experiment = tooltrial.load_experiment(EXPERIMENT_DIR)
    scenarios = list(experiment.scenario_ids[:3])
    run = tooltrial.run_experiment(
        experiment,
        ["anthropic:model-a", "anthropic:model-b"],
        runs=2,
        results=results,
        concurrency=4,
        scenarios=scenarios,
    )
    cells = 2 * len(experiment.variants) * len(scenarios) * 2
    assert run.failure is None and run.errors == 0
    assert len(run.outcomes) == cells and len(run.files) == 2 * 2 * 2
    assert len(server.requests) == cells + 2, "one preflight per model, then one call a cell"

    latest = tooltrial.read_results([results])
    assert len(latest) == cells
    assert {key[0] for key in latest} == {"anthropic:model-a", "anthropic:model-b"}
    assert tooltrial.validate(results).ok

    analysis = tooltrial.analyze([results])
    assert [m.model for m in analysis.models] == ["anthropic:model-a", "anthropic:model-b"]
    page = tmp_path / "report.json"
    tooltrial.write_report(analysis, page, "json")
    data = json.loads(page.read_text())
    assert {m["model"] for m in data["per_model"]} == {"anthropic:model-a", "anthropic:model-b"}
    (block, *_) = data["interaction"]  # does the variant difference depend on the model?
    assert block["model"] == "anthropic:model-b" and block["metrics"]
    for section in data["per_model"]:  # every cell of each model kept
        assert section["results"] == cells // 2


def test_a_failed_preflight_calls_no_cell(tmp_path: Path) -> None:
    run = tooltrial.run_experiment(
        EXPERIMENT_DIR,
        tooltrial.get_model("anthropic:x", base_url="http://127.0.0.1:9", timeout_s=1),
        runs=1,
        results=tmp_path,
        retry=RetryPolicy(max_attempts=2, base_delay_s=0.01, max_delay_s=0.02, timeout_s=2),
    )
    assert run.failure is not None and run.failure[0] == "anthropic:x"
    assert run.outcomes == ()
