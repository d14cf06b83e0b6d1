"""Tracing of model calls to LangSmith (and OpenTelemetry)."""

from __future__ import annotations

import os


def langsmith_enabled() -> bool:
    """LangSmith is on when a key is set and tracing is not switched off."""
    switch = os.environ.get("LANGSMITH_TRACING", os.environ.get("LANGCHAIN_TRACING_V2", ""))
    return bool(os.environ.get("LANGSMITH_API_KEY")) and switch.lower() not in {"false", "0"}
