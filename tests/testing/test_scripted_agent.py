"""The scripted agent itself (``tooltrial.testing.scripted_agent``), played by the
Messages API server: a result path it cannot follow and a request no policy matches are
refused with a 400 naming the problem, malformed policies are refused before any
request, and the policies reach a server in another process."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Callable

import anthropic
import pytest
from support.agents import MINI_POLICIES, serve

from tooltrial.testing.messages_server import main as server_main
from tooltrial.testing.scripted_agent import AGENT_ENV, ScriptedAgent, call, result, say

KEY = "sk-ant-agentic-test-key-0123456789"

TOOLS = [{"name": "find", "input_schema": {"type": "object", "properties": {}}}]


def turn_two(url: str, content: str) -> anthropic.types.Message:
    """A second turn sent straight through the SDK, after ``find`` returned ``content``."""
    client = anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0)
    return client.messages.create(
        model="claude-test",
        max_tokens=100,
        tools=TOOLS,  # type: ignore[arg-type]
        messages=[
            {"role": "user", "content": "find it"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "find", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": content},
            ]},
        ],
    )  # fmt: skip


def refusal(call_server: Callable[[], object]) -> str:
    """The message of the 400 the server answers ``call_server``'s request with."""
    with pytest.raises(anthropic.BadRequestError) as refused:
        call_server()
    body = refused.value.body
    assert isinstance(body, dict)
    return str(body["error"]["message"])


def test_a_path_that_is_not_in_the_result_is_refused_with_400():
    steps = [call("find"), say(result("0.name"))]
    with serve([{"prompt": "find", "steps": steps}]) as srv:
        assert turn_two(srv.url, '[{"name": "ok"}]').content[0].text == "ok"  # type: ignore[union-attr]
        message = refusal(lambda: turn_two(srv.url, '[{"title": "x"}]'))
    assert message == (
        "scripted agent: no 'name' at '0.name' in the tool result '[{\"title\": \"x\"}]'"
    )


def test_a_request_no_policy_matches_is_refused_naming_the_policies():
    with serve([{"prompt": "dentist", "steps": [say("hi")]}]) as srv:
        message = refusal(lambda: turn_two(srv.url, "[]"))
        assert srv.stats() == {"invalid": 1}
    assert message == (
        "scripted agent: no policy matches the prompt 'find it' (tools find); "
        "the policies: prompt='dentist' offers=None"
    )


@pytest.mark.parametrize(
    ("policies", "problem"),
    [
        ([{"prompt": "x"}], "needs 'steps'"),
        ([{"steps": [{}]}], "needs 'text', 'call' or 'calls'"),
        ([{"steps": [{"say": "hi"}]}], "say"),  # a typo is refused, not ignored
        ([{"mode": "always_tool", "steps": [{"text": "x"}]}], "takes no 'steps'"),
    ],
)
def test_malformed_policies_are_refused_before_any_request(policies, problem):
    with pytest.raises(ValueError, match=problem):
        ScriptedAgent(policies)


def test_policies_given_to_a_server_in_another_process(tmp_path, monkeypatch, capsys):
    agent = ScriptedAgent(MINI_POLICIES)
    assert ScriptedAgent.from_json(agent.to_json()).policies == agent.policies
    monkeypatch.setenv(AGENT_ENV, agent.to_json())
    assert ScriptedAgent.from_env().policies == agent.policies  # type: ignore[union-attr]
    with pytest.raises(SystemExit) as refused:
        server_main(["--agent", '[{"steps": []}]'])
    assert refused.value.code == 2 and "needs 'steps'" in capsys.readouterr().err
    policy = tmp_path / "agent.json"
    policy.write_text(json.dumps({"policies": [{"prompt": "find", "steps": [say("found")]}]}))
    command = [sys.executable, "-m", "tooltrial.testing.messages_server", "--agent", str(policy)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = re.search(r"http://127\.0\.0\.1:\d+", server.stdout.readline())
        assert url is not None
        assert turn_two(url.group(0), "[]").content[0].text == "found"  # type: ignore[union-attr]
    finally:
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=30)
    assert json.loads(out.splitlines()[-1]) == {"ok": 1}
