"""Several models in one results folder: no cell collapses, variants are compared within
each model, and the model × variant interaction equals a hand computation."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from support.sample_results import (
    APP_RIGHT,
    Answer,
    call,
    sample_answers,
    write_experiment,
    write_results,
)

from tooltrial import analysis
from tooltrial.cli import main
from tooltrial.definitions import Experiment
from tooltrial.errors import UsageError
from tooltrial.report import payload, render_markdown, write_report

A, B = "test:a", "test:b"
SCENARIOS = ["agenda", "make-task", "small-talk", "vague"]  # sorted, as the analysis sorts


def model_b_answers(reps: int = 2) -> dict[tuple[str, str, int], Answer]:
    """app right everywhere; api wrong on make-task and small-talk in every rep, right on
    agenda and vague. Per scenario api − app: agenda 0, make-task −1, small-talk −1, vague 0."""
    answers: dict[tuple[str, str, int], Answer] = {}
    for rep in range(1, reps + 1):
        for scenario_id, answer in APP_RIGHT.items():
            answers[("app", scenario_id, rep)] = answer
        answers[("api", "agenda", rep)] = (
            [call("query_records", filters={"from": "2025-03-14"})],
            "",
        )
        answers[("api", "make-task", rep)] = ([call("new_task", title="milk")], "")
        answers[("api", "small-talk", rep)] = ([call("query_records", filters={})], "")
        answers[("api", "vague", rep)] = ([], "Which meeting?")
    return answers


# Model A is the sample of support.sample_results: api − app is agenda 0, make-task −2/3,
# small-talk 0, vague −2/3 (3 reps).
D_A = np.array([0, -2 / 3, 0, -2 / 3])
D_B = np.array([0, -1, -1, 0])


def write_model(
    experiment: Experiment,
    directory: Path,
    model: str,
    answers: dict[tuple[str, str, int], Answer],
    errors: list[tuple[str, str, int]] | None = None,
) -> None:
    """One model's results with the real WriterPool: model on every line."""
    write_results(
        experiment,
        directory,
        answers,
        errors=errors or (),
        model=model,
        file_stamp="20250312T100000000000Z-" + model.split(":")[1],
        vary=False,
    )


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    experiment = write_experiment(root / "def")
    write_model(experiment, root / "results", A, sample_answers(reps=3))
    write_model(experiment, root / "results", B, model_b_answers(reps=2), [("api", "agenda", 1)])
    return root / "results"


@pytest.fixture(scope="module")
def result(two_models: Path) -> analysis.Analysis:
    return analysis.analyze([two_models])


def test_every_cell_of_every_model_is_kept(two_models):
    table, definition, loaded = analysis.tidy_table([two_models])
    assert table.height == 24 + 16  # (variant, scenario, rep) repeats across models
    counts = dict(table.group_by("model").len().iter_rows())
    assert counts == {A: 24, B: 16}
    assert loaded.models == (A, B) and loaded.errors_by_model == {B: 1}
    summaries = analysis.summarize(table, definition)
    assert [(s.model, s.variant, s.results) for s in summaries] == [
        (A, "app", 12),
        (A, "api", 12),
        (B, "app", 8),
        (B, "api", 8),
    ]
    assert {s.model: s.reps for s in summaries} == {A: 3, B: 2}


def test_comparisons_are_within_each_model(result):
    assert [m.model for m in result.models] == [A, B] and result.reference_model == A
    for m, d in ((A, D_A), (B, D_B)):
        (model,) = [x for x in result.models if x.model == m]
        exact = next(x for x in model.comparisons["api"] if x.metric == "exact")
        assert exact.difference == pytest.approx(d.mean())
        means = analysis.scenario_means(result.table, "exact", "app", "api", model=m)
        stuck = analysis.stuck_count(means["app"].to_numpy(), means["api"].to_numpy())
        assert exact.p_value == pytest.approx(analysis.difference_interval(d, stuck)[2])
        assert exact.reference_mean == 1.0 and exact.scenarios == 4
        assert means["scenario_id"].to_list() == SCENARIOS
        assert (means["api"] - means["app"]).to_numpy() == pytest.approx(d)


def test_a_table_of_several_models_is_never_pooled(result):
    with pytest.raises(UsageError, match="several models"):
        analysis.compare(result.table, "app", "api")


def _cells(table, metric):
    """Scenario → variant → its per-scenario rate in each model."""
    out: dict = {}
    for m in (A, B):
        means = analysis.scenario_means(table, metric, "app", "api", model=m)
        for row in means.iter_rows(named=True):
            for v in ("app", "api"):
                out.setdefault(row["scenario_id"], {}).setdefault(v, []).append(row[v])
    return out


def test_interaction_is_the_mean_difference_of_differences(result):
    dd = D_B - D_A  # agenda 0, make-task −1/3, small-talk −1, vague +2/3
    (exact,) = [i for i in result.interactions[(B, "api")] if i.metric == "exact"]
    assert exact.interaction == pytest.approx(-1 / 6) == pytest.approx(dd.mean())
    assert exact.reference_model_difference == pytest.approx(-1 / 3)
    assert exact.model_difference == pytest.approx(-1 / 2)
    stuck = sum(  # every cell of the scenario at 0, or every cell at 1
        len({*c["app"], *c["api"]}) == 1 and {*c["app"]} <= {0.0, 1.0}
        for c in _cells(result.table, "exact").values()
    )
    low, high, p = analysis.difference_interval(dd, stuck, bound=2.0)
    assert exact.p_value == pytest.approx(p)
    assert exact.p_sign_flip == pytest.approx(analysis.sign_flip_test(dd))
    assert (exact.ci_low, exact.ci_high) == pytest.approx((low, high))
    assert exact.scenarios == 4
    assert {i.metric for i in result.interactions[(B, "api")]} <= set(analysis.RATE_METRICS)


def test_interaction_uses_scenarios_present_in_all_four_cells(result):
    table = result.table.filter(
        ~(
            (pl.col("model") == B)
            & (pl.col("variant") == "api")
            & (pl.col("scenario_id") == "vague")
        )
    )
    (exact,) = analysis.interaction(table, "app", "api", A, B, metrics=["exact"])
    assert exact.scenarios == 3
    assert exact.interaction == pytest.approx(np.mean([0, -1 / 3, -1]))


def test_the_reference_model_can_be_chosen(two_models):
    flipped = analysis.analyze([two_models], reference_model=B)
    assert [m.model for m in flipped.models] == [B, A]
    (exact,) = [i for i in flipped.interactions[(A, "api")] if i.metric == "exact"]
    assert exact.interaction == pytest.approx(1 / 6)
    with pytest.raises(UsageError, match="test:c"):
        analysis.analyze([two_models], reference_model="test:c")


def test_payload_has_a_section_per_model_and_the_interaction(result):
    data = json.loads(payload(result).to_json())
    assert data["models"] == [A, B] and data["reference_model"] == A
    assert data["results"] == 40 and data["error_lines"] == 1
    sections = {s["model"]: s for s in data["per_model"]}
    assert {m: (s["results"], s["error_lines"]) for m, s in sections.items()} == {
        A: (24, 0),
        B: (16, 1),
    }
    assert [v["results"] for v in sections[B]["variants"]] == [8, 8]
    exact_b = next(m for m in sections[B]["comparisons"][0]["metrics"] if m["metric"] == "exact")
    assert exact_b["difference"] == pytest.approx(-0.5)
    (block,) = data["interaction"]
    assert (block["model"], block["treatment"], block["reference"]) == (B, "api", "app")
    exact = next(m for m in block["metrics"] if m["metric"] == "exact")
    assert exact["interaction"] == pytest.approx(-1 / 6)
    assert "interaction" in data["method"]


def test_markdown_has_a_section_per_model(result):
    text = render_markdown(payload(result))
    assert "## Model test:a (reference model)" in text and "## Model test:b" in text
    assert "| app | 8 | 100.0% |" in text  # model B's variant table
    assert "### api − app: test:b vs test:a" in text
    assert "| exact match | -33.3 pp | -50.0 pp | -16.7 pp |" in text


class _Keys(HTMLParser):
    """Every data-key on the page with its text, and every reference it would fetch."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: dict[str, str] = {}
        self.fetches: list[str] = []
        self._open: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.fetches += [v for n, v in attrs if n in ("src", "href") and v and v[0] != "#"]
        key = values.get("data-key")
        if key is not None:
            self.keys[key] = ""
        self._open.append(key)

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for key in self._open:
            if key is not None:
                self.keys[key] += data


def _number(text: str) -> float:
    return float(re.sub(r"[^0-9.\-]", "", text))


def test_html_headline_numbers_equal_the_json(result):
    page = write_report(result, None, "html")
    data = json.loads(write_report(result, None, "json"))
    parser = _Keys()
    parser.feed(page)
    assert parser.fetches == []
    assert json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1)) == data
    keys = parser.keys
    assert int(keys["results"]) == 40
    for section in data["per_model"]:
        model = section["model"]
        assert int(keys[f"{model}/results"]) == section["results"]
        for variant, rate in section["headline"]["rates"].items():
            shown = keys[f"{model}/variants.{variant}.exact"]
            assert _number(shown) == pytest.approx(100 * rate, abs=0.05)
        for v in section["variants"]:
            for metric, rate in v["rates"].items():
                shown = keys[f"{model}/rates.{v['variant']}.{metric}"]
                assert _number(shown) == pytest.approx(100 * rate, abs=0.05)
        for comp in section["comparisons"]:
            exact = next(m for m in comp["metrics"] if m["metric"] == "exact")
            shown = keys[f"{model}/diff.{comp['treatment']}.exact"]
            assert _number(shown) == pytest.approx(100 * exact["difference"], abs=0.05)
    for block in data["interaction"]:
        for m in block["metrics"]:
            key = f"interaction/{block['model']}/diff.{block['treatment']}.{m['metric']}"
            assert _number(keys[key]) == pytest.approx(100 * m["interaction"], abs=0.05)
            p_shown = keys[f"interaction/{block['model']}/p.{block['treatment']}.{m['metric']}"]
            assert _number(p_shown) == pytest.approx(m["p_value"], abs=0.001)


def test_the_reference_model_is_chosen_on_the_command_line(two_models, tmp_path):
    out = tmp_path / "r.json"
    argv = ["report", str(two_models), "--format", "json", "-o", str(out)]
    assert main([*argv, "--reference-model", B]) == 0
    data = json.loads(out.read_text())
    assert data["reference_model"] == B and data["per_model"][0]["model"] == B
    assert main([*argv, "--reference-model", "test:nope"]) == 2
