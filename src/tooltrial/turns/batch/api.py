"""What batch mode needs from a provider's batch API: the one interface the dispatcher
talks to (``BatchAPI``), with one adapter per provider (``anthropic_api``,
``openai_api``), each through the provider's official SDK.

Guarantees every adapter keeps:

- ``body`` is exactly the body the online path (``Model.chat`` through LangChain) sends
  for the same turn: both come from ``LangChainModel.request_body``.
- ``response`` reads an item's answer with the same LangChain code that reads an online
  answer, so a batch result line is the line an online call would have written.
- ``recent`` lists the account's batches created since a time, newest first, so a batch
  whose create response was lost can be recognised (by the metadata tooltrial gave it,
  where the provider keeps metadata; else by creation time and request count, confirmed
  from its results by the dispatcher).
- The SDK's exceptions are classified by the model's own rules (``Model.classify``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tooltrial.errors import UsageError
from tooltrial.models.base import Model
from tooltrial.turns.base import TurnRequest
from tooltrial.turns.batch.journal import ItemStatus
from tooltrial.types import Failure, ModelResponse


@dataclass(frozen=True)
class Limits:
    max_items: int
    max_bytes: int


@dataclass(frozen=True)
class RemoteBatch:
    """A batch as the provider describes it now."""

    id: str
    created_at: datetime | None
    ended: bool
    status: str
    """The provider's own word (``in_progress``, ``ended``; ``completed``, ``expired``…)."""
    total: int
    """Requests in the batch."""
    counts: dict[str, int] = field(default_factory=dict)
    group: str | None = None
    """The tooltrial group named in the batch's metadata (providers that keep metadata)."""
    error: str | None = None
    """Why the whole batch failed (OpenAI ``failed``: its input was refused)."""
    raw: Any = None


@dataclass(frozen=True)
class Collected:
    """One item of a batch's results, as read."""

    custom_id: str
    status: ItemStatus
    body: Any = None
    """The provider's response body (succeeded)."""
    error_kind: str | None = None
    message: str | None = None
    retryable: bool = False


class BatchAPI(Protocol):
    provider: str
    limits: Limits
    matches_by_metadata: bool
    """Whether ``recent`` names each batch's group (else: creation time and count)."""

    def body(self, request: TurnRequest) -> bytes:
        """The request's wire body, as JSON (``ValueError``: it cannot go in a batch)."""
        ...

    def line(self, custom_id: str, body: bytes) -> bytes:
        """The item as the batch holds it (its bytes count against the batch's limit)."""
        ...

    async def submit(
        self, group: str, items: list[tuple[str, bytes]], uploaded: Callable[[str], None]
    ) -> RemoteBatch:
        """Create the batch of these (custom id, body) items, their lines written into one
        buffer (``uploaded`` is told an input file's id, where there is one)."""
        ...

    async def retrieve(self, batch_id: str) -> RemoteBatch: ...

    def results(self, batch: RemoteBatch) -> AsyncIterator[Collected]:
        """Every item's outcome of an ended batch, as the provider streams them."""
        ...

    async def recent(self, since: datetime) -> list[RemoteBatch]: ...

    def response(self, body: Any) -> ModelResponse: ...

    def classify(self, exc: BaseException) -> Failure: ...


def batch_unsupported(model: Model) -> UsageError:
    return UsageError(
        f"--batch: {model.spec} has no batch API here; batch mode runs anthropic: and "
        "openai: models (through their providers' batch APIs). Run it without --batch."
    )


def check_batch_models(models: list[Model] | tuple[Model, ...]) -> None:
    """Refuse, before anything is created, a model batch mode cannot run."""
    for model in models:
        if model.provider not in ("anthropic", "openai") or not hasattr(model, "request_body"):
            raise batch_unsupported(model)


def joined(
    api: BatchAPI, items: list[tuple[str, bytes]], head: bytes, sep: bytes, tail: bytes
) -> bytes:
    """The items' lines as one body, built in one buffer (no list of lines beside it)."""
    buffer = bytearray(head)
    for n, (custom_id, body) in enumerate(items):
        if n:
            buffer += sep
        buffer += api.line(custom_id, body)
    buffer += tail
    return bytes(buffer)  # the HTTP client sends bytes, not a bytearray


def wire_json(body: dict[str, Any]) -> bytes:
    """A request body as sent: compact JSON, its keys in the order the SDK would send."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def retryable_kind(kind: str) -> bool:
    """Whether an item's error kind may pass when the item is sent again."""
    return kind in RETRYABLE_KINDS


RETRYABLE_KINDS = frozenset(
    {
        "api_error",
        "overloaded_error",
        "rate_limit_error",
        "timeout_error",
        "server_error",
        "rate_limit_exceeded",
        "missing_result",
        "bad_response",
    }
)
"""Error kinds of a batch item that are the provider's trouble, not the request's."""
