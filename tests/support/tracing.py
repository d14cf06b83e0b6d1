"""The tracing backends the tests stand up or point at: the LangSmith stand-in (through
the environment, as a user configures the client) and a real OTLP/HTTP receiver
(oteltap, on 127.0.0.1) that keeps every span it gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from oteltap import OtelTapHttpProtobufReceiver, OtelTapHttpProtobufReceiverSettings

from tooltrial.tracing.langsmith import _PROBES

# --- LangSmith --------------------------------------------------------------------------


def point_langsmith_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    _PROBES.clear()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key")
    monkeypatch.setenv("LANGSMITH_ENDPOINT", url)
    monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2-test-key-not-real")
    monkeypatch.delenv("LANGSMITH_TRACING", raising=False)
    monkeypatch.delenv("LANGSMITH_EXPERIMENT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)


# --- OpenTelemetry ----------------------------------------------------------------------


class Collector:
    """Every span the receiver gets, kept in arrival order."""

    def __init__(self, receiver: OtelTapHttpProtobufReceiver, url: str) -> None:
        self.receiver, self.url, self.spans = receiver, url, []

    async def _collect(self) -> None:
        async for span in self.receiver.stream_traces():
            self.spans.append(span)

    async def wait_for(self, count: int, timeout_s: float = 30.0) -> list[Any]:
        """The spans once ``count`` arrived (or the deadline passed), then a moment more
        in which an extra (duplicate) span would show."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(self.spans) < count and loop.time() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        return list(self.spans)


@contextlib.asynccontextmanager
async def otlp_receiver() -> AsyncIterator[Collector]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = OtelTapHttpProtobufReceiverSettings(http_port=port, listen_on_all_interfaces=False)
    async with OtelTapHttpProtobufReceiver(settings) as receiver:
        collector = Collector(receiver, f"http://127.0.0.1:{port}")
        task = asyncio.create_task(collector._collect())
        await asyncio.sleep(0)  # subscribed before anything is sent
        try:
            yield collector
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def attributes(span: Any) -> dict[str, Any]:
    """A span's attributes as plain Python values."""
    out: dict[str, Any] = {}
    for kv in span.attributes:
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "array_value":
            out[kv.key] = [getattr(v, v.WhichOneof("value")) for v in value.array_value.values]
        else:
            out[kv.key] = getattr(value, kind)
    return out
