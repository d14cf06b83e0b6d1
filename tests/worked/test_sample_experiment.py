"""The worked sample experiment (tests/experiment) loads and is well-formed; no model calls."""

import json

import pytest
from support.paths import TESTS

from tooltrial.definitions import Experiment, load_experiment

EXPERIMENT_DIR = TESTS / "experiment"
VARIANTS = {"baseline", "applike"}
CATEGORIES = {"create", "query", "update", "delete", "multi", "no_call", "clarify"}
MAX_TOOL_JSON_CHARS = 3500  # the embedded SmolLM2-135M has a small context


@pytest.fixture(scope="module")
def experiment() -> Experiment:
    return load_experiment(EXPERIMENT_DIR)


def test_loads_with_the_stated_controls(experiment):
    assert experiment.name == "tasks-calendar"
    assert experiment.temperature == 0.2
    assert experiment.zero_persona is True
    assert experiment.max_tokens == 256


def test_fixed_timestamp_is_a_wednesday(experiment):
    assert experiment.fixed_timestamp.utcoffset() is not None
    assert experiment.fixed_timestamp.strftime("%A") == "Wednesday"
    assert experiment.fixed_timestamp.isoformat() == "2025-03-12T09:00:00+00:00"


def test_twenty_scenarios_with_unique_ids(experiment):
    ids = experiment.scenario_ids
    assert len(ids) == 20
    assert len(set(ids)) == len(ids)


def test_both_variants_present(experiment):
    assert {v.name for v in experiment.variants} == VARIANTS


def test_every_scenario_has_an_expectation_for_every_variant(experiment):
    for scenario in experiment.scenarios:
        for variant in experiment.variants:
            expectation = scenario.expectation_for(variant.name)
            for call in expectation.calls:
                assert call.tool in variant.tool_names, (scenario.id, variant.name, call.tool)


def test_every_category_is_covered(experiment):
    assert {s.category for s in experiment.scenarios} == CATEGORIES


def test_kinds_match_categories(experiment):
    for scenario in experiment.scenarios:
        for variant in experiment.variants:
            expectation = scenario.expectation_for(variant.name)
            if scenario.category in ("no_call", "clarify"):
                assert expectation.kind == scenario.category, scenario.id
            else:
                assert expectation.kind == "call", scenario.id
            if scenario.category == "multi":
                assert len(expectation.calls) == 2, scenario.id


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_tool_json_fits_the_small_model(experiment, name):
    variant = experiment.variant(name)
    size = len(json.dumps([tool.model_dump() for tool in variant.tools]))
    assert size < MAX_TOOL_JSON_CHARS, f"{name}: {size} characters of tool JSON"


def test_expected_argument_paths_exist_in_the_tool_schemas(experiment):
    """The loader checks tool names only; a typo in a dotted path would never match."""
    for scenario in experiment.scenarios:
        for variant in experiment.variants:
            tools = {tool.name: tool for tool in variant.tools}
            for call in scenario.expectation_for(variant.name).calls:
                for path in {**call.args, **call.optional}:
                    schema = tools[call.tool].input_schema
                    for part in path.split("."):
                        assert part in schema.get("properties", {}), (
                            f"{scenario.id}/{variant.name}: {call.tool} has no argument {path!r}"
                        )
                        schema = schema["properties"][part]
