"""Agentic experiments through the real ChatOpenAI client (``openai:<model>``): the Chat
Completions test server (``tooltrial.testing.openai_server``) plays the scripted agent's
policies, and ``tooltrial run`` drives whole conversations: tool calls go out as the
assistant turn's ``tool_calls``, results come back as ``role: "tool"`` messages."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
from support.agents import LOOK_UP_AND_MOVE, MINI, MINI_POLICIES, failed_checks

from tooltrial.cli import main
from tooltrial.log.reader import read_results
from tooltrial.log.records import Result
from tooltrial.testing.messages_server import RecordedRequest
from tooltrial.testing.openai_server import OpenAIServer
from tooltrial.testing.scripted_agent import ScriptedAgent, call, say
from tooltrial.types import AssistantTurn, ToolTurn

KEY = "sk-openai-agentic-test-key-0123456789"
MODEL = "openai:gpt-test"


@pytest.fixture(autouse=True)
def planted_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("LANGSMITH_API_KEY", raising=False)


def run(
    monkeypatch: pytest.MonkeyPatch, srv: OpenAIServer, results: Path, *extra: str
) -> list[Result]:
    """``tooltrial run mini_agentic --model openai:gpt-test`` against the server; the
    results, once ``tooltrial validate`` has passed them."""
    monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
    args = ["run", str(MINI), "--model", MODEL, "--runs", "1", "--results", str(results)]
    assert main([*args, *extra]) == 0
    assert main(["validate", str(results)]) == 0
    return sorted(read_results([results]).values(), key=lambda r: (r.variant, r.scenario_id))


def turns(srv: OpenAIServer) -> list[RecordedRequest]:
    """The model turns the server answered (no preflight: it offers no tools)."""
    return [r for r in srv.requests if r.body and r.body.get("tools")]


ONE_CELL = ("--scenario", "move-dentist", "--variant", "api")


def test_list_then_update_by_the_id_read_then_answer(monkeypatch, tmp_path):
    agent = ScriptedAgent([{"prompt": "dentist", "steps": LOOK_UP_AND_MOVE}])
    with OpenAIServer(agent, max_seconds=120, api_keys={KEY}) as srv:
        (line,) = run(monkeypatch, srv, tmp_path, *ONE_CELL)
    record = line.conversation
    assert record is not None and record.success and failed_checks(line) == {}
    assert (record.stop_reason, record.turns, record.tool_calls) == ("answered", 3, 2)
    assert line.response_text == "Moved it to Friday the 21st."
    assert line.stop_reason == "stop"  # finish_reason, as the API gave it
    made = [
        c for m in record.messages if isinstance(m, AssistantTurn) for c in m.response.tool_calls
    ]
    assert [(c.name, c.arguments) for c in made] == [
        ("list_tasks", {"query": "Dentist"}),
        ("update_task", {"id": 1, "due": "2025-03-21"}),  # the id read from list_tasks
    ]
    ran = [r for m in record.messages if isinstance(m, ToolTurn) for r in m.results]

    assert len({c.id for c in made}) == 2 and all(c.id.startswith("call_") for c in made)

    first, second, third = (r.body for r in turns(srv))
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    assert [m["role"] for m in third["messages"]] == [
        "system", "user", "assistant", "tool", "assistant", "tool",
    ]  # fmt: skip
    assert second["messages"] == third["messages"][:4]  # the history, resent unchanged
    # Each assistant turn goes back with the tool_calls it made: the server's ids, the
    # arguments as a JSON string.
    sent_back = [m for m in third["messages"] if m["role"] == "assistant"]
    for message, c in zip(sent_back, made, strict=True):
        (tool_call,) = message["tool_calls"]
        assert tool_call["id"] == c.id and tool_call["type"] == "function"
        assert tool_call["function"]["name"] == c.name
        assert json.loads(tool_call["function"]["arguments"]) == c.arguments
    # Each result comes back as a tool message answering its call, with the tool's content.
    received = srv.tool_results()
    assert [(r.tool_call_id, r.content) for r in received] == [(x.call_id, x.content) for x in ran]
    assert [r.number for r in received] == [r.number for r in turns(srv)[1:]]
    assert json.loads(received[0].content)[0] == {
        "id": 1, "title": "Dentist", "due": "2025-03-14", "done": False,
    }  # fmt: skip
    assert json.loads(received[1].content) == {"ok": True}
    assert {r.headers.get("authorization") for r in srv.requests} == {"***"}
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and KEY in p.read_text()]


@pytest.mark.parametrize(
    ("errors", "reply"),
    [(None, "Done."), (lambda content: content.startswith("Error: KeyError"), "Sorry, it failed.")],
    ids=["no-error-flag-on-the-wire", "errors-recognised-by-content"],
)
def test_a_tool_error_reaches_the_server_as_the_tool_message_content(
    monkeypatch, tmp_path, errors, reply
):
    steps = [
        call("update_task", id=99, due="2025-03-21"),  # the tool raises KeyError
        say("Done.", on_error=say("Sorry, it failed.")),
    ]
    agent = ScriptedAgent([{"prompt": "dentist", "steps": steps}])
    with OpenAIServer(agent, errors=errors, max_seconds=120) as srv:
        (line,) = run(monkeypatch, srv, tmp_path, *ONE_CELL)
    (received,) = srv.tool_results()
    assert received.content == "Error: KeyError: 'no task 99'"  # no flag: the text says it
    (made,) = line.conversation.messages[1].response.tool_calls  # type: ignore[union-attr]
    assert received.tool_call_id == made.id
    assert line.conversation.tool_errors == 1  # the runner knows, whatever the wire says
    assert line.response_text == reply


def test_the_whole_mini_agentic_grid_validates(monkeypatch, tmp_path):
    with OpenAIServer(ScriptedAgent(MINI_POLICIES), max_seconds=120) as srv:
        lines = run(monkeypatch, srv, tmp_path)
        assert srv.stats() == {"ok": len(srv.requests)}
    assert [(line.variant, line.scenario_id) for line in lines] == [
        ("api", "confirm-delete"), ("api", "move-dentist"),
        ("app", "confirm-delete"), ("app", "move-dentist"),
    ]  # fmt: skip
    for line in lines:
        assert line.conversation is not None and line.conversation.success, failed_checks(line)
        assert line.model == MODEL


def test_the_server_refuses_streaming_and_unknown_keys_without_keeping_them():
    with OpenAIServer(max_seconds=30, api_keys={KEY}) as srv:
        good = openai.OpenAI(base_url=srv.base_url, api_key=KEY, max_retries=0)
        asked = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
        answer = good.chat.completions.create(**asked, max_completion_tokens=1)  # type: ignore[call-overload]
        assert answer.choices[0].finish_reason == "length"
        with pytest.raises(openai.BadRequestError, match="does not stream"):
            good.chat.completions.create(**asked, stream=True)  # type: ignore[call-overload]
        wrong = openai.OpenAI(base_url=srv.base_url, api_key="sk-wrong-key-42", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.chat.completions.create(**asked)  # type: ignore[call-overload]
    assert srv.stats() == {"ok": 1, "invalid": 1, "unauthorized": 1}
    kept = json.dumps([r._asdict() for r in srv.requests])
    assert KEY not in kept and "sk-wrong-key-42" not in kept
