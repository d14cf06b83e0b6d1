"""The power advice holds (``analysis.power``; ``bench/sim_stats.py --power`` prints the
table): from 20-scenario, 3-rep pilots the advised N for +10 points at 3 reps has 80 ± 7%
true power on average, for uniform, Beta(0.5, 0.5) and 70%-all-or-nothing difficulty; a
1-rep pilot's advice is a range that holds the needed N. Plus: the same data give the
same advice, and a 40-scenario pilot is advised in a few seconds."""

from __future__ import annotations

import time

import numpy as np
import pytest
from support.sim import sim_stats

from tooltrial.analysis import power

sim = sim_stats()


def pilot_from(population, pilot_reps: int, seed: int, scenarios: int = 20) -> power.Pilot:
    rng = np.random.default_rng([seed, sim.AUDIT.index(population), pilot_reps])
    ref, trt = sim.draw_means(rng, population, 1, scenarios, pilot_reps, 0.0)
    counts = [[(round(float(x) * pilot_reps), pilot_reps) for x in row] for row in (ref[0], trt[0])]
    return power.pilot_of(counts[0], counts[1])


@pytest.mark.slow  # about a minute per difficulty
@pytest.mark.parametrize("population", sim.AUDIT, ids=lambda p: p.name)
def test_advice_from_3_rep_pilots_has_80_percent_power(population):
    check = sim.power_check(population, 3, 0.1, 3, pilots=40)
    assert 0.73 <= check.mean_power <= 0.87, check


@pytest.mark.slow
@pytest.mark.parametrize("population", sim.AUDIT, ids=lambda p: p.name)
def test_a_1_rep_pilot_gets_a_range_that_holds_the_needed_n(population):
    check = sim.power_check(population, 1, 0.1, 3, pilots=20)
    lows = [lo for lo, _ in check.ranges if lo is not None]
    highs = [hi for _, hi in check.ranges if hi is not None]
    assert all(lo < hi for lo, hi in check.ranges if lo is not None and hi is not None)
    assert np.median(lows) <= check.needed <= np.median(highs), check
    assert check.contained >= 0.5


def test_seeded_fast_check_all_or_nothing_pilots():
    # 70% all-or-nothing (the audit's worst case: 17-58% power before), +20 points at 3
    # reps; the true power at each of 8 pilots' advice, 2,000 simulated studies each
    population = sim.AUDIT[2]
    effect = sim.calibrated_effect(population, 0.2)
    powers = []
    for seed in range(8):
        pilot = pilot_from(population, 3, seed)
        advised = power.scenarios_needed(power.pilot_population(pilot), 3, 0.2, [seed, 1])
        assert advised is not None
        powers.append(sim.true_power(population, advised, 3, effect, 2000, seed))
    assert 0.70 <= float(np.mean(powers)) <= 0.90


def test_a_1_rep_pilot_says_what_it_cannot_tell():
    advice = power.advise(pilot_from(sim.AUDIT[2], 1, 3), "success", seed=0)
    assert any("1 rep" in note for note in advice.notes)
    assert all(p.scenarios is None and p.low is not None for p in advice.plans)
    assert all(p.high is None or p.low <= p.high for p in advice.plans)  # type: ignore[operator]


def test_same_data_same_advice_in_a_few_seconds():
    pilot = pilot_from(sim.AUDIT[2], 3, 5, scenarios=40)
    start = time.perf_counter()
    first = power.advise(pilot, "success", seed=0)
    elapsed = time.perf_counter() - start
    assert power.advise(pilot, "success", seed=0) == first
    assert elapsed < 10  # about 1 s alone; the suite shares 2 cores
    plans = {(p.difference, p.reps): p.scenarios for p in first.plans}
    assert all(n is not None for n in plans.values())
    # more reps never need more scenarios, a larger difference never more
    for d in (0.1, 0.2):
        needs = [plans[(d, r)] for r in power.REPS_OPTIONS]
        assert needs == sorted(needs, reverse=True) or max(needs) - min(needs) <= 3
    assert all(plans[(0.2, r)] <= plans[(0.1, r)] for r in power.REPS_OPTIONS)
