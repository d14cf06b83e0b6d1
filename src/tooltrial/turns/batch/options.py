"""Batch mode's settings, typed once (``tooltrial run --batch`` flags, the pytest
option and ``RunOptions.batch`` all become a ``BatchOptions``).

Kept free of provider SDKs: the command line imports it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from tooltrial.errors import UsageError

RetryErrored = Literal["batch", "online", "none"]
"""What becomes of an item the provider answered with a retryable error: submitted again
in a later batch, called online (full price, at once), or left as an error line."""


@dataclass(frozen=True)
class BatchOptions:
    """How a run's model turns go through the providers' batch APIs."""

    in_flight: int = 4
    """Batches submitted and not yet ended, at most (per run, over all models)."""
    max_items: int | None = None
    """Items per batch, at most; None: the provider's limit (Anthropic 100,000, OpenAI
    50,000). Bytes are always kept under the provider's limit (256 MB, 200 MB)."""
    max_bytes: int | None = None
    """Bytes per batch, at most (a smaller figure than the provider's keeps memory low)."""
    poll_s: float = 30.0
    """The first wait before a batch is polled; each poll that finds it running waits
    1.5 times longer, up to ``poll_max_s``. Also the base delay of a failed submit."""
    poll_max_s: float = 600.0
    gather_s: float = 2.0
    """How long the turns that are ready wait for more before a batch that is not full
    is submitted (conversations: their next turns arrive together, after tools ran)."""
    retry_errored: RetryErrored = "batch"
    max_attempts: int = 3
    """Batch submissions of one model turn before it is an error line (errored, expired
    and canceled items count; a submit that never reached the provider does not)."""

    def __post_init__(self) -> None:
        positive = {
            "--batch-in-flight": self.in_flight,
            "--batch-max-items": self.max_items,
            "--batch-max-bytes": self.max_bytes,
            "--batch-attempts": self.max_attempts,
        }
        for flag, value in positive.items():
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UsageError(f"{flag} must be a whole number of at least 1, not {value}")
        for flag, seconds in (
            ("--batch-poll", self.poll_s),
            ("--batch-poll-max", self.poll_max_s),
            ("--batch-gather", self.gather_s),
        ):
            if not 0 <= seconds <= 86_400:
                raise UsageError(f"{flag} must be between 0 and 86400 seconds, not {seconds}")
        if self.retry_errored not in ("batch", "online", "none"):
            raise UsageError(f"--batch-retry {self.retry_errored!r}: use batch, online or none")

    def record(self) -> dict[str, Any]:
        """What the metadata records (``settings.batch``); ``of`` reads it back."""
        return asdict(self)

    @classmethod
    def of(cls, recorded: Any) -> BatchOptions | None:
        """The options a run's metadata recorded (None: it ran online)."""
        if not isinstance(recorded, dict):
            return None
        known = {k: v for k, v in recorded.items() if k in cls.__dataclass_fields__}
        return cls(**known)
