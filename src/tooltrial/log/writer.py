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
- What is written is valid UTF-8 JSON that reads back as the record (a lone surrogate in
  a model's text is written as its JSON escape, ``tooltrial.text``), and holds no known
  key value (``tooltrial.redact``: a key a model echoed back is written as ``***``).
- Several processes (pytest-xdist workers) can share a file: the link makes exactly one of
  them write the metadata, and ``flock`` keeps their result lines whole and in sequence.
- Nothing already in the folder can redirect a write: a variant or model name is encoded
  where it forms a file name (``files.file_part``: never a ``/``, a hidden or ``..``
  name, or too long), and a file is appended to only if it is a regular file of one link
  (``files.open_append``), so a symbolic or hard link under a result file's name is
  refused, not written through.
- A full disk or an I/O error never leaves a line half-written: the file is cut back to
  its size before the write (``files.append_whole``; a metadata line is written to its
  temporary file first), and the ``WriteFailed`` raised says how to resume the run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tooltrial.files import WriteFailed, append_whole, file_part, open_append
from tooltrial.log.records import (
    FORMAT_VERSION,
    ConversationRecord,
    Error,
    Metadata,
    Record,
    Result,
)
from tooltrial.redact import redact
from tooltrial.text import json_text
from tooltrial.types import Outcome


def file_timestamp() -> str:
    """Sortable and unique enough for one session; used in file names."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


class JSONLWriter:
    """Appends records to one JSONL file.

    With ``filename`` it writes that file (appending if it exists); without, it makes a
    new name from the run id and the current time. ``resume``: the command that resumes
    the run, told when a write fails.
    """

    def __init__(
        self,
        run_id: str,
        directory: str | Path = "results",
        filename: str | None = None,
        resume: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.directory = Path(directory)
        name = filename or f"{file_part(run_id)}_{file_timestamp()}.jsonl"
        if Path(name).name != name or name in (".", ".."):
            raise ValueError(f"{name!r} is not a file name")  # callers build names: a bug
        self.path = self.directory / name
        self.resume = resume
        self._fd: int | None = None
        self._lock = threading.Lock()

    def write_metadata(self, **fields: Any) -> bool:
        """Make the file start with this metadata line; False if it already had one.

        The line is written before the file appears under its name, so no reader or
        other process ever sees a results line ahead of it.
        """
        record = Metadata(run_id=self.run_id, format_version=FORMAT_VERSION, **fields)
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".meta-", suffix=".tmp")
        try:
            append_whole(fd, _line(record), self.path, self.resume)
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        except OSError as exc:  # the link itself failed (a full folder, an I/O error)
            raise WriteFailed(self.path, exc, self.resume) from None
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def write_result(self, **fields: Any) -> Result:
        record = Result(run_id=self.run_id, **fields)
        self._append(record)
        return record

    def write_error(self, **fields: Any) -> Error:
        record = Error(run_id=self.run_id, **fields)
        self._append(record)
        return record

    def write_outcome(self, outcome: Outcome) -> Result | Error:
        """A result line, or an error line when every attempt failed."""
        cell = outcome.cell
        common: dict[str, Any] = {
            "scenario_id": cell.scenario_id,
            "variant": cell.variant,
            "rep": cell.rep,
            "attempts": outcome.attempts,
            "retry_wait_s": round(outcome.retry_wait_s, 3),
            "model": cell.model,
        }
        if outcome.response is None:
            assert outcome.failure is not None, "an outcome has a response or a failure"
            failure = outcome.failure
            return self.write_error(**common, kind=failure.kind, message=failure.message)
        response = outcome.response
        conversation = outcome.conversation
        return self.write_result(
            **common,
            response_text=response.text,
            tool_calls=list(response.tool_calls),
            stop_reason=response.stop_reason,
            usage=conversation.usage if conversation else response.usage,
            latency_s=round(outcome.latency_s, 4),
            response_model=response.response_model,
            temperature=outcome.temperature,
            content=list(response.content),
            trace_id=outcome.trace_id,
            cached=outcome.cached,
            conversation=ConversationRecord.of(conversation) if conversation else None,
            batch_id=outcome.batch.batch_id if outcome.batch else None,
            custom_id=outcome.batch.custom_id if outcome.batch else None,
        )

    def _append(self, record: Record) -> None:
        data = _line(record)
        with self._lock:
            if self._fd is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._fd = open_append(self.path)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(self._fd).st_size
                if size and os.pread(self._fd, 1, size - 1) != b"\n":
                    data = b"\n" + data  # a killed writer's torn line: end it, keep ours whole
                append_whole(self._fd, data, self.path, self.resume)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _line(record: Record) -> bytes:
    """One record as a line: JSON that reads back as written, whatever text it holds
    (``tooltrial.text.json_text``), with every known key value redacted."""
    return (redact(json_text(record)) + "\n").encode()


PoolMetadata = Mapping[str, Mapping[str, Any]] | Mapping[tuple[str, str], Mapping[str, Any]]
"""A pool's metadata: keyed by (model spec, variant), or by variant alone for one model
(whose spec is then the ``model`` field of the metadata)."""


def model_slug(spec: str) -> str:
    """A model spec as it appears in file names: anything outside [A-Za-z0-9.-] → '-'
    (then ``files.file_part``, so a long or odd spec is cut and hashed)."""
    return file_part(re.sub(r"[^A-Za-z0-9.-]", "-", spec))


@dataclass
class WriterPool:
    """One writer per (model, variant, rep), created on first use, with one timestamp for
    all.

    ``metadata`` gives the metadata fields of each (model, variant)'s files (everything but
    ``variant`` and ``rep``, which the pool fills in). File names: with one model
    ``{variant}_run{rep}_{timestamp}.jsonl``; with several,
    ``{variant}_run{rep}_{model-slug}_{timestamp}.jsonl``.
    """

    run_id: str
    git_commit: str | None
    metadata: PoolMetadata
    directory: Path = Path("results")
    timestamp: str = field(default_factory=file_timestamp)
    _meta: dict[tuple[str, str], Mapping[str, Any]] = field(
        default_factory=dict, init=False, repr=False
    )
    _writers: dict[tuple[str, str, int], JSONLWriter] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        for key, fields in self.metadata.items():
            model, variant = key if isinstance(key, tuple) else (str(fields["model"]), key)
            self._meta[(model, variant)] = fields

    @property
    def models(self) -> list[str]:
        """The model specs this pool writes for, in the order its metadata gives them."""
        return list(dict.fromkeys(model for model, _ in self._meta))

    def filename(self, variant: str, rep: int, model: str | None = None) -> str:
        """The file of (model, variant, rep); the variant as ``files.file_part`` has it."""
        models, part = self.models, file_part(variant)
        if len(models) == 1:
            return f"{part}_run{rep}_{self.timestamp}.jsonl"
        return f"{part}_run{rep}_{model_slug(self._model(model))}_{self.timestamp}.jsonl"

    @property
    def resume(self) -> str:
        """The command that resumes this pool's run."""
        return f"tooltrial run --resume {self.run_id} --results {self.directory}"

    def get(self, variant: str, rep: int, model: str | None = None) -> JSONLWriter:
        """The writer of (model, variant, rep); ``model`` may be left out with one model."""
        model = self._model(model)
        with self._lock:
            writer = self._writers.get((model, variant, rep))
            if writer is None:
                fields = self._fields(model, variant)
                filename = self.filename(variant, rep, model)
                writer = JSONLWriter(self.run_id, self.directory, filename, self.resume)
                writer.write_metadata(
                    **fields, variant=variant, rep=rep, git_commit=self.git_commit
                )
                self._writers[(model, variant, rep)] = writer
            return writer

    def _model(self, model: str | None) -> str:
        models = self.models
        if model is None and len(models) == 1:
            return models[0]
        if model is None or model not in models:
            known = ", ".join(models)
            raise KeyError(f"name the model: {model!r} is not one of this pool's: {known}")
        return model

    def _fields(self, model: str, variant: str) -> Mapping[str, Any]:
        fields = self._meta.get((model, variant))
        if fields is None:
            known = ", ".join(sorted({v for m, v in self._meta if m == model}))
            raise KeyError(f"unknown variant {variant!r}; the pool knows: {known}")
        return fields

    @property
    def paths(self) -> list[Path]:
        return [w.path for w in self._writers.values()]

    def close_all(self) -> None:
        with self._lock:
            for writer in self._writers.values():
                writer.close()
