"""Expectations are compiled when the experiment is loaded: a value that cannot be read
stops loading (and ``tooltrial run``) before any call, naming file, scenario, argument,
value and what is accepted. Scoring then reuses the compiled matchers."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.paths import TESTS

from tooltrial.analysis.scoring import Call, Scorer
from tooltrial.cli import main
from tooltrial.definitions import load_experiment
from tooltrial.errors import DefinitionError, ExpectationError
from tooltrial.testing.messages_server import MessagesServer

SAMPLE = TESTS / "experiment"
SCENARIO = "create-task-tomorrow-at-3"


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    target = tmp_path / "exp"
    shutil.copytree(SAMPLE, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


@pytest.fixture
def srv() -> Iterator[MessagesServer]:
    with MessagesServer(max_requests=50, max_seconds=60) as server:
        yield server


def _set_due(sample: Path, value: dict[str, Any]) -> None:
    path = sample / "scenarios.yaml"
    data = yaml.safe_load(path.read_text())
    (scenario,) = [s for s in data["scenarios"] if s["id"] == SCENARIO]
    scenario["expect"]["applike"]["calls"][0]["args"]["due"] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ({"date": "next week"}, "write an ISO 8601 date such as 2025-03-14"),
        ({"datetime": "tomorrow"}, "write an ISO 8601 date and time such as 2025-03-13T15:00"),
        ({"date": "14 Mar 2025"}, "expectations must be unambiguous"),
    ],
)
def test_unreadable_value_stops_loading(sample: Path, value: dict[str, Any], accepted: str):
    _set_due(sample, value)
    with pytest.raises(DefinitionError) as info:
        load_experiment(sample)
    assert isinstance(info.value, ExpectationError)
    text = str(info.value)
    assert str(sample / "scenarios.yaml") in text
    assert f"scenario {SCENARIO!r}" in text and "variant 'applike'" in text
    assert "argument 'due'" in text and repr(value) in text
    assert accepted in text


def test_run_stops_before_any_call(
    sample: Path, tmp_path: Path, srv: MessagesServer, capsys: pytest.CaptureFixture[str]
):
    _set_due(sample, {"date": "next week"})
    results = tmp_path / "results"
    code = main(
        ["run", str(sample), "--model", "anthropic:claude-test", "--base-url", srv.url,
         "--runs", "1", "--results", str(results)]
    )  # fmt: skip
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert not results.exists(), "nothing is written to --results"
    assert srv.requests == [], "no request reached the server"
    assert "scenarios.yaml" in err and "'next week'" in err and "ISO 8601 date" in err


def test_scoring_reuses_the_matchers_compiled_at_load(monkeypatch: pytest.MonkeyPatch):
    from tooltrial.definitions import matchers

    experiment = load_experiment(SAMPLE)
    compiled = experiment.expectations
    calls: list[object] = []
    original: Callable[..., Any] = matchers.compile_expectations
    monkeypatch.setattr(
        "tooltrial.definitions.experiment.compile_expectations",
        lambda *a: calls.append(a) or original(*a),
    )
    scorer = Scorer(experiment)
    due = Call("add_task", {"title": "Call the plumber", "due": "March 13, 2025 3pm"})
    for _ in range(3):
        assert scorer.score(SCENARIO, "applike", [due], "").exact
    assert calls == [] and experiment.expectations is compiled
    edited = experiment.model_copy(update={"fixed_timestamp": experiment.fixed_timestamp})
    assert edited.expectations is compiled  # same inputs: nothing to redo
    moved = experiment.model_copy(update={"scenarios": experiment.scenarios[:1]})
    assert moved.expectations is not compiled and len(calls) == 1  # a copy never goes stale
