"""Analysis of agentic results: the recorded verdict is the score, success is primary,
costs per success, pass^k, and a folder mixing kinds is refused.

Every expected number below is computed by hand from ``support.agentic_results.SPECS``
(4 scenarios × 2 variants × 3 reps; ``api`` the reference):

    successes   api: move 1/3, confirm 3/3, finish 2/3, drop 0/3  → 6/12
                app: move 3/3, confirm 2/3, finish 3/3, drop 2/3  → 10/12
    turns       api: 2+2+4, 1+1+1, 2+2+3, 2+3+3 = 26;  app: 6, 1+1+2, 6, 6 = 22
    tool calls  api: 1+1+3, 0, 1+1+2, 1+2+2 = 14;      app: 3, 1, 3, 1+1+2 = 11
    tool errors api 1 (drop rep 2); app 1 (drop rep 3's timeout)
    input tok.  50·T·(T+1): api 1600+300+1200+1500 = 4600; app 900+500+900+900 = 3200
    output tok. 10 per turn: api 260, app 220;  seconds: 0.5 per turn: api 13, app 11
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from statsmodels.stats.multitest import multipletests
from support.agentic_results import SPECS, Spec, write_experiment, write_results
from support.sample_results import sample_answers
from support.sample_results import write_experiment as write_single_turn_experiment
from support.sample_results import write_results as write_single_turn_results

from tooltrial import analysis
from tooltrial.errors import ResultsError
from tooltrial.log.writer import WriterPool
from tooltrial.types import Usage


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("agentic")
    write_results(write_experiment(root / "def"), root / "results")
    return root / "results"


@pytest.fixture(scope="module")
def result(folder: Path) -> analysis.Analysis:
    return analysis.analyze([folder])


def by_variant(result: analysis.Analysis) -> dict[str, analysis.VariantSummary]:
    return {v.variant: v for v in result.models[0].variants}


def cell(table: pl.DataFrame, variant: str, scenario: str, rep: int) -> dict:
    rows = table.filter(
        (pl.col("variant") == variant)
        & (pl.col("scenario_id") == scenario)
        & (pl.col("rep") == rep)
    )
    (row,) = rows.to_dicts()
    return row


def test_each_row_is_the_recorded_verdict(result):
    table = result.table
    assert table.height == 24
    assert analysis.metric_set(table) is analysis.AGENTIC
    row = cell(table, "api", "move-dentist", 3)
    assert (row["success"], row["check_answered"], row["check_state"]) == (False, False, False)
    assert (row["check_unchanged"], row["check_reference"], row["check_forbidden"]) == (
        True,
        False,
        True,
    )
    assert row["check_reply"] is None  # move-dentist does not judge the reply
    assert (row["stop_reason"], row["turns"], row["tool_calls"], row["tool_errors"]) == (
        "max_turns",
        4,
        3,
        0,
    )
    assert (row["input_tokens"], row["output_tokens"], row["latency_s"]) == (1000, 40, 2.0)
    assert (
        row["reason"]
        == "answered: answered failed; state: state failed; reference: reference failed"
    )
    assert cell(table, "app", "move-dentist", 1)["reason"] == ""


def test_a_part_the_scenario_does_not_judge_is_null(result):
    table = result.table
    confirm = table.filter(pl.col("scenario_id") == "confirm-delete")
    assert confirm["check_state"].null_count() == confirm.height
    assert confirm["check_reply"].null_count() == 0
    drop = table.filter(pl.col("scenario_id") == "drop-bill")
    forbidden = dict(
        drop.group_by("variant").agg(pl.col("check_forbidden").null_count()).iter_rows()
    )
    assert forbidden == {"api": 0, "app": 3}  # judged for api only


def test_rates_per_variant(result):
    v = by_variant(result)
    assert v["api"].rates["success"] == pytest.approx(6 / 12)
    assert v["app"].rates["success"] == pytest.approx(10 / 12)
    # state: judged in move, finish, drop (9 conversations); api fails move 2,3 and drop 2,3
    assert v["api"].rates["check_state"] == pytest.approx(5 / 9)
    assert v["app"].rates["check_reply"] == pytest.approx(2 / 3)
    assert v["api"].calls_per_answer == pytest.approx(14 / 12)


def test_costs_per_success_are_totals_over_successes(result):
    api = by_variant(result)["api"].conversations
    app = by_variant(result)["app"].conversations
    assert (api.conversations, api.successes, api.failed) == (12, 6, 6)
    assert api.per_success == pytest.approx(
        {
            "turns": 26 / 6,
            "tool_calls": 14 / 6,
            "tool_errors": 1 / 6,
            "input_tokens": 4600 / 6,
            "output_tokens": 260 / 6,
            "latency_s": 13 / 6,
        }
    )
    assert app.per_success == pytest.approx(
        {
            "turns": 22 / 10,
            "tool_calls": 11 / 10,
            "tool_errors": 1 / 10,
            "input_tokens": 3200 / 10,
            "output_tokens": 220 / 10,
            "latency_s": 11 / 10,
        }
    )
    assert api.mean["turns"] == pytest.approx(26 / 12)
    assert app.mean["input_tokens"] == pytest.approx(3200 / 12)


def test_why_conversations_failed(result):
    api = by_variant(result)["api"].conversations
    app = by_variant(result)["app"].conversations
    assert api.failed_checks == {
        "answered": 2,
        "state": 4,
        "unchanged": 2,
        "reference": 2,
        "forbidden": 1,
        "reply": 0,
    }
    assert api.judged_checks == {
        "answered": 12,
        "state": 9,
        "unchanged": 12,
        "reference": 3,
        "forbidden": 6,
        "reply": 3,
    }
    assert app.failed_checks["reply"] == 1 and app.judged_checks["forbidden"] == 3
    assert api.stop_reasons == {"answered": 10, "max_tool_calls": 1, "max_turns": 1}
    assert app.stop_reasons == {"answered": 11, "tool_timeout": 1}


def test_success_is_the_unadjusted_primary_and_the_rest_are_holm_adjusted(result):
    (comparison,) = result.models[0].comparisons.values()
    metrics = {d.metric: d for d in comparison}
    assert list(metrics) == list(analysis.AGENTIC.labels)
    success = metrics["success"]
    assert success.primary and success.p_holm is None
    # d_s = app − api per scenario: +2/3, −1/3, +1/3, +2/3
    assert success.difference == pytest.approx(1 / 3)
    assert (success.reference_mean, success.treatment_mean) == pytest.approx((0.5, 10 / 12))
    # turns per scenario: api 8/3, 1, 7/3, 8/3; app 2, 4/3, 2, 2
    assert metrics["turns"].difference == pytest.approx(-1 / 3)
    family = [d for d in comparison if not d.primary and d.p_value is not None]
    expected = multipletests([d.p_value for d in family], method="holm")[1]
    assert [d.p_holm for d in family] == pytest.approx(list(expected))


def test_input_tokens_and_time_are_tested_for_conversations(result):
    (comparison,) = result.models[0].comparisons.values()
    metrics = {d.metric: d for d in comparison}
    # input tokens follow the path a conversation took, so they are a tested outcome here
    assert metrics["input_tokens"].p_value is not None and metrics["input_tokens"].p_holm
    assert metrics["input_tokens"].difference == pytest.approx((3200 - 4600) / 12)
    assert metrics["latency_s"].p_value is not None  # the run was randomised


def test_time_is_not_tested_when_the_run_was_blocked(tmp_path):
    write_results(write_experiment(tmp_path / "def"), tmp_path / "results", order="blocked")
    result = analysis.analyze([tmp_path / "results"])
    (comparison,) = result.models[0].comparisons.values()
    metrics = {d.metric: d for d in comparison}
    assert metrics["latency_s"].p_value is None and metrics["latency_s"].warning
    assert metrics["input_tokens"].p_value is not None


def test_a_part_is_compared_only_where_both_variants_are_judged(result):
    (comparison,) = result.models[0].comparisons.values()
    forbidden = next(d for d in comparison if d.metric == "check_forbidden")
    assert forbidden.scenarios == 1  # drop-bill judges forbidden for api only


def test_pass_hat_k_and_pass_at_k_on_success(result):
    rel = {r.variant: r for r in result.models[0].reliability}
    assert rel["api"].metric == "success"
    assert rel["api"].pass_hat == pytest.approx({1: 0.5, 2: 1 / 3, 3: 0.25})
    assert rel["app"].pass_hat == pytest.approx({1: 10 / 12, 2: 2 / 3, 3: 0.5})
    assert rel["api"].pass_at[3] == pytest.approx(0.75)
    assert rel["app"].pass_at[3] == pytest.approx(1.0)
    (diffs,) = result.models[0].reliability_differences.values()
    assert diffs[3].statistics.estimate == pytest.approx(0.25)
    assert (diffs[3].reference_mean, diffs[3].treatment_mean) == pytest.approx((0.25, 0.5))


def test_categories_and_consistency_use_success(result):
    categories = result.models[0].categories
    change = categories.filter((pl.col("category") == "change") & (pl.col("variant") == "api"))
    assert change["success"].to_list() == [pytest.approx(3 / 6)]
    flips = result.models[0].consistency.filter(pl.col("flips"))
    assert sorted(flips.select("scenario_id", "variant").iter_rows()) == [
        ("confirm-delete", "app"),
        ("drop-bill", "app"),
        ("finish-rent", "api"),
        ("move-dentist", "api"),
    ]


def test_a_variant_without_successes_has_no_cost_per_success(tmp_path):
    specs = {k: Spec(failed=("state",)) if k[0] == "api" else v for k, v in SPECS.items()}
    specs = {k: v for k, v in specs.items() if k[1] != "confirm-delete"}  # judges no state
    write_results(write_experiment(tmp_path / "def"), tmp_path / "results", specs)
    result = analysis.analyze([tmp_path / "results"])
    api = by_variant(result)["api"].conversations
    assert api.successes == 0
    assert set(api.per_success.values()) == {None}


def test_the_export_is_flat(result, tmp_path):
    path = analysis.export_table(result.table, tmp_path / "table.csv")
    exported = pl.read_csv(path)
    assert exported.height == 24 and "check_state" in exported.columns


# --- refusing what cannot be scored together --------------------------------------------


def test_a_folder_mixing_single_turn_and_agentic_results_is_refused(tmp_path):
    experiment = write_experiment(tmp_path / "def")
    write_results(experiment, tmp_path / "results")
    pool = WriterPool(
        "run-2",
        None,
        {
            "api": {
                "experiment": experiment.name,
                "model": "test:agent",
                "temperature": 0.0,
                "fixed_timestamp": experiment.fixed_timestamp.isoformat(),
                "zero_persona": True,
                "variant_hash": "sha256:0",
                "scenario_ids": ["move-dentist"],
                "settings": {"experiment_source": experiment.source},
            }
        },
        directory=tmp_path / "results",
        timestamp="20250312T100000000000Z-single",
    )
    pool.get("api", 4).write_result(
        scenario_id="move-dentist",
        variant="api",
        rep=4,
        response_text="done",
        tool_calls=[],
        stop_reason="end_turn",
        usage=Usage(),
        latency_s=0.1,
        model="test:agent",
        temperature=0.0,
    )
    pool.close_all()
    with pytest.raises(
        ResultsError, match=r"mix single-turn results .* with agentic conversations"
    ):
        analysis.analyze([tmp_path / "results"])


def test_conversations_against_a_single_turn_definition_are_refused(folder, tmp_path):
    single = write_single_turn_experiment(tmp_path / "single")
    with pytest.raises(ResultsError, match="are conversations, but experiment 'mini'"):
        analysis.tidy_table([folder], experiment=single.source)


def test_single_calls_against_an_agentic_definition_are_refused(tmp_path):
    single = write_single_turn_experiment(tmp_path / "single")
    write_single_turn_results(single, tmp_path / "results", sample_answers(reps=1))
    agentic = write_experiment(tmp_path / "agentic")
    with pytest.raises(ResultsError, match="are single calls, but experiment 'mini-agentic'"):
        analysis.tidy_table([tmp_path / "results"], experiment=agentic.source)
