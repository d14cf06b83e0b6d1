"""Client-side pacing: stay under the provider's requests- and tokens-per-minute limits.

Each limit is a GCRA schedule (a token bucket without a burst): a call may start when the
limit's "theoretical arrival time" has come, and then pushes it on by its cost / rate. So
``--rpm 600`` spaces starts 100 ms apart instead of sending 600 at once and waiting a minute.

A 429 is a signal for everyone, not just the call that got it: the pacer holds every new
start until the server's ``retry-after`` has passed and slows its rates, then speeds up
again a little with each success (additive increase, multiplicative decrease).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tooltrial.errors import UsageError

SLOWDOWN = 0.8  # rate factor after a 429
FLOOR = 0.25  # never slower than this share of the configured rates
RECOVERY = 0.02  # factor regained per successful call


@dataclass
class _Schedule:
    """One GCRA limit: ``per_minute`` units, spent at ``rate_factor`` of that pace."""

    per_minute: float
    tat: float = 0.0  # theoretical arrival time of the next unit

    def reserve(self, now: float, cost: float, factor: float) -> float:
        """When a call costing ``cost`` may start; books it."""
        start = max(now, self.tat)
        self.tat = start + cost * 60.0 / (self.per_minute * factor)
        return start

    def adjust(self, extra_cost: float, factor: float) -> None:
        """The call cost more (or less) than reserved: move the schedule accordingly."""
        self.tat += extra_cost * 60.0 / (self.per_minute * factor)


@dataclass
class Pacer:
    """Shared by every call of a run. With no limits it only honours 429 pauses."""

    rpm: float | None = None
    tpm: float | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    factor: float = 1.0
    paused_until: float = 0.0
    rate_limited: int = 0
    _requests: _Schedule | None = field(default=None, init=False, repr=False)
    _tokens: _Schedule | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        for name, value in (("rpm", self.rpm), ("tpm", self.tpm)):
            if value is not None and value <= 0:
                raise UsageError(f"--{name} must be a positive number, not {value}")
        self._requests = _Schedule(self.rpm) if self.rpm else None
        self._tokens = _Schedule(self.tpm) if self.tpm else None

    async def acquire(self, tokens: int = 0) -> None:
        """Wait for this call's turn; ``tokens`` is its estimated token cost."""
        while True:
            now = self.clock()
            if now >= self.paused_until:
                break
            await self.sleep(self.paused_until - now)
        start = now
        if self._requests:
            start = max(start, self._requests.reserve(now, 1, self.factor))
        if self._tokens and tokens:
            start = max(start, self._tokens.reserve(now, tokens, self.factor))
        if start > now:
            await self.sleep(start - now)

    def settle(self, estimated: int, actual: int) -> None:
        """After a call: charge the tokens it really used, and regain some pace."""
        if self._tokens and actual != estimated:
            self._tokens.adjust(actual - estimated, self.factor)
        self.factor = min(1.0, self.factor + RECOVERY)

    def rate_limited_by_server(self, retry_after_s: float | None) -> None:
        """A 429: hold every new start until ``retry-after`` and slow down."""
        self.rate_limited += 1
        if retry_after_s:
            self.paused_until = max(self.paused_until, self.clock() + retry_after_s)
        self.factor = max(FLOOR, self.factor * SLOWDOWN)
