"""What the report claims, and only that: the declared primary metric is the headline and
the one unadjusted test; other tests are Holm-adjusted; quantities fixed by design are not
tested; pass^k and pass@k equal a hand computation; every yes/no metric's flips count.

The sample (``support.sample_results``): reference ``app`` right every rep on all 4 scenarios;
``api`` right on make-task 1/3, agenda 3/3, small-talk 3/3, vague 1/3 (exact match).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from statsmodels.stats.multitest import multipletests
from support.sample_results import sample_answers, write_experiment, write_results

from tooltrial.analysis import RATE_METRICS, analyze, holm
from tooltrial.cli import main
from tooltrial.report import ReportPayload, payload, render_markdown


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("honest")
    experiment = write_experiment(root / "def")
    write_results(experiment, root / "results", sample_answers())
    return as_json(payload(analyze([root / "results"])))


def as_json(report: ReportPayload) -> dict:
    return json.loads(report.to_json())


def comparison(data: dict) -> dict:
    (comp,) = data["per_model"][0]["comparisons"]
    return {m["metric"]: m for m in comp["metrics"]}


def test_the_primary_metric_is_declared_and_unadjusted(data):
    assert data["primary_metric"] == "exact"
    metrics = comparison(data)
    assert metrics["exact"]["primary"] and metrics["exact"]["p_holm"] is None
    assert not any(m["primary"] for k, m in metrics.items() if k != "exact")


def test_secondary_metrics_carry_holm_adjusted_p(data):
    metrics = comparison(data)
    family = [m for m in metrics.values() if not m["primary"] and m["p_value"] is not None]
    raw = [m["p_value"] for m in family]
    expected = multipletests(raw, method="holm")[1]
    assert [m["p_holm"] for m in family] == pytest.approx(list(expected))
    assert [m["p_holm"] for m in family] == pytest.approx(holm(raw))


def test_input_tokens_are_reported_not_tested(data):
    tokens = comparison(data)["input_tokens"]
    assert tokens["difference"] is not None
    assert tokens["p_value"] is None and tokens["p_sign_flip"] is None
    assert tokens["p_holm"] is None


def test_pass_hat_k_and_pass_at_k_match_a_hand_computation(data):
    rel = {r["variant"]: r for r in data["per_model"][0]["reliability"]}
    # api: c/n = 1/3, 3/3, 3/3, 1/3 over its 4 scenarios
    assert rel["api"]["pass_hat"] == pytest.approx({"1": 2 / 3, "2": 0.5, "3": 0.5})
    # pass@2 of make-task and vague: 1 − C(2,2)/C(3,2) = 2/3
    at_2 = (2 / 3 + 1 + 1 + 2 / 3) / 4
    assert rel["api"]["pass_at"] == pytest.approx({"1": 2 / 3, "2": at_2, "3": 1.0})
    assert rel["app"]["pass_hat"] == pytest.approx({"1": 1.0, "2": 1.0, "3": 1.0})
    (comp,) = data["per_model"][0]["comparisons"]
    by_k = {d["k"]: d for d in comp["reliability_differences"]}
    assert by_k[3]["estimate"] == pytest.approx(-0.5)  # per scenario −1, 0, 0, −1
    assert by_k[1]["estimate"] == pytest.approx(2 / 3 - 1)


def test_flips_are_counted_for_every_yes_no_metric(data):
    flipping = data["per_model"][0]["consistency"]["flipping_by_metric"]
    assert flipping["app"] == {m: 0 for m in flipping["app"]}
    assert flipping["api"]["exact"] == 2  # make-task and vague
    assert flipping["api"]["hallucinated"] == 1  # make-task rep 3 only


def test_markdown_headline_names_the_primary_metric(data):
    text = render_markdown(ReportPayload.model_validate(data))
    headline = text.split("## Headline", 1)[1].split("##", 1)[0]
    assert "**exact match** (the declared primary metric)" in headline
    assert "| exact match (primary) |" in text
    assert "| input tokens |" in text and "not tested" in text
    assert "pass^3" in text


def test_a_declared_primary_metric_changes_the_headline(tmp_path: Path):
    definition = write_experiment(tmp_path / "def")
    path = Path(definition.source or "")
    path.write_text(path.read_text() + "primary_metric: tool_correct\n")
    write_results(definition, tmp_path / "results", sample_answers())
    out = tmp_path / "r.json"
    assert main(["report", str(tmp_path / "results"), "--format", "json", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["primary_metric"] == "tool_correct"
    metrics = comparison(data)
    assert metrics["tool_correct"]["primary"] and metrics["exact"]["p_holm"] is not None
    assert data["per_model"][0]["reliability"][0]["metric"] == "tool_correct"


def with_order(results: Path, target: Path, kind: str) -> Path:
    """A copy of the files whose metadata records the given order."""
    target.mkdir()
    for path in results.glob("*.jsonl"):
        head, *rest = path.read_text().splitlines(keepends=True)
        meta = json.loads(head)
        meta["settings"]["order"] = {"kind": kind, "seed": 7} if kind == "random" else {}
        meta["settings"]["order"]["kind"] = kind
        (target / path.name).write_text(json.dumps(meta) + "\n" + "".join(rest))
    return target


def test_latency_is_compared_only_when_the_run_was_randomised(tmp_path: Path):
    experiment = write_experiment(tmp_path / "def")
    write_results(experiment, tmp_path / "results", sample_answers())
    latency = {}
    for kind in ("random", "blocked"):
        folder = with_order(tmp_path / "results", tmp_path / kind, kind)
        latency[kind] = comparison(as_json(payload(analyze([folder]))))["latency_s"]
    assert latency["random"]["p_value"] is not None and latency["random"]["p_holm"] is not None
    blocked = latency["blocked"]
    assert blocked["p_value"] is None and blocked["p_holm"] is None
    assert blocked["difference"] == pytest.approx(latency["random"]["difference"])
    assert "order blocked" in blocked["warning"]
    # files of tooltrial 0.1 record no order: they ran variant by variant
    old = comparison(as_json(payload(analyze([tmp_path / "results"]))))
    assert old["latency_s"]["p_value"] is None


def test_rate_intervals_stay_within_what_a_difference_of_rates_can_be(tmp_path: Path):
    # 3 scenarios, one differing: the t-interval alone would reach past ±100 points
    experiment = write_experiment(tmp_path / "def")
    answers = {k: v for k, v in sample_answers().items() if k[1] != "agenda"}
    write_results(experiment, tmp_path / "results", answers)
    data = as_json(payload(analyze([tmp_path / "results"])))
    rates = [m for m in comparison(data).values() if m["metric"] in RATE_METRICS]
    defined = [m for m in rates if m["ci_low"] is not None]  # None: a single scenario
    assert defined and all(-1 <= m["ci_low"] <= m["ci_high"] <= 1 for m in defined)
    assert any(m["ci_low"] == -1 or m["ci_high"] == 1 for m in rates)
