"""Tracing is an extra: asked for without it, the run goes on with one warning naming
the install; a provider without its extra is refused before any call."""

from __future__ import annotations

import pytest

from tooltrial import load_experiment
from tooltrial.errors import MissingExtra
from tooltrial.models import get_model
from tooltrial.tracing import Tracer, from_env
from tooltrial.tracing import setup as tracing_setup

SAMPLE = "tests/experiment"


def test_tracing_without_its_extra_warns_once_and_traces_nothing(monkeypatch):
    monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2-test-not-real")
    monkeypatch.delenv("LANGSMITH_TRACING", raising=False)
    monkeypatch.setattr(tracing_setup, "found", lambda module: module != "langsmith")
    said: list[str] = []
    tracer = from_env(load_experiment(SAMPLE), [], "r", None, warn=said.append)
    assert type(tracer) is Tracer
    assert len(said) == 1 and "pip install 'tooltrial[tracing]'" in said[0]
    assert "LangSmith" in said[0] and "OpenTelemetry" not in said[0]


@pytest.mark.parametrize(
    ("spec", "extra"),
    [("anthropic:x", "anthropic"), ("openai:x", "openai"), ("local:smollm2", "local")],
)
def test_a_model_without_its_extra_names_the_install(monkeypatch, spec, extra):
    monkeypatch.setattr("tooltrial.extras.found", lambda module: False)
    with pytest.raises(MissingExtra, match=rf"pip install 'tooltrial\[{extra}\]'") as caught:
        get_model(spec)
    assert caught.value.exit_code == 2
