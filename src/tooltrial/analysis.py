"""Analysis: result files → a tidy table of scored results → comparisons with uncertainty.

Reading is columnar (polars scans the NDJSON; no line becomes a Python dict). Scoring
needs Python, so it runs once per *distinct answer* — (variant, scenario, tool calls,
has text, asks a question) — and is joined back; repeated answers cost nothing.

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
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from tooltrial.capture import committed_bytes, iter_records
from tooltrial.experiment import DefinitionError, Experiment, load_experiment
from tooltrial.scoring import Call, Scorer
from tooltrial.variants import Variant

_LINE_SCHEMA: dict[str, Any] = {
    "type": pl.String,
    "run_id": pl.String,
    "experiment": pl.String,
    "model": pl.String,
    "variant": pl.String,
    "rep": pl.Int64,
    "variant_hash": pl.String,
    "settings": pl.String,  # nested JSON, kept as text
    "scenario_id": pl.String,
    "response_text": pl.String,
    "tool_calls": pl.String,  # nested JSON, kept as text; parsed once per distinct answer
    "usage": pl.Struct({"input_tokens": pl.Int64, "output_tokens": pl.Int64}),
    "latency_s": pl.Float64,
    "timestamp": pl.String,
}
_CELL = ["variant", "rep", "scenario_id"]
_ANSWER = ["variant", "scenario_id", "tool_calls", "has_text", "asks"]

METRICS: dict[str, str] = {
    "exact": "exact match",
    "tool_correct": "tool selection",
    "args_correct": "arguments (given the right tool)",
    "abstain_correct": "no-call / clarify",
    "hallucinated": "hallucinated tool",
    "input_tokens": "input tokens",
    "output_tokens": "output tokens",
    "latency_s": "latency (s)",
}
RATE_METRICS = ("exact", "tool_correct", "args_correct", "abstain_correct", "hallucinated")


class ResultsError(ValueError):
    """Result files that cannot be analysed as they are."""


# --- loading --------------------------------------------------------------------------


def result_files(paths: Iterable[str | Path]) -> list[Path]:
    """Every ``*.jsonl`` under the given folders, plus the files given directly."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(path.glob("*.jsonl")))
        elif path.is_file():
            files.append(path)
        else:
            raise ResultsError(f"{path}: no such file or folder")
    if not files:
        raise ResultsError(f"no .jsonl result files in {', '.join(map(str, paths))}")
    return sorted(set(files), key=lambda p: (p.name, str(p)))


@dataclass(frozen=True)
class Loaded:
    """The latest result of every (variant, rep, scenario), plus what the files say."""

    results: pl.DataFrame
    files: tuple[Path, ...]
    experiment: str
    experiment_source: str | None
    models: tuple[str, ...]
    variant_hashes: dict[str, str]
    errors: int
    """``scenario_error`` lines (never results)."""


def load_results(paths: Iterable[str | Path]) -> Loaded:
    files = result_files(paths)
    try:
        lines = pl.concat([_scan(path) for path in files]).with_row_index("row").collect()
    except pl.exceptions.PolarsError as exc:
        _raise_first_bad_line(files, exc)
    meta = _metadata(lines, files)
    experiments = meta["experiment"].unique().to_list()
    if len(experiments) != 1:
        raise ResultsError(
            f"these files hold more than one experiment ({', '.join(sorted(experiments))}); "
            "give the files of one experiment"
        )
    results = _latest(lines, experiments[0])
    sources = [s for s in meta["source"].unique().to_list() if s]
    hashes = dict(meta.select("variant", "variant_hash").unique("variant").iter_rows())
    return Loaded(
        results=results,
        files=tuple(files),
        experiment=experiments[0],
        experiment_source=sources[0] if sources else None,
        models=tuple(sorted(meta["model"].unique().to_list())),
        variant_hashes=hashes,
        errors=lines.filter(pl.col("type") == "scenario_error").height,
    )


def _scan(path: Path) -> pl.LazyFrame:
    """A file's lines, lazily; a torn last line (a killed writer) was never committed."""
    if path.stat().st_size == 0:
        raise ResultsError(f"{path}: empty file; move it out of the results folder")
    committed = committed_bytes(path)
    if committed is None:
        return pl.scan_ndjson(path, schema=_LINE_SCHEMA, include_file_paths="file")
    frame = pl.read_ndjson(io.BytesIO(committed), schema=_LINE_SCHEMA)
    return frame.with_columns(file=pl.lit(str(path))).lazy()


def _raise_first_bad_line(files: list[Path], exc: Exception) -> Any:
    # Only on failure: walk the files record by record to name the file and line.
    for path in files:
        for _ in iter_records(path):
            pass
    raise ResultsError(f"cannot read the result files: {exc}") from None


def _metadata(lines: pl.DataFrame, files: list[Path]) -> pl.DataFrame:
    first_rows = lines.group_by("file").agg(pl.col("row").min())
    firsts = first_rows.join(lines.select("row", "type"), on="row")
    bad = firsts.filter(pl.col("type") != "metadata")
    if bad.height:
        raise ResultsError(
            f"{bad['file'][0]}:1: the first line must be the metadata line; "
            "this is not a tooltrial result file, move it out of the results folder"
        )
    missing = {str(f) for f in files} - set(firsts["file"].to_list())
    if missing:
        raise ResultsError(f"{sorted(missing)[0]}: no lines")
    return lines.join(first_rows, on="row").select(
        "file",
        "experiment",
        "model",
        "variant",
        "variant_hash",
        pl.col("settings").str.json_path_match("$.experiment_source").alias("source"),
    )


def _latest(lines: pl.DataFrame, experiment: str) -> pl.DataFrame:
    results = lines.filter(pl.col("type") == "scenario_result")
    required = [*_CELL, "tool_calls", "response_text", "timestamp"]
    nulls = results.filter(pl.any_horizontal(pl.col(required).is_null()))
    if nulls.height:
        row = nulls.row(0, named=True)
        raise ResultsError(
            f"{row['file']}: a scenario_result line lacks one of {', '.join(required)}; "
            "check the file with `tooltrial validate`"
        )
    # Partial reruns add files: per cell the latest timestamp wins, ties to the later line.
    # Most cells have one line, so only the repeated ones are sorted.
    repeated = pl.struct(_CELL).is_duplicated()
    reruns = results.filter(repeated).sort("timestamp", "row").unique(subset=_CELL, keep="last")
    return pl.concat([results.filter(~repeated), reruns]).select(
        pl.lit(experiment).alias("experiment"),
        "run_id",
        *_CELL,
        "model",
        "response_text",
        "tool_calls",
        pl.col("usage").struct.field("input_tokens"),
        pl.col("usage").struct.field("output_tokens"),
        "latency_s",
        "timestamp",
        "file",
    )


def experiment_for(loaded: Loaded, override: str | Path | None = None) -> Experiment:
    """The definition to score against: ``override``, else the one the metadata names."""
    target = override or loaded.experiment_source
    if target is None:
        raise ResultsError(
            "the result files do not say which experiment definition they came from; "
            "pass it with --experiment PATH"
        )
    try:
        return load_experiment(target)
    except DefinitionError as exc:
        if override is None:
            raise DefinitionError(
                f"the results name {target} as their definition, which fails to load "
                f"({exc}); pass the right one with --experiment PATH"
            ) from None
        raise


# --- scoring --------------------------------------------------------------------------


def score(results: pl.DataFrame, experiment: Experiment) -> pl.DataFrame:
    """One row per result: the result's cell and usage, plus its score and answer."""
    _check_known(results, experiment)
    scorer = Scorer(experiment)
    keyed = results.with_columns(
        has_text=pl.col("response_text").str.strip_chars().str.len_chars() > 0,
        asks=pl.col("response_text").str.contains("?", literal=True),
    )
    answers = keyed.select(_ANSWER).unique()
    rows = [_score_answer(scorer, *row) for row in answers.iter_rows()]
    scored = pl.DataFrame(
        rows,
        schema={
            "tool_correct": pl.Boolean,
            "args_correct": pl.Boolean,
            "exact": pl.Boolean,
            "hallucinated": pl.Boolean,
            "extra_args": pl.Int64,
            "n_calls": pl.Int64,
            "reason": pl.String,
            "answer": pl.String,
        },
        orient="row",
    )
    categories = pl.DataFrame(
        {
            "scenario_id": [s.id for s in experiment.scenarios],
            "category": [s.category for s in experiment.scenarios],
        }
    )
    kinds = pl.DataFrame(
        [
            (v.name, s.id, s.expectation_for(v.name).kind)
            for s in experiment.scenarios
            for v in experiment.variants
        ],
        schema={"variant": pl.String, "scenario_id": pl.String, "expect": pl.String},
        orient="row",
    )
    return (
        keyed.join(pl.concat([answers, scored], how="horizontal"), on=_ANSWER, nulls_equal=True)
        .join(categories, on="scenario_id")
        .join(kinds, on=["variant", "scenario_id"])
        .with_columns(
            abstain_correct=pl.when(pl.col("expect") != "call").then(pl.col("exact")),
        )
        .select(
            "experiment",
            "variant",
            "rep",
            "scenario_id",
            "category",
            "expect",
            "tool_correct",
            "args_correct",
            "exact",
            "abstain_correct",
            "hallucinated",
            "extra_args",
            "n_calls",
            "reason",
            "answer",
            "input_tokens",
            "output_tokens",
            "latency_s",
            "model",
            "run_id",
            "timestamp",
            "file",
            "response_text",
            "tool_calls",
        )
        .sort(_CELL)
    )


def _check_known(results: pl.DataFrame, experiment: Experiment) -> None:
    names = {v.name for v in experiment.variants}
    ids = set(experiment.scenario_ids)
    cells = results.select("variant", "scenario_id", "file").unique(["variant", "scenario_id"])
    for variant, scenario_id, file in cells.iter_rows():
        if variant not in names or scenario_id not in ids:
            what = f"variant {variant!r}" if variant not in names else f"scenario {scenario_id!r}"
            raise ResultsError(
                f"{file}: {what} is not in experiment {experiment.name!r} "
                f"({experiment.source}); pass the definition these results came from "
                "with --experiment PATH"
            )


def _score_answer(
    scorer: Scorer, variant: str, scenario_id: str, tool_calls: str, has_text: bool, asks: bool
) -> tuple[Any, ...]:
    calls = [Call(c["name"], c.get("arguments") or {}) for c in json.loads(tool_calls)]
    # The scorer only looks at whether there is text and whether it asks; say exactly that.
    text = "?" if asks else ("text" if has_text else "")
    s = scorer.score(scenario_id, variant, calls, text)
    return (
        s.tool_correct,
        s.args_correct,
        s.exact,
        s.hallucinated,
        s.extra_args,
        len(calls),
        s.reason,
        _answer_signature(calls, asks),
    )


def _answer_signature(calls: list[Call], asks: bool) -> str:
    """Same tools and arguments ⇔ same signature (call order and key order ignored)."""
    if not calls:
        return "(asks a question)" if asks else "(text only)"
    parts = sorted(json.dumps([c.name, c.arguments], sort_keys=True) for c in calls)
    return " + ".join(parts)


def tidy_table(
    paths: Iterable[str | Path], experiment: str | Path | None = None
) -> tuple[pl.DataFrame, Experiment, Loaded]:
    loaded = load_results(paths)
    definition = experiment_for(loaded, experiment)
    return score(loaded.results, definition), definition, loaded


def export_table(table: pl.DataFrame, path: str | Path) -> Path:
    """Write the tidy table as CSV or Parquet, chosen by the file's suffix."""
    path = Path(path)
    if path.suffix == ".csv":
        table.write_csv(path)
    elif path.suffix == ".parquet":
        table.write_parquet(path)
    else:
        raise ValueError(f"{path}: export to .csv or .parquet")
    return path


# --- per variant ----------------------------------------------------------------------


@dataclass(frozen=True)
class Footprint:
    """What the variant's tool definitions cost in the prompt, before any request."""

    chars: int
    tokens: int | None
    tokenizer: str


@cache
def _smollm2_tokenizer() -> Any:
    try:
        from llama_cpp import Llama

        from tooltrial.embedded import smollm2_path

        with _quiet_stderr():  # llama.cpp prints context warnings even when not verbose
            tokenizer = Llama(model_path=str(smollm2_path()), vocab_only=True, verbose=False)
        atexit.register(tokenizer.close)  # freed before interpreter teardown, not during
        return tokenizer
    except Exception:  # no llama-cpp here: report characters only
        return None


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def tool_footprint(variant: Variant, count_tokens: bool = True) -> Footprint:
    """Characters of the tools as sent (OpenAI function JSON) and their SmolLM2 tokens."""
    text = json.dumps([t.openai_format() for t in variant.tools])
    tokenizer = _smollm2_tokenizer() if count_tokens else None
    if tokenizer is None:
        return Footprint(len(text), None, "none")
    tokens = len(tokenizer.tokenize(text.encode(), add_bos=False))
    return Footprint(len(text), tokens, "SmolLM2-135M")


@dataclass(frozen=True)
class VariantSummary:
    variant: str
    results: int
    scenarios: int
    reps: int
    rates: dict[str, float | None]
    """Metric → share of results (args_correct: of those with the right tool)."""
    calls_per_answer: float
    input_tokens: float
    output_tokens: float
    latency_mean_s: float
    latency_p50_s: float
    latency_p95_s: float
    footprint: Footprint


def summarize(
    table: pl.DataFrame, experiment: Experiment, count_tokens: bool = True
) -> list[VariantSummary]:
    agg = (
        table.group_by("variant")
        .agg(
            pl.len().alias("results"),
            pl.col("scenario_id").n_unique().alias("scenarios"),
            pl.col("rep").n_unique().alias("reps"),
            *(pl.col(m).cast(pl.Float64).mean().alias(m) for m in RATE_METRICS),
            pl.col("n_calls").mean().alias("calls"),
            pl.col("input_tokens").mean(),
            pl.col("output_tokens").mean(),
            pl.col("latency_s").mean().alias("lat_mean"),
            pl.col("latency_s").quantile(0.5, "linear").alias("lat_p50"),
            pl.col("latency_s").quantile(0.95, "linear").alias("lat_p95"),
        )
        .rows_by_key("variant", named=True, unique=True)
    )
    summaries = []
    for variant in experiment.variants:
        row = agg.get(variant.name)
        if row is None:
            continue
        summaries.append(
            VariantSummary(
                variant=variant.name,
                results=row["results"],
                scenarios=row["scenarios"],
                reps=row["reps"],
                rates={m: row[m] for m in RATE_METRICS},
                calls_per_answer=row["calls"],
                input_tokens=row["input_tokens"],
                output_tokens=row["output_tokens"],
                latency_mean_s=row["lat_mean"],
                latency_p50_s=row["lat_p50"],
                latency_p95_s=row["lat_p95"],
                footprint=tool_footprint(variant, count_tokens),
            )
        )
    return summaries


def by_category(table: pl.DataFrame) -> pl.DataFrame:
    return (
        table.group_by("category", "variant")
        .agg(pl.len().alias("results"), pl.col("exact").cast(pl.Float64).mean().alias("exact"))
        .sort("category", "variant")
    )


def consistency(table: pl.DataFrame) -> pl.DataFrame:
    """Per scenario and variant: do repetitions give the same tools and arguments?

    ``agreement`` is the share of reps that give the most common answer (1.0: all
    agree); ``flips`` is true when the reps are not all right or all wrong.
    """
    return (
        table.group_by("scenario_id", "variant")
        .agg(
            pl.len().alias("reps"),
            pl.col("answer").n_unique().alias("distinct_answers"),
            (
                pl.col("answer").value_counts(sort=True).first().struct.field("count") / pl.len()
            ).alias("agreement"),
            pl.col("exact").cast(pl.Float64).mean().alias("exact"),
        )
        .with_columns(flips=(pl.col("exact") > 0) & (pl.col("exact") < 1))
        .sort("scenario_id", "variant")
    )


# --- paired comparison ----------------------------------------------------------------


def scenario_means(
    table: pl.DataFrame, metric: str, reference: str, treatment: str
) -> pl.DataFrame:
    """Per scenario: the mean of ``metric`` over reps for each variant (both present)."""
    return (
        table.filter(pl.col("variant").is_in([reference, treatment]))
        .filter(pl.col(metric).is_not_null())
        .group_by("scenario_id", "variant")
        .agg(pl.col(metric).cast(pl.Float64).mean().alias("mean"))
        .pivot(on="variant", index="scenario_id", values="mean")
        .drop_nulls()
        .sort("scenario_id")
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
class Difference:
    metric: str
    reference: str
    treatment: str
    reference_mean: float
    treatment_mean: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    """Paired t-test across scenarios."""
    p_sign_flip: float
    scenarios: int


def compare(
    table: pl.DataFrame,
    reference: str,
    treatment: str,
    metrics: Sequence[str] = tuple(METRICS),
    n_boot: int = 10_000,
    seed: int = 0,
) -> list[Difference]:
    out = []
    for metric in metrics:
        means = scenario_means(table, metric, reference, treatment)
        if means.height == 0:
            continue
        ref = means[reference].to_numpy()
        trt = means[treatment].to_numpy()
        d = trt - ref
        low, high = cluster_bootstrap_ci(d, n_boot=n_boot, seed=seed)
        out.append(
            Difference(
                metric=metric,
                reference=reference,
                treatment=treatment,
                reference_mean=float(ref.mean()),
                treatment_mean=float(trt.mean()),
                difference=float(d.mean()),
                ci_low=low,
                ci_high=high,
                p_value=paired_t_test(d),
                p_sign_flip=sign_flip_test(d, seed=seed),
                scenarios=int(d.size),
            )
        )
    return out


def largest_differences(
    table: pl.DataFrame, reference: str, treatment: str, limit: int = 5
) -> pl.DataFrame:
    """Scenarios whose exact-match rate differs most between the two variants."""
    means = scenario_means(table, "exact", reference, treatment)
    return (
        means.with_columns(difference=pl.col(treatment) - pl.col(reference))
        .filter(pl.col("difference") != 0)
        .sort(pl.col("difference").abs(), "scenario_id", descending=[True, False])
        .head(limit)
    )


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


def variance_components(
    table: pl.DataFrame, reference: str, treatment: str, metric: str = "exact"
) -> VarianceComponents:
    cells = (
        table.filter(pl.col("variant").is_in([reference, treatment]))
        .filter(pl.col(metric).is_not_null())
        .group_by("scenario_id", "variant")
        .agg(
            pl.col(metric).cast(pl.Float64).var(ddof=1).alias("var"),
            pl.len().alias("reps"),
        )
    )
    reps = cells["reps"].to_numpy()
    pooled = cells.filter(pl.col("reps") > 1)["var"].to_numpy()
    within = 2 * float(pooled.mean()) if pooled.size else 0.0
    means = scenario_means(table, metric, reference, treatment)
    d = means[treatment].to_numpy() - means[reference].to_numpy()
    r0 = float(stats.hmean(reps)) if reps.size else 1.0
    var_d = float(d.var(ddof=1)) if d.size > 1 else 0.0
    between = max(0.0, var_d - within / r0)
    if between == 0 and within == 0:
        return VarianceComponents(0.0, 0.5, int(d.size), r0, worst_case=True)
    return VarianceComponents(between, within, int(d.size), r0)


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


# --- everything the report shows ------------------------------------------------------


@dataclass(frozen=True)
class Analysis:
    experiment: Experiment
    loaded: Loaded
    table: pl.DataFrame
    variants: list[VariantSummary]
    reference: str
    comparisons: dict[str, list[Difference]]
    """Treatment variant → its differences from the reference."""
    largest: dict[str, pl.DataFrame]
    categories: pl.DataFrame
    consistency: pl.DataFrame
    power: dict[str, tuple[VarianceComponents, dict[float, list[PowerPlan]]]]
    warnings: list[str] = field(default_factory=list)


def analyze(
    paths: Iterable[str | Path],
    experiment: str | Path | None = None,
    reference: str | None = None,
    n_boot: int = 10_000,
    seed: int = 0,
    count_tokens: bool = True,
    detect: Sequence[float] = (0.1, 0.2),
) -> Analysis:
    table, definition, loaded = tidy_table(paths, experiment)
    present = [v.name for v in definition.variants if v.name in set(table["variant"])]
    if reference is None:
        reference = present[0]
    elif reference not in present:
        raise ValueError(f"--reference {reference!r}: no results; variants here: {present}")
    warnings = [
        f"variant {v.name!r}: its definition changed since the run "
        f"({loaded.variant_hashes[v.name]} in the files, {v.definition_hash} now)"
        for v in definition.variants
        if v.name in loaded.variant_hashes and loaded.variant_hashes[v.name] != v.definition_hash
    ]
    others = [v for v in present if v != reference]
    comparisons = {t: compare(table, reference, t, n_boot=n_boot, seed=seed) for t in others}
    power = {}
    for t in others:
        components = variance_components(table, reference, t)
        power[t] = (components, {delta: scenarios_needed(delta, components) for delta in detect})
    return Analysis(
        experiment=definition,
        loaded=loaded,
        table=table,
        variants=summarize(table, definition, count_tokens),
        reference=reference,
        comparisons=comparisons,
        largest={t: largest_differences(table, reference, t) for t in others},
        categories=by_category(table),
        consistency=consistency(table),
        power=power,
        warnings=warnings,
    )
