"""The report's interval over the audit's whole grid (``bench/sim_stats.py`` prints it):
95 ± 2% coverage at 20 and 50 scenarios for uniform, Beta(0.5, 0.5) and 70%-all-or-
nothing difficulty at +10 and +20 points; at most about 5% false positives with no
difference; at 8 scenarios conservative (and warned: ``intervals.small_design_warning``).
10,000 runs per cell (Monte Carlo SE 0.22 points). A fast, seeded cell is in
``test_intervals.py``."""

from __future__ import annotations

import pytest
from support.sim import sim_stats

from tooltrial.analysis import intervals

sim = sim_stats()
SIMS = 10_000


@pytest.mark.slow  # 54 cells of 10,000 simulated experiments: about 30 s
@pytest.mark.parametrize("effect", [0.1, 0.2])
@pytest.mark.parametrize("reps", [1, 3, 5])
@pytest.mark.parametrize("scenarios", [20, 50])
@pytest.mark.parametrize("population", sim.AUDIT, ids=lambda p: p.name)
def test_coverage_is_95_plus_minus_2_from_20_scenarios(population, scenarios, reps, effect):
    cell = sim.audit_cell(population, scenarios, reps, effect, SIMS)
    assert 0.93 <= cell.coverage <= 0.97
    assert cell.zero_width == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("reps", [1, 3, 5])
@pytest.mark.parametrize("scenarios", [8, 20, 50])
@pytest.mark.parametrize("population", sim.AUDIT, ids=lambda p: p.name)
def test_false_positives_stay_near_5_percent(population, scenarios, reps):
    cell = sim.audit_cell(population, scenarios, reps, 0.0, SIMS)
    assert 1 - cell.coverage <= 0.06


@pytest.mark.slow
@pytest.mark.parametrize("effect", [0.1, 0.2])
@pytest.mark.parametrize("reps", [1, 3, 5])
@pytest.mark.parametrize("population", sim.AUDIT, ids=lambda p: p.name)
def test_at_8_scenarios_it_is_conservative_and_warned(population, reps, effect):
    cell = sim.audit_cell(population, 8, reps, effect, SIMS)
    assert cell.coverage >= 0.95  # wider than it need be, never narrower
    assert intervals.small_design_warning(8) is not None
