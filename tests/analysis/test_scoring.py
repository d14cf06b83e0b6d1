"""Scoring rules, one table per rule: (expectation, response) → score."""

from __future__ import annotations

from typing import Any

import pytest
from support.paths import TESTS

from tooltrial.analysis.scoring import Call, Scorer
from tooltrial.definitions import Experiment
from tooltrial.definitions.scenarios import Scenario
from tooltrial.definitions.variants import Tool, Variant
from tooltrial.errors import ExpectationError

NOW = "2025-03-12T09:00:00+01:00"  # an offset, so naive times have a zone to fall into
TOOLS = ("add_task", "create_record", "show_agenda", "search")


def experiment(expect: dict[str, Any], scenario_id: str = "s1") -> Experiment:
    variant = Variant(
        name="v",
        system_prompt="be useful",
        tools=tuple(Tool(name=n, description=n) for n in TOOLS),
    )
    scenario = Scenario.model_validate({"id": scenario_id, "prompt": "p", "expect": {"v": expect}})
    return Experiment(name="t", scenarios=(scenario,), variants=(variant,), fixed_timestamp=NOW)


def one_call(tool: str, args: dict[str, Any], optional: dict[str, Any] | None = None) -> dict:
    return {"calls": [{"tool": tool, "args": args, "optional": optional or {}}]}


def score_args(spec: Any, value: Any) -> bool | None:
    """args_correct for one argument ``x`` with acceptable value ``spec``."""
    scorer = Scorer(experiment(one_call("add_task", {"x": spec})))
    return scorer.score("s1", "v", [Call("add_task", {"x": value})], "").args_correct


# --- plain values: type-aware -----------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "value", "ok"),
    [
        ("Task", "  task ", True),  # strings: case and surrounding space ignored
        ("weekly  shopping", "Weekly Shopping", True),  # inner whitespace collapsed
        ("task", "tasks", False),
        (3, 3.0, True),  # numbers compare numerically
        (3, "3", False),  # ...but a string of digits is not a number
        (3, True, False),  # nor is a boolean
        (True, True, True),
        (True, "true", False),  # booleans only equal booleans
        (True, 1, False),
        ("2025-03-14", "2025-03-14T18:30", True),  # an ISO date matches that day
        ("2025-03-14", "2025-03-15", False),
        ("2025-03-13T15:00", "2025-03-13 15:00:00", True),  # datetimes as instants
        ("high", ["high"], False),  # a list is not a string
    ],
)
def test_plain_values(spec, value, ok):
    assert score_args(spec, value) is ok


@pytest.mark.parametrize(
    ("spec", "value", "ok"),
    [
        ({"contains": "Dentist"}, "Call the DENTIST today", True),
        ({"contains": "weekly shopping"}, "weekly   shopping list", True),
        ({"contains": "dentist"}, "doctor", False),
        ({"contains": "dentist"}, 7, False),
    ],
)
def test_contains(spec, value, ok):
    assert score_args(spec, value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2025-03-13T15:00", True),  # naive: read in the fixed timestamp's offset (+01:00)
        ("2025-03-13T15:00:00+01:00", True),
        ("2025-03-13T14:00:00Z", True),  # the same instant written in UTC
        ("2025-03-13T14:00Z", True),
        ("2025-03-13T15:00:00Z", False),  # an hour later
        ("2025-03-13 15:00", True),
        ("2025-03-13T15:00:00.000", True),
        # as models write them (dateutil), naive ones in the experiment's offset
        ("2025-3-13 15:00", True),
        ("March 13, 2025 3:00pm", True),
        ("March 13, 2025 3pm", True),
        ("Mar 13 2025 at 3:00 PM", True),
        ("13 Mar 2025 15:00", True),
        ("Thursday, March 13, 2025 3:00 PM", True),
        ("03/13/2025 15:00", True),
        ("2025-03-13 14:00 UTC", True),
        ("2025-03-13 15:00 +0100", True),
        ("March 13, 2025 4:00pm", False),
        ("2025-03-13", False),  # a day is not 15:00
        ("13 Mar 2025", False),
        ("March 13 3pm", False),  # no year: not a full day
        ("Thursday 3pm", False),
        ("tomorrow at 3pm", False),
        ("2025-03-13 15:00 PST", False),  # a zone name dateutil cannot resolve
        ("2025-03-13 15:00 GMT+1", False),  # POSIX sign: means -01:00
        (1741874400, False),  # epoch seconds are not a date
        ("1741874400", False),
        ("x" * 200, False),
    ],
)
def test_datetime(value, ok):
    assert score_args({"datetime": "2025-03-13T15:00"}, value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2025-03-14", True),
        ("2025-03-14T23:30:00", True),
        ("2025-03-14T23:30:00Z", False),  # 00:30 on the 15th in the experiment's zone
        ("2025-03-13T23:30:00Z", True),  # 00:30 on the 14th in the experiment's zone
        ("2025-03-15", False),
        ("2025-3-14", True),
        ("2025-3-14 17:59", True),
        ("March 14, 2025", True),
        ("March 14, 2025 5:59pm", True),
        ("14 Mar 2025", True),
        ("Friday, 14 March 2025", True),
        ("03/14/2025", True),
        ("14/03/2025", True),  # only one reading is a real date
        ("2025-03-14T17:59Z", True),
        ("15 Mar 2025", False),
        ("Friday", False),
        ("March 14", False),  # no year
        ("next Friday", False),
        (20250314, False),
    ],
)
def test_date(value, ok):
    assert score_args({"date": "2025-03-14"}, value) is ok


@pytest.mark.parametrize(("value", "ok"), [("anything", True), (0, True), (False, True)])
def test_any(value, ok):
    assert score_args({"any": True}, value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [("2025-03-14", True), ("2025-03-21T10:00", True), ("2025-03-15", False)],
)
def test_list_is_any_of(value, ok):
    assert score_args([{"date": "2025-03-14"}, {"date": "2025-03-21"}], value) is ok


# --- arguments: paths, optional, missing, extra -----------------------------------------


@pytest.mark.parametrize(
    ("arguments", "args_ok", "exact", "extra", "reason"),
    [
        ({"resource_type": "task", "payload": {"title": "Buy milk"}}, True, True, 0, ""),
        ({"resource_type": "task", "payload": {}}, False, False, 0, "missing argument payload"),
        ({"resource_type": "task"}, False, False, 0, "missing argument payload.title"),
        ({"resource_type": "task", "title": "milk"}, False, False, 1, "payload.title"),
        # optional: absent is fine, present must match
        (
            {"resource_type": "task", "payload": {"title": "milk", "priority": "high"}},
            True,
            True,
            0,
            "",
        ),
        (
            {"resource_type": "task", "payload": {"title": "milk", "priority": "low"}},
            False,
            False,
            0,
            "payload.priority='low' is not acceptable",
        ),
        # extra arguments: counted, not exact, but the asked-for arguments are right
        (
            {"resource_type": "task", "payload": {"title": "milk", "due": "2025-03-14"}},
            True,
            False,
            1,
            "extra argument payload.due",
        ),
        # null and "" count as absent, so they are neither missing values nor extras
        (
            {"resource_type": "task", "payload": {"title": "milk", "due": None, "notes": ""}},
            True,
            True,
            0,
            "",
        ),
        ({"resource_type": "task", "payload": {"title": None}}, False, False, 0, "missing"),
    ],
)
def test_arguments(arguments, args_ok, exact, extra, reason):
    expect = one_call(
        "create_record",
        {"resource_type": "task", "payload.title": {"contains": "milk"}},
        optional={"payload.priority": ["high", "normal"]},
    )
    s = Scorer(experiment(expect)).score("s1", "v", [Call("create_record", arguments)], "")
    assert (s.tool_correct, s.args_correct, s.exact, s.extra_args) == (True, args_ok, exact, extra)
    assert reason in s.reason
    assert (s.reason == "") is exact


# --- kinds: call / no_call / clarify, order, hallucination --------------------------------


@pytest.mark.parametrize(
    ("kind", "calls", "text", "tool_ok", "exact", "reason"),
    [
        ("no_call", [], "You're welcome!", True, True, ""),
        ("no_call", [], "  ", True, False, "empty response"),
        ("no_call", [Call("search", {"text": "rain"})], "", False, False, "called search"),
        ("clarify", [], "Which meeting do you mean?", True, True, ""),
        ("clarify", [], "I moved it.", True, False, "no question asked"),
        ("clarify", [Call("add_task", {"title": "meeting"})], "ok?", False, False, "add_task"),
    ],
)
def test_no_call_and_clarify(kind, calls, text, tool_ok, exact, reason):
    s = Scorer(experiment({"kind": kind})).score("s1", "v", calls, text)
    assert (s.tool_correct, s.args_correct, s.exact) == (tool_ok, None, exact)
    assert reason in s.reason


TWO_CALLS = [
    {"tool": "add_task", "args": {"title": {"contains": "dentist"}}},
    {"tool": "show_agenda", "args": {"date": {"date": "2025-03-14"}}},
]
TASK = Call("add_task", {"title": "dentist"})
AGENDA = Call("show_agenda", {"date": "2025-03-14"})


@pytest.mark.parametrize(
    ("ordered", "calls", "tool_ok", "exact", "reason"),
    [
        (True, [TASK, AGENDA], True, True, ""),
        (True, [AGENDA, TASK], False, False, "order: expected add_task, show_agenda"),
        (False, [AGENDA, TASK], True, True, ""),
        (False, [TASK], False, False, "expected add_task, show_agenda; got add_task"),
        (False, [TASK, AGENDA, AGENDA], False, False, "got add_task, show_agenda, show_agenda"),
        (False, [], False, False, "no tool call"),
    ],
)
def test_call_order(ordered, calls, tool_ok, exact, reason):
    s = Scorer(experiment({"calls": TWO_CALLS, "ordered": ordered})).score("s1", "v", calls, "")
    assert (s.tool_correct, s.exact) == (tool_ok, exact)
    assert reason in s.reason


def test_same_tool_twice_is_paired_whatever_the_order():
    expect = {
        "calls": [
            {"tool": "add_task", "args": {"title": {"contains": "gift"}}},
            {"tool": "add_task", "args": {"title": {"contains": "party"}, "due": {"any": True}}},
        ]
    }
    scorer = Scorer(experiment(expect))
    calls = [
        Call("add_task", {"title": "party", "due": "2025-03-15"}),
        Call("add_task", {"title": "gift"}),
    ]
    assert scorer.score("s1", "v", calls, "").exact
    wrong = [Call("add_task", {"title": "party"}), Call("add_task", {"title": "gift"})]
    s = scorer.score("s1", "v", wrong, "")
    assert (s.tool_correct, s.args_correct) == (True, False)
    assert "missing argument due" in s.reason


@pytest.mark.parametrize(
    ("kind_expect", "calls"),
    [
        (one_call("add_task", {"title": "x"}), [Call("make_task", {"title": "x"})]),
        ({"kind": "no_call"}, [Call("weather", {})]),
    ],
)
def test_hallucinated_tool_names(kind_expect, calls):
    s = Scorer(experiment(kind_expect)).score("s1", "v", calls, "")
    assert s.hallucinated and not s.tool_correct and not s.exact
    assert f"hallucinated tool(s): {calls[0].name}" in s.reason


def test_a_real_tool_is_not_hallucinated():
    s = Scorer(experiment(one_call("add_task", {"title": "x"}))).score(
        "s1", "v", [Call("search", {"text": "x"})], ""
    )
    assert not s.hallucinated and not s.tool_correct


# --- bad expectations: a clear error naming the scenario --------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"datetime": "next week"}, "not an ISO datetime"),
        ({"datetime": "tomorrow"}, "such as 2025-03-13T15:00"),
        ({"datetime": "2025-03-13"}, "not an ISO datetime"),  # a day, not an instant
        ({"datetime": "March 13, 2025 3pm"}, "not an ISO datetime"),  # unambiguous only
        ({"date": "tomorrow"}, "not an ISO date"),
        ({"date": "next week"}, "such as 2025-03-14"),
        ({"date": "14 Mar 2025"}, "not an ISO date"),
        ({"date": "2025-3-14"}, "not an ISO date"),
        ({"date": "2025-13-45"}, "not an ISO date"),
        ({"contains": 3}, "takes non-empty text"),
        ({"contains": "  "}, "takes non-empty text"),
        ({"any": False}, "write {any: true}"),
        (None, "null matches nothing"),
        ("2025-02-30", "looks like a date but is not ISO 8601"),
        ([{"date": "2025-03-14"}, {"datetime": "soon"}], "not an ISO datetime"),
    ],
)
def test_bad_expectation_names_the_scenario(spec, message):
    bad = experiment(one_call("add_task", {"due": spec}), scenario_id="create-dentist")
    with pytest.raises(ExpectationError) as info:
        Scorer(bad)
    text = str(info.value)
    assert "scenario 'create-dentist'" in text
    assert "variant 'v'" in text
    assert "argument 'due'" in text
    assert message in text


def test_argument_both_required_and_optional_is_rejected():
    bad = experiment(one_call("add_task", {"due": {"any": True}}, optional={"due": {"any": True}}))
    with pytest.raises(ExpectationError, match=r"scenario 's1'.*due listed both"):
        Scorer(bad)


def test_unknown_scenario_or_variant_is_a_clear_error():
    scorer = Scorer(experiment({"kind": "no_call"}))
    with pytest.raises(ExpectationError, match=r"scenario 'nope' and variant 'v'.*--experiment"):
        scorer.score("nope", "v", [], "hi")


def test_sample_experiment_expectations_all_compile():

    from tooltrial.definitions import load_experiment

    sample = load_experiment(TESTS / "experiment")
    scorer = Scorer(sample)
    assert scorer.kind("clarify-move-meeting", "applike") == "clarify"
    s = scorer.score(
        "create-task-tomorrow-at-3",
        "applike",
        [Call("add_task", {"title": "Call the plumber", "due": "2025-03-13T15:00:00Z"})],
        "",
    )
    assert s.exact, s.reason


# --- malformed arguments: their own failure, never "an extra argument" ------------------

BROKEN = Call("add_task", {"_unparsed": '{"title": "dentist", "due": "2025-03-1'})


@pytest.mark.parametrize(
    ("expect", "calls", "tool_ok", "args_ok"),
    [
        (one_call("add_task", {"title": {"contains": "dentist"}}), [BROKEN], True, False),
        ({"calls": TWO_CALLS}, [BROKEN, AGENDA], True, False),
        (one_call("search", {"text": "dentist"}), [BROKEN], False, None),
        ({"kind": "no_call"}, [BROKEN], False, None),
    ],
)
def test_malformed_arguments(expect, calls, tool_ok, args_ok):
    s = Scorer(experiment(expect)).score("s1", "v", calls, "")
    assert (s.tool_correct, s.args_correct, s.exact, s.malformed) == (tool_ok, args_ok, False, True)
    assert s.reason.startswith("malformed_args: add_task arguments are not a JSON object")
    assert s.extra_args == 0 and "extra argument" not in s.reason


def test_well_formed_calls_are_not_malformed():
    s = Scorer(experiment(one_call("add_task", {"title": "x"}))).score(
        "s1", "v", [Call("add_task", {"title": "x", "_unparsed": "also a real key"})], ""
    )
    assert not s.malformed and "malformed" not in s.reason


# --- action selection: arguments that choose the action count with the tool ------------

SELECTS = {
    "calls": [
        {
            "tool": "create_record",
            "selects": ["resource_type"],
            "args": {"resource_type": "task", "payload.title": {"contains": "milk"}},
        }
    ]
}


@pytest.mark.parametrize(
    ("arguments", "tool_ok", "args_ok", "reason"),
    [
        ({"resource_type": "task", "payload": {"title": "Buy milk"}}, True, True, ""),
        # the right tool, the wrong action: not "right tool, wrong argument"
        ({"resource_type": "event", "payload": {"title": "Buy milk"}}, False, None, "action:"),
        ({"payload": {"title": "Buy milk"}}, False, None, "action:"),
        # the action right, how it is carried out wrong: judged as arguments
        ({"resource_type": "task", "payload": {"title": "eggs"}}, True, False, "payload.title"),
    ],
)
def test_selecting_arguments_count_as_choosing_the_action(arguments, tool_ok, args_ok, reason):
    s = Scorer(experiment(SELECTS)).score("s1", "v", [Call("create_record", arguments)], "")
    assert (s.tool_correct, s.args_correct) == (tool_ok, args_ok)
    assert reason in s.reason


def test_an_optional_selecting_argument_may_be_left_out_but_not_wrong():
    expect = {
        "calls": [
            {
                "tool": "create_record",
                "selects": ["resource_type"],
                "args": {"payload.title": {"any": True}},
                "optional": {"resource_type": "event"},
            }
        ]
    }
    scorer = Scorer(experiment(expect))
    assert scorer.score("s1", "v", [Call("create_record", {"payload": {"title": "x"}})], "").exact
    wrong = {"resource_type": "task", "payload": {"title": "x"}}
    assert not scorer.score("s1", "v", [Call("create_record", wrong)], "").tool_correct


def test_selects_must_name_an_expected_argument():
    bad = {"calls": [{"tool": "create_record", "selects": ["kind"], "args": {"a": 1}}]}
    with pytest.raises(ValueError, match="selects kind of 'create_record'"):
        experiment(bad)
