"""One rule for every metric and format: the same per-scenario differences give the same
interval as the primary metric, as pass^1, and in the Markdown and the HTML; pass^k per
variant and its difference use one scenario set; the pass^k differences carry no p-value
(the primary metric is the one unadjusted test); the docstrings say so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.agentic_results import SPECS, Spec, write_experiment, write_results

import tooltrial.analysis as analysis_package
from tooltrial.analysis import analyze, stats
from tooltrial.report import write_report


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("one-rule")
    write_results(write_experiment(root / "def"), root / "results")
    return analyze([root / "results"])


def test_success_and_pass_1_are_the_same_differences_and_the_same_interval(result):
    model = result.models[0]
    (success,) = [d for d in model.comparisons["app"] if d.metric == "success"]
    pass_1 = model.reliability_differences["app"][1].statistics
    assert (pass_1.estimate, pass_1.ci_low, pass_1.ci_high) == pytest.approx(
        (success.difference, success.ci_low, success.ci_high)
    )


def test_the_pass_k_differences_have_no_p_value_in_any_format(result, tmp_path: Path):
    data = json.loads(write_report(result, None, "json"))
    for d in data["per_model"][0]["comparisons"][0]["reliability_differences"]:
        assert "p_value" not in d and "p_sign_flip" not in d
    md = write_report(result, None, "md")
    lines = [line for line in md.splitlines() if line.startswith("- pass^") and " − " in line]
    assert lines and all("p =" not in line and "descriptive" in line for line in lines)
    page = write_report(result, None, "html")
    assert "pass^3, app − api: " in page and "(descriptive, over 4 scenarios)" in page


def identical_with_an_error(tmp_path: Path) -> Path:
    """Two identical, deterministic variants, 3 reps; one cell of app is an error line."""
    specs = {
        (v, s, r): Spec() if s in ("move-dentist", "finish-rent") else Spec(failed=("state",))
        for v in ("api", "app")
        for s in ("move-dentist", "confirm-delete", "finish-rent", "drop-bill")
        for r in (1, 2, 3)
    }
    for key in list(specs):
        if key[1] == "confirm-delete":
            specs[key] = Spec(failed=("reply",), turns=1)
    del specs[("app", "finish-rent", 3)]  # an error line: no result
    write_results(write_experiment(tmp_path / "def"), tmp_path / "results", specs)
    return tmp_path / "results"


def test_pass_k_per_variant_is_over_the_set_of_its_difference(tmp_path: Path):
    # the audit: "pass^3 … api 50.0%, app 57.1%" above "pass^3, app − api: +0.0 pp"
    result = analyze([identical_with_an_error(tmp_path)])
    model = result.models[0]
    rel = {r.variant: r for r in model.reliability}
    assert rel["api"].pass_hat[3] == rel["app"].pass_hat[3] == pytest.approx(1 / 3)
    assert rel["api"].excluded_scenarios[3] == rel["app"].excluded_scenarios[3]
    assert rel["app"].excluded_scenarios[3] == ("finish-rent",)
    d3 = model.reliability_differences["app"][3]
    assert d3.statistics.estimate == 0.0 and d3.excluded == ("finish-rent",)
    assert (d3.reference_mean, d3.treatment_mean) == (
        rel["api"].pass_hat[3],
        rel["app"].pass_hat[3],
    )
    md = write_report(result, None, "md")
    assert "pass^3 (all 3 tries of a scenario succeed): api 33.3%, app 33.3%" in md
    assert "pass^3 and pass@3 leave out finish-rent" in md


def test_the_docstrings_describe_the_report():
    assert "cluster bootstrap" not in (analysis_package.__doc__ or "")
    assert "4 or fewer" in (stats.__doc__ or "") and "5 or fewer" not in (stats.__doc__ or "")


def test_the_specs_fixture_is_untouched():
    assert ("api", "move-dentist", 1) in SPECS
