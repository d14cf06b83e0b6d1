"""The agentic worked experiment (tests/agentic), with no model calls: it loads and binds,
every reference replays, every scenario is solvable in both variants by a scripted agent
that reads what the tools answer (paging included), and plausible mistakes are judged
failures for the right reason.

The agents are plans: generator functions that yield the model's replies and are sent
what came back (the parsed tool results of their calls, or the user's next message).
``play`` replays a plan from its start on every model call, feeding it the conversation
so far, so a script keeps no state between calls and cells may run in any order.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Generator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.paths import TESTS

from tooltrial import load_experiment, run_experiment
from tooltrial.run.workbench import Workbench
from tooltrial.testing.scripted import Request, ScriptedModel, reply
from tooltrial.types import ModelResponse, ToolCall, ToolResult, ToolTurn, UserTurn

AGENTIC = TESTS / "agentic"
NOW = "2025-03-12T09:00"
CATEGORIES = {
    "find_change": 5,
    "bulk": 3,
    "conflict": 3,
    "clarify": 2,
    "no_tool": 2,
    "query": 1,
    "confirm": 2,
    "create": 2,
}
MAX_TOOL_JSON_CHARS = 5500
"""The embedded model has 4096 tokens of context for a whole conversation; the tools
(about 1,500 tokens at this size) must leave most of it to the conversation."""

Plan = Callable[[], Generator[ModelResponse, Any, None]]


@pytest.fixture(scope="module")
def experiment():
    return load_experiment(AGENTIC)


@pytest.fixture(scope="module")
def bench(experiment):
    return asyncio.run(Workbench.bind(experiment))


# --- the experiment as defined -----------------------------------------------------------


def test_loads_with_the_stated_controls(experiment):
    assert experiment.name == "tasks-calendar-agentic"
    assert experiment.agentic and experiment.primary_metric == "success"
    assert experiment.fixed_timestamp.isoformat() == "2025-03-12T09:00:00+00:00"
    assert experiment.fixed_timestamp.strftime("%A") == "Wednesday"
    assert (experiment.temperature, experiment.max_tokens) == (0.2, 300)
    limits = experiment.limits
    assert (limits.max_turns, limits.max_tool_calls, limits.max_tokens) == (8, 12, 30000)
    assert {v.name for v in experiment.variants} == {"baseline", "applike"}


def test_twenty_scenarios_in_every_category(experiment):
    categories = [s.category for s in experiment.scenarios]
    assert {c: categories.count(c) for c in set(categories)} == CATEGORIES
    prompts = [s.prompt for s in experiment.scenarios]
    assert len(set(prompts)) == 20  # the scripted model names cells by prompt


def test_every_reference_replays_to_a_change(experiment, bench):
    """``bind`` replays each reference (a failing call stops it); each changes rows."""
    with_reference = [s.id for s in experiment.scenarios if s.success.reference]
    assert len(with_reference) == 9
    for scenario_id in with_reference:
        reference = bench.reference_state(scenario_id)
        assert reference != bench.initial_state(scenario_id), scenario_id


def test_the_seed_is_the_same_in_every_copy(bench):
    first, second = bench.fresh("thanks"), bench.fresh("thanks")
    assert first.snapshot() == second.snapshot()
    assert len(first.snapshot()["tasks"]) == 37 and len(first.snapshot()["events"]) == 24


@pytest.mark.parametrize("name", ["baseline", "applike"])
def test_tool_json_fits_the_small_model(experiment, name):
    tools = experiment.variant(name).tools
    size = len(json.dumps([tool.model_dump() for tool in tools]))
    assert size < MAX_TOOL_JSON_CHARS, f"{name}: {size} characters of tool JSON"


# --- the app and its tools -------------------------------------------------------------


def run_tool(bench, variant, app, name, **arguments) -> ToolResult:
    tools = bench.sources[variant].executor(app)
    return tools.run(ToolCall(id="t", name=name, arguments=arguments))


def test_the_database_refuses_what_the_schema_forbids(bench):
    app = bench.fresh("thanks")
    bad = [
        ('UPDATE events SET "end" = start WHERE id = 1', "end_after_start"),
        ("UPDATE tasks SET list = 'Nowhere' WHERE id = 1", "FOREIGN KEY"),
        ("UPDATE tasks SET due = 'Friday' WHERE id = 1", "CHECK"),
        ("UPDATE tasks SET priority = 'urgent' WHERE id = 1", "CHECK"),
    ]
    for statement, why in bad:
        with pytest.raises(sqlite3.IntegrityError, match=why):
            app.db.execute(statement)
    assert app.changes() == 0


def test_baseline_lists_ten_per_page(bench):
    app = bench.fresh("thanks")
    first = json.loads(run_tool(bench, "baseline", app, "list_tasks").content)
    assert [t["id"] for t in first["tasks"]] == list(range(1, 11))
    assert (first["total"], first["next_page"]) == (37, 2)
    last = json.loads(run_tool(bench, "baseline", app, "list_tasks", page=4).content)
    assert [t["id"] for t in last["tasks"]] == list(range(31, 38)) and last["next_page"] is None


def test_baseline_refuses_unknown_fields_and_half_moves(bench):
    app = bench.fresh("thanks")
    unknown = run_tool(bench, "baseline", app, "update_task", id=1, colour="red")
    assert unknown.is_error and "Additional properties" in unknown.content
    half = run_tool(bench, "baseline", app, "update_event", id=4, start="2025-03-13T11:00")
    assert half.is_error and "must be after start" in half.content
    assert app.changes() == 0


def test_applike_answers_an_ambiguous_title_with_the_candidates(bench):
    app = bench.fresh("thanks")
    result = run_tool(bench, "applike", app, "cancel_event", title="team sync")
    assert result.is_error and app.changes() == 0
    assert "3 events match 'team sync'" in result.content
    assert "Tue 2025-03-18 10:00–10:30" in result.content and "give the date" in result.content
    chosen = run_tool(bench, "applike", app, "cancel_event", title="team sync", date="2025-03-18")
    assert not chosen.is_error and app.changes() == 1


def test_applike_prefers_the_exact_title(bench):
    app = bench.fresh("thanks")
    result = run_tool(bench, "applike", app, "complete_task", title="dentist")
    assert result.content == "Marked 'Dentist' done."


# --- scripted agents -------------------------------------------------------------------


def play(plans: Mapping[tuple[str, str], Plan]) -> Callable[[Request], ModelResponse]:
    """A script that replays the cell's plan, sending it every tool turn and user turn
    of the conversation so far; its next reply is this call's answer."""

    def script(request: Request) -> ModelResponse:
        steps = plans[(_variant(request), request.scenario_id or "?")]()
        response = next(steps)
        for message in request.messages[1:]:
            sent = _sent(message)
            if sent is not None:
                try:
                    response = steps.send(sent)
                except StopIteration:  # the user spoke after the plan's last word
                    response = reply("All done.")
        return response

    return script


def _variant(request: Request) -> str:
    """The variants share their system prompt (only the tools differ), so the scripted
    model cannot name the variant; its tools do."""
    return "baseline" if any(t.name == "list_tasks" for t in request.tools) else "applike"


def _sent(message: Any) -> Any:
    if isinstance(message, ToolTurn):
        return [_read(result) for result in message.results]
    if isinstance(message, UserTurn):
        return message.text
    return None


def _read(result: ToolResult) -> Any:
    assert not result.is_error, f"{result.name}: {result.content}"
    try:
        return json.loads(result.content)
    except json.JSONDecodeError:
        return result.content


def do(*calls: tuple[str, dict[str, Any]]) -> ModelResponse:
    return reply(calls=calls)


def pages(tool: str, **filters: Any) -> Generator[ModelResponse, Any, list[dict[str, Any]]]:
    """Every page of a baseline list endpoint, following ``next_page`` until null."""
    key = "tasks" if tool == "list_tasks" else "events"
    rows: list[dict[str, Any]] = []
    page: int | None = 1
    while page is not None:
        (answer,) = yield do((tool, {**filters, "page": page}))
        rows += answer[key]
        page = answer["next_page"]
    return rows


def named(rows: list[dict[str, Any]], title: str) -> dict[str, Any]:
    (row,) = [r for r in rows if r["title"] == title]
    return row


def shifted(stamp: str, **delta: int) -> str:
    return (datetime.fromisoformat(stamp) + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M")


# --- baseline: ids, filters, pages -----------------------------------------------------


def b_complete_call_dentist():
    task = named((yield from pages("list_tasks", done=False)), "Call dentist")
    yield do(("update_task", {"id": task["id"], "done": True}))
    yield reply("Ticked off 'Call dentist'.")


def b_dentist_bill_friday():
    task = named((yield from pages("list_tasks", done=False)), "Dentist bill")
    yield do(("update_task", {"id": task["id"], "due": "2025-03-14"}))
    yield reply("The dentist bill is now due Friday 2025-03-14.")


def b_team_sync_later():
    tomorrow = {"time_min": "2025-03-13T00:00", "time_max": "2025-03-14T00:00"}
    sync = named((yield from pages("list_events", **tomorrow)), "Team sync")
    start, end = shifted(sync["start"], hours=1), shifted(sync["end"], hours=1)
    yield do(("update_event", {"id": sync["id"], "start": start, "end": end}))
    yield reply(f"Tomorrow's team sync now starts at {start[11:]}.")


def b_dentist_appointment_note():
    event = named((yield from pages("list_events", time_min=NOW)), "Dentist appointment")
    (full,) = yield do(("get_event", {"id": event["id"]}))
    notes = f"{full['notes']}; bring the insurance card"
    yield do(("update_event", {"id": event["id"], "notes": notes}))
    yield reply("Added the note to your dentist appointment.")


def b_priya_room():
    monday = {"time_min": "2025-03-17T00:00", "time_max": "2025-03-18T00:00"}
    one_on_one = named((yield from pages("list_events", **monday)), "1:1 with Priya")
    yield do(("update_event", {"id": one_on_one["id"], "location": "Orion room"}))
    yield reply("Monday's 1:1 with Priya is now in the Orion room.")


def b_complete_groceries():
    groceries = yield from pages("list_tasks", list="Groceries", done=False)
    yield do(*[("update_task", {"id": t["id"], "done": True}) for t in groceries])
    yield reply(f"Marked {len(groceries)} groceries done.")


def b_friday_to_monday():
    friday = {"time_min": "2025-03-14T00:00", "time_max": "2025-03-15T00:00"}
    events = yield from pages("list_events", **friday)
    moves = [
        ("update_event", {"id": e["id"], **{k: shifted(e[k], days=3) for k in ("start", "end")}})
        for e in events
    ]
    yield do(*moves)
    yield reply(f"Moved {len(moves)} events to Monday.")


def b_work_high_priority():
    work = yield from pages("list_tasks", list="Work", done=False)
    this_week = [
        t
        for t in work
        if t["due"] and "2025-03-10" <= t["due"][:10] <= "2025-03-16" and t["priority"] != "high"
    ]
    yield do(*[("update_task", {"id": t["id"], "priority": "high"}) for t in this_week])
    yield reply(f"{len(this_week)} Work tasks are now high priority.")


def b_book_dana_if_free():
    slot = {"time_min": "2025-03-13T14:00", "time_max": "2025-03-13T15:00"}
    clashes = yield from pages("list_events", **slot)
    if clashes:
        yield reply(f"You're busy then: {clashes[0]['title']}.")
        return
    event = {"title": "Call with Dana", "start": slot["time_min"], "end": slot["time_max"]}
    yield do(("create_event", {**event, "attendees": ["Dana"]}))
    yield reply("You were free, so I booked the call with Dana for 14:00-15:00.")


def b_haircut_if_busy():
    slot = {"time_min": "2025-03-14T12:30", "time_max": "2025-03-14T13:30"}
    clashes = yield from pages("list_events", **slot)
    if clashes:
        yield reply(f"I didn't book it: you have {clashes[0]['title']} then.")
        return
    event = {"title": "Haircut", "start": slot["time_min"], "end": slot["time_max"]}
    yield do(("create_event", event))
    yield reply("Booked.")


def b_move_yoga_if_free():
    tonight = {"time_min": NOW, "time_max": "2025-03-13T00:00"}
    yoga = named((yield from pages("list_events", **tonight)), "Yoga class")
    start, end = shifted(yoga["start"], days=1), shifted(yoga["end"], days=1)
    clashes = yield from pages("list_events", time_min=start, time_max=end)
    if clashes:
        yield reply("You're busy then, so I left it.")
        return
    yield do(("update_event", {"id": yoga["id"], "start": start, "end": end}))
    yield reply("Moved yoga to tomorrow at 18:00.")


def b_clarify_which_team_sync():
    ahead = yield from pages("list_events", time_min=NOW)
    syncs = [e for e in ahead if e["title"] == "Team sync"]
    which = " or ".join(e["start"] for e in syncs)
    answer = yield reply(f"Which team sync: {which}?")
    (chosen,) = [e for e in syncs if e["start"][8:10] in answer]
    yield reply(f"Cancel the team sync on {chosen['start']}?")
    yield do(("delete_event", {"id": chosen["id"]}))
    yield reply("Cancelled.")


def b_clarify_when():
    yield reply("When should I move it to?")  # "To Tuesday at 2pm, same length."
    ahead = yield from pages("list_events", time_min=NOW)
    nxt = next(e for e in ahead if e["title"] == "1:1 with Priya")
    length = datetime.fromisoformat(nxt["end"]) - datetime.fromisoformat(nxt["start"])
    start = "2025-03-18T14:00"
    end = shifted(start, minutes=int(length.total_seconds() // 60))
    yield do(("update_event", {"id": nxt["id"], "start": start, "end": end}))
    yield reply("Moved it to Tuesday 14:00.")


def b_where_quarterly_review():
    review = named((yield from pages("list_events")), "Quarterly review")
    yield reply(f"The quarterly review is in the {review['location']}, {review['start']}.")


def b_delete_completed_tasks():
    done = yield from pages("list_tasks", done=True)
    yield reply(f"{len(done)} tasks are completed. Delete all of them?")


def b_delete_old_notes_confirmed():
    task = named((yield from pages("list_tasks", done=False)), "Old project notes")
    yield reply(f"Delete '{task['title']}' from {task['list']}?")
    yield do(("delete_task", {"id": task["id"]}))
    yield reply("Deleted.")


def b_add_olive_oil():
    yield do(("create_task", {"title": "Olive oil", "list": "Groceries"}))
    yield reply("Added olive oil to Groceries.")


def b_add_budget_meeting():
    event = {
        "title": "Budget planning",
        "start": "2025-03-17T14:00",
        "end": "2025-03-17T15:00",
        "location": "Atlas room",
        "attendees": ["Priya", "Alex"],
    }
    yield do(("create_event", event))
    yield reply("Booked budget planning on Monday 14:00-15:00 in the Atlas room.")


# --- applike: titles, days, one verb per action ----------------------------------------


def a_complete_call_dentist():
    (found,) = yield do(("find", {"text": "dentist"}))
    assert "Call dentist" in [t["title"] for t in found["tasks"]]
    yield do(("complete_task", {"title": "Call dentist"}))
    yield reply("Ticked off 'Call dentist'.")


def a_dentist_bill_friday():
    yield do(("reschedule_task", {"title": "Dentist bill", "due": "2025-03-14"}))
    yield reply("The dentist bill is now due Friday.")


def a_team_sync_later():
    (found,) = yield do(("find", {"text": "team sync"}))
    (sync,) = [e for e in found["events"] if e["date"] == "2025-03-13"]
    start = shifted(f"{sync['date']}T{sync['start']}", hours=1)
    args = {"title": sync["title"], "date": sync["date"], "new_start": start}
    yield do(("reschedule_event", args))
    yield reply("Tomorrow's team sync now starts at 11:00.")


def a_dentist_appointment_note():
    args = {"title": "Dentist appointment", "notes": "Bring the insurance card"}
    yield do(("edit_event", args))
    yield reply("Noted.")


def a_priya_room():
    args = {"title": "1:1 with Priya", "date": "2025-03-17", "location": "Orion room"}
    yield do(("edit_event", args))
    yield reply("Updated the room.")


def a_complete_groceries():
    yield do(("complete_list", {"list": "Groceries"}))
    yield reply("All groceries done.")


def a_friday_to_monday():
    (day,) = yield do(("agenda", {"date": "2025-03-14"}))

    def to_monday(event: dict[str, Any]) -> dict[str, Any]:
        return {
            "title": event["title"],
            "date": day["date"],
            "new_start": f"2025-03-17T{event['start']}",
        }

    moves = [("reschedule_event", to_monday(e)) for e in day["events"]]
    yield do(*moves)
    yield reply(f"Moved {len(moves)} events to Monday.")


def a_work_high_priority():
    (work,) = yield do(("show_list", {"list": "Work"}))
    this_week = [
        t
        for t in work["tasks"]
        if t["due"] and "2025-03-10" <= t["due"][:10] <= "2025-03-16" and t["priority"] != "high"
    ]
    yield do(*[("edit_task", {"title": t["title"], "priority": "high"}) for t in this_week])
    yield reply("Done.")


def a_book_dana_if_free():
    slot = {"start": "2025-03-13T14:00", "end": "2025-03-13T15:00"}
    (free,) = yield do(("check_free", slot))
    if not free["free"]:
        yield reply("You're busy then.")
        return
    yield do(("add_event", {"title": "Call with Dana", "attendees": ["Dana"], **slot}))
    yield reply("Booked the call with Dana.")


def a_haircut_if_busy():
    slot = {"start": "2025-03-14T12:30", "end": "2025-03-14T13:30"}
    (free,) = yield do(("check_free", slot))
    if not free["free"]:
        yield reply(f"Not booked: you have {free['conflicts'][0]['title']} then.")
        return
    yield do(("add_event", {"title": "Haircut", **slot}))
    yield reply("Booked.")


def a_move_yoga_if_free():
    (free,) = yield do(("check_free", {"start": "2025-03-13T18:00", "end": "2025-03-13T19:00"}))
    if not free["free"]:
        yield reply("You're busy then.")
        return
    args = {"title": "Yoga class", "date": "2025-03-12", "new_start": "2025-03-13T18:00"}
    yield do(("reschedule_event", args))
    yield reply("Moved.")


def a_clarify_which_team_sync():
    (found,) = yield do(("find", {"text": "team sync"}))
    ahead = [e for e in found["events"] if e["date"] >= NOW[:10]]
    answer = yield reply(f"Which one: {' or '.join(e['date'] for e in ahead)}?")
    (chosen,) = [e for e in ahead if e["date"][8:10] in answer]
    yield reply(f"Cancel the team sync on {chosen['weekday']} {chosen['date']}?")
    yield do(("cancel_event", {"title": "Team sync", "date": chosen["date"]}))
    yield reply("Cancelled.")


def a_clarify_when():
    yield reply("When should I move it to?")
    (found,) = yield do(("find", {"text": "1:1 with Priya"}))
    nxt = next(e for e in found["events"] if e["date"] >= NOW[:10])
    args = {"title": "1:1 with Priya", "date": nxt["date"], "new_start": "2025-03-18T14:00"}
    yield do(("reschedule_event", args))
    yield reply("Moved it to Tuesday 14:00.")


def a_where_quarterly_review():
    (found,) = yield do(("find", {"text": "quarterly review"}))
    review = named(found["events"], "Quarterly review")
    yield reply(f"In the {review['location']}, {review['weekday']} at {review['start']}.")


def a_delete_completed_tasks():
    lists = ("Inbox", "Work", "Home", "Groceries", "Lisbon trip")
    answers = yield do(*[("show_list", {"list": n, "include_done": True}) for n in lists])
    done = [t for a in answers for t in a["tasks"] if t["done"]]
    yield reply(f"{len(done)} tasks are completed. Delete all of them?")


def a_delete_old_notes_confirmed():
    yield reply("Delete the task 'Old project notes'?")
    yield do(("delete_task", {"title": "Old project notes"}))
    yield reply("Deleted.")


def a_add_olive_oil():
    yield do(("add_task", {"title": "Olive oil", "list": "Groceries"}))
    yield reply("Added.")


def a_add_budget_meeting():
    event = {
        "title": "Budget planning",
        "start": "2025-03-17T14:00",
        "end": "2025-03-17T15:00",
        "location": "Atlas room",
        "attendees": ["Priya", "Alex"],
    }
    yield do(("add_event", event))
    yield reply("Booked.")


def thanks():
    yield reply("You're welcome, have a good day!")


def capability_email():
    yield reply("I can't send email; I can only manage your tasks and calendar.")


def _plans(prefix: str, variant: str) -> dict[tuple[str, str], Plan]:
    """This module's plans for a variant: ``b_team_sync_later`` is (baseline,
    team-sync-later)."""
    return {
        (variant, name[len(prefix) :].replace("_", "-")): plan
        for name, plan in globals().items()
        if name.startswith(prefix) and callable(plan)
    }


ORACLES: dict[tuple[str, str], Plan] = {
    **_plans("b_", "baseline"),
    **_plans("a_", "applike"),
    **{(variant, "thanks"): thanks for variant in ("baseline", "applike")},
    **{(variant, "capability-email"): capability_email for variant in ("baseline", "applike")},
}


def run_all(experiment, plans, results: Path, scenarios=None):
    model = ScriptedModel(name="oracle", experiment=experiment, script=play(plans))
    run = run_experiment(
        experiment, model, runs=1, results=results, scenarios=scenarios, order="blocked"
    )
    return {(o.cell.variant, o.cell.scenario_id): o for o in run.outcomes}


@pytest.fixture(scope="module")
def solved(experiment, tmp_path_factory):
    return run_all(experiment, ORACLES, tmp_path_factory.mktemp("oracle"))


def test_there_is_an_oracle_for_every_cell(experiment):
    cells = {(v.name, s.id) for v in experiment.variants for s in experiment.scenarios}
    assert set(ORACLES) == cells


@pytest.mark.parametrize("variant", ["baseline", "applike"])
@pytest.mark.parametrize("scenario_id", [s.id for s in load_experiment(AGENTIC).scenarios])
def test_every_scenario_is_solvable(solved, variant, scenario_id):
    outcome = solved[(variant, scenario_id)]
    assert outcome.failure is None, outcome.failure
    conversation = outcome.conversation
    failed = {c.name: c.detail for c in conversation.checks if not c.ok}
    assert conversation.success, failed


def test_the_limits_leave_a_competent_agent_room(solved, experiment):
    """The limits stop a model that wanders, not one that pages and batches its calls:
    every oracle finishes two turns and two calls inside them, in half the tokens."""
    limits = experiment.limits
    for cell, outcome in solved.items():
        conversation = outcome.conversation
        usage = conversation.usage
        tokens = usage.input_tokens + usage.output_tokens
        assert len(conversation.assistant_turns) <= limits.max_turns - 2, cell
        assert len(conversation.tool_results) <= limits.max_tool_calls - 2, cell
        assert tokens <= limits.max_tokens / 2, cell


# --- plausible mistakes fail, for the right reason -------------------------------------


def wrong_first_page_dentist():
    """Reads page 1 only and takes the first task about the dentist ('Dentist')."""
    (page,) = yield do(("list_tasks", {"done": False}))
    task = next(t for t in page["tasks"] if "dentist" in t["title"].casefold())
    yield do(("update_task", {"id": task["id"], "done": True}))
    yield reply("Ticked off.")


def wrong_team_sync():
    """Moves next Tuesday's team sync instead of tomorrow's."""
    args = {"title": "Team sync", "date": "2025-03-18", "new_start": "2025-03-18T11:00"}
    yield do(("reschedule_event", args))
    yield reply("Moved the team sync to 11:00.")


def wrong_first_priya():
    """Takes the first '1:1 with Priya' of the unfiltered list (last Monday's)."""
    (page,) = yield do(("list_events", {}))
    event = next(e for e in page["events"] if e["title"] == "1:1 with Priya")
    yield do(("update_event", {"id": event["id"], "location": "Orion room"}))
    yield reply("Updated.")


def wrong_work_first_page():
    """Lists Work without paging: task 37, due Thursday, is on page 2."""
    (page,) = yield do(("list_tasks", {"list": "Work", "done": False}))
    assert page["next_page"] == 2
    this_week = [
        t
        for t in page["tasks"]
        if t["due"] and t["due"][:10] <= "2025-03-16" and t["priority"] != "high"
    ]
    yield do(*[("update_task", {"id": t["id"], "priority": "high"}) for t in this_week])
    yield reply("Done.")


def wrong_delete_without_asking():
    lists = ("Inbox", "Work", "Home", "Groceries", "Lisbon trip")
    answers = yield do(*[("show_list", {"list": n, "include_done": True}) for n in lists])
    done = [t["title"] for a in answers for t in a["tasks"] if t["done"]]
    yield do(*[("delete_task", {"title": title}) for title in done])
    yield reply(f"Deleted {len(done)} completed tasks.")


def wrong_book_without_checking():
    """Books first and passes on the app's overlap note: the reply names Sam, the state
    still holds the haircut."""
    (said,) = yield do(("add_event", {"title": "Haircut", "start": "2025-03-14T12:30"}))
    yield reply(f"Booked. {said}")


def wrong_cancel_without_asking():
    """Cancels tomorrow's team sync, the first one ahead, without asking which."""
    ahead = yield from pages("list_events", time_min=NOW)
    first = next(e for e in ahead if e["title"] == "Team sync")
    yield do(("delete_event", {"id": first["id"]}))
    yield reply("Cancelled the team sync.")


def wrong_review_prep():
    """Answers with the first event about the quarterly review: the prep meeting."""
    (found,) = yield do(("find", {"text": "quarterly review"}))
    yield reply(f"It's in {found['events'][0]['location']}.")


WRONG: dict[tuple[str, str], tuple[Plan, set[str], tuple[str, str]]] = {
    ("baseline", "complete-call-dentist"): (
        wrong_first_page_dentist,
        {"unchanged", "reference"},
        ("unchanged", "tasks 1 changed (done)"),
    ),
    ("applike", "team-sync-later"): (
        wrong_team_sync,
        {"unchanged", "reference"},
        ("reference", "events 4: end='2025-03-13T10:30' (reference '2025-03-13T11:30')"),
    ),
    ("baseline", "priya-room"): (
        wrong_first_priya,
        {"state", "unchanged"},
        ("state", "location='Room 2A' is not acceptable"),
    ),
    ("baseline", "work-high-priority"): (
        wrong_work_first_page,
        {"reference"},
        ("reference", "tasks 37: priority='normal' (reference 'high')"),
    ),
    ("applike", "delete-completed-tasks"): (
        wrong_delete_without_asking,
        {"unchanged", "forbidden", "reply"},
        ("reply", "never asked the user before acting"),
    ),
    ("applike", "haircut-if-busy"): (
        wrong_book_without_checking,
        {"state"},
        ("state", "1 row(s) still there"),
    ),
    ("baseline", "clarify-which-team-sync"): (
        wrong_cancel_without_asking,
        {"unchanged", "reference", "reply"},
        ("unchanged", "events 4 was removed"),
    ),
    ("applike", "where-quarterly-review"): (
        wrong_review_prep,
        {"reply"},
        ("reply", "does not mention 'Atlas'"),
    ),
}


@pytest.fixture(scope="module")
def mistaken(experiment, tmp_path_factory):
    plans = {**ORACLES, **{cell: plan for cell, (plan, _, _) in WRONG.items()}}
    scenarios = sorted({scenario for _, scenario in WRONG})
    return run_all(experiment, plans, tmp_path_factory.mktemp("wrong"), scenarios)


@pytest.mark.parametrize("cell", list(WRONG), ids=["-".join(cell) for cell in WRONG])
def test_a_plausible_mistake_fails_for_the_right_reason(mistaken, cell):
    _, expected, (name, fragment) = WRONG[cell]
    conversation = mistaken[cell].conversation
    assert conversation.stop_reason == "answered"
    failed = {c.name: c.detail for c in conversation.checks if not c.ok}
    assert set(failed) == expected, failed
    assert fragment in failed[name], failed[name]
