"""The fault-injecting Messages API server, driven by the real anthropic SDK and ChatAnthropic."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import anthropic
import pytest
from langchain_anthropic import ChatAnthropic

from tooltrial.testing.messages_server import Faults, MessagesServer, default_responder, placeholder

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "units": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
            "note": {"type": "string"},
        },
        "required": ["city", "units", "days"],
    },
}
SEARCH = {
    "name": "search",
    "description": "Search the web.",
    "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
}
HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def srv() -> Iterator[MessagesServer]:
    with MessagesServer() as server:
        yield server


def client(srv: MessagesServer, **kw: object) -> anthropic.Anthropic:
    kw.setdefault("max_retries", 0)
    return anthropic.Anthropic(base_url=srv.url, api_key="sk-fake-secret", **kw)  # type: ignore[arg-type]


def ask(srv: MessagesServer, **kw: object) -> anthropic.types.Message:
    return client(srv, **kw).messages.create(model="claude-test", max_tokens=100, messages=HELLO)


def test_langchain_tool_use_round_trip(srv: MessagesServer) -> None:
    llm = ChatAnthropic(model="claude-test", base_url=srv.url, api_key="fake", max_retries=0)
    msg = llm.bind_tools([SEARCH, WEATHER]).invoke("What's the get_weather in Paris?")
    assert msg.tool_calls[0]["name"] == "get_weather"  # named in the prompt, so not the first tool
    assert msg.tool_calls[0]["args"] == {"city": "example", "units": "celsius", "days": 1}
    assert msg.response_metadata["stop_reason"] == "tool_use"
    assert msg.usage_metadata and msg.usage_metadata["input_tokens"] > 0
    assert msg.usage_metadata["output_tokens"] > 0
    assert srv.stats() == {"ok": 1}


def test_text_reply_and_tool_result_turn(srv: MessagesServer) -> None:
    msg = ask(srv)
    assert (msg.stop_reason, msg.model, msg.content[0].type) == ("end_turn", "claude-test", "text")
    assert msg.usage.input_tokens > 0 and msg.id.startswith("msg_")
    assert msg._request_id  # the SDK picked up our request-id header
    # After a tool result, the default brain answers in text instead of calling again.
    turn = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "x", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}],
        },
    ]
    reply = default_responder({"messages": turn, "tools": [WEATHER]})
    assert reply["stop_reason"] == "end_turn" and "sunny" in reply["content"][0]["text"]


def test_count_tokens_matches_usage(srv: MessagesServer) -> None:
    c = client(srv)
    counted = c.messages.count_tokens(model="claude-test", messages=HELLO, tools=[WEATHER])
    used = c.messages.create(model="claude-test", max_tokens=99, messages=HELLO, tools=[WEATHER])
    assert counted.input_tokens == used.usage.input_tokens
    assert used.stop_reason == "tool_use"


def test_streaming_and_async_client(srv: MessagesServer) -> None:
    with client(srv).messages.stream(
        model="claude-test", max_tokens=100, messages=HELLO, tools=[WEATHER]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[1].input["units"] == "celsius"

    async def go() -> anthropic.types.Message:
        async with anthropic.AsyncAnthropic(base_url=srv.url, api_key="k", max_retries=0) as ac:
            return await ac.messages.create(model="m", max_tokens=100, messages=HELLO)

    assert asyncio.run(go()).stop_reason == "end_turn"
    llm = ChatAnthropic(model="m", base_url=srv.url, api_key="k", streaming=True)
    msg = llm.bind_tools([SEARCH]).invoke("find it")
    assert msg.tool_calls[0]["args"] == {"q": "example"}
    assert msg.usage_metadata and msg.usage_metadata["input_tokens"] > 0


def test_429_with_retry_after_is_rate_limit_error() -> None:
    faults = Faults(on_requests={1: "429"}, retry_after_s=7)
    with MessagesServer(faults) as srv, pytest.raises(anthropic.RateLimitError) as err:
        ask(srv)
    assert err.value.response.headers["retry-after"] == "7"
    assert err.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


@pytest.mark.parametrize(
    ("kind", "exc", "error_type"),
    [
        ("529", anthropic.OverloadedError, "overloaded_error"),
        ("500", anthropic.InternalServerError, "api_error"),
    ],
)
def test_server_errors_map_to_sdk_classes(kind: str, exc: type, error_type: str) -> None:
    with MessagesServer(Faults(on_requests={1: kind})) as srv, pytest.raises(exc) as err:
        ask(srv)
    assert err.value.body["error"]["type"] == error_type


def test_sdk_retries_honour_retry_after() -> None:
    faults = Faults(on_requests={1: "429", 2: "429"}, retry_after_s=0.05)
    with MessagesServer(faults) as srv:
        assert ask(srv, max_retries=2).stop_reason == "end_turn"
        assert srv.stats() == {"429": 2, "ok": 1}
        retries = [r.headers["x-stainless-retry-count"] for r in srv.requests]
    assert retries == ["0", "1", "2"]


def test_drop_malformed_and_timeout() -> None:
    faults = Faults(on_requests={1: "drop", 2: "malformed", 3: "timeout"}, timeout_hold_s=5)
    with MessagesServer(faults) as srv:
        with pytest.raises(anthropic.APIConnectionError):
            ask(srv)
        with pytest.raises(json.JSONDecodeError):  # the SDK does not wrap a broken 200 body
            ask(srv)
        with pytest.raises(anthropic.APITimeoutError):
            ask(srv, timeout=0.3)
        assert [r.outcome for r in srv.requests] == ["drop", "malformed", "timeout"]


def test_on_requests_forces_by_number() -> None:
    with MessagesServer(Faults(on_requests={2: "500", 4: "429"})) as srv:
        outcomes = []
        for _ in range(5):
            try:
                ask(srv)
                outcomes.append("ok")
            except anthropic.APIStatusError as e:
                outcomes.append(str(e.status_code))
    assert outcomes == ["ok", "500", "ok", "429", "ok"]


def test_random_faults_are_seeded_per_request_number() -> None:
    a = [Faults(rate_500=0.3, rate_drop=0.2, seed=4).draw(n) for n in range(1, 200)]
    b = [Faults(rate_500=0.3, rate_drop=0.2, seed=4).draw(n) for n in range(1, 200)]
    assert a == b
    kinds = [k for k, _ in a]
    assert 0.15 < kinds.count("500") / len(kinds) < 0.45 and "drop" in kinds
    with pytest.raises(ValueError):
        Faults(rate_429=0.6, rate_500=0.6)
    with pytest.raises(ValueError):
        Faults(on_requests={1: "teapot"})


def test_reject_params_gives_bad_request() -> None:
    with MessagesServer(reject_params={"claude-strict": {"temperature"}}) as srv:
        llm = ChatAnthropic(
            model="claude-strict", base_url=srv.url, api_key="k", temperature=0.5, max_retries=0
        )
        with pytest.raises(anthropic.BadRequestError, match="temperature is not supported"):
            llm.invoke("hi")
        # Same model without the parameter, and another model with it, are fine.
        ChatAnthropic(model="claude-strict", base_url=srv.url, api_key="k").invoke("hi")
        ChatAnthropic(model="claude-x", base_url=srv.url, api_key="k", temperature=0.5).invoke("x")
        assert srv.stats() == {"invalid": 1, "ok": 2}


def test_rpm_limit_returns_429_with_retry_after() -> None:
    with MessagesServer(Faults(rpm_limit=2)) as srv:
        ask(srv), ask(srv)
        with pytest.raises(anthropic.RateLimitError) as err:
            ask(srv)
        assert 1 <= int(err.value.response.headers["retry-after"]) <= 60
        srv.faults = Faults()  # faults can be swapped while running
        ask(srv)
        assert srv.stats() == {"ok": 3, "rate_limited": 1}


def test_api_keys_are_redacted(srv: MessagesServer) -> None:
    ask(srv)
    ChatAnthropic(model="m", base_url=srv.url, api_key="lc-secret").invoke("hi")
    # anthropic 2.x sends the key as "authorization: Bearer ..."; older ones as x-api-key.
    for r in srv.requests:
        creds = {k: v for k, v in r.headers.items() if k in ("x-api-key", "authorization")}
        assert creds and set(creds.values()) == {"***"}
    assert "secret" not in repr(srv.requests)
    number, path, _headers, body, outcome = srv.requests[0]
    assert (number, path, outcome, body["model"]) == (1, "/v1/messages", "ok", "claude-test")


@pytest.mark.parametrize("host", ["0.0.0.0", "localhost", "::", "192.168.1.1"])
def test_refuses_to_bind_anything_but_loopback(host: str) -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        MessagesServer(host=host)


def test_stops_itself_after_max_requests() -> None:
    with MessagesServer(max_requests=2) as srv:
        ask(srv), ask(srv)
        srv.wait(2)
        with pytest.raises(anthropic.APIConnectionError):
            ask(srv)


def test_latency_is_concurrent() -> None:
    n, latency = 32, 0.3

    async def burst(url: str) -> float:
        async with anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=0) as ac:
            t0 = time.perf_counter()
            await asyncio.gather(
                *(ac.messages.create(model="m", max_tokens=50, messages=HELLO) for _ in range(n))
            )
            return time.perf_counter() - t0

    with MessagesServer(Faults(latency_s=latency)) as srv:
        wall = asyncio.run(burst(srv.url))
        assert srv.stats() == {"ok": n}
    assert latency <= wall < latency * 4  # held together, not one after another


def test_placeholder_values() -> None:
    schema = {
        "type": "object",
        "$defs": {
            "Pt": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}
        },
        "properties": {
            "flag": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "pt": {"$ref": "#/$defs/Pt"},
            "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "opt": {"type": "string"},
        },
        "required": ["flag", "tags", "pt", "maybe"],
    }
    assert placeholder(schema) == {"flag": True, "tags": ["example"], "pt": {"x": 1}, "maybe": 1}
