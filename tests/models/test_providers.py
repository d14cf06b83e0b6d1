"""A provider owns its failures and its tool format: ``Model.classify`` and
``Model.tool_format``. Refused credentials stop a run before the first call (exit 2,
naming the variable to check, never its value); a refused setting stays exit 3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from langchain_core.messages import AIMessage
from langchain_core.messages.tool import invalid_tool_call, tool_call
from support.paths import TESTS

from tooltrial.cli import main
from tooltrial.definitions import load_experiment
from tooltrial.definitions.variants import Tool
from tooltrial.models import get_model
from tooltrial.models.base import Model
from tooltrial.models.langchain import _from_langchain
from tooltrial.run.options import RunOptions
from tooltrial.run.session import open_run
from tooltrial.testing.messages_server import MessagesServer
from tooltrial.tracing.context import TraceContext
from tooltrial.turns import RetryPolicy
from tooltrial.types import Cell, unparsed_arguments

SAMPLE = TESTS / "experiment"
KEY = "sk-ant-PLANTED-refused-key-0123456789"
TOOL = Tool(name="add_task", description="Add a task.")


@pytest.fixture(autouse=True)
def planted_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    for var in ("ANTHROPIC_BASE_URL", "LANGSMITH_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)


def _response(status: int, **headers: str) -> httpx.Response:
    request = httpx.Request("POST", "http://127.0.0.1/v1/messages")
    return httpx.Response(status, request=request, headers=headers)


def _status_error(sdk: Any, name: str, status: int, **headers: str) -> Exception:
    error: Exception = getattr(sdk, name)(
        f"Error code: {status} (key {KEY})", response=_response(status, **headers), body=None
    )
    return error


@pytest.mark.parametrize("sdk", [anthropic, openai])
@pytest.mark.parametrize(
    ("name", "status", "kind", "retryable"),
    [
        ("AuthenticationError", 401, "auth", False),
        ("PermissionDeniedError", 403, "auth", False),
        ("BadRequestError", 400, "rejected", False),
        ("RateLimitError", 429, "rate_limit", True),
        ("InternalServerError", 500, "server_error", True),
    ],
)
def test_sdk_status_errors(sdk: Any, name: str, status: int, kind: str, retryable: bool):
    model = get_model(f"{sdk.__name__}:m")
    failure = model.classify(_status_error(sdk, name, status, **{"retry-after": "2"}))
    assert (failure.kind, failure.retryable) == (kind, retryable)
    assert KEY not in failure.message and "***" in failure.message
    if kind == "rate_limit":
        assert failure.retry_after_s == 2.0


@pytest.mark.parametrize("sdk", [anthropic, openai])
def test_sdk_transport_errors(sdk: Any):
    model = get_model(f"{sdk.__name__}:m")
    request = httpx.Request("POST", "http://127.0.0.1/v1/messages")
    assert model.classify(sdk.APITimeoutError(request=request)).kind == "timeout"
    assert model.classify(sdk.APIConnectionError(request=request)).kind == "connection"
    assert model.classify(json.JSONDecodeError("cut", "{", 1)).kind == "bad_response"


def test_tool_format_is_the_providers_own():
    assert get_model("anthropic:m").tool_format(TOOL) == TOOL.anthropic_format()
    assert get_model("openai:m").tool_format(TOOL) == TOOL.openai_format()


def test_traces_show_tools_as_the_provider_was_sent_them():
    experiment = load_experiment(SAMPLE)
    model = get_model("anthropic:m")
    context = TraceContext(experiment, (model,), "run", None, ("applike",))
    (tool, *_) = context.tools(Cell(model.spec, "applike", "no-call-small-talk", 1))
    assert "input_schema" in tool and "function" not in tool


def test_invalid_tool_call_json_is_kept_as_written():
    message = AIMessage(
        content="",
        tool_calls=[tool_call(name="add_task", args={"title": "milk"}, id="a")],
        invalid_tool_calls=[
            invalid_tool_call(name="add_task", args='{"title": "bre', id="b", error="bad JSON")
        ],
    )
    response = _from_langchain(message, "stop_reason")
    assert [c.arguments for c in response.tool_calls] == [
        {"title": "milk"},
        unparsed_arguments('{"title": "bre'),
    ]


def _run(srv: MessagesServer, results: Path, model: str = "claude-test") -> int:
    return main(
        ["run", str(SAMPLE), "--model", f"anthropic:{model}", "--base-url", srv.url,
         "--runs", "1", "--results", str(results)]
    )  # fmt: skip


def test_refused_key_stops_the_run_naming_the_variable_not_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    with MessagesServer(api_keys={"sk-ant-the-right-one"}, max_seconds=60) as srv:
        code = _run(srv, tmp_path / "results")
        requests = srv.requests
    out, err = capsys.readouterr()
    flat = " ".join(err.split())
    assert code == 2
    assert [r.outcome for r in requests] == ["unauthorized"], "one preflight, not retried"
    assert "anthropic:claude-test refused the credentials" in flat
    assert "invalid x-api-key" in flat
    assert "Check ANTHROPIC_API_KEY (is set; its value is never printed)" in flat
    assert KEY not in out and KEY not in err
    assert not (tmp_path / "results").exists()


async def test_refused_key_mid_run_is_an_auth_error_never_retried(tmp_path: Path):
    experiment = load_experiment(SAMPLE)
    options = RunOptions(results=tmp_path, retry=RetryPolicy(max_attempts=3))
    with MessagesServer(api_keys={"sk-ant-the-right-one"}, max_seconds=60) as srv:
        model: Model = get_model("anthropic:claude-test", base_url=srv.url)
        with open_run(experiment, model, options) as run:
            outcome = await run.call(Cell(model.spec, "applike", "no-call-small-talk", 1))
        assert len(srv.requests) == 1
    assert outcome.failure is not None and outcome.response is None
    assert (outcome.failure.kind, outcome.failure.retryable, outcome.attempts) == ("auth", False, 1)
    assert KEY not in outcome.failure.message


def test_refused_setting_is_still_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    with MessagesServer(reject_params={"claude-strict": {"temperature"}}) as srv:
        assert _run(srv, tmp_path / "results", model="claude-strict") == 3
    assert "--temperature default" in " ".join(capsys.readouterr().err.split())
