"""The statistics on synthetic experiments with a known truth (fixed seeds, stated tolerances).

The synthetic design mirrors a real one: each scenario has its own success probability
per variant (scenarios differ in difficulty, and in how much the variant helps), and each
rep is a Bernoulli draw from it. Tolerances are about three Monte Carlo standard errors.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tooltrial import analysis

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


def test_with_no_difference_the_sign_flip_test_never_exceeds_its_level():
    rng = np.random.default_rng(4)
    sims = 400
    rejections = sum(
        analysis.sign_flip_test(differences(rng, 0.0), n_perm=1000, seed=i, exact_up_to=10) < 0.05
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
        (result,) = analysis.compare(table, "ref", "trt", metrics=["exact"], n_boot=1000, seed=i)
        covered += result.ci_low <= 0.15 <= result.ci_high
    assert covered / sims >= 0.87  # 100 runs: SE 2.2 points


def test_the_interval_resamples_scenarios_not_lines():
    # One scenario dominates; resampling lines would treat its 50 reps as independent.
    rng = np.random.default_rng(11)
    table = synthetic_table(rng, delta=0.1, scenarios=6, reps=50, spread=0.2)
    (result,) = analysis.compare(table, "ref", "trt", metrics=["exact"], n_boot=4000)
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
