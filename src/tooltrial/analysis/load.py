"""Result files → the latest result of every cell, as a polars frame, and what the files
say about the run: its kind, its definition (``log.recorded``) and each (model, variant)'s
tool-definition footprint.

Reading is columnar: polars scans the NDJSON (nested fields kept as JSON text), so no
line becomes a Python object. An agentic result's ``conversation`` is read as a struct of
its verdict and counts, its checks, diff and messages kept as JSON text (null on a
single-turn line). A torn last line (a killed writer) was never committed
and is skipped, as every reader of the log does.

Nothing in the files can break the scan or pass it unnoticed: a file that is not a
regular file is refused before it is read (``files.open_regular``); and when polars
cannot read a file, or a line it read is not a record (an unknown type, a result missing
a field, a latency that is not a finite number), the files concerned are walked record by
record (``log.reader``) so the error names the file and line. Each metadata line is read
through the log reader too, so its fields are checked in full.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tooltrial.definitions import Experiment, load_experiment
from tooltrial.definitions.experiment import Kind
from tooltrial.errors import DefinitionError, ResultsError
from tooltrial.files import open_regular
from tooltrial.log.reader import (
    CELL_KEY,
    GZIP_MAGIC,
    committed_bytes,
    iter_records,
    read_results,
    result_files,
)
from tooltrial.log.recorded import changed_variants, recorded_experiment
from tooltrial.log.records import Metadata, ToolFootprint

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
    "conversation": pl.Struct(
        {
            "success": pl.Boolean,
            "stop_reason": pl.String,
            "turns": pl.Int64,
            "tool_calls": pl.Int64,
            "tool_errors": pl.Int64,
            "checks": pl.String,  # nested JSON, kept as text
            "diff": pl.String,
            "messages": pl.String,
        }
    ),
}
_CELL = list(CELL_KEY)
_ANSWER = ["variant", "scenario_id", "tool_calls", "has_text", "asks"]


@dataclass(frozen=True)
class Loaded:
    """The latest result of every cell (``CELL_KEY``: model, variant, scenario, rep), plus
    what the files say. Results of several models in one folder stay apart."""

    results: pl.DataFrame
    files: tuple[Path, ...]
    experiment: str
    experiment_source: str | None
    models: tuple[str, ...]
    variant_hashes: dict[str, str]
    errors: int
    """``scenario_error`` lines (never results)."""
    errors_by_model: dict[str, int] = field(default_factory=dict)
    """The same, per model (a model without error lines is absent)."""
    randomised: bool = True
    """Every file ran its cells in a random order; if not, anything that drifts over a run
    (latency) may differ between variants for that reason alone."""
    kind: Kind = "single-turn"
    heads: tuple[Metadata, ...] = ()
    """Every file's metadata line."""
    recorded: Experiment | None = None
    """The experiment as the files record it (None for files from before format 4)."""

    def footprint(self, model: str, variant: str) -> ToolFootprint | None:
        """The tool definitions' footprint the files record for (model, variant)."""
        found = (h.tool_footprint for h in self.heads if (h.model, h.variant) == (model, variant))
        return next((f for f in found if f is not None), None)


def load_results(paths: Iterable[str | Path]) -> Loaded:
    files = result_files(paths)
    try:
        lines = pl.concat([_scan(path) for path in files]).with_row_index("row").collect()
    except (pl.exceptions.PolarsError, OSError) as exc:  # OSError: polars on a gzip file
        _raise_first_bad_line(files, exc)
    _check_lines(lines, files)
    meta = _metadata(lines, files)
    nameless = meta.filter(pl.col("experiment").is_null())
    if nameless.height:
        raise ResultsError(
            f"{nameless['file'][0]}:1: the metadata line names no experiment; this is not "
            "a complete tooltrial result file, move it out of the results folder"
        )
    experiments = meta["experiment"].unique().to_list()
    if len(experiments) != 1:
        raise ResultsError(
            f"these files hold more than one experiment ({', '.join(sorted(experiments))}); "
            "give the files of one experiment"
        )
    results = _exact_nested(_latest(lines, experiments[0]), files)
    heads = tuple(_head(path) for path in files)
    sources = [s for s in meta["source"].unique().to_list() if s]
    hashes = dict(meta.select("variant", "variant_hash").unique("variant").iter_rows())
    errors = lines.filter(pl.col("type") == "scenario_error")
    return Loaded(
        results=results,
        files=tuple(files),
        experiment=experiments[0],
        experiment_source=sources[0] if sources else None,
        models=tuple(sorted(meta["model"].unique().to_list())),
        variant_hashes=hashes,
        errors=errors.height,
        errors_by_model=dict(errors.group_by("model").len().iter_rows()),
        randomised=bool((meta["order"] == "random").all()),
        kind=_kind(heads, files, results),
        heads=heads,
        recorded=recorded_experiment(heads),
    )


def _head(path: Path) -> Metadata:
    head = next(iter_records(path))  # the scan above checked it is a metadata line
    assert isinstance(head, Metadata)
    return head


def _kind(heads: tuple[Metadata, ...], files: list[Path], results: pl.DataFrame) -> Kind:
    """The kind the files record (files from before format 4: conversations or not); a
    folder mixing both kinds is refused rather than pooled."""
    conversations = set(results.filter(pl.col("conversation").is_not_null())["file"].to_list())
    kinds = {
        str(path): head.kind or ("agentic" if str(path) in conversations else "single-turn")
        for path, head in zip(files, heads, strict=True)
    }
    if len(set(kinds.values())) > 1:
        single = next(f for f, k in kinds.items() if k == "single-turn")
        agentic = next(f for f, k in kinds.items() if k == "agentic")
        raise ResultsError(
            f"these files mix single-turn results ({single}) with agentic conversations "
            f"({agentic}); they cannot be scored or compared together: report each kind "
            "from its own folder"
        )
    return next(iter(kinds.values()))


def _exact_nested(results: pl.DataFrame, files: list[Path]) -> pl.DataFrame:
    """Nested values as exact JSON text, read again through the log reader where needed.

    polars turns a nested value into text with the escapes of backslashes undone, so a
    tool call whose arguments hold one (a Windows path, LaTeX), or a conversation whose
    messages do, no longer parses. Tool calls are re-read only when one fails to parse
    (a single-turn folder of a million lines pays one ``unique()``); a conversation's
    checks, diff and messages always are. The records are read at most once."""
    distinct = results["tool_calls"].unique().to_list()
    bad = {text for text in distinct if text is not None and not _parses(text)}
    has_conversations = not results["conversation"].is_null().all()
    if not bad and not has_conversations:
        return results
    records = read_results(files)
    rows = [records.get(key) for key in results.select(_CELL).iter_rows()]
    if bad:
        texts = results["tool_calls"].to_list()
        exact = [
            _json_list(row.tool_calls) if text in bad and row is not None else text
            for row, text in zip(rows, texts, strict=True)
        ]
        results = results.with_columns(pl.Series("tool_calls", exact, dtype=pl.String))
    if has_conversations:
        conversations = [row.conversation if row is not None else None for row in rows]
        parts = {
            name: [None if c is None else _json_list(getattr(c, name)) for c in conversations]
            for name in ("checks", "diff", "messages")
        }
        results = results.with_columns(
            pl.col("conversation").struct.with_fields(
                *(pl.Series(name, texts, dtype=pl.String) for name, texts in parts.items())
            )
        )
    return results


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _json_list(items: list[Any]) -> str:
    return json.dumps([item.model_dump(mode="json") for item in items], ensure_ascii=False)


def _scan(path: Path) -> pl.LazyFrame:
    """A file's lines, lazily; a torn last line (a killed writer) was never committed."""
    with open_regular(path) as handle:  # a folder, FIFO or device: refused, never read
        if os.fstat(handle.fileno()).st_size == 0:
            raise ResultsError(f"{path}: empty file; move it out of the results folder")
        if handle.read(2) == GZIP_MAGIC:
            next(iter_records(path))  # raises, naming the file and what to do
    committed = committed_bytes(path)
    if committed is None:
        return pl.scan_ndjson(path, schema=_LINE_SCHEMA, include_file_paths="file")
    frame = pl.read_ndjson(io.BytesIO(committed), schema=_LINE_SCHEMA)
    return frame.with_columns(file=pl.lit(str(path))).lazy()


_TYPES = ("metadata", "scenario_result", "scenario_error")
_RESULT_FIELDS = ("run_id", "scenario_id", "variant", "model", "rep", "usage", "latency_s")


def _check_lines(lines: pl.DataFrame, files: list[Path]) -> None:
    """Lines polars read but that are not records: named by the log reader."""
    result = pl.col("type") == "scenario_result"
    incomplete = pl.any_horizontal(pl.col(name).is_null() for name in _RESULT_FIELDS)
    suspect = lines.filter(
        pl.col("type").is_null()
        | ~pl.col("type").is_in(_TYPES)
        | (result & (incomplete | (pl.col("rep") < 1) | ~pl.col("latency_s").is_finite()))
    )
    if suspect.height:
        named = set(suspect["file"].to_list())
        _raise_first_bad_line(
            [f for f in files if str(f) in named],
            f"line {suspect['row'][0] + 1} of them all is not a record",
        )


def _raise_first_bad_line(files: list[Path], exc: object) -> Any:
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
        # files without an order (tooltrial 0.1) ran variant by variant
        pl.col("settings").str.json_path_match("$.order.kind").fill_null("blocked").alias("order"),
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
    # The rule of log.reader.CELL_KEY: per cell the latest timestamp wins, ties to the
    # later line. Most cells have one line, so only the repeated ones are sorted.
    repeated = pl.struct(_CELL).is_duplicated()
    reruns = results.filter(repeated).sort("timestamp", "row").unique(subset=_CELL, keep="last")
    return pl.concat([results.filter(~repeated), reruns]).select(
        pl.lit(experiment).alias("experiment"),
        "run_id",
        *_CELL,
        "response_text",
        "tool_calls",
        pl.col("usage").struct.field("input_tokens"),
        pl.col("usage").struct.field("output_tokens"),
        "latency_s",
        "timestamp",
        "file",
        "conversation",
    )


def experiment_for(loaded: Loaded, override: str | Path | None = None) -> Experiment:
    """The definition to score against: ``override``, else the one the files record,
    else (files from before format 4) the one their metadata names. Its kind must be the
    files' kind."""
    recorded = loaded.recorded if override is None else None
    definition = recorded or _load_definition(loaded, override)
    if definition.kind != loaded.kind:
        where = f"experiment {definition.name!r} ({definition.source})"
        said = "names no app" if loaded.kind == "agentic" else "is agentic (it names an app)"
        results = "conversations" if loaded.kind == "agentic" else "single calls"
        raise ResultsError(
            f"{loaded.files[0]}: these results are {results}, but {where} {said}; pass "
            "the definition they came from with --experiment PATH"
        )
    return definition


def definition_warnings(loaded: Loaded, definition: Experiment) -> list[str]:
    """What a reader should know about the definition the results are scored against:
    a variant that ran with several definitions, or that differs from the one given."""
    warnings = [
        f"variant {name!r} ran with {len(hashes)} different definitions in these files "
        f"({', '.join(hashes)}); it is scored as the newest file records it"
        for name, hashes in changed_variants(loaded.heads).items()
    ]
    if definition is not loaded.recorded:
        warnings += [
            f"variant {v.name!r}: its definition changed since the run "
            f"({loaded.variant_hashes[v.name]} in the files, {v.definition_hash} now)"
            for v in definition.variants
            # an MCP variant's tools are known only from its server (recorded, checked by
            # --resume): its declared hash cannot be compared
            if v.mcp is None
            and loaded.variant_hashes.get(v.name, v.definition_hash) != v.definition_hash
        ]
    return warnings


def _load_definition(loaded: Loaded, override: str | Path | None) -> Experiment:
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
