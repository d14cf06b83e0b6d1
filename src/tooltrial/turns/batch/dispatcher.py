"""The dispatcher: turns waiting for a batch are grouped, submitted, polled and
collected, and each waiting turn is told its item's outcome.

Guarantees, and how they are kept:

- **Custom ids on disk before a submit.** A group's items are written to the journal
  (fsync'd) before the create call; the batch id the moment the call returns.
- **Nothing submitted twice.** Every attempt has its own custom id (``ids``), and an id
  belongs to one group. A group whose create call failed in a way that may have created
  it (timeout, dropped connection, 5xx), or whose id is missing after a crash, is looked
  for among the account's recent batches before anything is sent again (``_find``): by
  its metadata where the provider keeps it, else by creation time and request count —
  then confirmed by its results, which must name the group's ids (else it is
  ``rejected`` and the group abandoned). Only a group that is not there is abandoned,
  and its turns, asked again, get new ids.
- **Within limits.** A batch holds one model's items, at most the provider's (or the
  options') item count and bytes; at most ``in_flight`` batches are open at once.
- **Turn by turn.** Turns that are ready wait ``gather_s`` for others before a batch
  that is not full is submitted, so a conversation's next turns (each after its tools
  ran) go out together.
- **Polling with backoff.** A batch is polled after ``poll_s``, then 1.5 times longer
  each time it is still running, up to ``poll_max_s``; a failed poll (a 500, a dropped
  connection) waits twice as long and tries again. A poll refused outright (a revoked
  key) ends the turns waiting on that batch as failures, without a journal record: the
  batch stays open in the journal and ``--resume`` collects it.
- **Collected once.** Results are journaled in chunks as they stream in; an item already
  journaled is skipped, so a collection cut short (a crash, a dropped stream) is simply
  read again. ``ended`` is written only after the last chunk.

- **A failure of its own stops the run.** What the dispatcher's tasks raise that is not
  the provider's answer — a journal write that failed (a full disk: ``WriteFailed``, with
  the resume command), the account's batches that cannot be listed — is never taken for
  a provider failure and never lost in a background task: every turn waiting on the
  dispatcher gets it (``_fail``), its other tasks are cancelled (what they had sent is in
  the journal: ``--resume`` finds it), and every later call raises it at once. So the run
  ends with that error instead of waiting for ever.

The dispatcher runs as a task on the run's loop while there is something to do, and
ends when idle (started again by the next turn). ``recover`` runs once, before the first
submit: it settles every group the journal left without a batch id and follows every
batch it left open.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tooltrial.errors import TooltrialError
from tooltrial.models.base import safe_text
from tooltrial.turns.batch.api import BatchAPI, Collected, RemoteBatch
from tooltrial.turns.batch.journal import (
    Abandoned,
    Direct,
    Ended,
    Group,
    GroupState,
    ItemOutcome,
    Journal,
    JournalItem,
    JournalState,
    Outcomes,
    Rejected,
    Submitted,
    Uploaded,
    utc_now,
)
from tooltrial.turns.batch.options import BatchOptions
from tooltrial.types import Failure

CHUNK = 256
"""Outcomes per journal record while collecting."""
CLOCK_SKEW = timedelta(minutes=10)
"""How much earlier than the local time written before a create call the provider may
date the batch it made (clocks differ), when looking for it."""
SUBMIT_ATTEMPTS = 6
COLLECT_ATTEMPTS = 10
"""Reads of an ended batch's results cut short by the network before its waiting turns
give up (the batch stays open in the journal: ``--resume`` reads it again)."""
AMBIGUOUS = frozenset({"timeout", "connection", "server_error", "overloaded", "bad_response"})
"""Failures of a create call after which the batch may exist all the same."""


class BatchUnavailable(TooltrialError):
    """The account's batches cannot be listed, so tooltrial cannot tell whether a batch
    was created: nothing more is submitted."""


@dataclass(frozen=True)
class Transient:
    """A waiting turn told to give up without an outcome in the journal (its batch is
    still open there; ``--resume`` collects it) or to try again under a new id."""

    failure: Failure | None
    """None: its group never reached the provider; ask again (not an attempt spent)."""


Delivered = ItemOutcome | Transient


@dataclass
class Waiting:
    item: JournalItem
    body: bytes
    """The request body as JSON (``BatchAPI.body``): kept as bytes, not as a dict, so a
    queue of many turns costs about its size on the wire."""
    future: asyncio.Future[Delivered]


@dataclass
class Open:
    """A batch in flight."""

    batch_id: str
    group: str
    model: str
    items: int
    since: float
    """When this process started following it (monotonic)."""
    collected: int = 0
    status: str = "submitted"


@dataclass
class Dispatcher:
    journal: Journal
    state: JournalState
    apis: Mapping[str, BatchAPI]
    """Each model's batch API, by spec."""
    options: BatchOptions
    on_change: Callable[[], None] = lambda: None
    sleep: Callable[[float], Any] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic
    pending: dict[str, deque[Waiting]] = field(default_factory=dict)
    waiting: dict[str, list[asyncio.Future[Delivered]]] = field(default_factory=dict)
    open: dict[str, Open] = field(default_factory=dict)
    durations: list[float] = field(default_factory=list)
    """Seconds each batch followed from its submit took to end (the ETA's basis)."""
    submitting: int = 0
    collected: int = 0
    _last_enqueue: float = 0.0
    _wake: asyncio.Event | None = None
    _task: asyncio.Task[None] | None = None
    _recovered: asyncio.Future[None] | None = None
    _followers: set[asyncio.Task[None]] = field(default_factory=set)
    _fatal: BaseException | None = None
    """What one of the dispatcher's tasks raised: the run stops with it (``_fail``)."""

    # -- what the turns call ----------------------------------------------------------

    async def ready(self) -> None:
        """Wait until the journal's unsettled groups are settled (once per process)."""
        self._raise_fatal()
        self._ensure_running()
        assert self._recovered is not None
        await asyncio.shield(self._recovered)

    def enqueue(self, item: JournalItem, body: bytes) -> asyncio.Future[Delivered]:
        """Put a new attempt in the next batch of its model; its outcome, when collected."""
        self._raise_fatal()
        future: asyncio.Future[Delivered] = asyncio.get_running_loop().create_future()
        self.pending.setdefault(item.cell[0], deque()).append(Waiting(item, body, future))
        self._last_enqueue = self.clock()
        self._ensure_running()
        self._poke()
        self.on_change()
        return future

    def wait_for(self, custom_id: str) -> asyncio.Future[Delivered]:
        """The outcome of an item in an open batch (resumed: submitted by an earlier
        process); the batch is followed again if this process stopped following it."""
        self._raise_fatal()
        future: asyncio.Future[Delivered] = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(custom_id, []).append(future)
        group = self.state.groups[self.state.items[custom_id].group or ""]
        batch_id = group.batch_id
        if batch_id is not None and batch_id not in self.open:
            self._follow(batch_id, group.record.group, group.record.model, self._left(group), 0.0)
        self._ensure_running()
        return future

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self.pending.values())

    # -- the loop ---------------------------------------------------------------------

    def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._recovered is None:
            self._recovered = loop.create_future()
        if self._wake is None:
            self._wake = asyncio.Event()
        if self._task is None or self._task.done():
            self._task = self._spawn(self._main())

    def _spawn(
        self, work: Coroutine[Any, Any, None], futures: Iterable[asyncio.Future[Delivered]] = ()
    ) -> asyncio.Task[None]:
        """A task of the dispatcher; what it raises goes to ``_fail`` (with ``futures``,
        the turns it holds that no queue or ``waiting`` lists), never unseen."""
        task = asyncio.get_running_loop().create_task(work, name="tooltrial-batch-dispatcher")
        held = list(futures)
        self._followers.add(task)
        task.add_done_callback(lambda done: self._ended(done, held))
        return task

    def _ended(self, task: asyncio.Task[None], held: list[asyncio.Future[Delivered]]) -> None:
        self._followers.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self._fail(error, held)

    def _fail(self, error: BaseException, held: list[asyncio.Future[Delivered]]) -> None:
        """Every waiting turn gets ``error``; the other tasks are cancelled (their batches
        stay in the journal for ``--resume``); every later call raises it."""
        if self._fatal is None:
            self._fatal = error
        futures = [*held, *(w.future for queue in self.pending.values() for w in queue)]
        futures += [future for found in self.waiting.values() for future in found]
        self.pending.clear()
        self.waiting.clear()
        for future in futures:
            if not future.done():
                future.set_exception(error)
        for task in list(self._followers):
            task.cancel()
        self._poke()
        self.on_change()

    def _raise_fatal(self) -> None:
        if self._fatal is not None:
            raise self._fatal

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _main(self) -> None:
        assert self._recovered is not None and self._wake is not None
        if not self._recovered.done():
            try:
                await self._recover()
            except BaseException as exc:
                self._recovered.set_exception(exc)
                raise
            self._recovered.set_result(None)
        while self.queued or self.open or self.waiting or self.submitting:
            self._wake.clear()
            wait = self._submit_what_is_due()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _submit_what_is_due(self) -> float | None:
        """Start the submits that are due; how long until the next one may be (None: no
        submit waits on time)."""
        wait: float | None = None
        for spec, queue in self.pending.items():
            while queue and len(self.open) + self.submitting < self.options.in_flight:
                full = len(queue) >= self._max_items(spec)
                quiet = self.clock() - self._last_enqueue
                if not full and quiet < self.options.gather_s:
                    left = self.options.gather_s - quiet
                    wait = left if wait is None else min(wait, left)
                    break
                self._start_submit(spec, queue)
        return wait

    def _max_items(self, spec: str) -> int:
        limit = self.apis[spec].limits.max_items
        return min(limit, self.options.max_items or limit)

    def _max_bytes(self, spec: str) -> int:
        limit = self.apis[spec].limits.max_bytes
        return min(limit, self.options.max_bytes or limit)

    def _start_submit(self, spec: str, queue: deque[Waiting]) -> None:
        api = self.apis[spec]
        chosen: list[Waiting] = []
        size = 0
        while queue and len(chosen) < self._max_items(spec):
            waiting = queue[0]
            line = len(api.line(waiting.item.custom_id, waiting.body))
            if line > self._max_bytes(spec):
                queue.popleft()
                message = f"the request is {line} bytes, more than a batch may hold"
                self._refuse(waiting, Failure("rejected", message, False))
                continue
            if chosen and size + line > self._max_bytes(spec):
                break
            queue.popleft()
            chosen.append(waiting)
            size += line
        if not chosen:
            return
        self.submitting += 1
        self._spawn(self._submit(spec, chosen, size), (w.future for w in chosen))

    def _refuse(self, waiting: Waiting, failure: Failure) -> None:
        outcome = ItemOutcome(
            custom_id=waiting.item.custom_id,
            status="errored",
            error_kind=failure.kind,
            message=failure.message,
            retryable=False,
        )
        try:
            self._record(Direct(item=waiting.item, outcome=outcome))
        except BaseException as exc:  # out of every queue now: its turn gets the error
            if not waiting.future.done():
                waiting.future.set_exception(exc)
            raise
        if not waiting.future.done():
            waiting.future.set_result(outcome)

    def _left(self, group: GroupState) -> int:
        """A group's items not yet collected."""
        return sum(1 for i in group.record.items if self.state.items[i.custom_id].outcome is None)

    async def _submit(self, spec: str, chosen: list[Waiting], size: int) -> None:
        api = self.apis[spec]
        try:
            for attempt in range(1, SUBMIT_ATTEMPTS + 1):
                group = _group_of(chosen, size)
                self._record(group)
                remote, failure = await self._create(api, group, chosen)
                if remote is not None:
                    self._follow(remote.id, group.group, spec, len(chosen))
                    for waiting in chosen:
                        self.waiting.setdefault(waiting.item.custom_id, []).append(waiting.future)
                        waiting.body = b""  # sent: not kept while the batch runs
                    return
                assert failure is not None
                self._record(Abandoned(group=group.group, reason=f"create failed: {failure.kind}"))
                if not failure.retryable or attempt == SUBMIT_ATTEMPTS:
                    for waiting in chosen:
                        if not waiting.future.done():
                            waiting.future.set_result(Transient(failure))
                    return
                chosen = [self._renewed(w) for w in chosen]
                await self.sleep(self._submit_delay(attempt, failure))
        finally:
            self.submitting -= 1
            self._poke()
            self.on_change()

    def _renewed(self, waiting: Waiting) -> Waiting:
        """The same turn as a new attempt (its abandoned id is never sent again)."""
        item = waiting.item
        attempt = self.state.next_attempt(item.key)
        renewed = item.model_copy(
            update={"attempt": attempt, "custom_id": _renamed(item.custom_id, attempt)}
        )
        return Waiting(renewed, waiting.body, waiting.future)

    def _submit_delay(self, attempt: int, failure: Failure) -> float:
        backoff = min(self.options.poll_max_s, self.options.poll_s * 2.0 ** (attempt - 1))
        return max(backoff, failure.retry_after_s or 0.0)

    async def _create(
        self, api: BatchAPI, group: Group, chosen: list[Waiting]
    ) -> tuple[RemoteBatch | None, Failure | None]:
        items = [(w.item.custom_id, w.body) for w in chosen]

        def uploaded(file_id: str) -> None:
            self._record(Uploaded(group=group.group, file_id=file_id))

        try:
            remote = await api.submit(group.group, items, uploaded)
        except (asyncio.CancelledError, TooltrialError):  # ours (the journal), not the API's
            raise
        except Exception as exc:
            failure = api.classify(exc)
            if failure.kind not in AMBIGUOUS:
                return None, failure
            found = await self._find(self.state.groups[group.group], set())
            if found is None:
                return None, failure
            return found, None
        self._record(
            Submitted(
                group=group.group,
                batch_id=remote.id,
                created_at=_iso(remote.created_at),
                how="created",
            )
        )
        return remote, None

    def _record(self, record: Any) -> None:
        self.journal.record(self.state, record)

    # -- finding a batch whose create response was lost ---------------------------------

    async def _recover(self) -> None:
        taken: set[str] = set()
        for group in sorted(self.state.unsubmitted(), key=lambda g: g.record.at):
            found = await self._find(group, taken)
            if found is None:
                self._record(
                    Abandoned(group=group.record.group, reason="not on the provider: never created")
                )
            else:
                taken.add(found.id)
        for batch_id in self.state.open_batches():
            group = self.state.groups[self.state.batches[batch_id]]
            self._follow(batch_id, group.record.group, group.record.model, self._left(group), 0.0)

    async def _find(self, group: GroupState, taken: set[str]) -> RemoteBatch | None:
        """The provider's batch of a group whose create response never arrived (recorded
        as ``found`` or ``matched``), or None: it was never created."""
        record = group.record
        api = self.apis.get(record.model)
        if api is None:
            raise BatchUnavailable(
                f"the batch journal holds a group of {record.model}, which this run does "
                "not have: resume with the run's own models"
            )
        since = datetime.fromisoformat(record.at) - CLOCK_SKEW
        recent = await self._listed(api, since)
        known = set(self.state.batches) | taken
        if api.matches_by_metadata:
            matches = [b for b in recent if b.group == record.group]
            how = "found"
        else:
            matches = [
                b
                for b in recent
                if b.id not in known
                and b.total == record.count
                and (b.created_at is None or b.created_at >= since)
            ]
            how = "matched"
        if not matches:
            return None
        chosen = min(matches, key=lambda b: b.created_at or since)
        self._record(
            Submitted(
                group=record.group,
                batch_id=chosen.id,
                created_at=_iso(chosen.created_at),
                how=how,  # type: ignore[arg-type]
            )
        )
        return chosen

    async def _listed(self, api: BatchAPI, since: datetime) -> list[RemoteBatch]:
        for attempt in range(1, SUBMIT_ATTEMPTS + 1):
            try:
                return await api.recent(since)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = api.classify(exc)
                if not failure.retryable or attempt == SUBMIT_ATTEMPTS:
                    raise BatchUnavailable(
                        f"cannot list the {api.provider} account's batches ({failure.kind}: "
                        f"{failure.message}), so tooltrial cannot tell whether a batch it "
                        "was creating exists: nothing more was submitted. Run --resume again "
                        "once the API answers."
                    ) from None
                await self.sleep(self._submit_delay(attempt, failure))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- following a batch --------------------------------------------------------------

    def _follow(
        self, batch_id: str, group: str, model: str, items: int, first_wait: float | None = None
    ) -> None:
        self.open[batch_id] = Open(batch_id, group, model, items, self.clock())
        wait = self.options.poll_s if first_wait is None else first_wait
        self._spawn(self._poll(batch_id, wait))
        self.on_change()

    async def _poll(self, batch_id: str, wait: float) -> None:
        opened = self.open[batch_id]
        api = self.apis[opened.model]
        cut_short = 0
        try:
            while True:
                await self.sleep(wait)
                try:
                    remote = await api.retrieve(batch_id)
                    opened.status = remote.status
                    self.on_change()
                    if remote.ended:
                        await self._collect(api, remote, opened)
                        return
                    wait = min(self.options.poll_max_s, max(wait, self.options.poll_s) * 1.5)
                except (asyncio.CancelledError, TooltrialError):  # ours (the journal)
                    raise
                except Exception as exc:
                    failure = api.classify(exc)
                    # A results stream cut off by the network (no HTTP status) is read
                    # again: what was journaled is kept, the rest comes with the next read.
                    cut = getattr(exc, "status_code", None) is None and opened.status != "submitted"
                    cut_short += cut
                    if not (failure.retryable or cut) or cut_short > COLLECT_ATTEMPTS:
                        self._give_up(opened, failure)
                        return
                    wait = min(self.options.poll_max_s, max(wait, self.options.poll_s) * 2)
        finally:
            self.open.pop(batch_id, None)
            self._poke()
            self.on_change()

    def _give_up(self, opened: Open, failure: Failure) -> None:
        group = self.state.groups[opened.group]
        for item in group.record.items:
            for future in self.waiting.pop(item.custom_id, []):
                if not future.done():
                    future.set_result(Transient(failure))

    async def _collect(self, api: BatchAPI, remote: RemoteBatch, opened: Open) -> None:
        group = self.state.groups[opened.group]
        mine = {i.custom_id for i in group.record.items}
        chunk: list[ItemOutcome] = []
        seen_mine = 0
        async for collected in api.results(remote):
            state = self.state.items.get(collected.custom_id)
            if state is None:
                continue  # not this run's: a matched batch that is someone else's
            seen_mine += collected.custom_id in mine
            if state.outcome is not None:
                if collected.custom_id in self.waiting:  # collected before, cut short
                    self._deliver(self.journal.outcome(state))
                continue
            chunk.append(self._outcome(api, collected))
            if len(chunk) >= CHUNK:
                self._store(remote.id, chunk)
                chunk = []
        self._store(remote.id, chunk)
        if group.how == "matched" and not seen_mine:
            self._record(
                Rejected(
                    group=opened.group,
                    batch_id=remote.id,
                    reason="its results name none of the group's custom ids",
                )
            )
            self._record(Abandoned(group=opened.group, reason="matched a batch not its own"))
            self._retry_elsewhere(group)
        else:
            self._missing(remote, group)
        self._record(Ended(batch_id=remote.id, status=remote.status, counts=remote.counts))
        self.durations.append(self.clock() - opened.since)

    def _outcome(self, api: BatchAPI, collected: Collected) -> ItemOutcome:
        if collected.status == "succeeded":
            try:
                response = api.response(collected.body)
            except Exception as exc:
                return ItemOutcome(
                    custom_id=collected.custom_id,
                    status="errored",
                    error_kind="bad_response",
                    message=safe_text(f"the answer could not be read: {exc!r}"),
                    retryable=True,
                )
            return ItemOutcome(custom_id=collected.custom_id, status="succeeded", response=response)
        return ItemOutcome(
            custom_id=collected.custom_id,
            status=collected.status,
            error_kind=collected.error_kind,
            message=safe_text(collected.message or ""),
            retryable=collected.retryable,
        )

    def _store(self, batch_id: str, chunk: list[ItemOutcome]) -> None:
        if not chunk:
            return
        self._record(Outcomes(batch_id=batch_id, items=chunk))
        for outcome in chunk:
            self._deliver(outcome)
        self.collected += len(chunk)
        if batch_id in self.open:
            self.open[batch_id].collected += len(chunk)
        self.on_change()

    def _deliver(self, outcome: ItemOutcome | None) -> None:
        if outcome is None:
            return
        for future in self.waiting.pop(outcome.custom_id, []):
            if not future.done():
                future.set_result(outcome)

    def _missing(self, remote: RemoteBatch, group: GroupState) -> None:
        """Items of an ended batch its results did not name: errored (the whole batch
        failed, or the provider lost them)."""
        lost = [
            i.custom_id for i in group.record.items if self.state.items[i.custom_id].outcome is None
        ]
        if not lost:
            return
        failed = remote.error is not None
        outcomes = [
            ItemOutcome(
                custom_id=cid,
                status="errored",
                error_kind="batch_failed" if failed else "missing_result",
                message=safe_text(remote.error or f"batch {remote.id} ended without this item"),
                retryable=not failed,
            )
            for cid in lost
        ]
        self._store(remote.id, outcomes)

    def _retry_elsewhere(self, group: GroupState) -> None:
        for item in group.record.items:
            for future in self.waiting.pop(item.custom_id, []):
                if not future.done():
                    future.set_result(Transient(None))

    # -- status -------------------------------------------------------------------------

    def oldest_age(self) -> float | None:
        if not self.open:
            return None
        return self.clock() - min(o.since for o in self.open.values())


def _group_of(waiting: list[Waiting], size: int) -> Group:
    items = [w.item for w in waiting]
    return Group(
        group=f"g{uuid.uuid4().hex[:16]}",
        model=items[0].cell[0],
        at=utc_now(),
        count=len(items),
        bytes=size,
        items=items,
    )


def _renamed(custom_id: str, attempt: int) -> str:
    return f"{custom_id.rsplit('a', 1)[0]}a{attempt}"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
