"""The forbidden check matches each tool result to a call of the turn it answers: call ids
are only unique within a turn (the scripted and local models number calls per turn), so
a forbidden call in an early turn is caught even when a later turn reuses its id."""

from __future__ import annotations

from support.agents import run
from support.paths import TESTS

from tooltrial import load_experiment
from tooltrial.testing.scripted import Request, reply

MINI = TESTS / "mini_agentic"


def test_a_forbidden_call_is_caught_when_a_later_turn_reuses_its_id(tmp_path):
    def agent(request: Request):
        if request.call == 1:
            return reply(calls=[("delete_task", {"id": 3})])  # id call_0
        if request.call == 2:
            return reply(calls=[("update_task", {"id": 1, "due": "2025-03-21"})])  # call_0 again
        return reply("Done.")

    _, line = run(load_experiment(MINI), tmp_path, agent)
    checks = {c.name: c for c in line.conversation.checks}
    assert not checks["forbidden"].ok
    assert checks["forbidden"].detail == "called delete_task(id=3)"
