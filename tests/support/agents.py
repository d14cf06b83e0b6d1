"""Scripted agents for ``tests/mini_agentic`` (a to-do app; variants ``api`` and ``app``).

In-process: ``api_agent`` is a ``ScriptedModel`` script that looks the dentist task up and
moves it by the id it was sent back; ``run`` runs one cell with a script. Through a test
server: ``MINI_POLICIES`` are the scripted agent's policies for the same cells
(``tooltrial.testing.scripted_agent``), which ``serve`` plays on the Messages API server
and ``OpenAIServer`` on Chat Completions. ``failed_checks`` reads a verdict's failed parts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from support.paths import TESTS
from tooltrial import run_experiment
from tooltrial.log.reader import read_results
from tooltrial.log.records import Result
from tooltrial.testing.messages_server import Faults, MessagesServer
from tooltrial.testing.scripted import Request, ScriptedModel, reply
from tooltrial.testing.scripted_agent import ScriptedAgent, call, result, say

MINI = TESTS / "mini_agentic"

# --- in-process: ScriptedModel ----------------------------------------------------------


def run(experiment, tmp_path, script, scenario="move-dentist", variant="api"):
    model = ScriptedModel(name="agent", experiment=experiment, script=script)
    result = run_experiment(
        experiment, model, runs=1, results=tmp_path, variants=[variant], scenarios=[scenario]
    )
    (outcome,) = result.outcomes
    (line,) = read_results([tmp_path]).values()
    return outcome, line


def api_agent(request: Request):
    """Looks the task up, then changes it by the id it was sent back."""
    if request.call == 1:
        return reply(calls=[("list_tasks", {"query": "Dentist"})])
    if request.call == 2:
        found = json.loads(request.results[0].content)
        exact = next(t for t in found if t["title"] == "Dentist")
        return reply(calls=[("update_task", {"id": exact["id"], "due": "2025-03-21"})])
    return reply("Moved to Friday the 21st.")


# --- through a test server: the scripted agent's policies -------------------------------

LOOK_UP_AND_MOVE = [
    call("list_tasks", query="Dentist"),
    call("update_task", id=result("0.id"), due="2025-03-21"),
    say("Moved it to Friday the 21st."),
]
MINI_POLICIES: list[dict[str, Any]] = [
    {"prompt": "dentist", "offers": "update_task", "steps": LOOK_UP_AND_MOVE},
    # The app variant's tool says what it did; the final reply quotes it.
    {
        "prompt": "dentist",
        "offers": "reschedule",
        "steps": [call("reschedule", title="Dentist", due="2025-03-21"), say(result())],
    },
    {
        "prompt": "rent",
        "offers": "list_tasks",
        "steps": [call("list_tasks", query="rent"), say("Delete 'Pay rent', due 2025-03-31?")],
    },
    {"prompt": "rent", "steps": [say("Delete 'Pay rent'?")]},
]


def serve(policies: Sequence[Mapping[str, Any]], faults: Faults | None = None) -> MessagesServer:
    return MessagesServer(faults, responder=ScriptedAgent(policies), max_seconds=120)


def failed_checks(line: Result) -> dict[str, str]:
    assert line.conversation is not None
    return {c.name: c.detail for c in line.conversation.checks if not c.ok}
