"""A batch item is exactly what the online path sends: the same cells run online and in
batch mode against the project's servers, and the bodies the servers received compare
equal (single turns and whole conversations, Anthropic and OpenAI); the lines written
agree too, but for how each answer was obtained."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from support.batch import FAST, KEY, canonical

from tooltrial import load_experiment
from tooltrial.log.reader import read_results
from tooltrial.models import get_model
from tooltrial.run.options import RunOptions
from tooltrial.run.session import open_run
from tooltrial.testing.batch_server import AnthropicBatchServer, OpenAIBatchServer
from tooltrial.testing.scripted_agent import ScriptedAgent, call, result, say

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = ROOT / "tests" / "experiment"
MINI = ROOT / "tests" / "mini_agentic"
SCENARIOS = ["create-task-tomorrow-at-3", "no-call-weather", "multi-task-and-event"]
POLICIES: list[dict[str, Any]] = [
    {
        "prompt": "dentist",
        "offers": "update_task",
        "steps": [
            call("list_tasks", query="Dentist"),
            call("update_task", id=result("0.id"), due="2025-03-21"),
            say("Moved it."),
        ],
    },
    {
        "prompt": "dentist",
        "offers": "reschedule",
        "steps": [call("reschedule", title="Dentist", due="2025-03-21"), say(result())],
    },
    {"prompt": "rent", "steps": [say("Delete 'Pay rent'?")]},
]


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    for name in ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "LANGSMITH_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def online_bodies(server: Any, path: str) -> list[str]:
    """What the online path sent for cells (the one-token preflight left out)."""
    bodies = [r.body for r in server.requests if r.path == path and r.body]
    return sorted(
        canonical(b)
        for b in bodies
        if b.get("max_tokens") != 1 and b.get("max_completion_tokens") != 1
    )


def batch_bodies(server: Any) -> list[str]:
    return sorted(canonical(body) for batch in server.batches for _, body in batch.items)


def run_both(server: Any, spec: str, experiment: Path, tmp: Path, **kw: Any) -> None:
    """The same cells online, then in batch mode, on one event loop (LangChain's OpenAI
    client keeps its connections bound to the loop that opened them)."""
    loaded = load_experiment(experiment)
    url = server.base_url if spec.startswith("openai") else server.url

    async def both() -> None:
        for folder, batch in (("online", None), ("batch", FAST)):
            model = get_model(
                spec, temperature=loaded.temperature, max_tokens=loaded.max_tokens, base_url=url
            )
            options = RunOptions(results=tmp / folder, runs=1, order="blocked", batch=batch, **kw)
            with open_run(loaded, model, options) as run:
                assert await run.execute() is None
                assert not any(o.failure for o in run.outcomes)

    asyncio.run(both())


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_single_turn_items_are_the_online_requests(tmp_path: Path, provider: str) -> None:
    if provider == "anthropic":
        server: Any = AnthropicBatchServer(max_seconds=120)
        spec, path = "anthropic:claude-test", "/v1/messages"
    else:
        server = OpenAIBatchServer(max_seconds=120)
        spec, path = "openai:gpt-test", "/v1/chat/completions"
    with server:
        run_both(server, spec, EXPERIMENT, tmp_path, scenarios=SCENARIOS)
        online, batched = online_bodies(server, path), batch_bodies(server)
    assert len(online) == 2 * len(SCENARIOS) and online == batched
    # The lines agree but for how the answer came: batch ids, timing, attempts.
    how = {"batch_id", "custom_id", "latency_s", "timestamp", "run_id", "trace_id", "attempts"}
    a = read_results([tmp_path / "online"])
    b = read_results([tmp_path / "batch"])
    assert a.keys() == b.keys()
    for key in a:
        left = a[key].model_dump(exclude=how)
        right = b[key].model_dump(exclude=how)
        if provider == "anthropic":  # the server names each tool call by request number
            for line in (left, right):
                line["tool_calls"] = [c | {"id": ""} for c in line["tool_calls"]]
                line["content"] = [c | {"id": ""} if "id" in c else c for c in line["content"]]
        else:
            for line in (left, right):
                line["tool_calls"] = [c | {"id": ""} for c in line["tool_calls"]]
        assert left == right, key
        assert b[key].batch_id and b[key].custom_id and a[key].batch_id is None


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_every_turn_of_a_conversation_is_the_online_request(tmp_path: Path, provider: str) -> None:
    agent = ScriptedAgent(POLICIES)
    if provider == "anthropic":
        server: Any = AnthropicBatchServer(responder=agent, max_seconds=120)
        spec, path = "anthropic:claude-test", "/v1/messages"
    else:
        server = OpenAIBatchServer(agent, max_seconds=120)
        spec, path = "openai:gpt-test", "/v1/chat/completions"
    with server:
        run_both(server, spec, MINI, tmp_path)
        online, batched = online_bodies(server, path), batch_bodies(server)
    # Tool call ids differ between the two runs (the server numbers them), and each id
    # comes back in the next turn: compare with the ids blanked.
    assert len(online) == len(batched) > 4
    assert _without_ids(online) == _without_ids(batched)
    # Turn by turn: each batch holds one turn of every conversation still going.
    rounds = [len(batch.items) for batch in server.batches]
    assert rounds[0] == 4 and rounds == sorted(rounds, reverse=True)
    for line in read_results([tmp_path / "batch"]).values():
        assert line.conversation is not None
        turns = [m for m in line.conversation.messages if m.role == "assistant"]
        assert all(t.batch is not None for t in turns)  # type: ignore[union-attr]
        assert line.batch_id == turns[-1].batch.batch_id  # type: ignore[union-attr]


def _without_ids(bodies: list[str]) -> list[str]:
    import json
    import re

    blank = re.compile(r'"(toolu|call)_[0-9_]+"')
    return sorted(blank.sub('"ID"', json.dumps(json.loads(b), sort_keys=True)) for b in bodies)
