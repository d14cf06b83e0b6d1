"""Null rejection rates, interval coverage and power advice, by simulation.

    uv run python bench/sim_stats.py                 # the tables in the README (a few minutes)
    uv run python bench/sim_stats.py --sims 2000     # quicker, noisier
    uv run python bench/sim_stats.py --power         # the power advice checked (minutes)

The audit's grid (``AUDIT``; the report's interval, ``intervals.interval_batch``): 8, 20
and 50 scenarios, 1, 3 and 5 reps, difficulty uniform U(0, 1), Beta(0.5, 0.5) or 70% of
scenarios all-or-nothing (always or never, half each) and 30% U(0, 1). A true difference
ε moves a graded scenario's rate to clip(p + ε) and switches a failing all-or-nothing
scenario to always succeeding with probability 2ε (each group moves by about ε; ε < 0
the other way round); the truth is the mean difference that gives. The tables print the
coverage of the 95% interval with the share of runs it misses below and above the truth,
and the plain t-interval beside it.

The legacy tables below it (20 scenarios, the plain t-test, sign-flip and bootstrap):

A synthetic experiment: 20 scenarios, each with a base success rate p_s drawn from a
difficulty distribution; the reference variant succeeds with p_s, the treatment with
clip(p_s + effect, 0, 1); each of r reps is a Bernoulli draw. The true mean difference is
E[clip(p + effect, 0, 1) − p] over the distribution (clipping shrinks it where p is near
1). The statistics see only the per-scenario differences of rep means, as in a report.
tests/analysis/test_stats_simulation.py imports this module and asserts on the same numbers.
"""

from __future__ import annotations

import argparse
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize
from scipy import stats as sps

from tooltrial.analysis import intervals, power, stats

SCENARIOS = 20
REPS = (1, 3, 5)
EFFECTS = (0.1, 0.2)


@dataclass(frozen=True)
class Difficulty:
    """A distribution of per-scenario base rates."""

    name: str
    draw: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]
    excess: Callable[[float], float]
    """E[(p − a)_+], the part of an effect that clipping at 1 removes (a = 1 − effect)."""

    def true_difference(self, effect: float) -> float:
        """E[clip(p + effect, 0, 1) − p] for effect >= 0."""
        return effect - self.excess(1 - effect) if effect > 0 else 0.0


def _continuous(dist: sps.rv_continuous) -> Callable[[float], float]:
    # E[(p − a)_+] = ∫_a^1 P(p > x) dx
    return lambda a: float(integrate.quad(dist.sf, a, 1)[0])


def _all_or_nothing(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return (rng.random(shape) < 0.5).astype(float)


def _mostly_all_or_nothing(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return np.where(rng.random(shape) < 0.8, _all_or_nothing(rng, shape), rng.random(shape))


_uniform01 = _continuous(sps.uniform(0, 1))

DIFFICULTIES = (
    Difficulty(
        "Beta(0.5, 0.5)", lambda rng, s: rng.beta(0.5, 0.5, s), _continuous(sps.beta(0.5, 0.5))
    ),
    Difficulty(
        "U(0.2, 0.6)", lambda rng, s: rng.uniform(0.2, 0.6, s), _continuous(sps.uniform(0.2, 0.4))
    ),
    Difficulty("all-or-nothing", _all_or_nothing, lambda a: 0.5 * (1 - a)),
    Difficulty(
        "80% all-or-nothing, 20% U(0, 1)",
        _mostly_all_or_nothing,
        lambda a: 0.8 * 0.5 * (1 - a) + 0.2 * _uniform01(a),
    ),
)


def draw_differences(
    rng: np.random.Generator,
    difficulty: Difficulty,
    sims: int,
    reps: int,
    effect: float = 0.0,
    scenarios: int = SCENARIOS,
) -> np.ndarray:
    """Per-scenario differences of rep means, one simulated experiment per row."""
    p_ref = difficulty.draw(rng, (sims, scenarios))
    p_trt = np.clip(p_ref + effect, 0.0, 1.0)
    return (rng.binomial(reps, p_trt) - rng.binomial(reps, p_ref)) / reps


def t_rejection(d: np.ndarray) -> tuple[float, float]:
    """(share with t-test p < 0.05, share whose t-interval excludes zero)."""
    p, low, high = stats.paired_t_batch(d)
    excluded = [stats.excludes_zero((lo, hi)) for lo, hi in zip(low, high, strict=True)]
    return float(np.mean(p < 0.05)), float(np.mean(excluded))


def sign_flip_rejection(d: np.ndarray, n_perm: int = 2000) -> float:
    return float(
        np.mean(
            [stats.sign_flip_test(row, n_perm=n_perm, seed=i) < 0.05 for i, row in enumerate(d)]
        )
    )


def bootstrap_rejection(d: np.ndarray, n_boot: int = 2000) -> float:
    excluded = [
        stats.excludes_zero(stats.cluster_bootstrap_ci(row, n_boot=n_boot, seed=i))
        for i, row in enumerate(d)
    ]
    return float(np.mean(excluded))


def nonzero_share(d: np.ndarray) -> float:
    return float(np.mean(np.round(d, 12) != 0))


def coverage(d: np.ndarray, truth: float) -> tuple[float, float, float]:
    """(coverage over all runs, share of runs warned of < 5 differing scenarios,
    coverage over the runs not warned)."""
    _, low, high = stats.paired_t_batch(d)
    covered = (low <= truth) & (truth <= high)
    unwarned = np.array([stats.few_differing_warning(row) is None for row in d])
    rest = float(np.mean(covered[unwarned])) if unwarned.any() else float("nan")
    return float(np.mean(covered)), float(np.mean(~unwarned)), rest


def null_table(sims: int, slow_sims: int, seed: int = 2026) -> list[dict[str, object]]:
    """Rejection rates at α = 0.05 with no true difference, by difficulty and reps."""
    rows = []
    for k, difficulty in enumerate(DIFFICULTIES):
        for reps in REPS:
            null = draw_differences(np.random.default_rng([seed, k, reps]), difficulty, sims, reps)
            t_rej, int_rej = t_rejection(null)
            rows.append(
                {
                    "difficulty": difficulty.name,
                    "reps": reps,
                    "non-zero d_s": nonzero_share(null),
                    "t-test": t_rej,
                    "t-interval excl. 0": int_rej,
                    "sign-flip": sign_flip_rejection(null[:slow_sims]),
                    "bootstrap excl. 0": bootstrap_rejection(null[:slow_sims]),
                }
            )
    return rows


def coverage_table(sims: int, seed: int = 2026) -> list[dict[str, object]]:
    """Coverage of the 95% t-interval at true effects, by difficulty and reps."""
    rows = []
    for k, difficulty in enumerate(DIFFICULTIES):
        for reps in REPS:
            rng = np.random.default_rng([seed, k, reps, 1])
            row: dict[str, object] = {"difficulty": difficulty.name, "reps": reps}
            for effect in EFFECTS:
                truth = difficulty.true_difference(effect)
                every, warned, rest = coverage(
                    draw_differences(rng, difficulty, sims, reps, effect), truth
                )
                tag = f"+{effect * 100:.0f}"
                row[f"{tag}: true mean d"] = f"{truth * 100:+.1f} pp"
                row[f"{tag}: coverage"] = every
                row[f"{tag}: warned"] = warned
                row[f"{tag}: coverage if not warned"] = rest
            rows.append(row)
    return rows


def markdown(rows: list[dict[str, object]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = [f"{v:.1%}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- the audit's grid: the report's interval -------------------------------------------


@dataclass(frozen=True)
class Population:
    """Scenario difficulty of the audit's grid: a share ``aon`` of all-or-nothing
    scenarios (at 0 or 1, half each), the rest graded with rates from ``graded``."""

    name: str
    aon: float
    graded: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]

    def draw(
        self, rng: np.random.Generator, shape: tuple[int, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rates, all-or-nothing flags)."""
        aon = rng.random(shape) < self.aon
        level = (rng.random(shape) < 0.5).astype(float)
        return np.where(aon, level, self.graded(rng, shape)), aon

    def treat(
        self, rng: np.random.Generator, p: np.ndarray, aon: np.ndarray, effect: float
    ) -> np.ndarray:
        """The treatment's rates: graded clip(p + ε); a failing (ε < 0: succeeding)
        all-or-nothing scenario switches with probability 2|ε|."""
        switch = rng.random(p.shape) < min(2 * abs(effect), 1.0)
        stuck = p == (0.0 if effect >= 0 else 1.0)
        moved = np.where(stuck & switch, 1.0 - p, p)
        return np.where(aon, moved, np.clip(p + effect, 0.0, 1.0))

    def truth(self, effect: float) -> float:
        """The true mean difference for ``effect`` (2,000,000 scenarios, fixed seed)."""
        return _truth(self, effect)


@functools.lru_cache(maxsize=256)
def _truth(population: Population, effect: float) -> float:
    rng = np.random.default_rng(0)
    p, aon = population.draw(rng, (2_000_000,))
    return float(np.mean(population.treat(rng, p, aon, effect) - p))


AUDIT = (
    Population("uniform", 0.0, lambda rng, s: rng.random(s)),
    Population("Beta(0.5, 0.5)", 0.0, lambda rng, s: rng.beta(0.5, 0.5, s)),
    Population("70% all-or-nothing", 0.7, lambda rng, s: rng.random(s)),
)
AUDIT_SCENARIOS = (8, 20, 50)
AUDIT_EFFECTS = (0.0, 0.1, 0.2)


def draw_means(
    rng: np.random.Generator,
    population: Population,
    sims: int,
    scenarios: int,
    reps: int,
    effect: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-scenario rep means (reference, treatment), one simulated experiment per row."""
    p, aon = population.draw(rng, (sims, scenarios))
    treated = population.treat(rng, p, aon, effect)
    return rng.binomial(reps, p) / reps, rng.binomial(reps, treated) / reps


def report_interval(ref: np.ndarray, trt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The report's interval and p for each row (``intervals.interval_batch``)."""
    stuck = ((ref == trt) & ((ref == 0) | (ref == 1))).sum(axis=1)
    return intervals.interval_batch(trt - ref, stuck)


@dataclass(frozen=True)
class Coverage:
    coverage: float
    below: float
    """Share of runs whose interval lies wholly below the truth."""
    above: float
    t_coverage: float
    """The plain t-interval's coverage on the same runs."""
    zero_width: float
    """Share of runs whose report interval is zero-width."""


def audit_cell(
    population: Population, scenarios: int, reps: int, effect: float, sims: int, seed: int = 2026
) -> Coverage:
    """Coverage of the report's 95% interval in one cell of the audit's grid."""
    index = AUDIT.index(population)
    rng = np.random.default_rng([seed, index, scenarios, reps, round(effect * 100) + 100])
    ref, trt = draw_means(rng, population, sims, scenarios, reps, effect)
    truth = population.truth(effect)
    _, low, high = report_interval(ref, trt)
    _, t_low, t_high = stats.paired_t_batch(trt - ref)
    return Coverage(
        coverage=float(np.mean((low <= truth) & (truth <= high))),
        below=float(np.mean(high < truth)),
        above=float(np.mean(low > truth)),
        t_coverage=float(np.mean((t_low <= truth) & (truth <= t_high))),
        zero_width=float(np.mean(high - low <= 0)),
    )


def audit_table(sims: int, seed: int = 2026) -> list[dict[str, object]]:
    rows = []
    for population in AUDIT:
        for scenarios in AUDIT_SCENARIOS:
            for reps in REPS:
                row: dict[str, object] = {
                    "difficulty": population.name,
                    "scenarios": scenarios,
                    "reps": reps,
                }
                for effect in AUDIT_EFFECTS:
                    c = audit_cell(population, scenarios, reps, effect, sims, seed)
                    tag = f"+{effect * 100:.0f}"
                    row[f"{tag}: coverage (below/above)"] = (
                        f"{c.coverage:.1%} ({c.below:.1%}/{c.above:.1%})"
                    )
                    row[f"{tag}: t"] = c.t_coverage
                rows.append(row)
    return rows


# --- the power advice, checked ------------------------------------------------------------


def true_power(
    population: Population, scenarios: int, reps: int, effect: float, sims: int, seed: int
) -> float:
    """Power of the report's test (on the side of the effect) in a true study."""
    rng = np.random.default_rng([seed, AUDIT.index(population), scenarios, reps])
    ref, trt = draw_means(rng, population, sims, scenarios, reps, effect)
    _, low, high = report_interval(ref, trt)
    return float(np.mean(low > 0 if effect > 0 else high < 0))


def calibrated_effect(population: Population, difference: float) -> float:
    """The ε whose true mean difference is ``difference``."""
    return float(
        optimize.brentq(
            lambda e: population.truth(round(e, 6)) - difference,
            0.0 if difference > 0 else -0.99,
            0.99 if difference > 0 else 0.0,
            xtol=1e-4,
        )
    )


def power_curve(
    population: Population, reps: int, difference: float, sims: int = 4000, seed: int = 7
) -> dict[int, float]:
    """True power by scenarios (a ladder from 3 to 1,000) for a true mean ``difference``."""
    effect = round(calibrated_effect(population, difference), 6)
    sizes = sorted({int(x) for x in np.round(np.geomspace(3, 1000, 60))})
    return {n: true_power(population, n, reps, effect, sims, seed) for n in sizes}


def needed(curve: dict[int, float]) -> int | None:
    """The fewest scenarios with 80% true power."""
    return next((n for n in sorted(curve) if curve[n] >= power.TARGET), None)


def at(curve: dict[int, float], scenarios: int) -> float:
    """True power at ``scenarios`` (interpolated)."""
    sizes = sorted(curve)
    return float(np.interp(scenarios, sizes, [curve[n] for n in sizes]))


@dataclass(frozen=True)
class PowerCheck:
    population: str
    pilot_reps: int
    difference: float
    reps: int
    needed: int | None
    advised: list[int | None]
    """Advice per pilot (a 1-rep pilot: its range, as (low, high) in ``ranges``)."""
    ranges: list[tuple[int | None, int | None]]
    mean_power: float
    """Mean true power at the advised N over the pilots (nan for 1-rep pilots)."""
    contained: float
    """Share of 1-rep pilots whose range holds the needed N (nan otherwise)."""


def power_check(
    population: Population,
    pilot_reps: int,
    difference: float,
    reps: int,
    pilots: int = 40,
    pilot_scenarios: int = 20,
    seed: int = 11,
) -> PowerCheck:
    """Draw ``pilots`` pilots (no true difference) from ``population``; advise each; the
    true power of each advice. The advice for +difference only (``power.scenarios_needed``
    on the pilot's population, as ``power.advise`` does for each direction)."""
    curve = power_curve(population, reps, difference)
    rng = np.random.default_rng([seed, AUDIT.index(population), pilot_reps])
    advised: list[int | None] = []
    ranges: list[tuple[int | None, int | None]] = []
    for i in range(pilots):
        ref, trt = draw_means(rng, population, 1, pilot_scenarios, pilot_reps, 0.0)
        counts = [
            [(round(float(x) * pilot_reps), pilot_reps) for x in row] for row in (ref[0], trt[0])
        ]
        pilot = power.pilot_of(counts[0], counts[1])
        if pilot.single_rep:
            advice = power.advise(pilot, "rate", (difference,), (reps,), seed=i)
            plan = advice.plans[0]
            ranges.append((plan.low, plan.high))
        else:
            population_ = power.pilot_population(pilot)
            advised.append(power.scenarios_needed(population_, reps, difference, [i, 1]))
    target = needed(curve)
    powers = [at(curve, n) for n in advised if n is not None]
    inside = [lo is not None and hi is not None and lo <= (target or 0) <= hi for lo, hi in ranges]
    return PowerCheck(
        population=population.name,
        pilot_reps=pilot_reps,
        difference=difference,
        reps=reps,
        needed=target,
        advised=advised,
        ranges=ranges,
        mean_power=float(np.mean(powers)) if powers else math.nan,
        contained=float(np.mean(inside)) if inside else math.nan,
    )


def power_table(pilots: int) -> list[dict[str, object]]:
    rows = []
    designs = [(3, d, r) for d in (0.1, 0.2) for r in (3,)] + [(3, 0.1, 1), (3, 0.1, 10)]
    designs += [(1, 0.1, 3), (1, 0.2, 10), (1, 0.1, 1)]
    for population in AUDIT:
        for pilot_reps, difference, reps in designs:
            c = power_check(population, pilot_reps, difference, reps, pilots)
            row: dict[str, object] = {
                "difficulty": population.name,
                "pilot": f"20 × {pilot_reps}",
                "target": f"+{difference * 100:.0f} pp at {reps} reps",
                "needed N": str(c.needed),
            }
            if c.ranges:
                lows = [lo for lo, _ in c.ranges if lo is not None]
                highs = [hi for _, hi in c.ranges if hi is not None]
                row["advice (median)"] = f"{np.median(lows):.0f}–{np.median(highs):.0f}"
                row["power at advice / range holds N"] = f"{c.contained:.0%} of pilots"
            else:
                values = [n for n in c.advised if n is not None]
                row["advice (median)"] = f"{np.median(values):.0f}"
                row["power at advice / range holds N"] = f"{c.mean_power:.1%} (mean)"
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=10_000, help="t-test and coverage runs")
    parser.add_argument("--slow-sims", type=int, default=2000, help="sign-flip/bootstrap runs")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--power", action="store_true", help="check the power advice instead")
    parser.add_argument("--pilots", type=int, default=40, help="pilots per power check")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.power:
        print(
            f"Power advice from {args.pilots} pilots of 20 scenarios per row (no true "
            "difference in the pilot); 'needed N': the fewest scenarios with 80% true power "
            "(4,000 simulated studies per N); a 3-rep pilot: the median advice and the mean "
            "true power at each pilot's advice; a 1-rep pilot: the median range and the "
            "share of pilots whose range holds the needed N:\n"
        )
        print(markdown(power_table(args.pilots)))
        print(f"\n({time.perf_counter() - start:.0f} s)")
        return
    print(
        f"The report's 95% interval in the audit's grid ({args.sims:,} runs per cell): "
        "coverage of the true mean difference, with the share of runs missing below/above "
        "it; at +0 coverage is 1 − the false-positive rate. 't': the plain t-interval on "
        "the same runs:\n"
    )
    print(markdown(audit_table(args.sims, args.seed)))
    print()
    slow = min(args.slow_sims, args.sims)
    print(
        f"{SCENARIOS} scenarios. Rejections at α = 0.05 with no true difference "
        f"({args.sims:,} runs; the sign-flip test with 2,000 random flips beyond 16 "
        f"non-zero differences, and the percentile bootstrap with 2,000 resamples: "
        f"{slow:,} runs):\n"
    )
    print(markdown(null_table(args.sims, slow, args.seed)))
    print(
        f"\nCoverage of the 95% t-interval ({args.sims:,} runs); 'warned': runs where "
        f"fewer than 5 scenarios differ (few_differing_warning):\n"
    )
    print(markdown(coverage_table(args.sims, args.seed)))
    print(f"\n(seed {args.seed}; {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
