"""The one interval and test of a mean per-scenario difference (every metric, every format).

A comparison averages each scenario's reps per variant and works on the per-scenario
differences ``d_s``; :func:`difference_interval` turns them into a 95% interval and a
p-value, and the p-value is the interval's own test (the interval excludes zero exactly
when p < 1 − level). The headline, every metric row, pass^k and the model × variant
interaction all call it, so the same data give the same interval wherever they appear.

The method, for a difference of rates (``bound`` = 1; pass^k and pass@k too):

1. **Stuck scenarios.** A scenario whose reps all failed in both variants (or all
   succeeded) shows ``d_s = 0``, yet it could be one the treatment switches from never to
   always (an all-or-nothing task): no rep shows that, and with few scenarios no
   scenario may have switched in this run at all. The interval allows for it: it adds a
   pseudo-scenario of weight ``w = max(1/n, PSEUDO_WEIGHT · (stuck/n)²)``, half at +1
   and half at −1 (one switch either way). The weight grows with the square of the
   stuck share: a few stuck scenarios among graded ones are most likely near-certain,
   not all-or-nothing; when most are stuck, the design is all-or-nothing. The floor
   1/n keeps an interval from ever being zero-width: "no scenario differs" is never
   "the difference is exactly 0".
2. **t-interval** on the augmented sample: its mean ``m``, ``se = s/√N`` (N = n + w),
   the t quantile with n − 1 degrees of freedom.
3. **Skewness**: half of Hall's (1992) correction, with the augmented sample's
   skewness γ: the studentized mean T is transformed by the monotone
   ``g(T) = T + aT² + a²T³/3 + b`` (a = γ/(3√N), b = γ/(6√N)) before it is compared with
   the t quantile. An all-or-nothing effect makes ``d_s`` skewed (a few scenarios at +1,
   many at 0), and a plain t-interval then misses on one side; half strength, because
   the skewness of a handful of ±1 differences is noisy, and at full strength the test
   rejected 9% of the time with no effect (70% all-or-nothing, 1 rep, 50 scenarios).
4. Clipped to [−1, 1] (a difference of rates lies there; ±2 for a difference of
   differences).

``PSEUDO_WEIGHT`` and ``SKEW_SHRINK`` were chosen by simulation (``bench/sim_stats.py``):
with them the 95% interval covers the true difference 95 ± 2% of the time at 20 and 50
scenarios, 1 to 5 reps, for uniform, Beta(0.5, 0.5) and 70%-all-or-nothing difficulty,
with misses on both sides, and the test rejects at most about 5% with no effect. Below 20
scenarios it covers more often than 95% (it is wider than it need be), and the report
says so (:func:`small_design_warning`).

For a metric that is not a rate (tokens, time, turns) there is no bound and no stuck
scenario: the same t-interval with half of Hall's correction; when every scenario
differs by exactly the same amount (no spread at all: input tokens fixed by design), the
interval is the inversion of the exact sign-flip test — that one value when 2/2^n <
1 − level, else the whole line.

Guarantee (kept by ``tests/analysis/test_intervals.py``): for any data, the interval
excludes zero exactly when p < 1 − level, and it is never zero-width for a bounded
metric.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

ROUND_DIGITS = 12
"""Decimals kept before comparing an estimate or an interval endpoint with zero."""
PSEUDO_WEIGHT = 1.0
"""The pseudo-scenario's weight when every scenario is stuck: one scenario's worth."""
SKEW_SHRINK = 0.5
"""The share of Hall's skewness correction applied."""
SMALL_DESIGN = 20
"""Below this many scenarios the interval is conservative (it covers more than 95%)."""
_SMALLEST_P = float(np.finfo(float).tiny)
"""A p-value is never reported as exactly 0 (it would claim certainty); it is floored here."""


def rounded(x: np.ndarray) -> np.ndarray:
    """Round to :data:`ROUND_DIGITS` decimals; + 0.0 turns −0.0 into 0.0."""
    return np.round(x, ROUND_DIGITS) + 0.0


def stuck_count(reference: np.ndarray, treatment: np.ndarray) -> int:
    """Scenarios whose per-scenario rate is 0 in both variants, or 1 in both (every rep
    failed, or every rep succeeded, in both)."""
    ref, trt = np.asarray(reference, dtype=float), np.asarray(treatment, dtype=float)
    both = rounded(ref) == rounded(trt)
    return int(np.count_nonzero(both & ((rounded(ref) == 0) | (rounded(ref) == 1))))


def pseudo_weight(stuck: np.ndarray | int, n: int) -> np.ndarray:
    """The pseudo-scenario's weight, ``max(1/n, PSEUDO_WEIGHT · (stuck/n)²)``."""
    share = np.asarray(stuck, dtype=float) / n
    return np.maximum(1.0 / n, PSEUDO_WEIGHT * share**2)


def interval_batch(
    differences: np.ndarray,
    stuck: np.ndarray | None = None,
    *,
    bound: float | None = 1.0,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(p, low, high)`` for each row of a 2-D array of per-scenario differences.

    Rows are independent experiments (the simulations and the power advice call this with
    thousands of rows); ``stuck`` holds each row's stuck count; ``bound``: the
    differences lie in [−bound, bound] (1 for rates; 2 for a difference of differences;
    None for a metric without bounds: no pseudo-scenario, no clipping).
    :func:`difference_interval` is this function on one row. Rules for fewer than 2
    scenarios: p = 1, and the interval is the bounds (nothing is known beyond them), or
    (nan, nan) without bounds.
    """
    d = np.atleast_2d(np.asarray(differences, dtype=float))
    rows, n = d.shape
    if n < 2:
        edge = math.nan if bound is None else bound
        return np.ones(rows), np.full(rows, -edge), np.full(rows, edge)
    if bound is not None:
        count = np.zeros(rows) if stuck is None else np.asarray(stuck, dtype=float)
        w = np.broadcast_to(pseudo_weight(count, n), (rows,)) / 2  # at +1 and at −1 each
    else:
        w = np.zeros(rows)
    total = n + 2 * w
    m = d.sum(axis=1) / total  # the pseudo-scenario's halves cancel in the mean
    centred = d - m[:, None]
    m2 = ((centred**2).sum(axis=1) + w * (1 - m) ** 2 + w * (1 + m) ** 2) / total
    m3 = ((centred**3).sum(axis=1) + w * (1 - m) ** 3 - w * (1 + m) ** 3) / total
    flat = rounded(m2) == 0  # no spread at all (possible only without bounds)
    safe = np.where(flat, 1.0, m2)
    se = np.sqrt(safe * total / (total - 1) / total)
    gamma = np.where(flat, 0.0, m3 / safe**1.5) * SKEW_SHRINK
    a, b = gamma / (3 * np.sqrt(total)), gamma / (6 * np.sqrt(total))
    q = float(stats.t.ppf(0.5 + level / 2, n - 1))
    mean = rounded(m)
    p = np.maximum(2 * stats.t.sf(np.abs(_hall(mean / se, a, b)), n - 1), _SMALLEST_P)
    low = rounded(mean - se * _hall_inverse(np.full(rows, q), a, b))
    high = rounded(mean - se * _hall_inverse(np.full(rows, -q), a, b))
    if bound is not None:
        low, high = np.clip(low, -bound, bound), np.clip(high, -bound, bound)
    if flat.any():
        p, low, high = _flat_rows(flat, mean, n, level, p, low, high)
    return p, low, high


def _hall(t: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hall's transformation g(t) = t + a t² + a² t³/3 + b (monotone in t)."""
    return np.asarray(t + a * t**2 + a**2 * t**3 / 3 + b)


def _hall_inverse(u: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """g⁻¹(u): g(t) = ((1 + a t)³ − 1)/(3a) + b, so t = (∛(1 + 3a(u − b)) − 1)/a."""
    small = np.abs(a) < 1e-12
    safe = np.where(small, 1.0, a)
    exact = (np.cbrt(1 + 3 * safe * (u - b)) - 1) / safe
    return np.asarray(np.where(small, u - b, exact))


def _flat_rows(
    flat: np.ndarray,
    mean: np.ndarray,
    n: int,
    level: float,
    p: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows where every difference is the same number c (unbounded metrics only): the
    exact sign-flip p (1 when c = 0, else 2/2^n) and its inversion, (c, c) when 2/2^n <
    1 − level, else (−inf, inf)."""
    flip_p = 2.0 / 2**n
    decided = flip_p < 1 - level
    p, low, high = p.copy(), low.copy(), high.copy()
    p[flat] = np.where(mean[flat] == 0, 1.0, flip_p)
    low[flat] = mean[flat] if decided else -math.inf
    high[flat] = mean[flat] if decided else math.inf
    return p, low, high


def difference_interval(
    differences: np.ndarray, stuck: int = 0, *, bound: float | None = 1.0, level: float = 0.95
) -> tuple[float, float, float]:
    """``(low, high, p)`` of the mean per-scenario difference (see the module docstring).

    ``bound``: 1 for a difference of rates or of probabilities, None for a metric without
    bounds; ``stuck``: the stuck scenarios (:func:`stuck_count`). An empty input gives
    the bounds (or nan, nan) and p = 1.
    """
    d = np.asarray(differences, dtype=float)
    p, low, high = interval_batch(d[None, :], np.array([stuck]), bound=bound, level=level)
    return float(low[0]), float(high[0]), float(p[0])


def excludes_zero(interval: tuple[float, float]) -> bool:
    """Whether an interval lies wholly above or below zero, judged on rounded endpoints.

    An interval with a nan endpoint excludes nothing.
    """
    low, high = (round(float(x), ROUND_DIGITS) for x in interval)
    if math.isnan(low) or math.isnan(high):
        return False
    return low > 0 or high < 0


def small_design_warning(scenarios: int) -> str | None:
    """Said when a comparison has fewer than :data:`SMALL_DESIGN` scenarios."""
    if scenarios >= SMALL_DESIGN:
        return None
    return (
        f"only {scenarios} scenarios: below {SMALL_DESIGN} the 95% interval covers the "
        "truth more often than 95% in simulation (bench/sim_stats.py), so it is wider "
        "than it need be and a real difference can stay hidden"
    )
