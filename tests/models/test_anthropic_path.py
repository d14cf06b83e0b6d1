"""The Anthropic path end to end: the real ChatAnthropic client against the project's
local Messages API server (tool use, usage, stop reasons, rejected settings)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.paths import TESTS

from tooltrial.cli import main
from tooltrial.log.reader import iter_records
from tooltrial.log.records import Metadata, Result
from tooltrial.log.validate import validate
from tooltrial.testing.messages_server import MessagesServer, default_responder

SAMPLE = TESTS / "experiment"
KEY = "sk-ant-PLANTED-test-key-0123456789"


@pytest.fixture(autouse=True)
def planted_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.delenv("LANGSMITH_API_KEY", raising=False)


@pytest.fixture
def srv() -> Iterator[MessagesServer]:
    with MessagesServer(max_requests=500, max_seconds=120) as server:
        yield server


def run(srv: MessagesServer, results: Path, *extra: str, model: str = "claude-test") -> int:
    return main(
        ["run", str(SAMPLE), "--model", f"anthropic:{model}", "--base-url", srv.url,
         "--runs", "1", "--results", str(results), *extra]
    )  # fmt: skip


def records(results: Path) -> tuple[list[Metadata], list[Result]]:
    lines = [r for path in sorted(results.glob("*.jsonl")) for r in iter_records(path)]
    return (
        [r for r in lines if isinstance(r, Metadata)],
        [r for r in lines if isinstance(r, Result)],
    )


def test_sample_experiment_through_chat_anthropic(srv, tmp_path):
    assert run(srv, tmp_path) == 0
    metadata, results = records(tmp_path)
    assert sorted(m.variant for m in metadata) == ["applike", "baseline"]
    assert all(m.model == "anthropic:claude-test" and m.temperature == 0.2 for m in metadata)
    assert len(results) == 40
    calls = [r.body for r in srv.requests if r.path == "/v1/messages" and r.body.get("tools")]
    assert len(calls) == 40
    assert {c["temperature"] for c in calls} == {0.2}, "the temperature recorded is the one sent"
    for result in results:
        assert result.stop_reason == "tool_use"
        assert result.response_text.startswith("I'll use ")
        call = result.tool_calls[0]
        assert call.id.startswith("toolu_") and call.name in result.response_text
        assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
        assert result.response_model == "claude-test"
    assert validate(tmp_path).ok


def test_default_temperature_sends_none_and_records_null(srv, tmp_path):
    assert run(srv, tmp_path, "--temperature", "default", "--variant", "applike") == 0
    metadata, results = records(tmp_path)
    assert metadata[0].temperature is None and results[0].temperature is None
    assert all("temperature" not in r.body for r in srv.requests if r.path == "/v1/messages")


def test_model_that_rejects_the_temperature_stops_before_the_first_call(tmp_path, capsys):
    with MessagesServer(reject_params={"claude-strict": {"temperature"}}) as strict:
        code = run(strict, tmp_path / "results", model="claude-strict")
        assert len(strict.requests) == 1, "only the preflight call was made"
    err = " ".join(capsys.readouterr().err.split())
    assert code == 3
    assert "anthropic:claude-strict rejected the settings tooltrial sends (temperature=0.2" in err
    assert "temperature is not supported for this model" in err
    assert "--temperature default" in err
    assert not (tmp_path / "results").exists()


def _blocks(body: dict[str, Any]) -> dict[str, Any]:
    """A reply with every kind of block: thinking, text, tool use."""
    out = default_responder(body)
    if out["stop_reason"] == "tool_use":
        out["content"] = [
            {"type": "thinking", "thinking": "The user wants a task.", "signature": "sig"},
            *out["content"],
        ]
    return out


def test_every_content_block_is_kept_and_text_is_never_dropped(tmp_path):
    with MessagesServer(responder=_blocks) as srv:
        assert run(srv, tmp_path, "--variant", "baseline", "--scenario", "no-call-weather") == 0
    _, (result,) = records(tmp_path)
    assert [b["type"] for b in result.content] == ["thinking", "text", "tool_use"]
    assert result.content[0]["thinking"] == "The user wants a task."
    assert result.response_text == f"I'll use {result.tool_calls[0].name}."


def _tools_only(body: dict[str, Any]) -> dict[str, Any]:
    out = default_responder(body)
    out["content"] = [b for b in out["content"] if b["type"] == "tool_use"]
    return out


def test_tool_calls_only_answer_is_a_valid_result(tmp_path):
    with MessagesServer(responder=_tools_only) as srv:
        assert run(srv, tmp_path) == 0
    _, results = records(tmp_path)
    assert all(r.response_text == "" and r.tool_calls for r in results)
    check = validate(tmp_path)
    assert check.ok
    assert sum(arm.tool_only for arm in check.arms) == 40


def test_custom_headers_reach_the_server_and_the_key_reaches_no_file(srv, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_CUSTOM_HEADERS", "X-Gateway: team-a\nX-Trace: on")
    assert run(srv, tmp_path, "--variant", "baseline", "--scenario", "no-call-weather") == 0
    headers = srv.requests[-1].headers
    assert headers["x-gateway"] == "team-a" and headers["x-trace"] == "on"
    credentials = {k: v for k, v in headers.items() if k in ("x-api-key", "authorization")}
    assert credentials and set(credentials.values()) == {"***"}, "the server redacts them"
    for path in tmp_path.iterdir():
        assert KEY not in path.read_text()
    assert all(json.loads(line) for line in next(tmp_path.glob("*.jsonl")).read_text().splitlines())


def test_base_url_from_the_environment(srv, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.url)
    code = main(
        ["run", str(SAMPLE), "--model", "anthropic:claude-test", "--runs", "1",
         "--variant", "applike", "--scenario", "no-call-weather", "--results", str(tmp_path)]
    )  # fmt: skip
    assert code == 0
    assert len([r for r in srv.requests if r.path == "/v1/messages"]) == 2  # preflight + call
