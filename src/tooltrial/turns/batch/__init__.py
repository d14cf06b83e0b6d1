"""Model turns through the providers' batch APIs (``tooltrial run --batch``): half the
online price, hours rather than minutes, and crash-safe: ``journal`` records every
step before and after it happens, ``dispatcher`` groups, submits, polls and collects
(and recognises a batch whose create response was lost), ``source.BatchTurns`` is the
``TurnSource``; ``anthropic_api`` and ``openai_api`` speak to each provider's SDK."""

from tooltrial.turns.batch.options import BatchOptions, RetryErrored

__all__ = ["BatchOptions", "RetryErrored"]
