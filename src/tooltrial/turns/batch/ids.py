"""The names a batch item goes by, derived from what it asks (never random), so a
resumed run finds what an earlier process submitted.

- A model turn is (cell, turn number): the cell's n-th model turn (1 for a single-turn
  cell).
- Each submission of a turn is an *attempt*, and each attempt has its own ``custom_id``:
  ``tt<20 hex of the run and cell>t<turn>a<attempt>``, within the 64 characters of
  ``[A-Za-z0-9_-]`` both providers accept. A new attempt gets a new id, so no id is ever
  submitted twice, even when an item is sent again.
- ``request_sha`` fingerprints the body: a turn whose conversation came out differently
  after a resume (a tool that is not deterministic) is a new request, not the old answer.
"""

from __future__ import annotations

import hashlib

from tooltrial.types import AssistantTurn, Cell, Message

TurnKey = tuple[str, str, str, int, int]
"""(model, variant, scenario_id, rep, turn)."""


def turn_number(messages: tuple[Message, ...]) -> int:
    """Which model turn of its conversation a request asks for (1-based)."""
    return sum(isinstance(m, AssistantTurn) for m in messages) + 1


def turn_key(cell: Cell, turn: int) -> TurnKey:
    return (cell.model, cell.variant, cell.scenario_id, cell.rep, turn)


def custom_id(run_id: str, cell: Cell, turn: int, attempt: int) -> str:
    raw = "\0".join((run_id, cell.model, cell.variant, cell.scenario_id, str(cell.rep)))
    digest = hashlib.sha256(raw.encode()).hexdigest()[:20]
    return f"tt{digest}t{turn}a{attempt}"


def request_sha(body: bytes) -> str:
    """Of the body as sent (``BatchAPI.body``: JSON built the same way each time)."""
    return hashlib.sha256(body).hexdigest()[:32]
