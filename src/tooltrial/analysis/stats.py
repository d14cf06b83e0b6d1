"""Statistics on per-scenario differences: intervals, tests and power.

Statistics respect the design: repetitions are nested in scenarios, so every comparison
first averages the reps of each scenario and variant, then works on the per-scenario
differences ``d_s = mean(treatment) - mean(reference)``:

- estimate: the mean of ``d_s`` (each scenario weighs the same);
- 95% interval: cluster bootstrap, resampling scenarios with replacement (percentile);
- p-value: paired t-test on ``d_s`` (one-sample t-test of "mean d_s = 0"); it assumes
  the mean of the per-scenario differences is close to normal, which with 20 or more
  scenarios holds well enough for bounded rates (checked by simulation in the tests);
- a second p-value, a paired sign-flip permutation test on ``d_s`` (exact when at most
  16 differences are non-zero), assumes only that with no variant effect each scenario's
  difference is as likely positive as negative. With few reps the differences take few
  values, and then it is conservative (rejects less often than 5% at 0.05).

:func:`paired_statistics` is the one place that turns per-scenario differences into an
estimate, interval and p-values; the variant comparisons and the model × variant
interaction both go through it, so an improvement there improves both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class PairedStatistics:
    """Estimate, 95% interval and p-values of the mean of per-scenario differences."""

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    """Paired t-test across scenarios."""
    p_sign_flip: float
    scenarios: int


def paired_statistics(
    differences: np.ndarray, n_boot: int = 10_000, seed: int = 0
) -> PairedStatistics:
    """Mean of ``d_s`` with its cluster-bootstrap interval, t-test and sign-flip p-values."""
    d = np.asarray(differences, dtype=float)
    low, high = cluster_bootstrap_ci(d, n_boot=n_boot, seed=seed)
    return PairedStatistics(
        estimate=float(d.mean()) if d.size else math.nan,
        ci_low=low,
        ci_high=high,
        p_value=paired_t_test(d),
        p_sign_flip=sign_flip_test(d, seed=seed),
        scenarios=int(d.size),
    )


def cluster_bootstrap_ci(
    differences: np.ndarray, n_boot: int = 10_000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the mean per-scenario difference, resampling scenarios."""
    d = np.asarray(differences, dtype=float)
    if d.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for start in range(0, n_boot, 2000):  # chunks keep memory flat for large designs
        stop = min(n_boot, start + 2000)
        idx = rng.integers(0, d.size, size=(stop - start, d.size))
        means[start:stop] = d[idx].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def sign_flip_test(
    differences: np.ndarray, n_perm: int = 20_000, seed: int = 0, exact_up_to: int = 16
) -> float:
    """Two-sided p-value of "mean difference = 0" by flipping the sign of each scenario."""
    d = np.asarray(differences, dtype=float)
    d = d[d != 0]  # a zero difference is the same either way round
    if d.size == 0:
        return 1.0
    observed = abs(d.sum())
    tol = 1e-9 * max(1.0, observed)
    if d.size <= exact_up_to:
        signs = 1 - 2 * ((np.arange(2**d.size)[:, None] >> np.arange(d.size)) & 1)
        return float(np.mean(np.abs(signs @ d) >= observed - tol))
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, n_perm, 5000):
        signs = rng.choice([-1.0, 1.0], size=(min(5000, n_perm - start), d.size))
        hits += int(np.sum(np.abs(signs @ d) >= observed - tol))
    return (hits + 1) / (n_perm + 1)


def paired_t_test(differences: np.ndarray) -> float:
    """Two-sided p-value of "mean per-scenario difference = 0" (one-sample t on d_s)."""
    d = np.asarray(differences, dtype=float)
    if d.size < 2 or not d.any():
        return 1.0
    if np.ptp(d) == 0:  # every scenario moved by the same amount: no doubt left
        return 0.0
    return float(stats.ttest_1samp(d, 0.0).pvalue)


@dataclass(frozen=True)
class VarianceComponents:
    """Var(d_s) with r reps = between + within / r."""

    between: float
    """Variance of the true per-scenario differences (scenarios differ in difficulty)."""
    within: float
    """Variance of a one-rep difference that comes from rep-to-rep noise alone."""
    pilot_scenarios: int
    pilot_reps: float
    worst_case: bool = False
    """The pilot showed no variation at all (e.g. every answer wrong), which says nothing
    about the next study; ``within`` then assumes the largest possible rep-to-rep
    variance of a rate (p = 0.5 in both variants)."""


def paired_power(
    delta: float, scenarios: int, reps: int, components: VarianceComponents, alpha: float = 0.05
) -> float:
    """Power of a two-sided paired t-test on per-scenario differences (noncentral t)."""
    if scenarios < 2:
        return 0.0
    sd = math.sqrt(components.between + components.within / reps)
    if sd == 0:
        return 1.0 if delta != 0 else alpha
    df = scenarios - 1
    ncp = abs(delta) / sd * math.sqrt(scenarios)
    crit = stats.t.ppf(1 - alpha / 2, df)
    wrong_side = stats.nct.cdf(-crit, df, ncp)  # tiny; scipy returns nan for large ncp
    return float(stats.nct.sf(crit, df, ncp) + np.nan_to_num(wrong_side))


@dataclass(frozen=True)
class PowerPlan:
    reps: int
    scenarios: int | None
    """Fewest scenarios that reach the target power (None: more than the search limit)."""


def scenarios_needed(
    delta: float,
    components: VarianceComponents,
    reps_options: Sequence[int] = (1, 3, 5, 10),
    target: float = 0.8,
    alpha: float = 0.05,
    limit: int = 10_000,
) -> list[PowerPlan]:
    """For each number of reps, the fewest scenarios that detect ``delta`` with ``target``
    power. Assumes new scenarios resemble the pilot's (the same variance components)."""
    plans = []
    for reps in reps_options:
        low, high = 2, limit
        if paired_power(delta, high, reps, components, alpha) < target:
            plans.append(PowerPlan(reps, None))
            continue
        while low < high:  # power rises with the number of scenarios
            mid = (low + high) // 2
            if paired_power(delta, mid, reps, components, alpha) >= target:
                high = mid
            else:
                low = mid + 1
        plans.append(PowerPlan(reps, low))
    return plans
