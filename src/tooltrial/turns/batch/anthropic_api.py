"""Anthropic's Message Batches, through the ``anthropic`` SDK's
``AsyncAnthropic.messages.batches`` (the client ChatAnthropic itself uses: the same key,
base URL and headers as the online path).

Limits: 100,000 requests or 256 MB a batch. Its list endpoint does not say which items
a batch holds, nor carry metadata: a batch whose create response was lost is recognised
by its creation time and request count (``matches_by_metadata`` False) and confirmed by
the dispatcher from its results.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
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

LIMITS = Limits(max_items=100_000, max_bytes=256 * 1000 * 1000 - 1_000_000)
"""The provider's limits, with a megabyte kept for the envelope."""


class AnthropicBatches:
    provider = "anthropic"
    limits = LIMITS
    matches_by_metadata = False

    def __init__(self, model: Model) -> None:
        self.model = model

    @property
    def _client(self) -> Any:
        return self.model._client()._async_client  # type: ignore[attr-defined]

    @property
    def _batches(self) -> Any:
        return self._client.messages.batches

    def body(self, request: TurnRequest) -> bytes:
        body: dict[str, Any] = self.model.request_body(  # type: ignore[attr-defined]
            request.system, request.messages, request.tools
        )
        if "betas" in body:
            raise ValueError("a request with beta features cannot go in a Message Batch here")
        return wire_json(body)

    def line(self, custom_id: str, body: bytes) -> bytes:
        return b'{"custom_id":' + json.dumps(custom_id).encode() + b',"params":' + body + b"}"

    async def submit(
        self, group: str, items: list[tuple[str, bytes]], uploaded: Callable[[str], None]
    ) -> RemoteBatch:
        # The SDK's own client and route (key, base URL, headers, errors), with the body
        # already JSON: ``batches.create`` would copy every request into new dicts first,
        # three times a batch's size in memory for 10,000 requests.
        import anthropic

        content = joined(self, items, b'{"requests":[', b",", b"]}")
        batch = await self._client.post(
            "/v1/messages/batches",
            content=content,
            options={"headers": {"Content-Type": "application/json"}},
            cast_to=anthropic.types.messages.MessageBatch,
        )
        return _remote(batch)

    async def retrieve(self, batch_id: str) -> RemoteBatch:
        return _remote(await self._batches.retrieve(batch_id))

    async def results(self, batch: RemoteBatch) -> AsyncIterator[Collected]:
        async for line in await self._batches.results(batch.id):
            yield _collected(line)

    async def recent(self, since: datetime) -> list[RemoteBatch]:
        found = []
        async for batch in self._batches.list(limit=100):
            remote = _remote(batch)
            if remote.created_at is not None and remote.created_at < since:
                break  # newest first: the rest are older still
            found.append(remote)
        return found

    def response(self, body: Any) -> ModelResponse:
        return self.model.response_from_body(body)  # type: ignore[attr-defined, no-any-return]

    def classify(self, exc: BaseException) -> Failure:
        return self.model.classify(exc)


def _remote(batch: Any) -> RemoteBatch:
    counts = batch.request_counts.model_dump()
    return RemoteBatch(
        id=batch.id,
        created_at=batch.created_at,
        ended=batch.processing_status == "ended",
        status=batch.processing_status,
        total=sum(counts.values()),
        counts=counts,
        raw=batch,
    )


def _collected(line: Any) -> Collected:
    result = line.result
    if result.type == "succeeded":
        return Collected(line.custom_id, "succeeded", body=result.message)
    if result.type == "errored":
        error = result.error.error
        kind = str(getattr(error, "type", "error"))
        message = str(getattr(error, "message", "") or kind)
        return Collected(
            line.custom_id,
            "errored",
            error_kind=kind,
            message=message,
            retryable=retryable_kind(kind),
        )
    if result.type == "expired":
        return Collected(line.custom_id, "expired", error_kind="expired", message="expired")
    return Collected(line.custom_id, "canceled", error_kind="canceled", message="canceled")
