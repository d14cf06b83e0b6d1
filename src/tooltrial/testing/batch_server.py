"""Local doubles of the providers' batch APIs, with faults, for the real SDKs.

``AnthropicBatchServer`` is a ``MessagesServer`` that also serves Message Batches
(create, retrieve, list, results stream, cancel); ``OpenAIBatchServer`` an
``OpenAIServer`` that also serves Files (upload, content) and Batches (create, retrieve,
list, cancel; output and error files). Both keep answering online requests, so a
preflight and an online retry reach the same server, and both answer a batch item with
the same responder as an online request (a ``ScriptedAgent`` plays conversations turn
by turn, batch after batch).

    with AnthropicBatchServer(batch_faults=BatchFaults(errored=0.2)) as srv:
        client = anthropic.AsyncAnthropic(base_url=srv.url, api_key="fake")

Guarantees, as ``MessagesServer``'s: it binds 127.0.0.1 only, stops itself after
``max_requests`` requests or ``max_seconds``, never stores a key. Time is driven by the
test, never by sleeping: a batch ends on the first look after ``processing_s`` (default
0: at once), or, with ``hold``, only after ``release()``.

Faults (``BatchFaults``; ``srv.batch_faults`` may be replaced while it runs):

- ``processing_s`` / ``hold``: slow processing;
- ``errored`` / ``expired``: that share of the distinct requests (drawn by a hash of the
  body and ``seed``) end errored (``errored_kind``) or expired, the first
  ``fault_times`` times they are submitted, then succeed;
- ``poll_500``: the first N looks at each batch answer 500;
- ``lose_create``: these creates (1-based) make the batch, then hang up without an
  answer (a submit that succeeded whose response is lost);
- ``hold_create``: every create waits before (``"before"``: nothing is made) or after
  (``"after"``: made, answer held) making its batch, until the server stops — where a
  test kills the client;
- ``hold_results_after``: a results stream sends that many lines, then holds;
- ``from_batch``: the holds apply from that batch (create) on.

What it counts: ``created_ids`` (each custom id in a batch it made: a client that
submits nothing twice leaves every count at 1), ``received_ids`` (in every create it
got), ``creates_held``, ``results_sent``, and ``processing_s()`` (the time at least one
batch was processing: what a bench subtracts from its wall time).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import json
import random
import re
import threading
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

from tooltrial.testing.messages_server import Faults, MessagesServer, Reply, _json_reply
from tooltrial.testing.openai_server import OpenAIServer, completion
from tooltrial.testing.responders import Responder, ResponderRefused

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
BATCH_NUMBERS = 900_000
"""Batch answers are numbered from here (their ids and token counts then look like an
online answer's, as long as a server answers fewer online requests)."""


@dataclasses.dataclass(frozen=True)
class BatchFaults:
    """See the module docstring."""

    processing_s: float = 0.0
    hold: bool = False
    errored: float = 0.0
    errored_kind: str = "api_error"
    expired: float = 0.0
    fault_times: int = 1
    poll_500: int = 0
    lose_create: frozenset[int] = frozenset()
    hold_create: Literal["before", "after"] | None = None
    hold_results_after: int | None = None
    from_batch: int = 1
    """``hold``, ``hold_create`` and ``hold_results_after`` apply from this batch (or
    create) on, counted from 1: a conversation's first turns can pass before a hold."""
    seed: int = 0

    def holds(self, number: int) -> bool:
        return number >= self.from_batch

    def draw(self, body: Any, seen: int) -> str:
        """``succeeded``, ``errored`` or ``expired`` for a request body seen ``seen``
        times (this one included)."""
        if seen > self.fault_times:
            return "succeeded"
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        u = random.Random(f"{self.seed}:{digest}").random()
        if u < self.errored:
            return "errored"
        if u < self.errored + self.expired:
            return "expired"
        return "succeeded"


class StreamedReply(NamedTuple):
    """A 200 whose body is sent in two parts; ``rest`` only after ``hold`` (never, if
    the test does not release it)."""

    status: int
    head: bytes
    rest: bytes
    headers: dict[str, str]
    hold: bool


@dataclasses.dataclass
class Batch:
    id: str
    number: int
    created: datetime
    created_mono: float
    items: list[tuple[str, Any]]
    """(custom_id, request body)."""
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    input_file_id: str | None = None
    cancel_at: float | None = None
    ended_mono: float | None = None
    outcomes: list[dict[str, Any]] | None = None
    """One per item once ended: custom_id, status, and the answer or error."""
    looks: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None

    @property
    def ended(self) -> bool:
        return self.outcomes is not None

    def counts(self) -> collections.Counter[str]:
        return collections.Counter(o["status"] for o in self.outcomes or [])


class BatchBook:
    """The batches one server holds (thread-safe), and how each ends."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.lock = threading.Lock()
        self.batches: dict[str, Batch] = {}
        self.created_ids: collections.Counter[str] = collections.Counter()
        self.received_ids: collections.Counter[str] = collections.Counter()
        self.seen: collections.Counter[str] = collections.Counter()
        self.creates = 0

    def create(self, items: list[tuple[str, Any]], **fields: Any) -> Batch:
        with self.lock:
            number = len(self.batches) + 1
            batch = Batch(
                id=f"{self.prefix}{number:06d}{random.Random(number).getrandbits(32):08x}",
                number=number,
                created=datetime.now(UTC),
                created_mono=time.monotonic(),
                items=items,
                **fields,
            )
            self.batches[batch.id] = batch
            self.created_ids.update(cid for cid, _ in items)
            return batch

    def settle(self, batch: Batch, faults: BatchFaults, answer: Any) -> None:
        """End the batch if its time has come (``answer(body) -> (status, payload)``)."""
        with self.lock:
            if batch.ended:
                return
            now = time.monotonic()
            canceled = batch.cancel_at is not None
            held = faults.hold and faults.holds(batch.number)
            due = not held and now - batch.created_mono >= faults.processing_s
            if not canceled and not due:
                return
            outcomes = []
            for custom_id, body in batch.items:
                if canceled:
                    outcomes.append({"custom_id": custom_id, "status": "canceled"})
                    continue
                key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
                self.seen[key] += 1
                status = faults.draw(body, self.seen[key])
                if status == "succeeded":
                    status, payload = answer(body)
                else:
                    payload = {"type": faults.errored_kind, "message": f"injected: {status}"}
                outcomes.append({"custom_id": custom_id, "status": status, "payload": payload})
            batch.outcomes = outcomes
            batch.ended_mono = now

    def processing_s(self) -> float:
        """Seconds during which at least one batch was processing (the union of their
        spans from creation to end)."""
        with self.lock:
            now = time.monotonic()
            spans = sorted((b.created_mono, b.ended_mono or now) for b in self.batches.values())
        total, reach = 0.0, None
        for start, end in spans:
            if reach is None or start > reach:
                total += end - start
                reach = end
            elif end > reach:
                total += end - reach
                reach = end
        return total


class _BatchServing:
    """What both batch servers share: faults, holds, counters, the streamed reply."""

    book: BatchBook
    batch_faults: BatchFaults
    results_sent: int
    creates_held: int
    _loop: asyncio.AbstractEventLoop | None

    def _init_batches(self, prefix: str, faults: BatchFaults | None) -> None:
        self.book = BatchBook(prefix)
        self.batch_faults = faults or BatchFaults()
        self.results_sent = 0
        self.creates_held = 0

    @property
    def created_ids(self) -> collections.Counter[str]:
        with self.book.lock:
            return collections.Counter(self.book.created_ids)

    @property
    def received_ids(self) -> collections.Counter[str]:
        with self.book.lock:
            return collections.Counter(self.book.received_ids)

    @property
    def batches(self) -> list[Batch]:
        with self.book.lock:
            return list(self.book.batches.values())

    def processing_s(self) -> float:
        return self.book.processing_s()

    def release(self) -> None:
        """Let every held batch end (from now on, batches are not held)."""
        self.batch_faults = dataclasses.replace(self.batch_faults, hold=False)

    def cancel(self, batch_id: str) -> None:
        """Cancel a batch as a user would from the console: its unprocessed items end
        ``canceled``."""
        with self.book.lock:
            batch = self.book.batches[batch_id]
            if batch.cancel_at is None and not batch.ended:
                batch.cancel_at = time.monotonic()

    def batch_stats(self) -> dict[str, Any]:
        created = self.created_ids
        return {
            "batches": len(self.book.batches),
            "items": sum(created.values()),
            "most_submissions_of_one_id": max(created.values(), default=0),
            "processing_s": round(self.processing_s(), 3),
        }

    async def _hold_forever(self) -> None:
        """Wait until the server stops (its connections are then cancelled)."""
        await asyncio.Event().wait()

    async def _create_with_faults(
        self, custom_ids: list[str], make: Any
    ) -> tuple[Batch | None, bool]:
        """Count, hold or lose a create as ``batch_faults`` says; (batch, answer it?)."""
        faults = self.batch_faults
        with self.book.lock:
            self.book.creates += 1
            number = self.book.creates
            self.book.received_ids.update(custom_ids)
        held = faults.holds(number)
        if faults.hold_create == "before" and held:
            self.creates_held += 1
            await self._hold_forever()
        batch = make()
        if number in faults.lose_create:
            return batch, False
        if faults.hold_create == "after" and held:
            self.creates_held += 1
            await self._hold_forever()
        return batch, True

    def _look(self, batch: Batch) -> Reply | None:
        """A look at a batch: a 500 for the first ``poll_500``; else None."""
        batch.looks += 1
        if batch.looks <= self.batch_faults.poll_500:
            return _json_reply(
                500, {"type": "error", "error": {"type": "api_error", "message": "poll fault"}}
            )
        return None

    def _streamed(
        self, lines: list[bytes], content_type: str, number: int = 1
    ) -> Reply | StreamedReply:
        after = self.batch_faults.hold_results_after
        if not self.batch_faults.holds(number):
            after = None
        headers = {"content-type": content_type}
        if after is None or after >= len(lines):
            self.results_sent += len(lines)
            return Reply(200, b"".join(lines), headers)
        self.results_sent += after
        return StreamedReply(
            200, b"".join(lines[:after]), b"".join(lines[after:]), headers, hold=True
        )

    async def _write_reply(
        self, writer: asyncio.StreamWriter, reply: Any, headers: dict[str, str]
    ) -> None:
        if not isinstance(reply, StreamedReply):
            await MessagesServer._write(writer, reply, headers)
            return
        body_length = len(reply.head) + len(reply.rest)
        lines = [f"HTTP/1.1 {reply.status} OK", f"content-length: {body_length}"]
        lines += ["connection: close", *(f"{k}: {v}" for k, v in reply.headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.head)
        await writer.drain()
        if reply.hold:
            await self._hold_forever()
        writer.write(reply.rest)
        await writer.drain()


def _query(query: str) -> dict[str, str]:
    return {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}


def _page(batches: list[Batch], query: dict[str, str], cursor: str) -> tuple[list[Batch], bool]:
    """Newest first; after the cursor's id; ``limit`` of them."""
    ordered = sorted(batches, key=lambda b: b.number, reverse=True)
    after = query.get(cursor)
    if after:
        ids = [b.id for b in ordered]
        ordered = ordered[ids.index(after) + 1 :] if after in ids else []
    limit = max(1, min(1000, int(query.get("limit", "20"))))
    return ordered[:limit], len(ordered) > limit


# ---------------------------------------------------------------- Anthropic
class AnthropicBatchServer(_BatchServing, MessagesServer):
    """Messages API and Message Batches on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        faults: Faults | None = None,
        responder: Responder | None = None,
        *,
        batch_faults: BatchFaults | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(faults, responder=responder, **kwargs)
        self._init_batches("msgbatch_", batch_faults)
        self._answered = 0

    def _kept(self, path: str, body: Any) -> Any:
        if path.startswith("/v1/messages/batches") and isinstance(body, dict):
            return {"requests": len(body.get("requests") or [])}  # not every body: memory
        return body

    async def _write(  # type: ignore[override]
        self, writer: asyncio.StreamWriter, reply: Any, headers: dict[str, str]
    ) -> None:
        await self._write_reply(writer, reply, headers)

    async def _route(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        raw: bytes,
        body: Any,
        number: int,
    ) -> Any:
        prefix = "/v1/messages/batches"
        if not path.startswith(prefix):
            return await super()._route(method, path, query, headers, raw, body, number)
        if not (headers.get("x-api-key") or headers.get("authorization")):
            return _error(401, "authentication_error", "x-api-key header is required")
        parts = [p for p in path[len(prefix) :].split("/") if p]
        if method == "POST" and not parts:
            return await self._create(body)
        if method == "GET" and not parts:
            return self._list(_query(query))
        batch = self.book.batches.get(parts[0]) if parts else None
        if batch is None:
            return _error(404, "not_found_error", f"no batch {parts[0] if parts else ''}")
        if method == "GET" and len(parts) == 1:
            return self._look(batch) or _json_reply(200, self._describe(batch))
        if method == "GET" and parts[1:] == ["results"]:
            return self._results(batch)
        if method == "POST" and parts[1:] == ["cancel"]:
            self.cancel(batch.id)
            return _json_reply(200, self._describe(batch))
        return _error(404, "not_found_error", f"Not found: {method} {path}")

    async def _create(self, body: Any) -> Reply | None:
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return _error(400, "invalid_request_error", "requests: a non-empty list is required")
        ids = [r.get("custom_id") for r in requests if isinstance(r, dict)]
        if len(ids) != len(requests) or not all(
            isinstance(i, str) and CUSTOM_ID.match(i) for i in ids
        ):
            return _error(400, "invalid_request_error", "each request needs a valid custom_id")
        if len(set(ids)) != len(ids):
            return _error(400, "invalid_request_error", "custom_id values must be unique")
        if len(requests) > 100_000:
            return _error(400, "invalid_request_error", "at most 100,000 requests a batch")
        for r in requests:
            params = r.get("params")
            if not isinstance(params, dict) or not {"model", "messages", "max_tokens"} <= set(
                params
            ):
                return _error(400, "invalid_request_error", "params: model, messages, max_tokens")
        items = [(r["custom_id"], r["params"]) for r in requests]
        custom_ids = [cid for cid, _ in items]
        batch, answer = await self._create_with_faults(custom_ids, lambda: self.book.create(items))
        if not answer:
            return None
        assert batch is not None
        return _json_reply(200, self._describe(batch))

    def _answer(self, params: dict[str, Any]) -> tuple[str, Any]:
        self._answered += 1
        try:
            return "succeeded", self._message(params, BATCH_NUMBERS + self._answered)
        except ResponderRefused as exc:
            return "errored", {"type": "invalid_request_error", "message": str(exc)}

    def _describe(self, batch: Batch) -> dict[str, Any]:
        self.book.settle(batch, self.batch_faults, self._answer)
        counts = batch.counts()
        ended = batch.ended
        created = batch.created
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": "ended"
            if ended
            else ("canceling" if batch.cancel_at else "in_progress"),
            "request_counts": {
                "processing": 0 if ended else len(batch.items),
                "succeeded": counts["succeeded"],
                "errored": counts["errored"],
                "canceled": counts["canceled"],
                "expired": counts["expired"],
            },
            "created_at": created.isoformat(),
            "expires_at": (created + timedelta(hours=24)).isoformat(),
            "ended_at": datetime.now(UTC).isoformat() if ended else None,
            "archived_at": None,
            "cancel_initiated_at": created.isoformat() if batch.cancel_at else None,
            "results_url": f"{self.url}/v1/messages/batches/{batch.id}/results" if ended else None,
        }

    def _list(self, query: dict[str, str]) -> Reply:
        page, more = _page(self.batches, query, "after_id")
        data = [self._describe(b) for b in page]
        return _json_reply(
            200,
            {
                "data": data,
                "has_more": more,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            },
        )

    def _results(self, batch: Batch) -> Any:
        self.book.settle(batch, self.batch_faults, self._answer)
        if not batch.ended:
            return _error(400, "invalid_request_error", "the batch is still processing")
        lines = []
        for outcome in batch.outcomes or []:
            status = outcome["status"]
            if status == "succeeded":
                result: dict[str, Any] = {"type": "succeeded", "message": outcome["payload"]}
            elif status == "errored":
                error = {"type": "error", "error": outcome["payload"], "request_id": None}
                result = {"type": "errored", "error": error}
            else:
                result = {"type": status}
            line = {"custom_id": outcome["custom_id"], "result": result}
            lines.append(json.dumps(line).encode() + b"\n")
        return self._streamed(lines, "application/x-jsonl", batch.number)

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), **self.batch_stats()}


def _error(status: int, kind: str, message: str) -> Reply:
    return _json_reply(status, {"type": "error", "error": {"type": kind, "message": message}})


# ---------------------------------------------------------------- OpenAI
class OpenAIBatchServer(_BatchServing, OpenAIServer):
    """Chat Completions, Files and Batches on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        agent: Any = None,
        faults: Faults | None = None,
        *,
        batch_faults: BatchFaults | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(agent, faults, **kwargs)
        self._init_batches("batch_", batch_faults)
        self.files: dict[str, bytes] = {}
        self._answered = 0

    def _kept(self, path: str, body: Any) -> Any:
        return None if path.startswith("/v1/files") else body

    async def _write(  # type: ignore[override]
        self, writer: asyncio.StreamWriter, reply: Any, headers: dict[str, str]
    ) -> None:
        await self._write_reply(writer, reply, headers)

    async def _route(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        raw: bytes,
        body: Any,
        number: int,
    ) -> Any:
        if not path.startswith(("/v1/files", "/v1/batches")):
            return await super()._route(method, path, query, headers, raw, body, number)
        if not headers.get("authorization", "").removeprefix("Bearer ").strip():
            return _oai_error(401, "invalid_request_error", "You didn't provide an API key.")
        parts = [p for p in path.split("/") if p][1:]  # files/..., batches/...
        if parts == ["files"] and method == "POST":
            return self._upload(headers, raw)
        if parts[0] == "files" and parts[2:] == ["content"] and method == "GET":
            data = self.files.get(parts[1])
            if data is None:
                return _oai_error(404, "invalid_request_error", f"No such File object: {parts[1]}")
            of = self.book.batches.get(parts[1].split("-", 2)[-1])  # file-output-<batch id>
            number = of.number if of is not None else 1
            return self._streamed(
                data.splitlines(keepends=True), "application/octet-stream", number
            )
        if parts == ["batches"] and method == "POST":
            return await self._create(body)
        if parts == ["batches"] and method == "GET":
            return self._list(_query(query))
        batch = self.book.batches.get(parts[1]) if len(parts) > 1 else None
        if parts[0] == "batches" and batch is not None:
            if method == "GET" and len(parts) == 2:
                return self._look(batch) or _json_reply(200, self._describe(batch))
            if method == "POST" and parts[2:] == ["cancel"]:
                self.cancel(batch.id)
                return _json_reply(200, self._describe(batch))
        return _oai_error(404, "invalid_request_error", f"Unknown request URL: {method} {path}")

    def _upload(self, headers: dict[str, str], raw: bytes) -> Reply:
        fields = _multipart(headers.get("content-type", ""), raw)
        if "file" not in fields or fields.get("purpose") != b"batch":
            return _oai_error(400, "invalid_request_error", "file and purpose=batch are required")
        file_id = f"file-{len(self.files) + 1:06d}"
        self.files[file_id] = fields["file"]
        return _json_reply(200, _file(file_id, fields["file"]))

    async def _create(self, body: Any) -> Reply | None:
        if not isinstance(body, dict) or body.get("input_file_id") not in self.files:
            return _oai_error(400, "invalid_request_error", "input_file_id: no such file")
        endpoint = body.get("endpoint")
        items = []
        for line in self.files[body["input_file_id"]].splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            if item.get("url") != endpoint or item.get("method") != "POST":
                return _oai_error(400, "invalid_request_error", "every line must POST the endpoint")
            items.append((str(item["custom_id"]), item["body"]))
        ids = [cid for cid, _ in items]
        if not items or len(set(ids)) != len(ids) or len(items) > 50_000:
            return _oai_error(400, "invalid_request_error", "1 to 50,000 unique custom_ids")

        def make() -> Batch:
            return self.book.create(
                items,
                metadata=dict(body.get("metadata") or {}),
                input_file_id=body["input_file_id"],
            )

        batch, answer = await self._create_with_faults(ids, make)
        if not answer:
            return None
        assert batch is not None
        return _json_reply(200, self._describe(batch))

    def _answer(self, params: dict[str, Any]) -> tuple[str, Any]:
        self._answered += 1
        try:
            return "succeeded", completion(
                params, self._reply(params), BATCH_NUMBERS + self._answered
            )
        except ResponderRefused as exc:
            return "errored", {"type": "invalid_request_error", "message": str(exc)}

    def _describe(self, batch: Batch) -> dict[str, Any]:
        self.book.settle(batch, self.batch_faults, self._answer)
        if batch.ended and batch.output_file_id is None and batch.error_file_id is None:
            self._write_files(batch)
        counts = batch.counts()
        created = int(batch.created.timestamp())
        if batch.ended:
            status = (
                "cancelled"
                if counts["canceled"]
                else "expired"
                if counts["expired"]
                else "completed"
            )
        else:
            status = "cancelling" if batch.cancel_at else "in_progress"
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": None,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": created,
            "in_progress_at": created,
            "expires_at": created + 86_400,
            "completed_at": int(time.time()) if batch.ended else None,
            "request_counts": {
                "total": len(batch.items),
                "completed": counts["succeeded"],
                "failed": len(batch.items) - counts["succeeded"] if batch.ended else 0,
            },
            "metadata": batch.metadata,
        }

    def _write_files(self, batch: Batch) -> None:
        output, errors = [], []
        for n, outcome in enumerate(batch.outcomes or []):
            line: dict[str, Any] = {
                "id": f"batch_req_{batch.number}_{n}",
                "custom_id": outcome["custom_id"],
            }
            status = outcome["status"]
            if status == "succeeded":
                body = outcome["payload"]
                line |= {
                    "response": {"status_code": 200, "request_id": f"req_{n}", "body": body},
                    "error": None,
                }
                output.append(line)
            elif status == "errored":
                payload = outcome["payload"]
                code = 400 if payload.get("type") == "invalid_request_error" else 500
                line |= {
                    "response": {
                        "status_code": code,
                        "request_id": f"req_{n}",
                        "body": {"error": payload},
                    },
                    "error": None,
                }
                errors.append(line)
            else:
                reason = "batch_expired" if status == "expired" else "batch_cancelled"
                line |= {
                    "response": None,
                    "error": {"code": reason, "message": f"the request {status}"},
                }
                errors.append(line)
        for kind, lines in (("output", output), ("error", errors)):
            if lines:
                file_id = f"file-{kind}-{batch.id}"
                self.files[file_id] = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
                setattr(batch, f"{kind}_file_id", file_id)

    def _list(self, query: dict[str, str]) -> Reply:
        page, more = _page(self.batches, query, "after")
        data = [self._describe(b) for b in page]
        return _json_reply(
            200,
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": more,
            },
        )

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), **self.batch_stats()}


def _oai_error(status: int, kind: str, message: str) -> Reply:
    return _json_reply(
        status, {"error": {"message": message, "type": kind, "param": None, "code": None}}
    )


def _file(file_id: str, data: bytes) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": len(data),
        "created_at": int(time.time()),
        "filename": "batch.jsonl",
        "purpose": "batch",
        "status": "processed",
    }


def _multipart(content_type: str, raw: bytes) -> dict[str, bytes]:
    """The fields of a multipart/form-data body, by name."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        return {}
    fields: dict[str, bytes] = {}
    for part in raw.split(b"--" + match.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]+)"', head)
        if name:
            fields[name.group(1).decode()] = data.removesuffix(b"\r\n")
    return fields


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m tooltrial.testing.batch_server",
        description="Anthropic or OpenAI batch API test server",
    )
    p.add_argument("--provider", choices=("anthropic", "openai"), default="anthropic")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--processing", type=float, default=0.0, help="seconds a batch processes")
    p.add_argument("--errored", type=float, default=0.0)
    p.add_argument("--expired", type=float, default=0.0)
    p.add_argument("--max-requests", type=int, default=100_000)
    p.add_argument("--max-seconds", type=float, default=600.0)
    a = p.parse_args(argv)
    faults = BatchFaults(processing_s=a.processing, errored=a.errored, expired=a.expired)
    server: AnthropicBatchServer | OpenAIBatchServer
    limits = {"port": a.port, "max_requests": a.max_requests, "max_seconds": a.max_seconds}
    if a.provider == "anthropic":
        server = AnthropicBatchServer(batch_faults=faults, **limits)
    else:
        server = OpenAIBatchServer(batch_faults=faults, **limits)
    with server:
        print(f"{a.provider} batch API test server on {server.url} (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.wait()
    print(json.dumps(server.stats()), flush=True)


if __name__ == "__main__":
    main()
