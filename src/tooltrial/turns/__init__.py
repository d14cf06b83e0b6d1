"""Where a run's model turns come from (``base.TurnSource``); ``live``: calls with
pacing (``pacing``), retries and the response cache (``cache``)."""

from tooltrial.turns.base import TurnFailed, TurnRequest, TurnSource
from tooltrial.turns.cache import ResponseCache
from tooltrial.turns.live import LiveTurns, RetryPolicy, cell_seed
from tooltrial.turns.pacing import Pacer

__all__ = [
    "LiveTurns",
    "Pacer",
    "ResponseCache",
    "RetryPolicy",
    "TurnFailed",
    "TurnRequest",
    "TurnSource",
    "cell_seed",
]
