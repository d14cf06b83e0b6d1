"""Analysis: result files (written by the real writer) → tidy table → rates → comparison."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats
from statsmodels.stats.power import TTestPower
from support.paths import TESTS
from support.sample_results import (
    API_ANSWERS,
    APP_YAML,
    SCENARIOS_YAML,
    call,
    sample_answers,
    write_experiment,
    write_results,
)

from tooltrial import analysis
from tooltrial.analysis import table as table_module
from tooltrial.analysis.scoring import Call
from tooltrial.cli import main
from tooltrial.definitions import Experiment
from tooltrial.errors import CorruptLine, DefinitionError, ExpectationError, ResultsError

# --- the small experiment (support.sample_results), its results on disk -----------------


@pytest.fixture
def mini(tmp_path: Path) -> tuple[Experiment, Path]:
    experiment = write_experiment(tmp_path / "def")
    results = tmp_path / "results"
    write_results(experiment, results, sample_answers(), errors=[("api", "agenda", 1)])
    return experiment, results


# --- loading and the tidy table ---------------------------------------------------------


def test_tidy_table_has_one_scored_row_per_result(mini):
    experiment, results = mini
    table, definition, loaded = analysis.tidy_table([results])
    assert definition.source == experiment.source  # found through the metadata
    assert table.height == 24 and loaded.errors == 1  # the error line is not a result
    assert len(loaded.files) == 6
    row = table.filter(
        (pl.col("variant") == "api") & (pl.col("scenario_id") == "make-task") & (pl.col("rep") == 2)
    ).row(0, named=True)
    assert row["tool_correct"] is True and row["args_correct"] is False and row["exact"] is False
    assert "resource_type='event' is not acceptable" in row["reason"]
    assert row["category"] == "create" and row["expect"] == "call"
    hallucinated = table.filter(pl.col("hallucinated"))
    assert hallucinated.select("variant", "scenario_id", "rep").rows() == [("api", "make-task", 3)]


def test_per_variant_rates_match_a_hand_count(mini):
    table, definition, _ = analysis.tidy_table([mini[1]])
    summary = {s.variant: s for s in analysis.summarize(table, definition)}
    assert summary["app"].rates == {
        "exact": 1.0,
        "tool_correct": 1.0,
        "args_correct": 1.0,
        "abstain_correct": 1.0,
        "hallucinated": 0.0,
        "malformed": 0.0,
    }
    api = summary["api"].rates
    assert api["exact"] == pytest.approx(8 / 12)
    assert api["tool_correct"] == pytest.approx(10 / 12)
    assert api["args_correct"] == pytest.approx(4 / 5)  # judged where the tool was right
    assert api["abstain_correct"] == pytest.approx(4 / 6)
    assert api["hallucinated"] == pytest.approx(1 / 12)
    assert summary["api"].scenarios == 4 and summary["api"].reps == 3
    assert summary["api"].input_tokens == pytest.approx(
        table.filter(pl.col("variant") == "api")["input_tokens"].mean()
    )


def test_an_estimated_footprint_counts_what_is_sent(tmp_path):
    """Files from before the run recorded it: estimated from the tools as JSON."""
    experiment = write_experiment(tmp_path)
    variant = experiment.variant("app")
    chars = len(json.dumps([t.openai_format() for t in variant.tools]))
    estimated = analysis.estimated_footprint("test:m", variant)
    assert (estimated.chars, estimated.tokens) == (chars, math.ceil(chars / 4))
    assert estimated.counted_by == "estimate (4 characters a token)"


def test_latest_result_counts_after_a_partial_rerun(mini, tmp_path):
    experiment, results = mini
    rerun = {("api", "make-task", 2): API_ANSWERS[("make-task", 1)]}  # now right
    write_results(experiment, results, rerun, run_id="run-2", stamp="2025-03-12T11:00:00.000+00:00")
    # an older line in a newer file must not win
    stale = {("api", "vague", 1): API_ANSWERS[("vague", 2)]}
    write_results(experiment, results, stale, run_id="run-0", stamp="2025-03-12T08:00:00.000+00:00")
    table, _, _ = analysis.tidy_table([results])
    assert table.height == 24
    cell = table.filter(
        (pl.col("variant") == "api") & (pl.col("rep") == 2) & (pl.col("scenario_id") == "make-task")
    )
    assert cell["exact"].to_list() == [True] and cell["run_id"].to_list() == ["run-2"]
    vague = table.filter(
        (pl.col("variant") == "api") & (pl.col("rep") == 1) & (pl.col("scenario_id") == "vague")
    )
    assert vague["exact"].to_list() == [True] and vague["run_id"].to_list() == ["run-1"]


def test_consistency_across_reps(mini):
    table, _, _ = analysis.tidy_table([mini[1]])
    c = analysis.consistency(table)
    row = c.filter((pl.col("variant") == "api") & (pl.col("scenario_id") == "make-task")).row(
        0, named=True
    )
    assert (row["reps"], row["distinct_answers"], row["flips"]) == (3, 3, True)
    assert row["agreement"] == pytest.approx(1 / 3)
    assert c.filter(pl.col("variant") == "app")["agreement"].to_list() == [1.0] * 4
    flipping = c.filter(pl.col("flips")).select("scenario_id", "variant").rows()
    assert sorted(flipping) == [("make-task", "api"), ("vague", "api")]
    # key order and call order do not make two answers different
    a = table_module._answer_signature([Call("t", {"a": 1, "b": 2})], False)
    b = table_module._answer_signature([Call("t", {"b": 2, "a": 1})], False)
    assert a == b


def test_categories(mini):
    table, _, _ = analysis.tidy_table([mini[1]])
    rows = {
        (r["category"], r["variant"]): r["exact"] for r in analysis.by_category(table).to_dicts()
    }
    assert rows[("create", "api")] == pytest.approx(1 / 3) and rows[("create", "app")] == 1.0
    assert rows[("clarify", "api")] == pytest.approx(1 / 3)


# --- comparison: checked against scipy / statsmodels ------------------------------------


def test_paired_comparison_matches_reference_implementations(mini):
    table, _, _ = analysis.tidy_table([mini[1]])
    exact = analysis.compare(table, "app", "api", metrics=["exact"])[0]
    means = analysis.scenario_means(table, "exact", "app", "api")
    d = means["api"].to_numpy() - means["app"].to_numpy()
    assert sorted(d.tolist()) == pytest.approx([-2 / 3, -2 / 3, 0, 0])
    assert exact.difference == pytest.approx(-1 / 3)
    stuck = analysis.stuck_count(means["app"].to_numpy(), means["api"].to_numpy())
    low, high, p = analysis.difference_interval(d, stuck)  # the report's one rule
    assert (exact.ci_low, exact.ci_high, exact.p_value) == pytest.approx((low, high, p))
    assert exact.ci_low <= exact.difference <= exact.ci_high
    assert exact.scenarios == 4


def test_sign_flip_test_matches_scipy_exact_permutation_test():
    rng = np.random.default_rng(7)
    for size in (6, 9, 12):
        x, y = rng.integers(0, 4, size) / 3, rng.integers(0, 4, size) / 3
        ours = analysis.sign_flip_test(y - x, mid_p=False)
        ref = stats.permutation_test(
            (y, x),
            lambda a, b, axis: np.mean(a - b, axis=axis),
            permutation_type="samples",
            n_resamples=np.inf,
            vectorized=True,
        ).pvalue
        assert ours == pytest.approx(ref)
    # past the exact limit it samples flips; still close to the exact answer
    d = rng.normal(0.3, 1, 18)
    exact = analysis.sign_flip_test(d, exact_up_to=18)
    assert analysis.sign_flip_test(d, n_perm=40_000) == pytest.approx(exact, abs=0.01)


def test_cluster_bootstrap_matches_scipy_percentile_bootstrap():
    d = np.random.default_rng(3).normal(0.1, 0.4, 25)
    low, high = analysis.cluster_bootstrap_ci(d, n_boot=20_000, seed=1)
    ref = stats.bootstrap((d,), np.mean, method="percentile", n_resamples=20_000, random_state=2)
    assert low == pytest.approx(ref.confidence_interval.low, abs=0.01)
    assert high == pytest.approx(ref.confidence_interval.high, abs=0.01)


def test_degenerate_differences():
    assert analysis.paired_t_test(np.zeros(5)) == 1.0
    assert analysis.sign_flip_test(np.zeros(5)) == 1.0
    assert analysis.paired_t_test(np.full(5, 0.5)) == 2 / 2**5  # the exact sign-flip p
    assert analysis.cluster_bootstrap_ci(np.full(4, 0.25)) == (0.25, 0.25)


def test_largest_differences_lists_scenarios_that_differ(mini):
    table, _, _ = analysis.tidy_table([mini[1]])
    top = analysis.largest_differences(table, "app", "api")
    assert top["scenario_id"].to_list() == ["make-task", "vague"]
    assert top["difference"].to_list() == pytest.approx([-2 / 3, -2 / 3])


# --- power ------------------------------------------------------------------------------


@pytest.mark.parametrize(("delta", "n", "reps"), [(0.1, 30, 3), (0.2, 12, 1), (0.05, 200, 10)])
def test_power_matches_statsmodels(delta, n, reps):
    comp = analysis.VarianceComponents(between=0.03, within=0.3, pilot_scenarios=20, pilot_reps=3)
    sd = (comp.between + comp.within / reps) ** 0.5
    ref = TTestPower().power(effect_size=delta / sd, nobs=n, alpha=0.05, alternative="two-sided")
    assert analysis.paired_power(delta, n, reps, comp) == pytest.approx(ref, abs=1e-6)


def test_scenarios_needed_is_the_smallest_design_that_reaches_the_target():
    comp = analysis.VarianceComponents(between=0.02, within=0.4, pilot_scenarios=20, pilot_reps=3)
    plans = analysis.scenarios_needed(0.1, comp, reps_options=(1, 3, 10))
    counts = [p.scenarios for p in plans]
    assert counts == sorted(counts, reverse=True)  # more reps, fewer scenarios
    for plan in plans:
        assert analysis.paired_power(0.1, plan.scenarios, plan.reps, comp) >= 0.8
        assert analysis.paired_power(0.1, plan.scenarios - 1, plan.reps, comp) < 0.8
    tiny = analysis.scenarios_needed(0.001, comp, reps_options=(1,), limit=500)
    assert tiny[0].scenarios is None


# --- bad input --------------------------------------------------------------------------


def test_corrupt_line_names_file_and_line(mini):
    _, results = mini
    path = sorted(results.glob("api_run2_*.jsonl"))[0]
    with path.open("a") as handle:
        handle.write('{"type": "scenario_result", "oops"\n')
    with pytest.raises(CorruptLine, match=rf"{path.name}:6: not valid JSON"):
        analysis.load_results([results])


def test_torn_last_line_was_never_committed_and_is_skipped(mini):
    _, results = mini
    whole = analysis.load_results([results]).results
    path = sorted(results.glob("app_run1_*.jsonl"))[0]
    with path.open("a") as handle:
        handle.write('{"type": "scenario_result", "scenario_id": "vag')  # a killed writer
    assert analysis.load_results([results]).results.equals(whole)


def test_results_of_another_experiment_are_refused(mini, tmp_path):
    _, results = mini
    other = write_experiment(tmp_path / "other", SCENARIOS_YAML.replace("vague", "blurry"))
    with pytest.raises(ResultsError, match="scenario 'vague' is not in experiment"):
        analysis.tidy_table([results], experiment=other.source)


def test_missing_definition_says_to_pass_one(mini, tmp_path):
    experiment, results = mini
    Path(experiment.source).rename(tmp_path / "moved.yaml")
    with pytest.raises(DefinitionError, match="--experiment PATH"):
        analysis.tidy_table([results])


def test_bad_expectation_is_reported_with_its_scenario(mini, tmp_path):
    # Expectations are compiled when the definition is loaded, so the report never gets
    # as far as scoring with one that cannot be read.
    bad = SCENARIOS_YAML.replace(
        '{date: "2025-03-14"}}}]}\n    api', '{date: "Friday"}}}]}\n    api'
    )
    with pytest.raises(ExpectationError, match=r"'agenda', variant 'app'.*not an ISO date"):
        write_experiment(tmp_path / "bad", bad)


def test_no_files_is_a_clear_error(tmp_path):
    with pytest.raises(ResultsError, match=r"no \.jsonl result files"):
        analysis.load_results([tmp_path])


# --- export and the command line --------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_round_trips(mini, tmp_path, suffix):
    table, _, _ = analysis.tidy_table([mini[1]])
    path = analysis.export_table(table, tmp_path / f"scored{suffix}")
    back = pl.read_csv(path) if suffix == ".csv" else pl.read_parquet(path)
    assert back.height == table.height
    assert back["exact"].sum() == table["exact"].sum()
    assert back.columns == table.columns


def test_cli_report_json_and_export(mini, tmp_path, capsys):
    _, results = mini
    out, table = tmp_path / "r.json", tmp_path / "t.csv"
    code = main(
        ["report", str(results), "--format", "json", "-o", str(out), "--export", str(table)]
    )
    assert code == 0
    data = json.loads(out.read_text())
    (section,) = data["per_model"]
    assert [v["variant"] for v in section["variants"]] == ["app", "api"]
    assert section["comparisons"][0]["treatment"] == "api"
    assert pl.read_csv(table).height == 24


def test_cli_report_bad_input_exits_2(mini, tmp_path, capsys):
    _, results = mini
    code = main(["report", str(results), "--experiment", str(tmp_path / "nope.yaml")])
    assert code == 2
    assert "nope.yaml" in capsys.readouterr().err
    assert main(["report", str(results), "--export", str(tmp_path / "t.xlsx")]) == 2


def test_definition_changed_since_the_run_is_a_warning(mini):
    experiment, results = mini
    app = Path(experiment.source).parent / "app.yaml"
    app.write_text(APP_YAML.replace("app-shaped tools", "new prompt"))
    result = analysis.analyze([results])
    assert any("variant 'app': its definition changed" in w for w in result.warnings)


def test_result_files_finds_folders_and_files(mini):
    _, results = mini
    files = sorted(results.glob("*.jsonl"))
    assert analysis.result_files([results]) == analysis.result_files(files)
    with pytest.raises(ResultsError, match="no such file"):
        analysis.result_files([results / "missing"])


def test_a_pilot_without_any_variation_plans_for_the_worst_case(tmp_path):
    experiment = write_experiment(tmp_path / "def")
    wrong = {
        (v, s, rep): ([call("search", text="?")], "")
        for v in ("app", "api")
        for s in ("make-task", "agenda", "small-talk", "vague")
        for rep in (1, 2)
    }
    write_results(experiment, tmp_path / "res", wrong)
    table, _, _ = analysis.tidy_table([tmp_path / "res"])
    assert table["exact"].sum() == 0
    components = analysis.variance_components(table, "app", "api")
    assert components.worst_case and components.within == 0.5
    (plan,) = analysis.scenarios_needed(0.2, components, reps_options=(1,))
    assert plan.scenarios is not None and plan.scenarios > 50  # not "2 scenarios suffice"


def test_arguments_with_backslashes_and_quotes_are_read_as_written(tmp_path):
    """polars undoes the escapes of nested text; the loader reads such calls again."""
    from tooltrial import load_experiment, run_experiment
    from tooltrial.analysis import analyze
    from tooltrial.testing.scripted import ScriptedModel, reply

    experiment = load_experiment(TESTS / "experiment")
    title = 'C:\\plumber "now"'
    model = ScriptedModel(
        name="x",
        experiment=experiment,
        script=lambda r: reply(calls=[("add_task", {"title": title})]),
    )
    run_experiment(
        experiment, model, runs=1, results=tmp_path, variants=["applike"],
        scenarios=["create-task-tomorrow-at-3"],
    )  # fmt: skip
    loaded = analyze([tmp_path]).loaded.results
    (calls,) = loaded["tool_calls"].to_list()
    assert json.loads(calls)[0]["arguments"] == {"title": title}
