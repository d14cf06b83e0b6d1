"""Suite-wide rules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tooltrial.testing.messages_server import MessagesServer

# The shared helpers' asserts explain themselves as a test module's do (imported from
# tests/support/ by the test modules, after this file).
pytest.register_assert_rewrite("support")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The worked experiment makes real model calls: it runs only when ``-m`` names it.

    (A ``-m`` in addopts would be replaced by any ``-m`` on the command line, so
    ``pytest -m "not slow"`` would quietly run all 120 calls.)
    """
    if "experiment" in (config.getoption("markexpr") or ""):
        return
    skipped = [item for item in items if item.get_closest_marker("experiment")]
    if skipped:
        config.hook.pytest_deselected(items=skipped)
        items[:] = [item for item in items if not item.get_closest_marker("experiment")]


# The project's Messages API server, with the environment pointing ChatAnthropic at it
# (a module may define its own ``server``).


@pytest.fixture
def server() -> Iterator[MessagesServer]:
    with MessagesServer(max_seconds=60) as srv:
        yield srv


@pytest.fixture
def env(server: MessagesServer, monkeypatch: pytest.MonkeyPatch) -> MessagesServer:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-a-real-key-0000")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    for name in ("LANGSMITH_API_KEY", "OTEL_EXPORTER_OTLP_ENDPOINT", "TOOLTRIAL_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANGSMITH_TRACING", "false")
    return server


@pytest.fixture
def fake_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key the real-process tests' runs are started with, in-process too (the resume,
    signal and MCP process tests use it on every test: ``pytestmark``)."""
    from support.processes import FAKE_KEY

    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
