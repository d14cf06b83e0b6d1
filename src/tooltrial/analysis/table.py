"""The tidy table: one scored row per result, and its export.

Guarantee: one row per cell of the log (``log.reader.CELL_KEY``: model, variant,
scenario, rep), its latest result; results of several models never merge.

Scoring needs Python, so it runs once per *distinct answer* — (variant, scenario, tool
calls, has text, asks a question) — and is joined back; repeated answers cost nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl

from tooltrial.analysis.load import _ANSWER, Loaded, experiment_for, load_results
from tooltrial.analysis.scoring import Call, Scorer
from tooltrial.definitions import Experiment
from tooltrial.errors import ResultsError, UsageError

METRICS: dict[str, str] = {
    "exact": "exact match",
    "tool_correct": "action selection",
    "args_correct": "arguments (given the right action)",
    "abstain_correct": "no-call / clarify",
    "hallucinated": "hallucinated tool",
    "malformed": "malformed arguments",
    "input_tokens": "input tokens",
    "output_tokens": "output tokens",
    "latency_s": "latency (s)",
}
RATE_METRICS = (
    "exact",
    "tool_correct",
    "args_correct",
    "abstain_correct",
    "hallucinated",
    "malformed",
)
TIME_DEPENDENT = ("latency_s",)
"""Compared (tested) only when every file ran in a random order: in a blocked run, drift
over the run (server load, rate limits, a deploy) lands on whichever variant ran then."""
FIXED_BY_DESIGN = ("input_tokens",)
"""Reported, never tested: in a single-turn experiment a variant's input tokens differ
from another's by exactly its system prompt and tool definitions, so a test of them would
only restate the design."""


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
            "malformed": pl.Boolean,
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
            "model",
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
            "malformed",
            "extra_args",
            "n_calls",
            "reason",
            "answer",
            "input_tokens",
            "output_tokens",
            "latency_s",
            "run_id",
            "timestamp",
            "file",
            "response_text",
            "tool_calls",
        )
        .sort("model", "variant", "rep", "scenario_id")
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
        s.malformed,
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
        raise UsageError(f"{path}: export to .csv or .parquet")
    return path
