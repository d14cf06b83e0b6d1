"""Model turns from the providers' batch APIs: a second ``TurnSource`` beside the live
one, so the conversation loop, the judge and the log are the same in batch mode.

Each ``next_turn`` finds its turn in the journal or puts it in the next batch, then
waits for its item (``dispatcher``). What it returns, by what the journal holds for the
turn (the cell and its turn number) — its latest attempt, if that asked exactly this
request:

- succeeded → that answer, at once: a turn collected before a crash is never asked
  again (``AssistantTurn.batch`` names the batch and item);
- in an open batch → the outcome of that item, when its batch ends;
- errored → per ``retry_errored``: a new attempt in a later batch, an online call
  (``live``, with its own retries and pacing), or the error; an error a retry cannot
  fix (an invalid request) is never retried;
- expired or canceled → a new attempt in a later batch;
- after ``max_attempts`` answered attempts, the last failure (the cell's error line).

Every step is in the journal first. A cached answer (``--cache``) is used as online;
a batch answer is stored in the cache as an online one is. ``preflight`` is the live
source's (a one-token online call: a refused key stops the run before any batch).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tooltrial.models.base import Model
from tooltrial.turns.base import TurnFailed, TurnRequest
from tooltrial.turns.batch.api import BatchAPI, batch_unsupported
from tooltrial.turns.batch.dispatcher import Delivered, Dispatcher, Transient
from tooltrial.turns.batch.ids import custom_id, request_sha, turn_key, turn_number
from tooltrial.turns.batch.journal import (
    Direct,
    ItemOutcome,
    Journal,
    JournalItem,
    journal_path,
)
from tooltrial.turns.batch.options import BatchOptions
from tooltrial.turns.live import LiveTurns
from tooltrial.types import AssistantTurn, BatchRef, Failure


@dataclass(frozen=True)
class BatchStatus:
    """Where batch mode stands (the progress line)."""

    in_flight: int
    """Batches submitted and not yet collected."""
    queued: int
    """Turns waiting for a batch."""
    in_batches: int
    """Items in the batches in flight, not yet collected."""
    collected: int
    """Items collected by this process."""
    oldest_age_s: float | None
    eta_s: float | None
    """A rough time to the last batch in sight: the mean time a batch took so far, less
    the oldest one's age, plus one such time per further round the queue needs; None
    until a batch has ended."""

    def describe(self) -> str:
        parts = [
            f"batches in flight {self.in_flight}",
            f"items collected {self.collected}",
            f"waiting in batches {self.in_batches}",
        ]
        if self.queued:
            parts.append(f"queued {self.queued}")
        if self.oldest_age_s is not None:
            parts.append(f"oldest {_duration(self.oldest_age_s)}")
        parts.append(f"ETA {_duration(self.eta_s) if self.eta_s is not None else '?'}")
        return ", ".join(parts)


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class BatchTurns:
    """A run's model turns through batch APIs (see the module docstring).

    Made by ``run.session`` under the run's lock: it opens the run's journal
    (``<results>/batches/<run_id>.jsonl``) and replays it. ``close`` closes it."""

    def __init__(
        self,
        *,
        run_id: str,
        results: Path,
        models: Iterable[Model],
        live: LiveTurns,
        options: BatchOptions,
        on_change: Callable[[BatchStatus], None] | None = None,
        apis: dict[str, BatchAPI] | None = None,
    ) -> None:
        self.run_id, self.live, self.options = run_id, live, options
        self.apis = apis or {m.spec: api_for(m, run_id) for m in models}
        self.journal = Journal(journal_path(results, run_id), run_id)
        self.state = self.journal.open()
        self._on_change = on_change
        self.dispatcher = Dispatcher(self.journal, self.state, self.apis, options, self._changed)

    def close(self) -> None:
        self.journal.close()

    # -- TurnSource ---------------------------------------------------------------------

    async def preflight(self, models: Iterable[str]) -> tuple[str, Failure] | None:
        return await self.live.preflight(models)

    def cached(self, request: TurnRequest) -> bool:
        return self.live.cached(request)

    async def next_turn(self, request: TurnRequest) -> AssistantTurn | TurnFailed:
        hit = self.live.cached_turn(request)
        if hit is not None:
            return hit
        await self.dispatcher.ready()
        started = time.perf_counter()
        api = self.apis[request.cell.model]
        try:
            body = api.body(request)
        except ValueError as exc:
            return TurnFailed(Failure("rejected", str(exc), retryable=False), 0, 0.0)
        sha = request_sha(body)
        key = turn_key(request.cell, turn_number(request.messages))
        latest = self.state.latest(key)
        delivered: Delivered
        if latest is None or latest.item.sha != sha or latest.abandoned:
            item = self._new_attempt(request, sha)
            waiting = self.dispatcher.enqueue(item, body)
        elif latest.outcome is not None:  # answered before: read back, never asked again
            item, waiting = latest.item, None
            delivered = self.journal.outcome(latest) or latest.outcome
        else:
            item = latest.item
            waiting = self.dispatcher.wait_for(item.custom_id)
        del body  # not held while its batch runs: rebuilt if the turn is sent again
        if waiting is not None:
            delivered = await waiting
        while True:
            if isinstance(delivered, Transient):
                if delivered.failure is not None:
                    return TurnFailed(delivered.failure, self.state.spent(key), 0.0)
                item = self._new_attempt(request, sha)  # never reached the provider
                delivered = await self.dispatcher.enqueue(item, api.body(request))
                continue
            if delivered.status == "succeeded":
                return self._answered(request, item, delivered, started)
            failed = _failure(delivered)
            spent = self.state.spent(key)
            out_of_attempts = spent >= self.options.max_attempts
            if not failed.retryable or out_of_attempts:
                return TurnFailed(failed, spent, 0.0)
            if delivered.status == "errored" and self.options.retry_errored == "none":
                return TurnFailed(failed, spent, 0.0)
            if delivered.status == "errored" and self.options.retry_errored == "online":
                return await self._online(request, sha)
            item = self._new_attempt(request, sha)
            delivered = await self.dispatcher.enqueue(item, api.body(request))

    # -- helpers -------------------------------------------------------------------------

    def _new_attempt(self, request: TurnRequest, sha: str) -> JournalItem:
        cell, turn = request.cell, turn_number(request.messages)
        attempt = self.state.next_attempt(turn_key(cell, turn))
        return JournalItem(
            custom_id=custom_id(self.run_id, cell, turn, attempt),
            cell=(cell.model, cell.variant, cell.scenario_id, cell.rep),
            turn=turn,
            attempt=attempt,
            sha=sha,
        )

    def _answered(
        self, request: TurnRequest, item: JournalItem, outcome: ItemOutcome, started: float
    ) -> AssistantTurn:
        assert outcome.response is not None
        state = self.state.items[item.custom_id]
        batch_id = self.state.groups[state.group].batch_id if state.group else None
        self.live.remember(request, outcome.response)
        return AssistantTurn(
            response=outcome.response,
            latency_s=round(time.perf_counter() - started, 4),
            attempts=max(1, self.state.spent(item.key)),
            batch=BatchRef(batch_id=batch_id, custom_id=item.custom_id) if batch_id else None,
        )

    async def _online(self, request: TurnRequest, sha: str) -> AssistantTurn | TurnFailed:
        """The turn called online, recorded in the journal so a resume reuses it."""
        turn = await self.live.next_turn(request)
        item = self._new_attempt(request, sha)
        if isinstance(turn, TurnFailed):
            outcome = ItemOutcome(
                custom_id=item.custom_id,
                status="errored",
                error_kind=turn.failure.kind,
                message=turn.failure.message,
                retryable=False,
            )
        else:
            outcome = ItemOutcome(
                custom_id=item.custom_id, status="succeeded", response=turn.response
            )
        self.journal.record(self.state, Direct(item=item, outcome=outcome))
        return turn

    def status(self) -> BatchStatus:
        d = self.dispatcher
        durations = d.durations
        oldest = d.oldest_age()
        eta = None
        if durations:
            mean = sum(durations) / len(durations)
            left = max(0.0, mean - oldest) if oldest is not None else 0.0
            rounds = 0
            if d.queued:
                per_round = max(1, self.options.in_flight) * max(
                    1, min(a.limits.max_items for a in self.apis.values())
                )
                rounds = -(-d.queued // per_round)
            eta = left + rounds * mean
        return BatchStatus(
            in_flight=len(d.open),
            queued=d.queued,
            in_batches=sum(max(0, o.items - o.collected) for o in d.open.values()),
            collected=d.collected,
            oldest_age_s=oldest,
            eta_s=eta,
        )

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.status())


def api_for(model: Model, run_id: str) -> BatchAPI:
    """The batch API of a model's provider (``anthropic:`` and ``openai:`` only)."""
    if model.provider == "anthropic":
        from tooltrial.turns.batch.anthropic_api import AnthropicBatches

        return AnthropicBatches(model)
    if model.provider == "openai":
        from tooltrial.turns.batch.openai_api import OpenAIBatches

        return OpenAIBatches(model, run_id)
    raise batch_unsupported(model)


def _failure(outcome: ItemOutcome) -> Failure:
    kind = outcome.error_kind or outcome.status
    retryable = outcome.retryable or outcome.status in ("expired", "canceled")
    message = outcome.message or outcome.status
    return Failure(kind, f"batch item {outcome.custom_id}: {message}", retryable=retryable)
