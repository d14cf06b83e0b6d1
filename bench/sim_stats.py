"""Null rejection rates and interval coverage of the comparison statistics, by simulation.

    uv run python bench/sim_stats.py                 # the table in the README (about 15 s)
    uv run python bench/sim_stats.py --sims 2000     # quicker, noisier

A synthetic experiment: 20 scenarios, each with a base success rate p_s drawn from a
difficulty distribution; the reference variant succeeds with p_s, the treatment with
clip(p_s + effect, 0, 1); each of r reps is a Bernoulli draw. The true mean difference is
E[clip(p + effect, 0, 1) − p] over the distribution (clipping shrinks it where p is near
1). The statistics see only the per-scenario differences of rep means, as in a report.
tests/analysis/test_stats_simulation.py imports this module and asserts on the same numbers.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import integrate
from scipy import stats as sps

from tooltrial.analysis import stats

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=10_000, help="t-test and coverage runs")
    parser.add_argument("--slow-sims", type=int, default=2000, help="sign-flip/bootstrap runs")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    start = time.perf_counter()
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
