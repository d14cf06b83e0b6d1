"""Definitions are checked strictly, and each fault names the file and line it is in."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tooltrial.definitions.agentic import Limits
from tooltrial.definitions.loading import load_experiment, scenario_where
from tooltrial.definitions.scenarios import Scenario
from tooltrial.errors import DefinitionError


@pytest.mark.parametrize("field", ["max_turns", "max_tool_calls", "max_tokens", "tool_timeout_s"])
@pytest.mark.parametrize("value", [True, False, "6", math.nan, math.inf, -1, None])
def test_a_limit_takes_only_a_number_in_range(field: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=f"{field}[\\s\\S]*must be"):
        Limits.model_validate({field: value})


def test_nan_says_what_is_wrong() -> None:
    with pytest.raises(ValidationError) as raised:
        Limits.model_validate({"tool_timeout_s": math.nan})
    assert "must be a number above 0 and at most 3,600 (seconds); got nan" in str(raised.value)


def test_good_limits_load() -> None:
    limits = Limits.model_validate({"max_turns": 3, "tool_timeout_s": 0.5, "max_tool_calls": 0})
    assert (limits.max_turns, limits.tool_timeout_s, limits.max_tool_calls) == (3, 0.5, 0)


@pytest.mark.parametrize("turns", [[""], ["ok", "  "], ["\n"]])
def test_a_blank_user_turn_is_refused(turns: list[str]) -> None:
    with pytest.raises(ValidationError, match="is blank"):
        Scenario.model_validate({"id": "a", "prompt": "p", "user_turns": turns})


def single_turn(tmp_path: Path, schema: str, args: str) -> Path:
    (tmp_path / "v.yaml").write_text(
        f"name: v\nsystem_prompt: s\ntools:\n  - name: add\n    description: Add.\n"
        f"    input_schema: {schema}\n"
    )
    (tmp_path / "s.yaml").write_text(
        f"- id: a\n  prompt: p\n  expect: {{'*': {{calls: [{{tool: add, args: {args}}}]}}}}\n"
    )
    (tmp_path / "experiment.yaml").write_text(
        "name: t\nfixed_timestamp: '2025-01-01T00:00:00+00:00'\n"
        "variants: [v.yaml]\nscenarios: s.yaml\n"
    )
    return tmp_path


SCHEMA = "{type: object, properties: {title: {type: string}}}"


def test_an_expectation_on_an_undeclared_argument_is_refused(tmp_path: Path) -> None:
    single_turn(tmp_path, SCHEMA, "{titel: x}")
    with pytest.raises(DefinitionError) as raised:
        load_experiment(tmp_path)
    message = str(raised.value)
    lines = (tmp_path / "s.yaml").read_text().splitlines()
    expect = next(n for n, line in enumerate(lines, 1) if "expect:" in line)
    assert f"s.yaml:{expect}: scenario 'a'" in message  # the expectation's line
    assert "argument 'titel' of tool 'add'" in message and "declares: title" in message


def test_a_dotted_path_is_checked_by_its_first_part(tmp_path: Path) -> None:
    single_turn(tmp_path, SCHEMA, "{title.inner: x}")
    load_experiment(tmp_path)


def test_additional_properties_is_the_opt_out(tmp_path: Path) -> None:
    schema = "{type: object, properties: {}, additionalProperties: true}"
    single_turn(tmp_path, schema, "{anything: x}")
    load_experiment(tmp_path)


def test_a_tool_without_a_schema_is_not_checked(tmp_path: Path) -> None:
    single_turn(tmp_path, "{type: object}", "{anything: x}")
    load_experiment(tmp_path)


def test_a_scenario_fault_names_its_line_in_the_scenarios_file(tmp_path: Path) -> None:
    single_turn(tmp_path, SCHEMA, "{title: x}")
    (tmp_path / "s.yaml").write_text(
        (tmp_path / "s.yaml").read_text()
        + "- id: b\n  prompt: q\n  expect: {'*': {kind: no_call}}\n"
    )
    source = str(tmp_path / "experiment.yaml")
    assert scenario_where(source, "b") == f"{tmp_path / 's.yaml'}:4: scenario 'b'"
    assert scenario_where(source, "b", "expect") == f"{tmp_path / 's.yaml'}:6: scenario 'b'"
    assert scenario_where(None, "b") == "<python>: scenario 'b'"
    assert scenario_where(source, "zz") == f"{tmp_path / 's.yaml'}: scenario 'zz'"


def test_a_variant_fault_is_not_blamed_on_the_scenarios_file(tmp_path: Path) -> None:
    single_turn(tmp_path, SCHEMA, "{title: x}")
    (tmp_path / "experiment.yaml").write_text(
        (tmp_path / "experiment.yaml").read_text().replace("[v.yaml]", "[v.yaml, v.yaml]")
    )
    with pytest.raises(DefinitionError, match=r"experiment.yaml: variant names must be unique"):
        load_experiment(tmp_path)


@pytest.mark.parametrize("value", [True, "30", math.nan, 0, 601])
def test_an_mcp_startup_timeout_is_strict(value: Any) -> None:
    from tooltrial.definitions.servers import McpServer

    with pytest.raises(ValidationError, match=r"startup_timeout_s[\s\S]*must be a number"):
        McpServer.model_validate({"command": "x", "startup_timeout_s": value})
