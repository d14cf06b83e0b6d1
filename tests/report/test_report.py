"""The report in its three formats, and the HTML page in a real headless Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support.pages import External, open_in_chromium
from support.sample_results import sample_answers, write_experiment, write_results

from tooltrial.analysis import analyze
from tooltrial.cli import main
from tooltrial.report import ReportPayload, payload, render_markdown, write_report


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    experiment = write_experiment(root / "def")
    write_results(experiment, root / "results", sample_answers())
    return root / "results"


@pytest.fixture(scope="module")
def outputs(results: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three formats, each from its own run of the command."""
    out = tmp_path_factory.mktemp("out")
    paths = {fmt: out / f"report.{fmt}" for fmt in ("html", "md", "json")}
    for fmt, path in paths.items():
        assert main(["report", str(results), "--format", fmt, "-o", str(path)]) == 0
    return paths


def test_json_holds_the_headline(outputs):
    data = json.loads(outputs["json"].read_text())
    assert data["experiment"] == "mini" and data["results"] == 24
    (section,) = data["per_model"]
    rates = {v["variant"]: v["rates"]["exact"] for v in section["variants"]}
    assert rates == {"app": 1.0, "api": pytest.approx(8 / 12)}
    (comp,) = section["comparisons"]
    exact = next(m for m in comp["metrics"] if m["metric"] == "exact")
    assert exact["difference"] == pytest.approx(-1 / 3)
    assert exact["ci_low"] <= exact["difference"] <= exact["ci_high"]
    assert [d["scenario_id"] for d in comp["largest_differences"]] == ["make-task", "vague"]
    assert {p["reps"] for p in comp["power"]["plans"]} == {1, 3, 5, 10}
    assert [f["scenario_id"] for f in section["consistency"]["flips"]] == ["make-task", "vague"]


def test_markdown_summary(outputs):
    text = outputs["md"].read_text()
    assert text.startswith("# tooltrial report: mini")
    assert "| app | 12 | 100.0% |" in text
    assert "| exact match (primary) | 100.0% | 66.7% | -33.3 pp |" in text
    assert "- make-task: 100.0% → 33.3%" in text
    assert "flip between right and wrong" in text


def test_markdown_renders_from_the_payload_alone(results):
    data = ReportPayload.model_validate_json(payload(analyze([results])).to_json())
    assert render_markdown(data).count("\n|---") >= 3


def test_html_is_self_contained(outputs):
    page = outputs["html"].read_text()
    parser = External()
    parser.feed(page)
    assert parser.fetches == []
    assert parser.scripts == 2  # the data and the inline script
    assert "<svg" in page and "@import" not in page
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1))
    assert data == json.loads(outputs["json"].read_text())


def test_html_escapes_what_the_model_wrote(tmp_path):
    experiment = write_experiment(tmp_path / "def")
    answers = sample_answers(reps=1)
    answers[("api", "small-talk", 1)] = ([], "<script>alert(1)</script></script> & done")
    write_results(experiment, tmp_path / "res", answers)
    page = write_report(analyze([tmp_path / "res"]), None)
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- a real browser ---------------------------------------------------------------------


def _number(text: str) -> float:
    return float(text.replace("pp", "").replace("%", "").replace("+", "").replace(",", "").strip())


@pytest.mark.slow
def test_page_in_headless_chromium_matches_the_json(outputs, tmp_path):
    data = json.loads(outputs["json"].read_text())
    shown, errors, fetches = open_in_chromium(outputs["html"], tmp_path / "profile")
    assert errors == []
    assert fetches == []  # opens offline
    assert shown["shown"] == f"{len(data['scenarios'])} of {len(data['scenarios'])} scenarios"
    assert shown["svgs"] >= 4
    keys = shown["keys"]
    assert int(keys["results"]) == data["results"]
    (section,) = data["per_model"]
    for variant, rate in section["headline"]["rates"].items():
        assert _number(keys[f"variants.{variant}.exact"]) == pytest.approx(100 * rate, abs=0.05)
    for v in section["variants"]:
        for metric, rate in v["rates"].items():
            assert _number(keys[f"rates.{v['variant']}.{metric}"]) == pytest.approx(
                100 * rate, abs=0.05
            ), metric
    for comp in section["comparisons"]:
        t = comp["treatment"]
        exact = next(m for m in comp["metrics"] if m["metric"] == "exact")
        assert _number(keys[f"diff.{t}.exact"]) == pytest.approx(
            100 * exact["difference"], abs=0.05
        )
        low, high = (_number(x) for x in keys[f"ci.{t}.exact"].strip("[]").split(", "))
        assert (low, high) == (
            pytest.approx(100 * exact["ci_low"], abs=0.05),
            pytest.approx(100 * exact["ci_high"], abs=0.05),
        )
        assert _number(keys[f"p.{t}.exact"].replace("<", "")) == pytest.approx(
            exact["p_value"], abs=0.0005 if exact["p_value"] >= 0.001 else 0.001
        )
