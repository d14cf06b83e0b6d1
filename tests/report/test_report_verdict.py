"""A verdict in words at the top of every report and per comparison: better/worse exactly
when the primary interval excludes zero, else "inconclusive" with the smallest difference
the design could detect and what a larger study needs; the power advice behind it comes
from the payload (ranges for a 1-rep pilot); a changed diff row names its row."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support.agentic_results import write_experiment, write_results
from support.single_turn_results import WRONG, right
from support.single_turn_results import write_experiment as write_single
from support.single_turn_results import write_results as write_single_results

from tooltrial.analysis import analyze
from tooltrial.report import write_report
from tooltrial.report.conversations import row_name
from tooltrial.types import RowChange


@pytest.fixture(scope="module")
def agentic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("verdict")
    write_results(write_experiment(root / "def"), root / "results")
    result = analyze([root / "results"])
    return {fmt: write_report(result, None, fmt) for fmt in ("json", "md", "html")}


def test_an_inconclusive_comparison_says_so_with_what_it_could_detect(agentic):
    data = json.loads(agentic["json"])
    comp = data["per_model"][0]["comparisons"][0]
    verdict = comp["verdict"]
    assert verdict["outcome"] == "inconclusive"
    text = verdict["text"]
    assert text.startswith("Inconclusive: app − api on success is +33.3 pp [")
    assert ", with 4 scenarios × 3 reps." in text
    # 4 scenarios detect nothing the rates allow; the sentence says so (else: "a
    # difference below N points cannot be told apart from noise here")
    assert "could not detect any difference the rates allow with 80% power" in text
    assert re.search(r"Detecting 10 points would need about [\d,]+ scenarios at 3 reps", text)
    power = comp["power"]
    assert power["detectable"] is None and power["pilot_scenarios"] == 4
    assert {p["reps"] for p in power["plans"]} == {1, 3, 5, 10}
    # at the top of the Markdown and the page, and beside the comparison
    md = agentic["md"]
    assert md.index("## Verdict") < md.index("## Headline")
    assert f"- {text}" in md and f"**Verdict**: {text}" in md
    page = agentic["html"]
    assert page.index("<h2>Verdict</h2>") < page.index("<h2>Headline")


def test_a_clear_difference_is_better_or_worse(tmp_path: Path):
    experiment = write_single(tmp_path / "def")
    answers = {}
    scenarios = [s.id for s in experiment.scenarios]
    for rep in (1, 2, 3):
        for s in scenarios:
            answers[("app", s, rep)] = right("app", s)
            answers[("api", s, rep)] = WRONG
    write_single_results(experiment, tmp_path / "results", answers)
    data = json.loads(write_report(analyze([tmp_path / "results"]), None, "json"))
    verdict = data["per_model"][0]["comparisons"][0]["verdict"]
    exact = data["per_model"][0]["comparisons"][0]["metrics"][0]
    assert exact["ci_high"] < 0 and exact["p_value"] < 0.05
    assert verdict["outcome"] == "worse"
    assert verdict["text"].startswith("api is worse than app on exact match: -100.0 pp")


def test_a_one_rep_pilot_gets_ranges(tmp_path: Path):
    experiment = write_single(tmp_path / "def")
    answers = {("app", s.id, 1): right("app", s.id) for s in experiment.scenarios}
    answers |= {("api", s.id, 1): WRONG for s in experiment.scenarios[:2]}
    answers |= {("api", s.id, 1): right("api", s.id) for s in experiment.scenarios[2:]}
    write_single_results(experiment, tmp_path / "results", answers)
    data = json.loads(write_report(analyze([tmp_path / "results"]), None, "json"))
    power = data["per_model"][0]["comparisons"][0]["power"]
    plans = power["plans"]
    assert all(p["scenarios"] is None and p["scenarios_low"] is not None for p in plans)
    assert any("1 rep" in note for note in power["notes"])
    md = write_report(analyze([tmp_path / "results"]), None, "md")
    assert re.search(r"\| ±10 pp \| 3 \| [\d,]+–[\d,]+ \|", md)


def test_a_changed_row_is_named_by_its_title():
    change = RowChange(
        table="tasks",
        key="3",
        before={"title": "Pay rent", "done": False},
        after={"title": "Pay rent", "done": True},
    )
    assert row_name(change) == "3 “Pay rent”"
    assert row_name(RowChange(table="t", key="9", before={"x": 1}, after={"x": 2})) == "9"


def test_the_detectable_difference_is_said_when_there_is_one(tmp_path: Path):
    from tooltrial.analysis.power import advise, pilot_of
    from tooltrial.analysis.verdict import verdict

    pilot = pilot_of([(1, 3), (2, 3), (0, 3)] * 10, [(2, 3), (1, 3), (0, 3)] * 10)
    advice = advise(pilot, "exact", seed=0)
    said = verdict(
        reference="a",
        treatment="b",
        metric="exact",
        label="exact match",
        difference=0.0,
        ci_low=-0.1,
        ci_high=0.1,
        p_value=1.0,
        scenarios=30,
        reps=3,
        advice=advice,
    )
    assert said.outcome == "inconclusive" and advice.detectable is not None
    points = round(100 * advice.detectable)
    assert f"A difference below {points} points (either way) cannot be told apart" in said.text
