"""The batch journal: what a run sent to the providers' batch APIs and what came back,
so a run killed at any moment resumes without paying for anything twice.

One append-only JSONL file per run, ``<results>/batches/<run_id>.jsonl`` (a folder of
its own: readers of results take only the ``*.jsonl`` directly in ``<results>``),
written only under the run's lock. Its first line is a ``journal`` header with
``format_version``; then, in the order things happen:

``group``
    The items of a batch about to be submitted — each ``custom_id`` with its cell,
    turn, attempt and request fingerprint — with the local time (``at``), the item count
    and bytes. Written and fsync'd **before** the create call, so a batch whose create
    response was lost can be recognised afterwards.
``uploaded``
    OpenAI: the input file's id, once uploaded.
``submitted``
    The batch id, the moment it is known (``how``: ``created``; ``found``: recognised
    by its metadata after its create response was lost; ``matched``: recognised by its
    creation time and request count, to be confirmed by its results).
``rejected`` / ``abandoned``
    A matched batch whose results named none of the group's ids; a group that never
    reached the provider. Its items, asked again, get new ids (a new attempt).
``outcomes``
    Items as collected (``succeeded`` with the model's response; ``errored`` with the
    error's kind, message and whether a retry may help; ``expired``; ``canceled``), in
    chunks.
``direct``
    A turn settled without a batch: answered online after its batch attempts, or refused
    before any batch (too large for one).
``ended``
    Every result of a batch has been collected.

Guarantees, and how they are kept: each record is one ``write()`` of whole lines then
``fsync`` (``files.append_whole``: a failed write is cut back and stops the run with the
resume command; the file is opened only as a regular file of one link, never through a
link); a record counts once its newline is on disk, and a torn last line (a
``write()`` cut by SIGKILL) is skipped by the reader and ended by the next writer, as
for results files. Nothing is ever rewritten. A file from a newer tooltrial is refused.
``replay`` rebuilds the state from the records alone.

Memory stays small however long the run: the state keeps each answered item's status,
not its response. A succeeded item remembers where its record lies in the file
(``Where``), and ``Journal.outcome`` reads the response back from there when a turn is
asked again (a retried cell, a resume) — so an answer is never paid twice, and never
held twice.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from tooltrial.errors import TooltrialError
from tooltrial.files import append_whole, checked_run_id, open_append, open_regular
from tooltrial.redact import redact
from tooltrial.text import json_text
from tooltrial.turns.batch.ids import TurnKey
from tooltrial.types import ModelResponse

JOURNAL_VERSION = 1
ItemStatus = Literal["succeeded", "errored", "expired", "canceled"]
Where = tuple[int, int]
"""A record's line in the journal file: (byte offset, length)."""


class JournalError(TooltrialError):
    """The journal cannot be read: resuming would risk paying twice."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def journal_path(results: str | Path, run_id: str) -> Path:
    """``<results>/batches/<run_id>.jsonl``; a run id that is not a plain name is refused."""
    return Path(results) / "batches" / f"{checked_run_id(run_id)}.jsonl"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class JournalItem(_Record):
    """One attempt at one model turn."""

    custom_id: str
    cell: tuple[str, str, str, int]
    """(model, variant, scenario_id, rep)."""
    turn: int
    attempt: int
    sha: str
    """The request body's fingerprint (``ids.request_sha``)."""

    @property
    def key(self) -> TurnKey:
        return (*self.cell, self.turn)


class ItemOutcome(_Record):
    custom_id: str
    status: ItemStatus
    response: ModelResponse | None = None
    error_kind: str | None = None
    message: str | None = None
    retryable: bool = False


class Header(_Record):
    type: Literal["journal"] = "journal"
    format_version: int = JOURNAL_VERSION
    run_id: str
    created_at: str = Field(default_factory=utc_now)


class Group(_Record):
    type: Literal["group"] = "group"
    group: str
    model: str
    at: str
    """Local UTC time just before the create call."""
    count: int
    bytes: int
    items: list[JournalItem]


class Uploaded(_Record):
    type: Literal["uploaded"] = "uploaded"
    group: str
    file_id: str


class Submitted(_Record):
    type: Literal["submitted"] = "submitted"
    group: str
    batch_id: str
    created_at: str | None = None
    how: Literal["created", "found", "matched"] = "created"


class Rejected(_Record):
    type: Literal["rejected"] = "rejected"
    group: str
    batch_id: str
    reason: str


class Abandoned(_Record):
    type: Literal["abandoned"] = "abandoned"
    group: str
    reason: str


class Outcomes(_Record):
    type: Literal["outcomes"] = "outcomes"
    batch_id: str | None
    items: list[ItemOutcome]


class Direct(_Record):
    """A turn settled without a batch: answered online after its batch attempts
    (``retry_errored: online``), or refused before it could be batched (a request larger
    than a batch may hold)."""

    type: Literal["direct"] = "direct"
    item: JournalItem
    outcome: ItemOutcome


class Ended(_Record):
    type: Literal["ended"] = "ended"
    batch_id: str
    status: str
    counts: dict[str, int] = Field(default_factory=dict)


Record = Annotated[
    Header | Group | Uploaded | Submitted | Rejected | Abandoned | Outcomes | Direct | Ended,
    Field(discriminator="type"),
]
_RECORD: TypeAdapter[Record] = TypeAdapter(Record)


# --- state ------------------------------------------------------------------------------


@dataclass(slots=True)
class ItemState:
    item: JournalItem
    group: str | None
    outcome: ItemOutcome | None = None
    """Without its response (kept on disk: ``at``, ``Journal.outcome``)."""
    abandoned: bool = False
    at: Where | None = None
    """The line of the record that holds this item's outcome."""


@dataclass
class GroupState:
    record: Group
    batch_id: str | None = None
    how: str | None = None
    abandoned: bool = False


@dataclass
class JournalState:
    """What the journal says, record by record (``apply``)."""

    run_id: str | None = None
    items: dict[str, ItemState] = field(default_factory=dict)
    attempts: dict[TurnKey, list[str]] = field(default_factory=dict)
    """Each turn's attempts (custom ids), in the order they were made."""
    groups: dict[str, GroupState] = field(default_factory=dict)
    batches: dict[str, str] = field(default_factory=dict)
    """Batch id → its group."""
    ended: set[str] = field(default_factory=set)
    rejected: set[str] = field(default_factory=set)

    def apply(self, record: Any, at: Where | None = None) -> None:
        """Take one record in; ``at`` is its line in the file (``read_records``,
        ``Journal.append``), where an answer is read back from."""
        if isinstance(record, Header):
            self.run_id = record.run_id
        elif isinstance(record, Group):
            self.groups[record.group] = GroupState(record)
            for item in record.items:
                self._add(item, record.group)
        elif isinstance(record, Submitted):
            group = self.groups[record.group]
            group.batch_id, group.how = record.batch_id, record.how
            self.batches[record.batch_id] = record.group
        elif isinstance(record, Rejected):
            self.rejected.add(record.batch_id)
            self.groups[record.group].batch_id = None
        elif isinstance(record, Abandoned):
            group = self.groups[record.group]
            group.abandoned = True
            for item in group.record.items:
                state = self.items[item.custom_id]
                state.abandoned = state.outcome is None
        elif isinstance(record, Outcomes):
            for outcome in record.items:
                if outcome.custom_id in self.items:
                    self._settle(outcome, at)
        elif isinstance(record, Direct):
            self._add(record.item, None)
            self._settle(record.outcome, at)
        elif isinstance(record, Ended):
            self.ended.add(record.batch_id)

    def _settle(self, outcome: ItemOutcome, at: Where | None) -> None:
        state = self.items[outcome.custom_id]
        state.at = at
        # An answer is ~7 KB; the file holds it, so the state does not (unless there is
        # no line to read it back from: a record applied without one).
        if outcome.response is not None and at is not None:
            outcome = outcome.model_copy(update={"response": None})
        state.outcome = outcome

    def _add(self, item: JournalItem, group: str | None) -> None:
        self.items[item.custom_id] = ItemState(item, group)
        self.attempts.setdefault(item.key, []).append(item.custom_id)

    def latest(self, key: TurnKey) -> ItemState | None:
        ids = self.attempts.get(key)
        return self.items[ids[-1]] if ids else None

    def next_attempt(self, key: TurnKey) -> int:
        ids = self.attempts.get(key, [])
        return max((self.items[i].item.attempt for i in ids), default=0) + 1

    def spent(self, key: TurnKey) -> int:
        """Attempts of a turn that the provider answered (abandoned ones never reached it)."""
        return sum(
            1
            for i in self.attempts.get(key, [])
            if self.items[i].outcome is not None and self.items[i].group is not None
        )

    def unsubmitted(self) -> list[GroupState]:
        """Groups written before a create call whose batch id is not known: their create
        may or may not have reached the provider."""
        return [
            g
            for g in self.groups.values()
            if g.batch_id is None
            and not g.abandoned
            and any(self.items[i.custom_id].outcome is None for i in g.record.items)
        ]

    def open_batches(self) -> list[str]:
        """Batches submitted whose results are not all collected."""
        return [
            b
            for b, g in self.batches.items()
            if b not in self.ended and b not in self.rejected and self.groups[g].batch_id == b
        ]


# --- the file ---------------------------------------------------------------------------


def read_records(path: Path) -> Iterator[tuple[int, Any, Where]]:
    """Every committed record, with its line number and ``Where``; ``JournalError`` at a
    bad one or a newer format.

    A torn write is skipped: a last line without its newline, or a line that is not JSON
    at all (a torn line the next writer ended: a cut record is never valid JSON). A line
    that is JSON but no record is refused."""
    offset = 0
    with open_regular(path) as handle:  # a FIFO or a device under its name: refused
        for line_no, raw in enumerate(handle, start=1):
            at, offset = (offset, len(raw)), offset + len(raw)
            if not raw.endswith(b"\n"):
                return
            try:
                data = json.loads(raw)
            except ValueError:
                continue  # a torn write, ended by the next writer: never committed
            try:
                record = _RECORD.validate_python(data)
            except ValidationError as exc:
                raise JournalError(
                    f"{path}:{line_no}: not a batch journal record ({str(exc)[:200]}); the "
                    "journal is what keeps a resumed run from paying twice, so tooltrial "
                    "will not guess past it"
                ) from None
            if isinstance(record, Header) and record.format_version > JOURNAL_VERSION:
                raise JournalError(
                    f"{path}: batch journal format {record.format_version} is newer than "
                    f"this tooltrial reads ({JOURNAL_VERSION}); upgrade tooltrial"
                )
            yield line_no, record, at


def replay(path: Path) -> JournalState:
    state = JournalState()
    if path.exists():
        for _, record, at in read_records(path):
            state.apply(record, at)
    return state


class Journal:
    """Appends records to one run's journal (see the module docstring)."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.path, self.run_id = path, run_id
        self._fd: int | None = None
        self._reader: BinaryIO | None = None
        self._line: tuple[Where, dict[str, Any]] | None = None
        """The last record read back, its items by custom id: a resume asks for the
        turns of one chunk one after another."""

    def open(self) -> JournalState:
        """The state so far (replayed); makes the file, with its header, if new."""
        state = replay(self.path)
        if state.run_id not in (None, self.run_id):
            raise JournalError(f"{self.path} is the journal of run {state.run_id}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = open_append(self.path)  # never through a link (files.open_append)
        if state.run_id is None:
            self.record(state, Header(run_id=self.run_id))
        return state

    def record(self, state: JournalState, record: _Record) -> None:
        """Append one record and take it into ``state``."""
        (at,) = self.append(record)
        state.apply(record, at)

    def append(self, *records: _Record) -> list[Where]:
        """Append whole records; each one's line in the file."""
        if self._fd is None:
            raise RuntimeError("the journal is not open")
        # json_text: any text reads back as written; redact: no key value is ever stored
        lines = [(redact(json_text(r)) + "\n").encode() for r in records]
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            size = os.fstat(self._fd).st_size
            torn = size > 0 and os.pread(self._fd, 1, size - 1) != b"\n"
            data = b"\n" * torn + b"".join(lines)  # a killed writer's torn line: end it
            resume = f"tooltrial run --resume {self.run_id} --results {self.path.parent.parent}"
            append_whole(self._fd, data, self.path, resume)  # whole, or cut back
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        offset, where = size + torn, []
        for line in lines:
            where.append((offset, len(line)))
            offset += len(line)
        return where

    def outcome(self, state: ItemState) -> ItemOutcome | None:
        """An item's outcome with its response, read back from the file."""
        outcome = state.outcome
        if outcome is None or outcome.response is not None or outcome.status != "succeeded":
            return outcome
        if state.at is None:
            raise JournalError(f"{self.path}: the answer to {outcome.custom_id} has no record")
        items = self._items_at(state.at)
        if outcome.custom_id not in items:
            raise JournalError(
                f"{self.path}: the record at byte {state.at[0]} no longer holds the answer "
                f"to {outcome.custom_id}; the journal was changed while the run was using it"
            )
        return ItemOutcome.model_validate(items[outcome.custom_id])

    def _items_at(self, at: Where) -> dict[str, Any]:
        if self._line is None or self._line[0] != at:
            if self._reader is None:
                self._reader = open_regular(self.path)
            self._reader.seek(at[0])
            data = json.loads(self._reader.read(at[1]))
            found = data.get("items") or [data.get("outcome")]
            self._line = (at, {o["custom_id"]: o for o in found if isinstance(o, dict)})
        return self._line[1]

    def close(self) -> None:
        fd, self._fd = self._fd, None
        reader, self._reader, self._line = self._reader, None, None
        if fd is not None:
            os.close(fd)
        if reader is not None:
            reader.close()


# --- checks (``tooltrial validate``) ----------------------------------------------------


def journal_problems(path: Path) -> tuple[JournalState, list[str]]:
    """The journal's state and what is wrong with it: a record naming an unknown group
    or batch, or a custom id in two groups (submitted twice)."""
    state = JournalState()
    problems: list[str] = []
    seen: set[str] = set()
    try:
        for line_no, record, _ in read_records(path):
            where = f"{path}:{line_no}"
            if isinstance(record, Group | Direct):
                items = record.items if isinstance(record, Group) else [record.item]
                twice = sorted({i.custom_id for i in items} & seen)
                if twice:
                    problems.append(f"{where}: custom_id {twice[0]} used by two attempts")
                seen.update(i.custom_id for i in items)
            named = getattr(record, "group", None)
            if isinstance(record, Submitted | Rejected | Abandoned | Uploaded) and (
                named not in state.groups
            ):
                problems.append(f"{where}: {record.type} names unknown group {named}")
                continue
            state.apply(record)
    except JournalError as exc:
        problems.append(str(exc))
    return state, problems


def succeeded_in(state: JournalState) -> Iterable[tuple[str, str]]:
    """(batch id, custom id) of every item the journal records as succeeded."""
    for custom_id, item in state.items.items():
        if item.outcome is not None and item.outcome.status == "succeeded" and item.group:
            batch = state.groups[item.group].batch_id
            if batch is not None:
                yield batch, custom_id
