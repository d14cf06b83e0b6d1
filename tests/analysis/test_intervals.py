"""The one interval (``analysis.intervals``): never zero-width for a rate, its p-value is
its own test, the same data give the same interval wherever they appear, and (seeded,
small) it covers where the plain t-interval did not."""

from __future__ import annotations

import math

import numpy as np
import pytest
from support.sim import sim_stats

from tooltrial.analysis import intervals, stats
from tooltrial.analysis.intervals import difference_interval, excludes_zero, stuck_count


@pytest.mark.parametrize("n", [2, 3, 8, 20, 50])
def test_no_scenario_differing_is_never_a_zero_width_interval(n):
    # the audit's case: all-or-nothing scenarios, none switched: d_s = 0 everywhere
    for stuck in (0, n // 2, n):
        low, high, p = difference_interval(np.zeros(n), stuck)
        assert low < 0 < high and p == 1.0
    assert stats.t_interval(np.zeros(8)) == (0.0, 0.0)  # what the report printed before


def test_identical_non_zero_differences_get_a_finite_interval_not_the_whole_range():
    # four scenarios each +1/3 (not stuck): before, (−inf, inf) shown as [–, –] or
    # [−100, +100] depending on where it appeared
    low, high, _ = difference_interval(np.full(4, 1 / 3), 0)
    assert -1 < low < 1 / 3 < high < 1


def test_an_interval_from_one_scenario_is_the_whole_range_of_a_rate():
    assert difference_interval(np.array([0.5]), 0) == (-1.0, 1.0, 1.0)
    assert difference_interval(np.array([]), 0) == (-1.0, 1.0, 1.0)
    low, high, p = difference_interval(np.array([0.5]), 0, bound=None)
    assert math.isnan(low) and math.isnan(high) and p == 1.0


@pytest.mark.parametrize("seed", range(60))
def test_the_interval_excludes_zero_exactly_when_p_is_below_005(seed):
    rng = np.random.default_rng(seed)
    n, reps = int(rng.integers(2, 40)), int(rng.integers(1, 6))
    ref = rng.binomial(reps, rng.random(n)) / reps
    trt = rng.binomial(reps, np.clip(rng.random(n) + rng.choice([0, 0.3]), 0, 1)) / reps
    low, high, p = difference_interval(trt - ref, stuck_count(ref, trt))
    assert excludes_zero((low, high)) == (p < 0.05)
    assert -1 <= low <= high <= 1 and high > low
    tokens = rng.normal(rng.choice([0, 30]), 40, n)
    low, high, p = difference_interval(tokens, bound=None)
    assert excludes_zero((low, high)) == (p < 0.05)


def test_stuck_scenarios_are_those_at_0_or_1_in_both_variants():
    ref = np.array([0, 1, 0, 1 / 3, 1, 0.0])
    trt = np.array([0, 1, 1, 1 / 3, 2 / 3, 0.0])
    assert stuck_count(ref, trt) == 3
    assert intervals.pseudo_weight(3, 6) == pytest.approx(0.25)  # (3/6)² vs 1/6
    assert intervals.pseudo_weight(1, 20) == pytest.approx(1 / 20)


def test_without_stuck_scenarios_or_skew_it_is_the_t_interval():
    d = np.array([-0.4, -0.2, 0.0, 0.2, 0.4, 0.1, -0.1, 0.3, -0.3, 0.0] * 4)
    low, high, p = difference_interval(d, 0, bound=None)
    assert (low, high) == pytest.approx(stats.t_interval(d), abs=1e-9)
    assert p == pytest.approx(stats.paired_t_test(d))


def test_fewer_than_20_scenarios_are_warned():
    assert intervals.small_design_warning(19) is not None
    assert "8 scenarios" in (intervals.small_design_warning(8) or "")
    assert intervals.small_design_warning(20) is None


def test_one_seeded_cell_where_the_t_interval_missed():
    # 70% all-or-nothing, 20 scenarios × 5 reps, +10 points (the audit: 88.5%); 2,000
    # runs, Monte Carlo SE 0.5 points. bench/sim_stats.py prints the whole grid.
    sim = sim_stats()
    population = sim.AUDIT[2]
    cell = sim.audit_cell(population, 20, 5, 0.1, sims=2000)
    assert cell.t_coverage < 0.91  # the plain t-interval, the same runs
    assert 0.93 <= cell.coverage <= 0.97
    assert cell.zero_width == 0.0
