"""Plain data shared by every layer: what a model returned, what went wrong, and which
cell of the experiment a call belongs to. Nothing here imports the rest of tooltrial.

``ToolCall``, ``Usage`` and ``ModelResponse`` are frozen pydantic models, so they
serialise themselves (``model_dump`` / ``model_validate``) the same way for the JSONL
log, the response cache and the traces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
