"""The statistics on synthetic experiments with a known truth (fixed seeds, stated tolerances).

The synthetic design mirrors a real one: each scenario has its own success probability
per variant (scenarios differ in difficulty, and in how much the variant helps), and each
rep is a Bernoulli draw from it. Tolerances are about three Monte Carlo standard errors.

The second half draws base rates from several difficulty distributions — U-shaped
Beta(0.5, 0.5), U(0.2, 0.6), all-or-nothing scenarios and a mostly all-or-nothing mix —
with the generator in ``bench/sim_stats.py`` (which prints the table the README quotes),
10,000 experiments at a time as rows of one array.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import polars as pl
import pytest
from support.paths import ROOT

from tooltrial import analysis
from tooltrial.analysis import stats


def _load_sim():  # bench/ is not a package
    path = ROOT / "bench" / "sim_stats.py"
    spec = importlib.util.spec_from_file_location("sim_stats", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sim_stats"] = module
    spec.loader.exec_module(module)
    return module


sim = _load_sim()

SCENARIOS, REPS = 20, 3


def synthetic_table(
    rng: np.random.Generator,
    delta: float,
    scenarios: int = SCENARIOS,
    reps: int = REPS,
    spread: float = 0.1,
) -> pl.DataFrame:
    """Per scenario: p_ref ~ U(0.2, 0.6), p_trt = p_ref + U(delta - spread, delta + spread).

    The population mean difference is exactly ``delta`` (no clipping: p stays in [0, 1]
    for |delta| <= 0.2).
    """
    p_ref = rng.uniform(0.2, 0.6, scenarios)
    p_trt = p_ref + rng.uniform(delta - spread, delta + spread, scenarios)
    ids = np.repeat([f"s{i}" for i in range(scenarios)], reps)
    ref = rng.random((scenarios, reps)) < p_ref[:, None]
    trt = rng.random((scenarios, reps)) < p_trt[:, None]
    return pl.DataFrame(
        {
            "scenario_id": np.concatenate([ids, ids]),
            "variant": ["ref"] * ids.size + ["trt"] * ids.size,
            "rep": np.tile(np.arange(1, reps + 1), 2 * scenarios),
            "exact": np.concatenate([ref.ravel(), trt.ravel()]),
        }
    )


def per_scenario_differences(table: pl.DataFrame) -> np.ndarray:
    means = analysis.scenario_means(table, "exact", "ref", "trt")
    return means["trt"].to_numpy() - means["ref"].to_numpy()


def differences(rng: np.random.Generator, delta: float, scenarios: int = SCENARIOS) -> np.ndarray:
    """The same design as ``synthetic_table``, straight to per-scenario differences (fast)."""
    p_ref = rng.uniform(0.2, 0.6, scenarios)
    p_trt = p_ref + rng.uniform(delta - 0.1, delta + 0.1, scenarios)
    return (rng.binomial(REPS, p_trt) - rng.binomial(REPS, p_ref)) / REPS


def test_the_fast_path_is_the_table_path():
    table = synthetic_table(np.random.default_rng(1), delta=0.1)
    d_table = per_scenario_differences(table)
    assert d_table.shape == (SCENARIOS,)
    assert set(np.round(d_table * REPS).tolist()) <= set(range(-REPS, REPS + 1))


def test_with_no_difference_the_t_test_rejects_at_its_nominal_rate():
    rng = np.random.default_rng(20250312)
    sims = 2000
    rejections = sum(analysis.paired_t_test(differences(rng, 0.0)) < 0.05 for _ in range(sims))
    # nominal 5%; Monte Carlo SE with 2000 runs is 0.5 points
    assert 0.035 <= rejections / sims <= 0.065


def test_with_no_difference_the_plain_sign_flip_p_never_exceeds_its_level():
    rng = np.random.default_rng(4)
    sims = 400
    rejections = sum(
        analysis.sign_flip_test(
            differences(rng, 0.0), n_perm=1000, seed=i, exact_up_to=10, mid_p=False
        )
        < 0.05
        for i in range(sims)
    )
    # exact, but conservative with coarse (3-rep) outcomes; SE 1.1 points
    assert rejections / sims <= 0.075


@pytest.mark.parametrize("delta", [0.15, -0.1, 0.0])
def test_with_a_known_difference_the_interval_covers_it_about_95_percent(delta):
    rng = np.random.default_rng(7)
    sims, covered, widths = 600, 0, []
    for i in range(sims):
        low, high = analysis.cluster_bootstrap_ci(differences(rng, delta), n_boot=2000, seed=i)
        covered += low <= delta <= high
        widths.append(high - low)
    # Monte Carlo SE is 0.9 points; the percentile bootstrap runs slightly narrow with
    # 20 clusters (about 93-94%), which the lower bound allows.
    assert 0.915 <= covered / sims <= 0.975
    assert 0.1 < float(np.mean(widths)) < 0.5  # informative, not trivially wide


def test_compare_covers_the_truth_end_to_end():
    rng = np.random.default_rng(12)
    sims, covered = 100, 0
    for i in range(sims):
        table = synthetic_table(rng, delta=0.15)
        (result,) = analysis.compare(table, "ref", "trt", metrics=["exact"], seed=i)
        covered += result.ci_low <= 0.15 <= result.ci_high
    assert covered / sims >= 0.87  # 100 runs: SE 2.2 points


def test_the_interval_resamples_scenarios_not_lines():
    # One scenario dominates; resampling lines would treat its 50 reps as independent.
    rng = np.random.default_rng(11)
    table = synthetic_table(rng, delta=0.1, scenarios=6, reps=50, spread=0.2)
    (result,) = analysis.compare(table, "ref", "trt", metrics=["exact"])
    d = per_scenario_differences(table)
    scenario_se = d.std(ddof=1) / np.sqrt(d.size)
    # a 95% interval over 6 clusters spans roughly 3-4 scenario-level standard errors
    assert result.ci_high - result.ci_low > 2.5 * scenario_se


def test_variance_components_recover_the_truth():
    rng = np.random.default_rng(5)
    reps, spread = 4, 0.1
    table = synthetic_table(rng, delta=0.1, scenarios=4000, reps=reps, spread=spread)
    components = analysis.variance_components(table, "ref", "trt")
    # truth: between = Var(U(-spread, spread)) = spread²/3; within = E[p(1-p)] summed over
    # both variants, for p_ref ~ U(0.2, 0.6) and p_trt = p_ref + 0.1 + U(-0.1, 0.1)
    p_ref = rng.uniform(0.2, 0.6, 1_000_000)
    p_trt = p_ref + 0.1 + rng.uniform(-spread, spread, p_ref.size)
    within = float(np.mean(p_ref * (1 - p_ref)) + np.mean(p_trt * (1 - p_trt)))
    assert components.within == pytest.approx(within, rel=0.05)
    assert components.between == pytest.approx(spread**2 / 3, abs=0.004)


def test_the_power_helper_predicts_simulated_power():
    rng = np.random.default_rng(99)
    delta = 0.15
    pilot = synthetic_table(rng, delta=delta, scenarios=3000, reps=REPS)
    components = analysis.variance_components(pilot, "ref", "trt")
    (plan,) = analysis.scenarios_needed(delta, components, reps_options=(REPS,))
    assert plan.scenarios is not None and 10 < plan.scenarios < 200
    sims = 400
    rejections = sum(
        analysis.paired_t_test(
            per_scenario_differences(synthetic_table(rng, delta, scenarios=plan.scenarios))
        )
        < 0.05
        for _ in range(sims)
    )
    # the helper targets 80% power; Monte Carlo SE is 2 points
    assert 0.73 <= rejections / sims <= 0.88


# --- several difficulty distributions (bench/sim_stats.py) -----------------------------

SIMS = 10_000  # Monte Carlo SE of a 5% rate: 0.22 points; of 95% coverage: 0.22 points
BY_NAME = {d.name: d for d in sim.DIFFICULTIES}
BETA, UNIFORM = BY_NAME["Beta(0.5, 0.5)"], BY_NAME["U(0.2, 0.6)"]
ALL_OR_NOTHING = BY_NAME["all-or-nothing"]
MOSTLY = BY_NAME["80% all-or-nothing, 20% U(0, 1)"]


def null_differences(difficulty, reps: int, sims: int = SIMS) -> np.ndarray:
    rng = np.random.default_rng([2026, sim.DIFFICULTIES.index(difficulty), reps])
    return sim.draw_differences(rng, difficulty, sims, reps)


def check_null(difficulty, reps: int) -> float:
    d = null_differences(difficulty, reps)
    p, low, high = stats.paired_t_batch(d)
    excluded = np.array([stats.excludes_zero((lo, hi)) for lo, hi in zip(low, high, strict=True)])
    # the interval is the test's inversion: the same runs, not just the same rate
    assert np.array_equal(excluded, p < 0.05)
    return float(np.mean(p < 0.05))


def test_u_shaped_difficulty_t_test_and_interval_reject_at_the_nominal_rate():
    # the audit's case: the percentile bootstrap excluded zero 7.6% of the time here
    assert 0.035 <= check_null(BETA, 3) <= 0.065


@pytest.mark.parametrize("reps", [1, 3, 5])
@pytest.mark.parametrize("difficulty", [BETA, UNIFORM], ids=lambda d: d.name)
def test_null_rejection_is_nominal_with_graded_difficulty(difficulty, reps):
    assert 0.035 <= check_null(difficulty, reps) <= 0.065


@pytest.mark.parametrize("reps", [1, 3, 5])
def test_null_rejection_with_all_or_nothing_scenarios(reps):
    # every rate is 0 or 1, so with no effect every d_s is exactly 0: nothing to reject
    assert check_null(ALL_OR_NOTHING, reps) == 0.0
    # mostly all-or-nothing: few scenarios differ, and the t-test is conservative
    # (measured 0.4-1.0%); it must not exceed the level
    assert check_null(MOSTLY, reps) <= 0.065


def sign_flip_rate(difficulty, reps: int, sims: int) -> float:
    d = null_differences(difficulty, reps)[:sims]
    return float(
        np.mean([stats.sign_flip_test(r, n_perm=2000, seed=i) < 0.05 for i, r in enumerate(d)])
    )


def test_the_reported_sign_flip_p_is_calibrated_with_u_shaped_difficulty():
    # the bar: 20 scenarios x 3 reps, Beta(0.5, 0.5) difficulty, 5% +- 1.5 points.
    # The mid-p (ties count half) is close to it (bench/sim_stats.py prints 4.5%); the
    # plain p, about 2%, was too conservative.
    assert 0.035 <= sign_flip_rate(BETA, 3, 2000) <= 0.065


@pytest.mark.slow  # about 10 s in all: exact enumeration of up to 2^16 sign patterns per run
@pytest.mark.parametrize("reps", [1, 3, 5])
@pytest.mark.parametrize("difficulty", sim.DIFFICULTIES, ids=lambda d: d.name)
def test_the_sign_flip_test_never_exceeds_its_bound(difficulty, reps):
    # the mid-p; conservative where ties dominate (1 rep, all-or-nothing scenarios)
    assert sign_flip_rate(difficulty, reps, 2000) <= 0.065


def coverage(difficulty, reps: int, effect: float) -> tuple[float, float, int]:
    """(coverage over all runs, coverage over runs not warned, how many not warned)."""
    rng = np.random.default_rng([2026, sim.DIFFICULTIES.index(difficulty), reps, int(effect * 100)])
    d = sim.draw_differences(rng, difficulty, SIMS, reps, effect)
    truth = difficulty.true_difference(effect)
    _, low, high = stats.paired_t_batch(d)
    covered = (low <= truth) & (truth <= high)
    unwarned = np.array([stats.few_differing_warning(row) is None for row in d])
    return float(covered.mean()), float(covered[unwarned].mean()), int(unwarned.sum())


def test_true_differences_account_for_clipping():
    assert UNIFORM.true_difference(0.2) == pytest.approx(0.2)  # never clipped
    assert ALL_OR_NOTHING.true_difference(0.1) == pytest.approx(0.05)  # p = 1 cannot rise
    rng = np.random.default_rng(0)
    p = BETA.draw(rng, (2_000_000,))
    assert BETA.true_difference(0.2) == pytest.approx(np.mean(np.clip(p + 0.2, 0, 1) - p), abs=1e-3)
    p = MOSTLY.draw(rng, (2_000_000,))
    assert MOSTLY.true_difference(0.1) == pytest.approx(
        np.mean(np.clip(p + 0.1, 0, 1) - p), abs=1e-3
    )


def test_u_shaped_difficulty_interval_covers_about_95_percent():
    for effect in (0.1, 0.2):
        every, _, _ = coverage(BETA, 3, effect)
        assert 0.93 <= every <= 0.97


@pytest.mark.parametrize("effect", [0.1, 0.2])
@pytest.mark.parametrize("reps", [1, 3, 5])
@pytest.mark.parametrize("difficulty", [BETA, UNIFORM], ids=lambda d: d.name)
def test_coverage_with_graded_difficulty(difficulty, reps, effect):
    every, unwarned, _ = coverage(difficulty, reps, effect)
    assert 0.93 <= unwarned <= 0.97
    # one rep of U-shaped difficulty at +20: 92.9% over all runs (28% of runs have fewer
    # than 5 differing scenarios and are warned); every other cell is within 95 ± 2
    assert (0.925 if reps == 1 else 0.93) <= every <= 0.97


@pytest.mark.parametrize("effect", [0.1, 0.2])
@pytest.mark.parametrize("reps", [1, 3, 5])
@pytest.mark.parametrize("difficulty", [ALL_OR_NOTHING, MOSTLY], ids=lambda d: d.name)
def test_coverage_misses_with_all_or_nothing_scenarios_are_flagged(difficulty, reps, effect):
    # Over all runs the t-interval undercovers here (63% with one rep at +10 pp): most
    # scenarios cannot move, so few d_s are non-zero and the mean is far from normal.
    # Those runs carry few_differing_warning; the runs without it cover at least 93%.
    every, unwarned, n_unwarned = coverage(difficulty, reps, effect)
    if n_unwarned >= 500:
        assert unwarned >= 0.93
    assert every >= 0.6
