"""The MCP worked experiment (``tests/mcp_agentic``): the agentic sample's app served by
two versions of one MCP server (``server.py``: 1.0.0 REST-shaped, 2.0.0 app-shaped),
against the same app, scenarios and limits as the in-process tools of
``tests/agentic``.

Scripted agents play through the real ``ChatAnthropic`` client and the scripted-agent
Messages API server; the same policies run against the in-process variants and the MCP
ones, over stdio and over streamable HTTP, and every cell must end the same way: the
same verdict part by part, the same stop reason, the same tool results (text and
``is_error``) and the same row changes. The policies include mistakes (the wrong
'Dentist', a task that does not exist), so equal verdicts are not all successes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from support.paths import TESTS

from tooltrial import load_experiment, run_experiment
from tooltrial.definitions import Experiment, check_experiment
from tooltrial.run.workbench import Workbench
from tooltrial.testing.messages_server import MessagesServer
from tooltrial.testing.scripted_agent import ScriptedAgent, call, result, say
from tooltrial.types import ToolTurn

KEY = "sk-ant-mcp-agentic-test-key-0123456789"
MODEL = "anthropic:claude-test"

B, A = "list_tasks", "find"  # what baseline, and applike, offers
POLICIES: list[dict[str, Any]] = [
    # complete-call-dentist: 'Call dentist' is the 7th open task on page 2
    {
        "prompt": "tick that off",
        "offers": B,
        "steps": [
            call("list_tasks", done=False, page=2),
            call("update_task", id=result("tasks.6.id"), done=True),
            say("Ticked off 'Call dentist'."),
        ],
    },
    {
        "prompt": "tick that off",
        "offers": A,
        "steps": [call("complete_task", title="Call dentist"), say(result())],
    },
    # dentist-bill-friday: baseline moves the first dentist task on page 1 (a mistake)
    {
        "prompt": "dentist bill",
        "offers": B,
        "steps": [
            call("list_tasks", done=False),
            call("update_task", id=result("tasks.0.id"), due="2025-03-14"),
            say("Done."),
        ],
    },
    {
        "prompt": "dentist bill",
        "offers": A,
        "steps": [call("reschedule_task", title="Dentist bill", due="2025-03-14"), say(result())],
    },
    {"prompt": "thanks", "steps": [say("You're welcome!")]},
    {
        "prompt": "olive oil",
        "offers": B,
        "steps": [call("create_task", title="Olive oil", list="Groceries"), say("Added.")],
    },
    {
        "prompt": "olive oil",
        "offers": A,
        "steps": [call("add_task", title="Olive oil", list="Groceries"), say(result())],
    },
    # delete-old-notes-confirmed: ask first; the user's answer confirms
    {
        "prompt": "old project notes",
        "offers": B,
        "steps": [
            say("Delete 'Old project notes'?"),
            call("get_task", id=16),
            call("delete_task", id=result("id")),
            say("Deleted."),
        ],
    },
    {
        "prompt": "old project notes",
        "offers": A,
        "steps": [
            say("Delete 'Old project notes'?"),
            call("delete_task", title="Old project notes"),
            say(result()),
        ],
    },
    # where-quarterly-review: baseline asks for an event that does not exist (an error)
    {
        "prompt": "quarterly review",
        "offers": B,
        "steps": [
            call("get_event", id=999),
            say(result("location"), on_error=say("I could not find it.")),
        ],
    },
    {
        "prompt": "quarterly review",
        "offers": A,
        "steps": [call("find", text="quarterly review"), say(result("events.0.location"))],
    },
]
SCENARIOS = [
    "complete-call-dentist",
    "dentist-bill-friday",
    "thanks",
    "add-olive-oil",
    "delete-old-notes-confirmed",
    "where-quarterly-review",
]


@pytest.fixture(autouse=True)
def planted_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.delenv("LANGSMITH_API_KEY", raising=False)


def only(experiment: Experiment, scenarios: list[str]) -> Experiment:
    chosen = tuple(s for s in experiment.scenarios if s.id in scenarios)
    return experiment.model_copy(update={"scenarios": chosen})


def over_http(experiment: Experiment) -> Experiment:
    """The same variants, each server started per cell as a streamable HTTP server on a
    port of its own (``{port}``) instead of over stdio."""
    variants = []
    for variant in experiment.variants:
        assert variant.mcp is not None
        server = variant.mcp.model_copy(
            update={
                "args": (*variant.mcp.args, "--http", "{port}"),
                "url": "http://127.0.0.1:{port}/mcp",
            }
        )
        variants.append(variant.model_copy(update={"mcp": server}))
    return check_experiment(experiment.model_copy(update={"variants": tuple(variants)}))


def outcomes(
    experiment: Experiment, results: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[tuple[str, str], Any]:
    """Each cell's ending, as compared: verdict, stop reason, tool results, changes."""
    with MessagesServer(responder=ScriptedAgent(POLICIES), max_seconds=300) as srv:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.url)
        run = run_experiment(experiment, MODEL, runs=1, results=results, order="blocked")
    ended = {}
    for outcome in run.outcomes:
        assert outcome.failure is None, outcome.failure
        conversation = outcome.conversation
        ended[(outcome.cell.variant, outcome.cell.scenario_id)] = {
            "checks": [(c.name, c.ok, c.detail) for c in conversation.checks],
            "stop": conversation.stop_reason,
            "tools": [
                (r.name, r.content, r.is_error)
                for m in conversation.messages
                if isinstance(m, ToolTurn)
                for r in m.results
            ],
            "diff": [c.model_dump() for c in conversation.diff],
            "reply": outcome.response.text,
        }
    return ended


def test_the_mcp_variants_list_the_in_process_tools():
    """What the servers list is what the in-process variants declare: the comparison
    below is of the same tools, only served differently."""
    mcp = only(load_experiment(TESTS / "mcp_agentic"), ["thanks"])
    bench = asyncio.run(Workbench.bind(mcp))
    try:
        in_process = load_experiment(TESTS / "agentic")
        for variant in in_process.variants:
            assert bench.sources[variant.name].definitions == variant.tools
        versions = {n: s.identity["server"]["version"] for n, s in bench.sources.items()}
        assert versions == {"baseline": "1.0.0", "applike": "2.0.0"}
    finally:
        bench.close()


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["stdio", "streamable-http"])
def test_mcp_variants_end_every_cell_as_the_in_process_tools_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    in_process = only(load_experiment(TESTS / "agentic"), SCENARIOS)
    served = only(load_experiment(TESTS / "mcp_agentic"), SCENARIOS)
    if transport == "streamable-http":
        served = over_http(served)
    expected = outcomes(in_process, tmp_path / "in-process", monkeypatch)
    got = outcomes(served, tmp_path / "mcp", monkeypatch)
    assert got == expected
    successes = {cell: all(ok for _, ok, _ in e["checks"]) for cell, e in expected.items()}
    assert successes[("applike", "dentist-bill-friday")]
    assert not successes[("baseline", "dentist-bill-friday")]  # the wrong 'Dentist'
    assert not successes[("baseline", "where-quarterly-review")]
    errors = [t for t in got[("baseline", "where-quarterly-review")]["tools"] if t[2]]
    assert errors == [("get_event", "KeyError: 'no event with id 999'", True)]
