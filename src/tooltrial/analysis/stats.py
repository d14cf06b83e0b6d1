"""Statistics on per-scenario differences: tests, pass^k, and the plain t helpers.

Statistics respect the design: repetitions are nested in scenarios, so every comparison
first averages the reps of each scenario and variant, then works on the per-scenario
differences ``d_s = mean(treatment) - mean(reference)``:

- estimate: the mean of ``d_s`` (each scenario weighs the same);
- 95% interval and p-value: :func:`~tooltrial.analysis.intervals.difference_interval`
  (a t-interval that allows for stuck, possibly all-or-nothing scenarios and for skewness;
  its p-value is its own test, so the interval excludes zero exactly when p < 0.05). It
  is the one rule for every metric, pass^k and the interaction;
- a second p-value, a paired sign-flip permutation test on ``d_s`` (exact when at most
  16 differences are non-zero), assumes only that with no variant effect each scenario's
  difference is as likely positive as negative. With few reps the differences take few
  values, and then it is conservative; with n non-zero differences its mid-p cannot go
  below 1/2^n (:func:`sign_flip_min_p`), so with 4 or fewer it can never reach 0.05;
- several p-values side by side: :func:`holm` (step-down, controls the family-wise error);
- reliability: :func:`pass_hat_k` (tau-bench's pass^k) and :func:`pass_at_k`, with
  per-task versions for paired differences between variants.

The plain paired t-test and t-interval (:func:`paired_t_test`, :func:`t_interval`,
:func:`paired_t_batch`) and the percentile bootstrap (:func:`cluster_bootstrap_ci`) are
kept for callers and for the simulations that compare methods; the report does not use
them (the plain t-interval is zero-width when no scenario differs and misses on one side
with all-or-nothing scenarios: ``bench/sim_stats.py``). The normal-theory power helpers
(:func:`paired_power`, :func:`scenarios_needed`) are kept likewise; the report's power
advice is ``analysis.power``'s simulation.

All endpoints and estimates that are compared with zero are rounded to
:data:`ROUND_DIGITS` decimals first: averaging thirds leaves float noise such as −5.6e-18
that must not read as "below zero".

:func:`paired_statistics` is the one place that turns per-scenario differences into an
estimate, interval and p-values; the variant comparisons, pass^k and the model × variant
interaction all go through it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

# ROUND_DIGITS and excludes_zero live in ``intervals``; re-exported here for callers
from tooltrial.analysis.intervals import ROUND_DIGITS as ROUND_DIGITS
from tooltrial.analysis.intervals import difference_interval
from tooltrial.analysis.intervals import excludes_zero as excludes_zero
from tooltrial.analysis.intervals import rounded as _rounded

_SMALLEST_P = float(np.finfo(float).tiny)
"""A p-value is never reported as exactly 0 (it would claim certainty); it is floored here."""


@dataclass(frozen=True)
class PairedStatistics:
    """Estimate, 95% interval and p-values of the mean of per-scenario differences."""

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    """The interval's own test (``intervals.difference_interval``)."""
    p_sign_flip: float
    scenarios: int


def paired_statistics(
    differences: np.ndarray, seed: int = 0, *, stuck: int = 0, bound: float | None = None
) -> PairedStatistics:
    """Mean of ``d_s`` with its interval, the interval's test, and the sign-flip p.

    ``bound``: 1 for differences of rates or probabilities (2 for a difference of
    differences), None for other metrics; ``stuck``: the scenarios stuck at 0 or 1 in
    both variants (``intervals.stuck_count``). The p-value is the interval's own, so "the
    interval excludes zero" and "p < 0.05" never disagree."""
    d = np.asarray(differences, dtype=float)
    low, high, p = difference_interval(d, stuck, bound=bound)
    return PairedStatistics(
        estimate=float(_rounded(np.array(d.mean()))) if d.size else math.nan,
        ci_low=low,
        ci_high=high,
        p_value=p,
        p_sign_flip=sign_flip_test(d, seed=seed),
        scenarios=int(d.size),
    )


def cluster_bootstrap_ci(
    differences: np.ndarray, n_boot: int = 10_000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the mean per-scenario difference, resampling scenarios.

    Kept for callers; it runs narrow in small samples (7.6% false exclusions of zero with
    20 scenarios of U-shaped difficulty). Use :func:`t_interval` for reports. Endpoints
    are rounded to :data:`ROUND_DIGITS` decimals.
    """
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
    low, high = _rounded(np.quantile(means, [tail, 1 - tail]))
    return float(low), float(high)


def paired_t_batch(
    differences: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paired t-test and t-interval for each row of a 2-D array of per-scenario differences.

    Returns ``(p, low, high)``, one value per row (rows are independent experiments; the
    simulations call this with thousands of rows). :func:`paired_t_test` and
    :func:`t_interval` are this function on a single row. The mean is rounded to
    :data:`ROUND_DIGITS` decimals before the test, the endpoints after. Rules:

    - fewer than 2 scenarios: p = 1, interval (nan, nan) (no spread can be estimated);
    - every difference the same number c (sd = 0): the t statistic is undefined. p is the
      exact sign-flip p: 1 when c = 0, else 2/2^n (only "all +" and "all −" reach
      |sum|). The interval is the inversion of that test: (c, c) when 2/2^n < 1 − level
      (every other value is rejected), else (−inf, inf) (none is).

    So in every case the interval excludes zero exactly when p < 1 − level.
    """
    d = np.atleast_2d(np.asarray(differences, dtype=float))
    n = d.shape[1]
    if n < 2:
        nan = np.full(d.shape[0], math.nan)
        return np.ones(d.shape[0]), nan, nan.copy()
    mean = _rounded(d.mean(axis=1))
    se = d.std(axis=1, ddof=1) / math.sqrt(n)
    degenerate = _rounded(np.ptp(d, axis=1)) == 0
    se = np.where(degenerate, 1.0, se)  # placeholder; degenerate rows are set below
    t = mean / se
    p = np.maximum(2 * stats.t.sf(np.abs(t), n - 1), _SMALLEST_P)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * se
    low, high = _rounded(mean - half), _rounded(mean + half)
    if degenerate.any():
        flip_p = 2.0 / 2**n  # exact sign-flip p when all n differences are equal
        decided = flip_p < 1 - level
        p[degenerate] = np.where(mean[degenerate] == 0, 1.0, flip_p)
        low[degenerate] = mean[degenerate] if decided else -math.inf
        high[degenerate] = mean[degenerate] if decided else math.inf
    return p, low, high


def t_interval(differences: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The plain t-interval of the mean per-scenario difference: mean ± t_{n−1}·sd/√n
    (not the report's interval; see the module docstring).

    Assumes the scenarios are a sample from the requests you care about and that the mean
    of ``d_s`` is close to normal. It excludes zero exactly when :func:`paired_t_test`
    rejects at 1 − level (the rules for n < 2 and identical differences are in
    :func:`paired_t_batch`). Endpoints rounded to :data:`ROUND_DIGITS` decimals; an empty
    input gives (nan, nan).
    """
    _, low, high = paired_t_batch(np.asarray(differences, dtype=float)[None, :], level)
    return float(low[0]), float(high[0])


def paired_t_test(differences: np.ndarray) -> float:
    """Two-sided p-value of "mean per-scenario difference = 0" (one-sample t on d_s).

    Never exactly 0 (floored at the smallest normal float). Fewer than 2 scenarios, or all
    differences 0: p = 1. Every difference the same non-zero number: the t statistic is
    undefined (0/0 spread), so the exact sign-flip p, 2/2^n, is returned instead — with 4
    scenarios that is 0.125, not "p < 0.001".
    """
    d = np.asarray(differences, dtype=float)
    if d.size < 2:
        return 1.0
    p, _, _ = paired_t_batch(d[None, :])
    return float(p[0])


def sign_flip_min_p(
    n_nonzero: int, n_perm: int = 20_000, exact_up_to: int = 16, mid_p: bool = True
) -> float:
    """The smallest p :func:`sign_flip_test` can return with ``n_nonzero`` non-zero differences.

    Exact test (n ≤ ``exact_up_to``): only the observed signs and their mirror image reach
    the observed |sum| when every difference has the same sign, so 2/2^n, or half of that
    as a mid-p (1/2^n): with 4 or fewer non-zero differences the mid-p can never reach
    0.05 (5 or fewer for the plain p). Random flips (larger n): 1/(n_perm + 1), or half
    that as a mid-p. No non-zero difference: 1.
    """
    if n_nonzero <= 0:
        return 1.0
    exact = (1.0 if mid_p else 2.0) * 0.5**n_nonzero
    random_floor = (0.5 if mid_p else 1.0) / (n_perm + 1)
    return exact if n_nonzero <= exact_up_to else max(exact, random_floor)


@functools.lru_cache(maxsize=32)
def _sign_matrix(n: int) -> np.ndarray:
    """Every assignment of ±1 to n differences, one per row (2^n × n)."""
    bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    signs = (1 - 2 * bits).astype(float)
    signs.flags.writeable = False
    return signs


def sign_flip_test(
    differences: np.ndarray,
    n_perm: int = 20_000,
    seed: int = 0,
    exact_up_to: int = 16,
    mid_p: bool = True,
) -> float:
    """Two-sided p-value of "mean difference = 0" by flipping the sign of each scenario.

    Exact (all 2^n sign patterns) when at most ``exact_up_to`` differences are non-zero,
    else ``n_perm`` random flips. With coarse outcomes (a few reps) many sign patterns tie
    with the observed |sum|, and the plain p — P(|T| ≥ observed) — then rejects well
    under its level (about 2% at 0.05 with 20 scenarios × 3 reps of U-shaped difficulty).
    The mid-p counts ties by half — P(|T| > observed) + ½·P(|T| = observed) — and comes
    close to its level there (``bench/sim_stats.py`` prints the rates); ``mid_p=False``
    gives the plain p, which never exceeds its level. Never below :func:`sign_flip_min_p`.
    Differences are rounded to :data:`ROUND_DIGITS` decimals, so float noise is not
    mistaken for a non-zero difference.
    """
    d = _rounded(np.asarray(differences, dtype=float))
    d = d[d != 0]  # a zero difference is the same either way round
    if d.size == 0:
        return 1.0
    observed = abs(d.sum())
    tol = 1e-9 * max(1.0, observed)
    tie_weight = 0.5 if mid_p else 1.0
    if d.size <= exact_up_to:
        sums = np.abs(_sign_matrix(d.size) @ d)
        above, tied = np.mean(sums > observed + tol), np.mean(np.abs(sums - observed) <= tol)
        return float(above + tie_weight * tied)
    rng = np.random.default_rng(seed)
    above = tied = 0
    for start in range(0, n_perm, 5000):
        sums = np.abs(rng.choice([-1.0, 1.0], size=(min(5000, n_perm - start), d.size)) @ d)
        above += int(np.sum(sums > observed + tol))
        tied += int(np.sum(np.abs(sums - observed) <= tol))
    # the observed pattern counts as one more tie, so p is never 0
    return (above + tie_weight * (tied + 1)) / (n_perm + 1)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order.

    The k-th smallest of m p-values is multiplied by (m − k + 1), made monotone (never
    below the adjusted p before it) and capped at 1. Rejecting where the adjusted p < α
    keeps the chance of any false rejection among the m at most α, under any dependence
    between the tests. A nan is not a test: it stays nan and does not count in m.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m = order.size
    scaled = p[order] * (m - np.arange(m))
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled)) if m else scaled
    return [float(x) for x in out]


def few_differing_warning(differences: np.ndarray, minimum: int = 5) -> str | None:
    """A warning when fewer than ``minimum`` scenarios differ at all between the variants.

    Then the interval and both p-values rest on a handful of scenarios: the interval is
    wide (it allows for stuck scenarios that could switch) and the sign-flip test may be
    unable to reach 0.05. None when enough scenarios differ.
    """
    d = _rounded(np.asarray(differences, dtype=float))
    differing = int(np.count_nonzero(d))
    if differing >= minimum:
        return None
    if differing == 0:
        return f"no scenario of {d.size} differs between the variants: nothing to test"
    floor = sign_flip_min_p(differing)
    reach = "cannot reach 0.05" if floor >= 0.05 else "can reach 0.05"
    return (
        f"only {differing} of {d.size} scenarios differ at all between the variants; "
        f"the interval and p-values rest on those few (the sign-flip test's smallest "
        f"possible p is {floor:.3g}, so it {reach})"
    )


# --- pass^k and pass@k ----------------------------------------------------------------


def _check_counts(successes: Sequence[tuple[int, int]], k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    for c, n in successes:
        if not 0 <= c <= n:
            raise ValueError(f"a task's (successes, trials) must have 0 <= c <= n, got {(c, n)}")


def pass_hat_k_per_task(successes: Sequence[tuple[int, int]], k: int) -> np.ndarray:
    """Per task (c successes in n trials): C(c, k)/C(n, k), nan where n < k.

    The unbiased estimate of the chance that k fresh trials of the task all succeed
    (tau-bench's pass^k), from the task's own n trials. ``n`` counts trials with a result:
    errors (cells with no result) are left out of n and counted separately
    (:func:`trial_counts`).
    """
    _check_counts(successes, k)
    return np.array([_comb_ratio(c, n, k) for c, n in successes], dtype=float)


def pass_at_k_per_task(successes: Sequence[tuple[int, int]], k: int) -> np.ndarray:
    """Per task (c, n): 1 − C(n − c, k)/C(n, k), nan where n < k.

    The unbiased estimate of the chance that at least one of k fresh trials succeeds.
    """
    _check_counts(successes, k)
    return np.array([1 - _comb_ratio(n - c, n, k) for c, n in successes], dtype=float)


def _comb_ratio(a: int, n: int, k: int) -> float:
    """C(a, k)/C(n, k) for a ≤ n, as the product of (a − i)/(n − i): no big integers, so
    it stays cheap with hundreds of reps. nan where n < k."""
    if n < k:
        return math.nan
    if a < k:
        return 0.0
    i = np.arange(k, dtype=float)
    return float(np.prod((a - i) / (n - i)))


def reliability_ks(most: int) -> list[int]:
    """The k a report shows pass^k for: 1 … 8 and the most reps any scenario has. Agent
    benchmarks report small k; past 8 the curve says little that pass^n does not."""
    return sorted({*range(1, min(most, 8) + 1), most}) if most >= 1 else []


def _task_mean(values: np.ndarray) -> float:
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else math.nan


def pass_hat_k(successes: Sequence[tuple[int, int]], k: int) -> float:
    """pass^k averaged over tasks (each task weighs the same); nan if no task has n >= k.

    Tasks with fewer than k trials are excluded; :func:`tasks_below_k` says how many.
    """
    return _task_mean(pass_hat_k_per_task(successes, k))


def pass_at_k(successes: Sequence[tuple[int, int]], k: int) -> float:
    """pass@k averaged over tasks; tasks with n < k excluded (see :func:`tasks_below_k`)."""
    return _task_mean(pass_at_k_per_task(successes, k))


def tasks_below_k(successes: Sequence[tuple[int, int]], k: int) -> int:
    """How many tasks have fewer than k trials with a result (left out of pass^k, pass@k)."""
    return sum(n < k for _, n in successes)


def trial_counts(outcomes: Sequence[bool | None]) -> tuple[int, int, int]:
    """One task's ``(successes, trials, errors)``; None marks an error (a cell with no result).

    Errors are neither successes nor failures: they are left out of the trial count n and
    reported on their own.
    """
    errors = sum(o is None for o in outcomes)
    successes = sum(o is True for o in outcomes)
    return successes, len(outcomes) - errors, errors


def pass_k_differences(
    reference: Sequence[tuple[int, int]],
    treatment: Sequence[tuple[int, int]],
    k: int,
    at_least_one: bool = False,
) -> np.ndarray:
    """Per-task differences treatment − reference in pass^k (pass@k if ``at_least_one``).

    The two sequences list the same tasks in the same order. Tasks where either variant
    has fewer than k trials are dropped. The result feeds :func:`t_interval` and
    :func:`paired_t_test` like per-scenario differences in any other metric.
    """
    if len(reference) != len(treatment):
        raise ValueError("reference and treatment must list the same tasks")
    per_task = pass_at_k_per_task if at_least_one else pass_hat_k_per_task
    d = per_task(treatment, k) - per_task(reference, k)
    return np.asarray(d[~np.isnan(d)], dtype=float)


# --- power ----------------------------------------------------------------------------


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


def within_floor(rates: Sequence[float] | np.ndarray, reps: Sequence[int] | np.ndarray) -> float:
    """A floor for the rep-to-rep variance of a one-rep difference, from the cell rates.

    ``rates`` and ``reps`` hold, per cell (scenario × variant), the observed success rate
    and its number of reps (a single int applies to every cell). Each cell's rate is
    shrunk to (successes + 0.5)/(reps + 1) — the posterior mean under a Jeffreys
    Beta(½, ½) prior — and its Bernoulli variance p(1 − p) taken; the floor is twice the
    mean over cells (a difference adds the noise of both variants, as ``within`` does).

    Why: when reps never disagree the sample variance is 0, and the power table would
    then claim that extra reps buy nothing. A pilot of 3 reps cannot tell a scenario that
    always succeeds from one that succeeds 85% of the time; the floor says so. Only for
    rates in [0, 1]; for other metrics use no floor.
    """
    p = np.asarray(rates, dtype=float)
    r = np.broadcast_to(np.asarray(reps, dtype=float), p.shape)
    if p.size == 0:
        return 0.0
    if np.any((p < 0) | (p > 1)) or np.any(r < 1):
        raise ValueError("within_floor takes rates in [0, 1] and at least 1 rep per cell")
    shrunk = (p * r + 0.5) / (r + 1)
    return float(2 * np.mean(shrunk * (1 - shrunk)))


def split_variance(
    var_d: float, within: float, reps: float, scenarios: int, floor: float = 0.0
) -> VarianceComponents:
    """Split the pilot's Var(d_s) into between + within / reps, with ``within >= floor``.

    ``var_d``: sample variance of the per-scenario differences; ``within``: the pooled
    rep-to-rep variance of a one-rep difference (both variants); ``reps``: the pilot's
    (harmonic mean) reps per cell; ``floor``: from :func:`within_floor`. A pilot with no
    variation at all (``var_d`` and ``within`` both 0) falls back to the worst case
    (within = 0.5, a rate of 50% in both variants) before any floor applies. Otherwise
    within is raised to the floor and between = max(0, var_d − within / reps), so the
    pilot's own design keeps its observed variance wherever it exceeds the floor's share.
    """
    if var_d == 0 and within == 0:
        return VarianceComponents(0.0, 0.5, scenarios, reps, worst_case=True)
    within = max(within, floor)
    between = max(0.0, var_d - within / reps)
    return VarianceComponents(between, within, scenarios, reps)


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
