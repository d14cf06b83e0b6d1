"""How many scenarios a study needs, by simulation from a pilot, with the report's own test.

The results are the pilot. A study of N scenarios × R reps is simulated many times: N
scenarios are drawn with replacement from the pilot's, each keeps its observed behaviour,
the target difference is injected, reps are drawn, and the report's own interval
(:func:`~tooltrial.analysis.intervals.interval_batch`) decides whether the study detects
it. The advice is the fewest scenarios whose simulated power reaches 80%, in either
direction (the larger of the two).

What a pilot scenario keeps (both variants' reps pooled: the pilot's own difference is
not carried over, only each scenario's difficulty):

- **all-or-nothing**: every rep of each variant agreed (all successes or all failures)
  and each variant has at least 2 reps. It stays all-or-nothing: in a simulated study
  all its reps give the same outcome;
- **graded**: any other scenario; each rep succeeds independently at its pooled rate.

The difference δ > 0 moves every scenario by the same amount s where it can: a graded
scenario's rate to min(p + s, 1); all-or-nothing scenarios move as a group, a failing
one switching to always succeeding with probability s / (the share of them that fail).
s is solved so that the mean difference is exactly δ (δ < 0: the same downwards); a δ no
s reaches cannot be detected from these rates.

**A 1-rep pilot cannot tell an all-or-nothing scenario from a graded one**, so it gets a
range: the fewest and the most scenarios over three readings of it (every scenario
all-or-nothing; every one graded at the mean rate; every one graded with the spread of
difficulty a beta-binomial fit gives), widened by the pilot's own noise (the 10th and
90th percentile over resamples of its scenarios).

Guarantees: the advice is reproducible (every simulation is seeded from the analysis
seed and the design); a pilot with fewer than 2 scenarios gives none. Checked by
simulation (``bench/sim_stats.py --power``, ``tests/analysis/test_power_simulation.py``):
from 20-scenario, 3-rep pilots of uniform, Beta(0.5, 0.5) and 70%-all-or-nothing
difficulty, the advised N for +10 points at 3 reps has 80 ± 7% true power on average;
it over-asks where near-certain scenarios are common (Beta(0.5, 0.5): they are taken for
all-or-nothing ones), and 1-rep ranges hold the needed N for the typical pilot. It
assumes the study's scenarios are drawn like the pilot's and that the difference acts as
above; an effect confined to a few scenarios needs more than this says.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from scipy import optimize, stats

from tooltrial.analysis.intervals import interval_batch

TARGET = 0.8
"""The power the advice aims for (two-sided test at α = 0.05, in the right direction)."""
REPS_OPTIONS = (1, 3, 5, 10)
SIMS = 400
"""Simulated studies per power estimate (each estimate is a fit over several designs)."""
LIMIT = 10_000
"""No advice beyond this many scenarios."""
_SIMULATE_UP_TO = 1500
"""Above this many scenarios the normal approximation is used (the test is then a z-test)."""

Basis = Literal["pilot", "all-or-nothing", "graded", "spread"]
SINGLE_REP_READINGS: tuple[Basis, ...] = ("spread", "graded", "all-or-nothing")
"""A 1-rep pilot's readings; its range runs from the fewest to the most they need."""
BOOTSTRAP = 60
"""Resamples of a 1-rep pilot that widen its range by the pilot's own noise."""


@dataclass(frozen=True)
class Pilot:
    """One comparison's results on a rate metric, per scenario both variants have."""

    successes: np.ndarray
    """Per scenario: successes, both variants pooled."""
    results: np.ndarray
    """Per scenario: results, both variants pooled."""
    all_or_nothing: np.ndarray
    """Per scenario: every rep of each variant agreed, with at least 2 reps each."""
    reps: float
    """Reps per variant in the pilot (the median over scenarios and variants)."""

    @property
    def scenarios(self) -> int:
        return int(self.successes.size)

    @property
    def single_rep(self) -> bool:
        return self.reps < 2

    @property
    def rates(self) -> np.ndarray:
        return np.asarray(self.successes / self.results, dtype=float)


def pilot_of(reference: Sequence[tuple[int, int]], treatment: Sequence[tuple[int, int]]) -> Pilot:
    """The pilot from each scenario's (successes, results) per variant, listed in the same
    scenario order (scenarios without results in both variants left out)."""
    pairs = [(r, t) for r, t in zip(reference, treatment, strict=True) if r[1] and t[1]]
    ref = np.array([r for r, _ in pairs], dtype=float).reshape(-1, 2)
    trt = np.array([t for _, t in pairs], dtype=float).reshape(-1, 2)

    def agrees(c: np.ndarray, n: np.ndarray) -> np.ndarray:
        return np.asarray((n >= 2) & ((c == 0) | (c == n)))

    both = agrees(ref[:, 0], ref[:, 1]) & agrees(trt[:, 0], trt[:, 1])
    reps = float(np.median(np.concatenate([ref[:, 1], trt[:, 1]]))) if pairs else 0.0
    return Pilot(ref[:, 0] + trt[:, 0], ref[:, 1] + trt[:, 1], both, reps)


_BOUND = 7.0
"""Fitted Beta parameters stay within e^±7 (0.001 to 1,100): a pilot whose scenarios all
agree cannot place them."""


def fit_beta(successes: np.ndarray, results: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood Beta(alpha, beta) of the scenarios' rates from their
    (successes, results): a beta-binomial fit, the spread of difficulty the counts imply."""
    c, n = np.asarray(successes, dtype=float), np.asarray(results, dtype=float)

    def loss(theta: np.ndarray) -> float:
        a, b = np.exp(np.clip(theta, -_BOUND, _BOUND))
        return float(-np.sum(stats.betabinom.logpmf(c, n, a, b)))

    found = optimize.minimize(loss, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-4})
    a, b = np.exp(np.clip(found.x, -_BOUND, _BOUND))
    return float(a), float(b)


@dataclass(frozen=True)
class _Population:
    """What a simulated study draws its scenarios from: per pilot scenario, the chance
    that it is all-or-nothing and, if graded, Beta parameters for its rate."""

    level: np.ndarray
    """The outcome of an all-or-nothing scenario (0 or 1; ½ when unknown)."""
    all_or_nothing: np.ndarray
    """Probability that the scenario is all-or-nothing."""
    alpha: np.ndarray
    beta: np.ndarray
    """Its rate if graded: Beta(alpha, beta) (a point when both are huge)."""

    @property
    def rates(self) -> np.ndarray:
        """Each scenario's expected rate."""
        graded = self.alpha / (self.alpha + self.beta)
        return np.asarray(
            self.all_or_nothing * self.level + (1 - self.all_or_nothing) * graded, dtype=float
        )

    def shift(self, delta: float) -> tuple[float, float]:
        """(s, q) for a difference δ: a graded scenario's rate moves by s (capped at 1, or
        0 when δ < 0), and an all-or-nothing scenario that fails (succeeds, δ < 0) switches
        with probability q = min(1, s / f), f the share of all-or-nothing scenarios that
        fail: each group moves by s on average, as far as it can. s solves "the mean
        difference is |δ|"; (inf, inf) when no s reaches it."""
        up = delta > 0
        p = self.rates if up else 1 - self.rates
        level = self.level if up else 1 - self.level
        aon = self.all_or_nothing
        weight = float(aon.sum())
        failing = float((aon * (1 - level)).sum()) / weight if weight > 0 else 0.0
        graded = 1 - aon

        def mean_shift(x: float) -> float:
            group = min(failing, x) * weight / aon.size
            return group + float(np.mean(graded * np.minimum(x, 1 - p)))

        most = mean_shift(1.0)
        if most < abs(delta) - 1e-12:
            return math.inf, math.inf
        x = (
            1.0
            if most <= abs(delta)
            else float(optimize.brentq(lambda v: mean_shift(v) - abs(delta), 0.0, 1.0, xtol=1e-9))
        )
        return x, (min(1.0, x / failing) if failing > 0 else 0.0)


_POINT = 1e9
"""Beta parameters this large make a rate a point (no uncertainty)."""


def _population(pilot: Pilot, basis: Basis) -> _Population:
    """The scenarios a simulated study draws from, under one reading of the pilot.

    ``pilot`` (2 or more reps): a scenario whose reps all agreed in both variants is
    all-or-nothing at that outcome; any other is graded at its pooled rate. A 1-rep
    pilot's readings: ``all-or-nothing``: every scenario is, at its pooled rate (one
    where the variants disagreed is a coin: always or never, ½ each); ``graded``: every
    scenario succeeds at the pilot's mean rate (no difference in difficulty); ``spread``:
    every scenario is graded, its rate drawn from its posterior under a beta-binomial
    fitted to all of them (the spread of difficulty the variants' agreement implies)."""
    c, n = pilot.successes, pilot.results
    level = np.where(c == n, 1.0, 0.0)
    rate = c / n
    if basis == "all-or-nothing":
        ones = np.ones(c.size)
        return _Population(rate, ones, ones, ones)
    if basis == "graded":
        rate = np.full(c.size, float(c.sum() / n.sum()))
        return _Population(rate, np.zeros(c.size), *_point(rate))
    if basis == "spread":
        a, b = fit_beta(c, n)
        return _Population(level, np.zeros(c.size), a + c, b + n - c)
    return _Population(level, pilot.all_or_nothing.astype(float), *_point(rate))


def _point(rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Beta parameters that make each rate a point."""
    return _POINT * rate + 1e-9, _POINT * (1 - rate) + 1e-9


def pilot_population(pilot: Pilot) -> _Population:
    """The population a pilot with 2 or more reps stands for (what ``advise`` simulates)."""
    return _population(pilot, "pilot")


def simulated_power(
    population: _Population,
    scenarios: int,
    reps: int,
    delta: float,
    rng: np.random.Generator,
    sims: int = SIMS,
) -> float:
    """Share of ``sims`` simulated studies whose interval excludes 0 on the side of δ."""
    step, switch = population.shift(delta)
    if math.isinf(step) or scenarios < 2:
        return 0.0
    pick = rng.integers(0, population.level.size, size=(sims, scenarios))
    aon = rng.random(pick.shape) < population.all_or_nothing[pick]
    graded = rng.beta(population.alpha[pick], population.beta[pick])
    coin = (rng.random(pick.shape) < population.level[pick]).astype(float)
    base = np.where(aon, coin, graded)  # an all-or-nothing scenario: 0 or 1 for every rep
    moved = rng.random(pick.shape) < switch
    if delta > 0:
        treated = np.where(
            aon, np.where(moved & (base == 0), 1.0, base), np.minimum(base + step, 1)
        )
    else:
        treated = np.where(
            aon, np.where(moved & (base == 1), 0.0, base), np.maximum(base - step, 0)
        )
    ref = np.where(aon, base, rng.binomial(reps, base) / reps)
    trt = np.where(aon, treated, rng.binomial(reps, treated) / reps)
    both = (ref == trt) & ((ref == 0) | (ref == 1))
    _, low, high = interval_batch(trt - ref, both.sum(axis=1))
    detected = low > 0 if delta > 0 else high < 0
    return float(np.mean(detected))


def _spread(population: _Population, reps: int, delta: float) -> float:
    """The standard deviation of one simulated scenario's difference (normal theory, each
    scenario at its expected rate; a starting point for the simulation)."""
    step, switch = population.shift(delta)
    up = delta > 0
    p = population.rates if up else 1 - population.rates
    level = population.level if up else 1 - population.level
    aon = population.all_or_nothing
    flips = switch * (1 - level)  # an all-or-nothing scenario: d is ±1 with this chance
    moved = np.minimum(p + step, 1)
    graded = (p * (1 - p) + moved * (1 - moved)) / reps + (moved - p) ** 2
    second = np.mean(aon * flips + (1 - aon) * graded)
    return math.sqrt(max(float(second) - delta**2, 1e-12))


def _normal_scenarios(population: _Population, reps: int, delta: float) -> float:
    """Scenarios for 80% power by the normal approximation (a starting point)."""
    z = stats.norm.ppf(0.975) + stats.norm.ppf(TARGET)
    return float((z * _spread(population, reps, delta) / abs(delta)) ** 2)


def scenarios_needed(
    population: _Population, reps: int, delta: float, seed: Sequence[int]
) -> int | None:
    """The fewest scenarios whose simulated power reaches :data:`TARGET` (None: more than
    :data:`LIMIT`, or δ cannot be reached from these rates).

    Power is simulated at five designs around the normal approximation, and a probit line
    in √N is fitted through those between 5% and 99% (smoother than a search on noisy
    estimates); far beyond :data:`_SIMULATE_UP_TO` the normal approximation stands."""
    if math.isinf(population.shift(delta)[0]):
        return None
    start = max(4.0, _normal_scenarios(population, reps, delta))
    if start > LIMIT:
        return None
    if start > _SIMULATE_UP_TO:
        return math.ceil(start)
    sizes = sorted({max(3, round(start * f)) for f in (0.5, 0.7, 1.0, 1.4, 2.0)})
    powers = [
        simulated_power(population, n, reps, delta, np.random.default_rng([*seed, i, n]))
        for i, n in enumerate(sizes)
    ]
    return _fit(sizes, powers)


def _fit(sizes: Sequence[int], powers: Sequence[float]) -> int | None:
    """N where a probit line in √N through the informative estimates reaches the target."""
    kept = [(n, p) for n, p in zip(sizes, powers, strict=True) if 0.05 <= p <= 0.99]
    if len(kept) < 2:  # every estimate at one end: the nearest two to the target
        kept = sorted(zip(sizes, powers, strict=True), key=lambda np_: abs(np_[1] - TARGET))[:2]
        kept.sort()
    floor = 0.5 / SIMS
    y = stats.norm.ppf(np.clip([p for _, p in kept], floor, 1 - floor))
    x = np.sqrt(np.asarray([n for n, _ in kept], dtype=float))
    slope, intercept = np.polyfit(x, y, 1)
    if slope <= 0:
        return (
            None
            if max(powers) < TARGET
            else min(n for n, p in zip(sizes, powers, strict=True) if p >= TARGET)
        )
    root = (stats.norm.ppf(TARGET) - intercept) / slope
    needed = max(2, math.ceil(root**2 - 1e-9)) if root > 0 else 2
    return needed if needed <= LIMIT else None


def detectable(
    population: _Population, scenarios: int, reps: int, seed: Sequence[int]
) -> float | None:
    """The smallest |δ| (either direction: the larger of the two) that ``scenarios`` ×
    ``reps`` detects with 80% power; None when no reachable δ is (at most 1)."""
    found = []
    for sign in (1.0, -1.0):
        room = np.mean(1 - population.rates) if sign > 0 else np.mean(population.rates)
        grid = np.linspace(0.02, float(room), 25) if room > 0.02 else np.array([])
        value = None
        for i, delta in enumerate(grid):
            rng = np.random.default_rng([*seed, int(sign > 0), i])
            power = simulated_power(population, scenarios, reps, sign * float(delta), rng)
            if power >= TARGET:
                value = float(delta)
                break
        if value is None:
            return None
        found.append(value)
    return max(found)


@dataclass(frozen=True)
class Plan:
    """Scenarios needed for one difference at one number of reps."""

    difference: float
    reps: int
    scenarios: int | None
    """The advice (a pilot with 2 or more reps); None: a range, or not reachable."""
    low: int | None = None
    """A 1-rep pilot: the fewer of the two bounds (None: not reachable)."""
    high: int | None = None
    """A 1-rep pilot: the larger bound (None: more than :data:`LIMIT`, or not reachable)."""


@dataclass(frozen=True)
class Advice:
    """The power advice from one comparison's results as a pilot."""

    metric: str
    pilot_scenarios: int
    pilot_reps: float
    all_or_nothing_share: float
    """Share of the pilot's scenarios whose reps all agreed in both variants."""
    plans: tuple[Plan, ...]
    detectable: float | None
    """The smallest difference (either direction) the pilot's own design detects with 80%
    power; with a 1-rep pilot, the larger of the two bounds."""
    detectable_low: float | None
    """With a 1-rep pilot, the smaller bound; else equal to ``detectable``."""
    notes: tuple[str, ...]
    """What the pilot cannot tell."""

    def plan(self, difference: float, reps: int) -> Plan | None:
        return next((p for p in self.plans if p.difference == difference and p.reps == reps), None)


SINGLE_REP_NOTE = (
    "with 1 rep the pilot cannot tell an all-or-nothing scenario from one that succeeds "
    "some of the time, so each number is a range between two readings of it (every "
    "scenario the variants agreed on all-or-nothing; every scenario graded); run 3 reps "
    "to narrow it"
)


def advise(
    pilot: Pilot,
    metric: str,
    differences: Sequence[float] = (0.1, 0.2),
    reps_options: Sequence[int] = REPS_OPTIONS,
    seed: int = 0,
) -> Advice:
    """Scenarios needed to detect each difference (either direction) at each number of
    reps, and the smallest difference the pilot's own design detects."""
    notes: list[str] = []
    if pilot.scenarios < 2:
        return Advice(metric, pilot.scenarios, pilot.reps, 0.0, (), None, None, ())
    if pilot.scenarios < 10:
        notes.append(
            f"the pilot has {pilot.scenarios} scenarios: the advice resamples them, so it "
            "is only as good as they are typical"
        )
    bases = SINGLE_REP_READINGS if pilot.single_rep else ("pilot",)
    if pilot.single_rep:
        notes.append(SINGLE_REP_NOTE)
    populations = [_population(pilot, basis) for basis in bases]
    plans = []
    for d_index, difference in enumerate(differences):
        for reps in reps_options:
            found = [
                _either_way(population, reps, difference, [seed, d_index, reps, b])
                for b, population in enumerate(populations)
            ]
            noise = _noise(pilot, reps, difference, seed) if pilot.single_rep else (1.0, 1.0)
            plans.append(_plan(difference, reps, found, noise))
    own_reps = max(1, round(pilot.reps))
    found_mde = [
        detectable(population, pilot.scenarios, own_reps, [seed, 99, b])
        for b, population in enumerate(populations)
    ]
    defined = [x for x in found_mde if x is not None]
    mde = None if len(defined) < len(found_mde) else max(defined)
    return Advice(
        metric=metric,
        pilot_scenarios=pilot.scenarios,
        pilot_reps=pilot.reps,
        all_or_nothing_share=float(np.mean(pilot.all_or_nothing)),
        plans=tuple(plans),
        detectable=mde,
        detectable_low=min(defined) if defined else None,
        notes=tuple(notes),
    )


def _either_way(
    population: _Population, reps: int, difference: float, seed: list[int]
) -> int | None:
    """The scenarios needed to detect +difference and −difference: the larger."""
    up = scenarios_needed(population, reps, difference, [*seed, 1])
    down = scenarios_needed(population, reps, -difference, [*seed, 0])
    return None if up is None or down is None else max(up, down)


def _plan(
    difference: float, reps: int, found: list[int | None], noise: tuple[float, float]
) -> Plan:
    """One reading: its number. Several: from the fewest to the most, widened by the
    pilot's own noise (``noise``: the 10th and 90th percentile over the median)."""
    if len(found) == 1:
        return Plan(difference, reps, found[0])
    defined = [x for x in found if x is not None]
    low = max(2, math.floor(min(defined) * noise[0])) if defined else None
    high = math.ceil(max(defined) * noise[1]) if len(defined) == len(found) else None
    return replace(Plan(difference, reps, None), low=low, high=high)


def _noise(pilot: Pilot, reps: int, difference: float, seed: int) -> tuple[float, float]:
    """How much a 1-rep pilot's own scenarios move its advice: the normal-theory N of the
    all-or-nothing and the graded reading over :data:`BOOTSTRAP` resamples of its
    scenarios, the smallest 10th and the largest 90th percentile over the median."""
    rng = np.random.default_rng([seed, 7, reps, round(difference * 1000)])
    picks = [rng.integers(0, pilot.scenarios, pilot.scenarios) for _ in range(BOOTSTRAP)]
    low, high = 1.0, 1.0
    for basis in ("all-or-nothing", "graded"):
        found = []
        for pick in picks:
            sample = Pilot(
                pilot.successes[pick], pilot.results[pick], pilot.all_or_nothing[pick], pilot.reps
            )
            population = _population(sample, basis)
            values = [
                _normal_scenarios(population, reps, sign * difference)
                for sign in (1.0, -1.0)
                if not math.isinf(population.shift(sign * difference)[0])
            ]
            if len(values) == 2:
                found.append(max(values))
        if len(found) >= BOOTSTRAP // 2:
            q10, mid, q90 = np.quantile(found, [0.1, 0.5, 0.9])
            low, high = min(low, float(q10 / mid)), max(high, float(q90 / mid))
    return low, high
