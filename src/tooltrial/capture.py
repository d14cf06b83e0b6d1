"""Append-only JSONL capture: one metadata line, then one line per scenario result.

Guarantees, and how they are kept:

- A file is never truncated or overwritten: files are opened ``O_APPEND`` only, and the
  metadata line is written to a temporary file that is then hard-linked into place, which
  fails if the name is taken.
- A crash never corrupts what was written: each record is one ``write()`` of a whole line,
  then ``fsync``. A record is committed when its newline is on disk. SIGKILL can still cut
  a ``write()`` that spans pages (Linux checks for fatal signals between pages), leaving a
  torn last line: readers skip it, as the record was never committed (``--resume`` runs
  that cell again), and a writer appending to such a file first ends the torn line, so
  its own lines stay whole.
- Several processes (pytest-xdist workers) can share a file: the link makes exactly one of
  them write the metadata, and ``flock`` keeps their result lines whole and in sequence.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tooltrial import __version__


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def file_timestamp() -> str:
    """Sortable and unique enough for one session; used in file names."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolCall(_Record):
    id: str
    name: str
    arguments: dict[str, Any]


class Usage(_Record):
    input_tokens: int = 0
    output_tokens: int = 0


class Metadata(_Record):
    type: Literal["metadata"] = "metadata"
    run_id: str
    experiment: str
    variant: str
    rep: int
    model: str
    temperature: float | None
    fixed_timestamp: str
    zero_persona: bool
    git_commit: str | None
    tooltrial_version: str = __version__
    variant_hash: str
    scenario_ids: list[str]
    runs: int | None = None
    created_at: str = Field(default_factory=utc_now)
    settings: dict[str, Any] = Field(default_factory=dict)
    """Anything else that shaped the run (max_tokens, cache use, provider options)."""


class Result(_Record):
    type: Literal["scenario_result"] = "scenario_result"
    run_id: str
    scenario_id: str
    variant: str
    rep: int
    response_text: str
    tool_calls: list[ToolCall]
    stop_reason: str | None
    usage: Usage
    latency_s: float
    model: str
    response_model: str | None = None
    temperature: float | None
    timestamp: str = Field(default_factory=utc_now)
    attempts: int = 1
    retry_wait_s: float = 0.0
    cached: bool = False
    trace_id: str | None = None
    content: list[dict[str, Any]] = Field(default_factory=list)
    """Every content block the provider returned, as returned (full provenance)."""


class Error(_Record):
    type: Literal["scenario_error"] = "scenario_error"
    run_id: str
    scenario_id: str
    variant: str
    rep: int
    kind: str
    message: str
    attempts: int
    retry_wait_s: float = 0.0
    model: str
    timestamp: str = Field(default_factory=utc_now)


Record = Metadata | Result | Error
_RECORD_TYPES: dict[str, type[_Record]] = {
    "metadata": Metadata,
    "scenario_result": Result,
    "scenario_error": Error,
}


class JSONLWriter:
    """Appends records to one JSONL file.

    With ``filename`` it writes that file (appending if it exists); without, it makes a
    new name from the run id and the current time.
    """

    def __init__(
        self, run_id: str, directory: str | Path = "results", filename: str | None = None
    ) -> None:
        self.run_id = run_id
        self.directory = Path(directory)
        self.path = self.directory / (filename or f"{run_id}_{file_timestamp()}.jsonl")
        self._fd: int | None = None
        self._lock = threading.Lock()

    def write_metadata(self, **fields: Any) -> bool:
        """Make the file start with this metadata line; False if it already had one.

        The line is written before the file appears under its name, so no reader or
        other process ever sees a results line ahead of it.
        """
        record = Metadata(run_id=self.run_id, **fields)
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".meta-", suffix=".tmp")
        try:
            os.write(fd, _line(record))
            os.fsync(fd)
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        finally:
            os.close(fd)
            os.unlink(tmp)

    def write_result(self, **fields: Any) -> Result:
        record = Result(run_id=self.run_id, **fields)
        self._append(record)
        return record

    def write_error(self, **fields: Any) -> Error:
        record = Error(run_id=self.run_id, **fields)
        self._append(record)
        return record

    def _append(self, record: _Record) -> None:
        data = _line(record)
        with self._lock:
            if self._fd is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(self._fd).st_size
                if size and os.pread(self._fd, 1, size - 1) != b"\n":
                    data = b"\n" + data  # a killed writer's torn line: end it, keep ours whole
                os.write(self._fd, data)
                os.fsync(self._fd)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _line(record: _Record) -> bytes:
    return (record.model_dump_json() + "\n").encode()


@dataclass
class WriterPool:
    """One writer per (variant, rep), created on first use, with one timestamp for all.

    ``metadata`` maps a variant name to the metadata fields of its files (everything but
    ``variant`` and ``rep``, which the pool fills in).
    """

    run_id: str
    git_commit: str | None
    metadata: dict[str, dict[str, Any]]
    directory: Path = Path("results")
    timestamp: str = field(default_factory=file_timestamp)
    _writers: dict[tuple[str, int], JSONLWriter] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def filename(self, variant: str, rep: int) -> str:
        return f"{variant}_run{rep}_{self.timestamp}.jsonl"

    def get(self, variant: str, rep: int) -> JSONLWriter:
        with self._lock:
            writer = self._writers.get((variant, rep))
            if writer is None:
                if variant not in self.metadata:
                    known = ", ".join(sorted(self.metadata))
                    raise KeyError(f"unknown variant {variant!r}; the pool knows: {known}")
                writer = JSONLWriter(self.run_id, self.directory, self.filename(variant, rep))
                writer.write_metadata(
                    **self.metadata[variant], variant=variant, rep=rep, git_commit=self.git_commit
                )
                self._writers[(variant, rep)] = writer
            return writer

    @property
    def paths(self) -> list[Path]:
        return [w.path for w in self._writers.values()]

    def close_all(self) -> None:
        with self._lock:
            for writer in self._writers.values():
                writer.close()


# --- reading --------------------------------------------------------------------------


class CorruptLine(ValueError):
    """A line that is not a valid record; says which file and line, and what to do."""

    def __init__(self, path: Path, line_no: int, problem: str) -> None:
        self.path, self.line_no, self.problem = path, line_no, problem
        super().__init__(
            f"{path}:{line_no}: {problem}. The file is append-only, so the line was left "
            "as it is: move the file out of the results folder (or delete that line) "
            "and re-run the missing cells with `tooltrial run --resume`."
        )


def iter_records(path: Path) -> Iterator[Record]:
    """Yield every committed record of a file in order; raise CorruptLine at a bad one.

    A last line without its newline is a torn write (the writer was killed): never
    committed, so it is skipped rather than reported.
    """
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.endswith(b"\n"):
                return
            yield parse_line(path, line_no, raw)


def committed_bytes(path: Path) -> bytes | None:
    """The file up to its last newline if its last line is torn; None if it is whole."""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return None
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return None
        handle.seek(0)
        data = handle.read()
    return data[: data.rfind(b"\n") + 1]


def parse_line(path: Path, line_no: int, raw: bytes) -> Record:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CorruptLine(path, line_no, f"not valid JSON ({exc.msg})") from None
    kind = data.get("type") if isinstance(data, dict) else None
    record_type = _RECORD_TYPES.get(kind)  # type: ignore[arg-type]
    if record_type is None:
        raise CorruptLine(path, line_no, f"unknown record type {kind!r}")
    try:
        return record_type.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise CorruptLine(path, line_no, f"{kind} record: {loc}: {first['msg']}") from None
