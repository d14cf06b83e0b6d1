"""Plain data shared by every layer: what a model returned, what went wrong, and which
cell of the experiment a call belongs to. Nothing here imports the rest of tooltrial.

``ToolCall``, ``Usage`` and ``ModelResponse`` are frozen pydantic models, so they
serialise themselves (``model_dump`` / ``model_validate``) the same way for the JSONL
log, the response cache and the traces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolCall(_Frozen):
    id: str
    name: str
    arguments: dict[str, Any]


class Usage(_Frozen):
    input_tokens: int = 0
    output_tokens: int = 0


class ModelResponse(_Frozen):
    """One model reply: text, tool calls and every content block as the provider gave it."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    stop_reason: str | None
    usage: Usage
    response_model: str | None = None
    content: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Failure:
    """What went wrong with a call, in the terms the runner acts on."""

    kind: str
    message: str
    retryable: bool
    retry_after_s: float | None = None


@dataclass(frozen=True, order=True)
class Cell:
    """One call of the experiment grid: (model, variant, scenario, rep).

    ``model`` is the model's spec (``provider:name``), so runs of several models can share
    a results folder without their cells collapsing into one."""

    model: str
    variant: str
    scenario_id: str
    rep: int


@dataclass
class Outcome:
    """How one cell ended: a response, or the failure of its last attempt."""

    cell: Cell
    response: ModelResponse | None
    failure: Failure | None
    attempts: int
    retry_wait_s: float
    latency_s: float
    model: str = ""
    temperature: float | None = None
    trace_id: str | None = None
    cached: bool = False


UNPARSED = "_unparsed"
"""Arguments a model wrote that are not a JSON object are kept as ``{UNPARSED: raw}``."""


def unparsed_arguments(raw: str) -> dict[str, Any]:
    """How a tool call's unreadable arguments are stored: as written, never dropped."""
    return {UNPARSED: raw}


def malformed_arguments(arguments: Any) -> str | None:
    """The raw text when ``arguments`` are the stored form of unreadable ones, else None."""
    if isinstance(arguments, dict) and set(arguments) == {UNPARSED}:
        raw = arguments[UNPARSED]
        return raw if isinstance(raw, str) else repr(raw)
    return None


@dataclass(frozen=True)
class Order:
    """The order a run called its cells in, as recorded in every file's metadata
    (``settings["order"]``).

    ``random``: within each rep (reps in sequence) the cells follow a permutation fixed by
    ``seed``, so anything that drifts over a run (server load, rate limits, cache warming)
    falls on every variant alike. ``blocked``: variant by variant, as every run did before
    the field existed; files without it read as blocked. Only a randomised run
    supports comparing time-dependent metrics (latency) between variants."""

    kind: Literal["blocked", "random"] = "blocked"
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("blocked", "random"):
            raise ValueError(f"order must be 'blocked' or 'random', not {self.kind!r}")
        if self.kind == "random" and self.seed is None:
            raise ValueError("a random order needs its seed")

    @property
    def randomised(self) -> bool:
        return self.kind == "random"

    def record(self) -> dict[str, Any]:
        """What metadata records: ``{"kind": "random", "seed": N}`` or ``{"kind": "blocked"}``."""
        return {"kind": self.kind, "seed": self.seed} if self.randomised else {"kind": "blocked"}

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> Order:
        """The order recorded in a file's metadata settings (none recorded: blocked)."""
        recorded = settings.get("order")
        if not isinstance(recorded, Mapping):
            return cls()
        kind = recorded.get("kind", "blocked")
        seed = recorded.get("seed")
        return cls(kind, int(seed) if seed is not None else None)

    def describe(self) -> str:
        return f"random (seed {self.seed})" if self.randomised else "blocked (variant by variant)"
