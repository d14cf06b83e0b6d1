"""Fixtures the run tests share."""

import pytest
from support.processes import FAKE_KEY


@pytest.fixture
def fake_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key the real-process tests' runs are started with, in-process too (the resume
    and signal tests use it on every test: ``pytestmark``)."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
