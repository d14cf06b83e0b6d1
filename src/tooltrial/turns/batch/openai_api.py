"""OpenAI's Batch API, through the ``openai`` SDK: the input uploaded as a JSONL file
(``files.create``, purpose ``batch``), then ``batches.create`` for
``/v1/chat/completions`` with a 24 h window. The client is the one ChatOpenAI itself
uses (the same key and base URL as the online path).

Limits: 50,000 requests or 200 MB an input file. Each batch carries the tooltrial group
in its metadata (``tooltrial_group``, with ``tooltrial_run``), so a batch whose create
response was lost is recognised by it (``matches_by_metadata``).

Results: the output file holds each answered item (a non-200 answer is an errored
item); the error file the others, by code: ``batch_expired`` (expired),
``batch_cancelled`` (canceled), anything else errored. A batch that ``failed`` (its
input refused) has neither: the dispatcher ends its items with the batch's error.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from tooltrial.models.base import Model
from tooltrial.turns.base import TurnRequest
from tooltrial.turns.batch.api import (
    Collected,
    Limits,
    RemoteBatch,
    joined,
    retryable_kind,
    wire_json,
)
from tooltrial.types import Failure, ModelResponse

LIMITS = Limits(max_items=50_000, max_bytes=200 * 1000 * 1000 - 1_000_000)
ENDPOINT = "/v1/chat/completions"
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})


class OpenAIBatches:
    provider = "openai"
    limits = LIMITS
    matches_by_metadata = True

    def __init__(self, model: Model, run_id: str) -> None:
        self.model, self.run_id = model, run_id

    @property
    def _client(self) -> Any:
        return self.model._client().root_async_client  # type: ignore[attr-defined]

    def body(self, request: TurnRequest) -> bytes:
        body: dict[str, Any] = self.model.request_body(  # type: ignore[attr-defined]
            request.system, request.messages, request.tools
        )
        if self.model._client()._use_responses_api(body):  # type: ignore[attr-defined]
            raise ValueError(
                f"{self.model.spec} is called through the Responses API online; batch mode "
                "sends Chat Completions requests only"
            )
        return wire_json(body)

    def line(self, custom_id: str, body: bytes) -> bytes:
        head = {"custom_id": custom_id, "method": "POST", "url": ENDPOINT}
        return json.dumps(head).encode()[:-1] + b', "body": ' + body + b"}\n"

    async def submit(
        self, group: str, items: list[tuple[str, bytes]], uploaded: Callable[[str], None]
    ) -> RemoteBatch:
        data = joined(self, items, b"", b"", b"")
        file = await self._client.files.create(
            file=(f"tooltrial-{group}.jsonl", data), purpose="batch"
        )
        uploaded(file.id)
        batch = await self._client.batches.create(
            input_file_id=file.id,
            endpoint=ENDPOINT,
            completion_window="24h",
            metadata={"tooltrial_group": group, "tooltrial_run": self.run_id[:500]},
        )
        return _remote(batch)

    async def retrieve(self, batch_id: str) -> RemoteBatch:
        return _remote(await self._client.batches.retrieve(batch_id))

    async def results(self, batch: RemoteBatch) -> AsyncIterator[Collected]:
        raw = batch.raw
        for file_id in (raw.output_file_id, raw.error_file_id):
            if not file_id:
                continue
            async with self._client.files.with_streaming_response.content(file_id) as stream:
                async for line in stream.iter_lines():
                    if line.strip():
                        yield _collected(json.loads(line))

    async def recent(self, since: datetime) -> list[RemoteBatch]:
        found = []
        async for batch in self._client.batches.list(limit=100):
            remote = _remote(batch)
            if remote.created_at is not None and remote.created_at < since:
                break
            found.append(remote)
        return found

    def response(self, body: Any) -> ModelResponse:
        return self.model.response_from_body(body)  # type: ignore[attr-defined, no-any-return]

    def classify(self, exc: BaseException) -> Failure:
        return self.model.classify(exc)


def _remote(batch: Any) -> RemoteBatch:
    counts = batch.request_counts.model_dump() if batch.request_counts else {}
    errors = batch.errors.data if batch.errors and batch.errors.data else []
    error = "; ".join(str(e.message or e.code) for e in errors) or None
    return RemoteBatch(
        id=batch.id,
        created_at=datetime.fromtimestamp(batch.created_at, UTC),
        ended=batch.status in ENDED,
        status=batch.status,
        total=int(counts.get("total", 0)),
        counts=counts,
        group=(batch.metadata or {}).get("tooltrial_group"),
        error=error,
        raw=batch,
    )


def _collected(line: dict[str, Any]) -> Collected:
    custom_id = str(line.get("custom_id"))
    response = line.get("response") or {}
    error = line.get("error") or {}
    if response.get("status_code") == 200 and not error:
        return Collected(custom_id, "succeeded", body=response.get("body"))
    code = str(error.get("code") or "")
    if code == "batch_expired":
        return Collected(custom_id, "expired", error_kind="expired", message="the item expired")
    if code == "batch_cancelled":
        return Collected(custom_id, "canceled", error_kind="canceled", message="canceled")
    body_error = (response.get("body") or {}).get("error") or {}
    kind = str(body_error.get("type") or code or f"status_{response.get('status_code')}")
    status = response.get("status_code")
    retryable = retryable_kind(kind) or (isinstance(status, int) and status >= 500)
    message = str(body_error.get("message") or error.get("message") or kind)
    return Collected(custom_id, "errored", error_kind=kind, message=message, retryable=retryable)
