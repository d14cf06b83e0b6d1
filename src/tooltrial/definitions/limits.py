"""The range of every numeric setting, in one table, for files and flags alike.

``LIMITS`` is the single owner: the experiment model (``max_tokens:``, ``temperature:``)
and the ``tooltrial run`` flag checks both ask it, so a range is stated once and every
message names the key or flag at fault, the range, and the value given. A value out of
range is refused before the first call (exit code 2). Types are strict: a boolean, a
numeric string (``'6'``) or a non-finite float (``.nan``, ``.inf``) is never a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tooltrial.errors import UsageError


@dataclass(frozen=True)
class Limit:
    """``low ≤ value ≤ high`` (``low < value`` when ``above``); integers when ``integer``."""

    key: str
    """The setting as a definition file names it (and the attribute of the parsed flags)."""
    low: float
    high: float
    integer: bool = False
    above: bool = False
    unit: str = ""
    flag: str | None = None
    """The ``tooltrial run`` flag that sets it, when there is one."""
    in_file: bool = False
    """Whether ``experiment.yaml`` / ``.toml`` may set it."""

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        low, high = _number(self.low), _number(self.high)
        span = f"above {low} and at most {high}" if self.above else f"from {low} to {high}"
        return f"{kind} {span}" + (f" ({self.unit})" if self.unit else "")

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is out of range, or None when it is fine."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be {self.describe()}; got {value!r}"
        if isinstance(value, float) and self.integer and not value.is_integer():
            return f"must be {self.describe()}; got {value!r}"
        finite = isinstance(value, int) or math.isfinite(value)  # a huge int is no float
        fine = finite and (
            (self.low < value if self.above else self.low <= value) and value <= self.high
        )
        return None if fine else f"must be {self.describe()}; got {_number(value)}"


def _number(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    text = f"{value:,}" if isinstance(value, int) else repr(value)
    return text if len(text) <= 32 else f"{text[:24]}… ({len(str(value))} digits)"


LIMITS: dict[str, Limit] = {
    limit.key: limit
    for limit in (
        Limit("runs", 1, 10_000, integer=True, flag="--runs"),
        Limit("concurrency", 1, 1_000, integer=True, flag="--concurrency"),
        Limit("rpm", 0, 1_000_000, above=True, unit="requests a minute", flag="--rpm"),
        Limit("tpm", 0, 1_000_000_000, above=True, unit="tokens a minute", flag="--tpm"),
        Limit("timeout", 0, 86_400, above=True, unit="seconds per call", flag="--timeout"),
        Limit("max_attempts", 1, 100, integer=True, flag="--max-attempts"),
        Limit("temperature", 0, 2, flag="--temperature", in_file=True),
        Limit("max_tokens", 1, 1_000_000, integer=True, in_file=True),
        # A conversation's limits (``limits:`` of an agentic experiment).
        Limit("max_turns", 1, 200, integer=True),
        Limit("max_tool_calls", 0, 1_000, integer=True),
        Limit("conversation_tokens", 1, 1_000_000_000, integer=True),
        Limit("tool_timeout_s", 0, 3_600, above=True, unit="seconds"),
        Limit("startup_timeout_s", 0, 600, above=True, unit="seconds"),  # an MCP server's
    )
}
"""Every numeric setting. ``temperature`` may also be null in a file or ``default`` as a
flag: send none (the provider's default)."""


def check_value(key: str, value: Any) -> Any:
    """For a file's field validator: ``value`` if in range, else a ``ValueError``
    (pydantic turns it into a message under the key's name)."""
    problem = LIMITS[key].problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def flag_temperature(text: str | None) -> float | None:
    """``--temperature``: ``default`` (send none), or a number in range."""
    if text is None or text == "default":
        return None
    try:
        value: Any = float(text)
    except ValueError:
        value = text
    limit = LIMITS["temperature"]
    problem = limit.problem(value)
    if problem is not None:
        raise UsageError(f"--temperature {problem}, or 'default' to send none")
    return float(value)


def check_flags(values: dict[str, Any]) -> None:
    """The ``tooltrial run`` flags in ``values`` (parsed, by key; None = not given)."""
    for key, value in values.items():
        limit = LIMITS[key]
        if key == "temperature":
            flag_temperature(value)
            continue
        problem = None if value is None else limit.problem(value)
        if problem is not None:
            raise UsageError(f"{limit.flag} {problem}")
