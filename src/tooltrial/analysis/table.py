"""The tidy table: one scored row per result, its metrics, and its export.

Guarantees: one row per cell of the log (``log.reader.CELL_KEY``: model, variant,
scenario, rep), its latest result; results of several models never merge. The metric
tables here (``SINGLE_TURN``, ``AGENTIC``) are the one place that says which columns are
compared, which are rates, which are fixed by design and which depend on time.

Single-turn results are scored against the scenarios' expectations; scoring needs
Python, so it runs once per *distinct answer* — (variant, scenario, tool calls, has text,
asks a question) — and is joined back; repeated answers cost nothing. Agentic results
(those with a conversation) are never re-judged: their row is the verdict recorded when
the conversation ended, part by part. A folder holding both kinds is refused.

The export (``export_table``) is made in memory, then written whole
(``files.replace_whole``): a full disk leaves the old file (or none) and no temporary
file, and a link at the name is replaced, never written through.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from tooltrial.analysis.load import _ANSWER, Loaded, experiment_for, load_results
from tooltrial.analysis.scoring import Call, Scorer
from tooltrial.definitions import Experiment
from tooltrial.definitions.agentic import CHECK_NAMES
from tooltrial.definitions.experiment import Kind
from tooltrial.errors import ResultsError, UsageError
from tooltrial.files import replace_whole

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

CHECK_COLUMNS = {name: f"check_{name}" for name in CHECK_NAMES}
"""A verdict part (``definitions.agentic.CHECK_NAMES``) → its column: true or false where
the scenario judges that part, null where it does not."""
COST_METRICS = ("turns", "tool_calls", "tool_errors", "input_tokens", "output_tokens", "latency_s")
"""What an agentic conversation spends; summed over a variant's conversations and divided
by its successes, the cost per success."""
AGENTIC_METRICS: dict[str, str] = {
    "success": "success",
    "check_answered": "check: answered (no limit hit)",
    "check_state": "check: state",
    "check_unchanged": "check: nothing else changed",
    "check_reference": "check: reference state",
    "check_forbidden": "check: no forbidden action",
    "check_reply": "check: reply",
    "turns": "turns",
    "tool_calls": "tool calls",
    "tool_errors": "tool errors",
    "input_tokens": "input tokens",
    "output_tokens": "output tokens",
    "latency_s": "conversation time (s)",
}
AGENTIC_RATE_METRICS = ("success", *CHECK_COLUMNS.values())


@dataclass(frozen=True)
class MetricSet:
    """The metrics of one kind of experiment, in report order, and their rules."""

    kind: str
    labels: dict[str, str]
    """Every compared metric → its label."""
    rates: tuple[str, ...]
    """Yes/no metrics (a mean is a rate; differences are in percentage points)."""
    headline: str
    """The per-scenario rate of the heatmap, categories, consistency and largest
    differences."""
    calls: str
    """The column counting a result's tool calls."""
    fixed_by_design: tuple[str, ...]
    """Reported, never tested."""
    time_dependent: tuple[str, ...] = TIME_DEPENDENT


SINGLE_TURN = MetricSet("single-turn", METRICS, RATE_METRICS, "exact", "n_calls", FIXED_BY_DESIGN)
AGENTIC = MetricSet("agentic", AGENTIC_METRICS, AGENTIC_RATE_METRICS, "success", "tool_calls", ())
"""Input tokens are tested here: a conversation's input tokens grow with every turn and
every tool result it carries, so they measure the path the model took, not only the
variant's prompt (which every turn repeats; see the tool-definition footprint)."""


METRIC_SETS: dict[Kind, MetricSet] = {"single-turn": SINGLE_TURN, "agentic": AGENTIC}
"""The metrics, labels and per-scenario rate of each kind of experiment."""


def metric_set(table: pl.DataFrame) -> MetricSet:
    """The metrics a tidy table holds. Its columns follow from the experiment's kind
    (``score`` builds one shape per kind, from the kind the files record), so this reads
    the table's shape; it never decides the kind."""
    return AGENTIC if "success" in table.columns else SINGLE_TURN


def is_rate(metric: str) -> bool:
    return metric in RATE_METRICS or metric in AGENTIC_RATE_METRICS


def score(results: pl.DataFrame, experiment: Experiment) -> pl.DataFrame:
    """One row per result: the result's cell and usage, plus its score and answer (or,
    for conversations, its recorded verdict: ``score_conversations``)."""
    if experiment.agentic:
        return score_conversations(results, experiment)
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
    categories = _categories(experiment)
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


_CHECKS = pl.List(pl.Struct({"name": pl.String, "ok": pl.Boolean, "detail": pl.String}))


def score_conversations(results: pl.DataFrame, experiment: Experiment) -> pl.DataFrame:
    """One row per conversation: its cell, its recorded verdict (``success`` and one
    column per part, null where not judged), why it stopped, what it spent, and (as JSON
    text, for the drill-down) its checks, state diff and messages.

    ``reason`` lists the failed parts with their detail; ``answer`` is the state change the
    conversation made (its diff), so reps that end in the same state agree."""
    _check_known(results, experiment)
    conversation = pl.col("conversation")
    checks = pl.col("checks").str.json_decode(_CHECKS)
    diff = conversation.struct.field("diff")
    return (
        results.join(_categories(experiment), on="scenario_id")
        .with_columns(
            success=conversation.struct.field("success"),
            stop_reason=conversation.struct.field("stop_reason"),
            turns=conversation.struct.field("turns"),
            tool_calls=conversation.struct.field("tool_calls"),
            tool_errors=conversation.struct.field("tool_errors"),
            checks=conversation.struct.field("checks"),
            diff=diff,
            messages=conversation.struct.field("messages"),
            answer=pl.when(diff == "[]").then(pl.lit("(no change)")).otherwise(diff),
        )
        .with_columns(
            **{column: _part(checks, name) for name, column in CHECK_COLUMNS.items()},
            reason=_failed(checks),
        )
        .select(
            "experiment",
            "model",
            "variant",
            "rep",
            "scenario_id",
            "category",
            "success",
            *CHECK_COLUMNS.values(),
            "stop_reason",
            *COST_METRICS,
            "reason",
            "answer",
            "run_id",
            "timestamp",
            "file",
            "response_text",
            "checks",
            "diff",
            "messages",
        )
        .sort("model", "variant", "rep", "scenario_id")
    )


def _part(checks: pl.Expr, name: str) -> pl.Expr:
    """Whether the part ``name`` held; null when the verdict has no such part."""
    element = pl.element()
    return checks.list.eval(
        element.filter(element.struct.field("name") == name).struct.field("ok")
    ).list.first()


def _failed(checks: pl.Expr) -> pl.Expr:
    """'part: detail; …' over the failed parts ('' when every part held)."""
    element = pl.element()
    name, detail = element.struct.field("name"), element.struct.field("detail")
    said = pl.when(detail == "").then(name).otherwise(pl.concat_str(name, pl.lit(": "), detail))
    return checks.list.eval(said.filter(~element.struct.field("ok"))).list.join("; ")


def _categories(experiment: Experiment) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "scenario_id": [s.id for s in experiment.scenarios],
            "category": [s.category for s in experiment.scenarios],
        }
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
    """Write the tidy table as CSV or Parquet, chosen by the file's suffix: whole, or
    not at all (``WriteFailed``, the file as it was)."""
    path = Path(path)
    made = io.BytesIO()  # the table is in memory already; its file is no bigger
    if path.suffix == ".csv":
        table.write_csv(made)
    elif path.suffix == ".parquet":
        table.write_parquet(made)
    else:
        raise UsageError(f"{path}: export to .csv or .parquet")
    replace_whole(path, made.getvalue())
    return path
