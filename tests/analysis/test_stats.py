"""The statistics helpers, each against a reference implementation or a hand computation."""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from tooltrial.analysis import stats

# --- t-interval and t-test ----------------------------------------------------------


def test_t_interval_is_mean_plus_minus_t_times_standard_error():
    d = np.array([0.0, 1 / 3, -1 / 3, 2 / 3, 1 / 3, 0.0, 1.0, -1 / 3])
    low, high = stats.t_interval(d)
    ref = sps.t.interval(0.95, d.size - 1, loc=d.mean(), scale=sps.sem(d))
    assert (low, high) == pytest.approx(ref, abs=1e-12)
    low90, high90 = stats.t_interval(d, level=0.9)
    assert low < low90 < high90 < high


def test_the_t_test_matches_scipy():
    rng = np.random.default_rng(3)
    d = rng.integers(-3, 4, 15) / 3
    assert stats.paired_t_test(d) == pytest.approx(sps.ttest_1samp(d, 0.0).pvalue, rel=1e-9)


@pytest.mark.parametrize("seed", range(200))
def test_the_interval_excludes_zero_exactly_when_the_t_test_rejects(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 30))
    d = rng.integers(-3, 4, n) / 3 + rng.choice([0.0, 0.3])
    p = stats.paired_t_test(d)
    assert stats.excludes_zero(stats.t_interval(d)) == (p < 0.05)


def test_float_noise_is_not_below_zero():
    # thirds that cancel leave a mean of about -5.6e-18 when summed in this order
    d = np.array([1 / 3, 1 / 3, 1 / 3, -1.0] * 5 + [0.1, 0.2, -0.3])
    assert d.mean() != 0
    low, high = stats.t_interval(np.zeros(20) + d.mean())
    assert (low, high) == (0.0, 0.0)
    assert not stats.excludes_zero((-5.6e-18, 0.2))
    assert not stats.excludes_zero((0.1, math.nan))
    assert stats.excludes_zero((-0.3, -1e-9))
    assert stats.cluster_bootstrap_ci(np.full(4, 1 / 3) - 1 / 3 + d.mean())[0] == 0.0


def test_p_is_never_zero():
    d = np.full(200, 0.5) + np.linspace(0, 1e-6, 200)
    assert stats.paired_t_test(d) > 0


def test_identical_non_zero_differences_get_the_exact_sign_flip_p():
    # the t statistic is 0/0; 4 scenarios all +1/3: only ++++ and ---- reach |sum| = 4/3
    assert stats.paired_t_test(np.full(4, 1 / 3)) == 0.125
    assert stats.sign_flip_test(np.full(4, 1 / 3), mid_p=False) == 0.125
    assert stats.sign_flip_test(np.full(4, 1 / 3)) == 0.0625  # mid-p: the tie counts half
    assert stats.t_interval(np.full(4, 1 / 3)) == (-math.inf, math.inf)
    assert stats.paired_t_test(np.full(6, -1.0)) == 2 / 64
    assert stats.t_interval(np.full(6, -1.0)) == (-1.0, -1.0)
    assert stats.paired_t_test(np.full(30, 1.0)) == 2 / 2**30
    assert stats.paired_t_test(np.zeros(8)) == 1.0
    assert stats.t_interval(np.zeros(8)) == (0.0, 0.0)


def test_too_few_scenarios():
    assert stats.paired_t_test(np.array([0.5])) == 1.0
    assert all(math.isnan(x) for x in stats.t_interval(np.array([0.5])))
    assert all(math.isnan(x) for x in stats.t_interval(np.array([])))
    assert not stats.excludes_zero(stats.t_interval(np.array([0.5])))


def test_the_batch_is_the_single_row_function():
    rng = np.random.default_rng(8)
    rows = rng.integers(-3, 4, (50, 12)) / 3
    rows[0] = 1 / 3  # a degenerate row
    p, low, high = stats.paired_t_batch(rows)
    for i, row in enumerate(rows):
        assert p[i] == stats.paired_t_test(row)
        assert (low[i], high[i]) == stats.t_interval(row)


# --- sign-flip ----------------------------------------------------------------------


def test_sign_flip_smallest_reachable_p():
    plain = functools.partial(stats.sign_flip_min_p, mid_p=False)
    assert plain(0) == 1.0 and stats.sign_flip_min_p(0) == 1.0
    assert plain(1) == 1.0
    assert plain(5) == 2 / 32  # > 0.05: five scenarios can never reach it
    assert plain(6) == 2 / 64
    assert plain(20) == 1 / 20_001  # random flips beyond 16
    assert stats.sign_flip_min_p(4) == 1 / 16  # mid-p: four can never reach 0.05, five can
    assert stats.sign_flip_min_p(5) == 1 / 32
    assert stats.sign_flip_min_p(20) == 0.5 / 20_001
    for n in range(1, 12):
        assert stats.sign_flip_test(np.full(n, 0.5)) == stats.sign_flip_min_p(n)
        same = stats.sign_flip_test(np.full(n, 0.5), mid_p=False)
        assert same == stats.sign_flip_min_p(n, mid_p=False)


def test_mid_p_is_the_plain_p_less_half_the_ties():
    rng = np.random.default_rng(3)
    for _ in range(50):
        d = rng.integers(-3, 4, 12) / 3
        plain, mid = stats.sign_flip_test(d, mid_p=False), stats.sign_flip_test(d)
        nonzero = d[np.round(d, 12) != 0]
        sums = np.abs(stats._sign_matrix(nonzero.size) @ nonzero)
        tied = np.mean(np.abs(sums - abs(nonzero.sum())) <= 1e-9)
        assert mid == pytest.approx(plain - tied / 2) if nonzero.size else mid == plain == 1


def test_sign_flip_ignores_float_noise_zeros():
    d = np.array([1 / 3 + 1 / 3 + 1 / 3 - 1.0, 0.5, 0.5, 0.5])
    assert stats.sign_flip_test(d) == stats.sign_flip_test(np.array([0.5, 0.5, 0.5]))


def test_few_differing_scenarios_are_flagged():
    d = np.array([0.0] * 17 + [1 / 3, 2 / 3, -1 / 3])
    warning = stats.few_differing_warning(d)
    assert warning is not None
    assert "only 3 of 20" in warning and "cannot reach 0.05" in warning
    assert stats.few_differing_warning(np.array([0.0] * 10 + [0.5] * 5)) is None
    assert "no scenario of 4 differs" in (stats.few_differing_warning(np.zeros(4)) or "")


# --- Holm ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(30))
def test_holm_matches_statsmodels(seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 0.2, int(rng.integers(1, 12))) ** rng.uniform(0.5, 3)
    if seed % 3 == 0:
        p[: p.size // 2] = p[0]  # ties
    expected = multipletests(p, method="holm")[1]
    assert stats.holm(p.tolist()) == pytest.approx(list(expected), rel=1e-12)


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.2 → ×4, ×3, ×2, ×1 = 0.04, 0.09, 0.08→0.09 (monotone), 0.2
    assert stats.holm([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert stats.holm([0.5, 0.6]) == [1.0, 1.0]  # capped
    assert stats.holm([]) == []
    out = stats.holm([0.01, math.nan, 0.02])
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)


# --- pass^k and pass@k --------------------------------------------------------------


TASKS = [(3, 4), (1, 4), (2, 2), (0, 3), (1, 1)]  # (successes, trials) per task


def test_pass_hat_k_by_hand():
    # k = 2: C(3,2)/C(4,2) = 3/6; C(1,2)/C(4,2) = 0; C(2,2)/C(2,2) = 1; 0/C(3,2) = 0;
    # (1, 1) has n < k and is excluded → mean of 1/2, 0, 1, 0 over 4 tasks = 3/8
    per_task = stats.pass_hat_k_per_task(TASKS, 2)
    assert per_task[:4].tolist() == [0.5, 0.0, 1.0, 0.0] and math.isnan(per_task[4])
    assert stats.pass_hat_k(TASKS, 2) == float(Fraction(3, 8))
    assert stats.tasks_below_k(TASKS, 2) == 1
    # k = 1 is the plain success rate per task: 3/4, 1/4, 1, 0, 1 → 3/5
    assert stats.pass_hat_k(TASKS, 1) == pytest.approx(float(Fraction(3, 5)))
    # k = 3: C(3,3)/C(4,3) = 1/4; 0; (2,2) excluded; 0/1; (1,1) excluded → 1/12
    assert stats.pass_hat_k(TASKS, 3) == pytest.approx(float(Fraction(1, 12)))
    assert stats.tasks_below_k(TASKS, 3) == 2


def test_pass_at_k_by_hand():
    # k = 2: 1 − C(1,2)/C(4,2) = 1; 1 − C(3,2)/C(4,2) = 1/2; 1 − 0/1 = 1;
    # 1 − C(3,2)/C(3,2) = 0; (1, 1) excluded → (1 + 1/2 + 1 + 0)/4 = 5/8
    assert stats.pass_at_k(TASKS, 2) == pytest.approx(float(Fraction(5, 8)))
    assert stats.pass_at_k(TASKS, 1) == pytest.approx(stats.pass_hat_k(TASKS, 1))


def test_pass_k_is_nan_when_no_task_has_enough_trials():
    assert math.isnan(stats.pass_hat_k([(1, 1)], 2))
    with pytest.raises(ValueError):
        stats.pass_hat_k([(3, 2)], 1)
    with pytest.raises(ValueError):
        stats.pass_hat_k([(1, 2)], 0)


def test_errors_are_left_out_of_n_and_counted():
    assert stats.trial_counts([True, None, False, True, None]) == (2, 3, 2)
    assert stats.trial_counts([]) == (0, 0, 0)


def test_paired_pass_k_differences_feed_the_t_interval():
    reference = [(1, 4), (2, 4), (0, 4), (4, 4), (1, 1)]
    treatment = [(3, 4), (2, 4), (1, 4), (4, 4), (1, 4)]
    d = stats.pass_k_differences(reference, treatment, 2)
    # per task: 3/6 − 0, 1/6 − 1/6, 0 − 0, 1 − 1; the last task (reference n = 1) dropped
    assert d == pytest.approx([0.5, 0.0, 0.0, 0.0])
    d_at = stats.pass_k_differences(reference, treatment, 2, at_least_one=True)
    # pass@2: 1 − C(1,2)/6 = 1 vs 1 − C(3,2)/6 = 1/2; 5/6 vs 5/6; 1/2 vs 0; 1 vs 1
    assert d_at == pytest.approx([0.5, 0.0, 0.5, 0.0])
    low, high = stats.t_interval(d)
    assert low < d.mean() < high
    with pytest.raises(ValueError):
        stats.pass_k_differences(reference, treatment[:2], 2)


# --- power with a floor -------------------------------------------------------------


def test_within_floor_by_hand():
    # 3 reps, rate 0 → (0 + 0.5)/4 = 1/8 → 7/64; rate 1 → 7/8 → 7/64; rate 1/3 → 3/8 → 15/64
    assert stats.within_floor([0.0, 1.0], 3) == pytest.approx(2 * 7 / 64)
    assert stats.within_floor([0.0, 1 / 3], [3, 3]) == pytest.approx(7 / 64 + 15 / 64)
    assert stats.within_floor([], 3) == 0.0
    with pytest.raises(ValueError):
        stats.within_floor([1.5], 3)


def test_unanimous_reps_no_longer_make_every_reps_option_alike():
    # the audit's case: reps never disagree; one scenario +1, one −1, 18 at 0, 3 reps
    d = np.array([1.0, -1.0] + [0.0] * 18)
    var_d = float(d.var(ddof=1))
    old = stats.split_variance(var_d, 0.0, 3, 20)
    old_plans = [p.scenarios for p in stats.scenarios_needed(0.1, old)]
    assert len(set(old_plans)) == 1  # the bug: "85 scenarios" for 1, 3, 5 and 10 reps
    rates = [1.0, 0.0, 0.0, 1.0] + [0.0] * 36
    new = stats.split_variance(var_d, 0.0, 3, 20, floor=stats.within_floor(rates, 3))
    plans = [p.scenarios for p in stats.scenarios_needed(0.1, new)]
    assert plans == sorted(plans, reverse=True) and len(set(plans)) == 4
    (at_pilot,) = stats.scenarios_needed(0.1, new, reps_options=(3,))
    assert at_pilot.scenarios == old_plans[0]  # the pilot's own design keeps its variance


def test_a_pilot_without_variation_still_plans_for_the_worst_case():
    comp = stats.split_variance(0.0, 0.0, 3, 20, floor=0.2)
    assert comp.worst_case and comp.within == 0.5 and comp.between == 0.0


def test_pass_k_uses_the_exact_binomial_ratio_without_big_integers():
    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(1, 300))
        c, k = int(rng.integers(0, n + 1)), int(rng.integers(1, n + 1))
        want = math.comb(c, k) / math.comb(n, k)
        assert stats.pass_hat_k_per_task([(c, n)], k)[0] == pytest.approx(
            want, rel=1e-9, abs=1e-300
        )
        want_at = 1 - math.comb(n - c, k) / math.comb(n, k)
        assert stats.pass_at_k_per_task([(c, n)], k)[0] == pytest.approx(want_at, rel=1e-9)


def test_a_report_shows_small_k_and_n():
    assert stats.reliability_ks(3) == [1, 2, 3]
    assert stats.reliability_ks(8) == list(range(1, 9))
    assert stats.reliability_ks(250) == [*range(1, 9), 250]
    assert stats.reliability_ks(0) == []
