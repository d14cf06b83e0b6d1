"""An experiment: scenarios × variants under fixed controls, and the checks across them.

``check_experiment`` makes the cross-checks no single model can (unique ids, known
variants and tools) and compiles every expectation (``Experiment.expectations``); it runs
on every experiment, however it was loaded, so an expectation that cannot be scored
stops loading, before any call, with a message naming the file, scenario, argument and
value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tooltrial.definitions.agentic import Limits
from tooltrial.definitions.calls import ExpectedCall
from tooltrial.definitions.limits import check_value
from tooltrial.definitions.matchers import Expectations, compile_expectations
from tooltrial.definitions.scenarios import Scenario
from tooltrial.definitions.servers import TOOL_NAME
from tooltrial.definitions.variants import Variant
from tooltrial.errors import DefinitionError, ExpectationError

Kind = Literal["single-turn", "agentic"]
"""An experiment's kind: one call per cell, or a conversation against an app."""

PrimaryMetric = Literal["exact", "tool_correct", "args_correct", "abstain_correct", "success"]
"""Metrics an experiment may declare primary (see ``tooltrial.analysis.table.METRICS``);
``success`` is an agentic experiment's, and its default."""


class Experiment(BaseModel):
    """Scenarios × variants, plus the controls applied to every call."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    scenarios: tuple[Scenario, ...]
    variants: tuple[Variant, ...]
    fixed_timestamp: datetime
    """The "now" the model is given, so relative dates are reproducible."""
    temperature: float | None = 0.2
    """None sends no temperature (the provider's default) and records that."""
    zero_persona: bool = True
    """No user profile or memory in the prompt; recorded in every file's metadata."""
    max_tokens: int = 512
    primary_metric: PrimaryMetric = "exact"
    """The one comparison the experiment is for: the report's headline, the one p-value
    not adjusted for multiplicity. Declare it before the run. Default: ``exact``, or
    ``success`` in an agentic experiment."""
    app: str | None = None
    """Agentic experiments: the app the tools act on, ``file.py:Class`` (relative to the
    definition file when loaded from one) or ``module:Class``; see ``tooltrial.apps``."""
    limits: Limits = Field(default_factory=Limits)
    """When an agentic conversation is stopped."""
    source: str | None = None
    """Where it was loaded from; recorded in metadata so analysis can find expectations."""

    @model_validator(mode="before")
    @classmethod
    def _agentic_defaults(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("app") and "primary_metric" not in data:
            data = {**data, "primary_metric": "success"}
        return data

    @property
    def kind(self) -> Kind:
        """The one rule: an experiment that names an app is agentic (tools run against it
        in a conversation); else single-turn (one call per cell). Recorded in every
        file's metadata, so readers of results never decide it again."""
        return "agentic" if self.app is not None else "single-turn"

    @property
    def agentic(self) -> bool:
        return self.kind == "agentic"

    @field_validator("fixed_timestamp")
    @classmethod
    def _timestamp_has_zone(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("fixed_timestamp needs a UTC offset, e.g. 2025-03-12T09:00:00+00:00")
        return value

    @field_validator("temperature", mode="before")
    @classmethod
    def _temperature_in_range(cls, value: object) -> object:
        return value if value is None else check_value("temperature", value)

    @field_validator("max_tokens", mode="before")
    @classmethod
    def _max_tokens_in_range(cls, value: object) -> object:
        return check_value("max_tokens", value)

    @field_validator("name")
    @classmethod
    def _name_is_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank; it names the experiment in every file")
        return value

    @field_validator("scenarios")
    @classmethod
    def _has_scenarios(cls, value: tuple[Scenario, ...]) -> tuple[Scenario, ...]:
        if not value:
            raise ValueError("there are no scenarios: add at least one (a run would make no call)")
        return value

    @field_validator("variants")
    @classmethod
    def _has_variants(cls, value: tuple[Variant, ...]) -> tuple[Variant, ...]:
        if not value:
            raise ValueError("there are no variants: list at least one variant")
        return value

    def variant(self, name: str) -> Variant:
        for variant in self.variants:
            if variant.name == name:
                return variant
        known = ", ".join(v.name for v in self.variants)
        raise DefinitionError(f"unknown variant {name!r}; this experiment has: {known}")

    def scenario(self, scenario_id: str) -> Scenario:
        for scenario in self.scenarios:
            if scenario.id == scenario_id:
                return scenario
        raise DefinitionError(f"unknown scenario {scenario_id!r} in experiment {self.name!r}")

    @property
    def expectations(self) -> Expectations:
        """Every (scenario, variant) expectation compiled; once per experiment object.

        Raises ``ExpectationError`` for a value that cannot be read. A copy with other
        scenarios, variants or timestamp (``model_copy(update=...)``) compiles its own.
        """
        cached = self.__dict__.get("_expectations")
        inputs = (self.scenarios, self.variants, self.fixed_timestamp)
        if not isinstance(cached, Expectations) or not cached.built_from(*inputs):
            cached = compile_expectations(*inputs)
            self.__dict__["_expectations"] = cached  # frozen model: cache beside the fields
        return cached

    @property
    def scenario_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.scenarios)

    def system_prompt(self, variant: Variant) -> str:
        """The variant's prompt plus the fixed "now"; nothing about the user (zero persona)."""
        now = self.fixed_timestamp
        return (
            f"{variant.system_prompt.strip()}\n\n"
            f"Current date and time: {now:%A %Y-%m-%d %H:%M} (UTC{now:%z})."
        )


Problem = tuple[tuple[str | int, ...], str]
"""Where in the entry (a pydantic-style location) and what is wrong."""


def scenario_problem(scenario: Scenario) -> Problem | None:
    """What makes a well-formed scenario meaningless to run, or None."""
    if not scenario.prompt.strip():
        return ("prompt",), (
            "the prompt is empty: write the user's request (providers refuse an empty message)"
        )
    return None


def variant_problem(variant: Variant) -> Problem | None:
    """What makes a well-formed variant unusable, or None."""
    name = variant.name
    if not name.strip() or name.startswith(".") or any(c in name for c in "/\\\0"):
        return ("name",), (
            f"variant name {name!r} names the result files: make it non-blank, "
            "without '/', '\\' or a leading '.'"
        )
    for index, tool in enumerate(variant.tools):
        if not TOOL_NAME.match(tool.name):
            return ("tools", index, "name"), (
                f"tool name {tool.name!r} is refused by providers: use 1 to 64 letters, "
                "digits, '_' or '-'"
            )
    return None


class ScenarioFault(DefinitionError):
    """A fault in one scenario, with where in its entry it lies (``loc``: keys and list
    indices below the entry), so the message names that line of the scenarios file."""

    def __init__(self, message: str, *loc: str | int) -> None:
        super().__init__(message)
        self.loc = loc


def check_experiment(
    experiment: Experiment,
    source: str = "<python>",
    place: Callable[..., str] | None = None,
) -> Experiment:
    """Cross-checks a single model cannot make (ids, variant and tool names), that every
    scenario and variant means something (``scenario_problem``, ``variant_problem``), then
    every expectation compiled; the first problem raises a ``DefinitionError`` naming
    ``source``, or for a scenario's fault ``place(scenario_id, *loc)`` (its file and
    line, when loaded from files)."""
    place = place or (lambda scenario_id, *loc: f"{source}: scenario {scenario_id!r}")
    names = [v.name for v in experiment.variants]
    if len(set(names)) != len(names):
        raise DefinitionError(f"{source}: variant names must be unique; got {names}")
    for variant in experiment.variants:
        problem = variant_problem(variant)
        if problem is not None:
            raise DefinitionError(f"{source}: variant {variant.name!r}: {problem[1]}")
    _check_agentic(experiment, source)
    _check_scenarios(experiment, names, place)
    try:
        experiment.expectations  # noqa: B018 (compiles and caches)
    except ExpectationError as exc:
        raise ExpectationError(_placed(str(exc), source, place)) from None
    return experiment


def _placed(
    message: str, source: str, place: Callable[..., str], loc: tuple[str | int, ...] = ()
) -> str:
    """A message about ``scenario 'id'…`` led by that scenario's place (file and line)."""
    found = re.match(r"scenario '([^']*)'", message)
    if found is None:
        return f"{source}: {message}"
    return place(found.group(1), *loc) + message[found.end() :]


def _check_scenarios(experiment: Experiment, names: list[str], place: Callable[..., str]) -> None:
    seen: set[str] = set()
    for scenario in experiment.scenarios:
        # The place (a file read again) is looked up only for a message.
        plain = f"scenario {scenario.id!r}"
        try:
            _check_scenario(experiment, names, scenario, plain, seen)
        except DefinitionError as exc:
            loc = exc.loc if isinstance(exc, ScenarioFault) else ()
            raise DefinitionError(_placed(str(exc), "", place, loc)) from None


def _check_scenario(
    experiment: Experiment, names: list[str], scenario: Scenario, where: str, seen: set[str]
) -> None:
    problem = scenario_problem(scenario)
    if problem is not None:
        raise ScenarioFault(f"{where}: {problem[1]}", *problem[0])
    if scenario.id in seen:
        raise ScenarioFault(f"{where}: duplicate id; give each scenario its own id", "id")
    seen.add(scenario.id)
    _check_kind(experiment, scenario, where)
    for key in [*scenario.expect, *(scenario.success.forbidden if scenario.success else ())]:
        if key != "*" and key not in names:
            loc = ("expect", key) if key in scenario.expect else ("success", "forbidden", key)
            raise ScenarioFault(
                f"{where}: expectation for unknown variant {key!r}; "
                f"use one of {', '.join(names)} or '*'",
                *loc,
            )
    for variant in experiment.variants:
        _check_tools(scenario, variant, where)


def _check_kind(experiment: Experiment, scenario: Scenario, where: str) -> None:
    """A single-turn scenario states expectations; an agentic one, success criteria."""
    if experiment.agentic:
        if scenario.success is None:
            raise DefinitionError(
                f"{where}: this experiment has an app, so each scenario needs 'success:' "
                "(what must hold in the app's final state)"
            )
        if scenario.expect:
            raise ScenarioFault(
                f"{where}: 'expect' scores a single call; in an experiment with an app, "
                "say what must hold at the end under 'success:' instead",
                "expect",
            )
        reference = scenario.success.reference
        if reference is not None and reference.via not in [v.name for v in experiment.variants]:
            raise ScenarioFault(
                f"{where}: the reference replays through variant {reference.via!r}, which "
                "this experiment does not have",
                *("success", "reference", "via"),
            )
        return
    for field_name in ("success", "setup", "user_turns"):
        if getattr(scenario, field_name):
            raise ScenarioFault(
                f"{where}: '{field_name}' needs an app the tools act on; name one with "
                "'app:' in the experiment, or leave it out",
                field_name,
            )
    if not scenario.expect:
        raise DefinitionError(f"{where}: no expectation; add 'expect:' (or '*' for every variant)")


def _check_agentic(experiment: Experiment, source: str) -> None:
    if experiment.agentic:
        for variant in experiment.variants:
            if variant.implementation is None and variant.mcp is None:
                raise DefinitionError(
                    f"{source}: variant {variant.name!r} has no 'implementation:'; in an "
                    "experiment with an app, name the Python file with its tool functions "
                    "(or the MCP server they come from, under 'mcp:')"
                )
        if experiment.primary_metric != "success":
            raise DefinitionError(
                f"{source}: primary_metric {experiment.primary_metric!r} scores a single "
                "call; an experiment with an app is judged by 'success'"
            )
        return
    for variant in experiment.variants:
        if variant.mcp is not None:
            raise DefinitionError(
                f"{source}: variant {variant.name!r} takes its tools from an MCP server, "
                "which needs an app for them to act on; name one with 'app:' (tools that "
                "keep no state: any app, with 'stateless: true')"
            )
    if experiment.primary_metric == "success":
        raise DefinitionError(
            f"{source}: primary_metric 'success' needs an app the tools act on; name one "
            "with 'app:', or declare exact, tool_correct, args_correct or abstain_correct"
        )


def check_tool_names(
    scenario: Scenario, variant: str, tools: frozenset[str], where: str, fix: str = ""
) -> None:
    """Every tool an agentic scenario's forbidden calls and reference name is one of the
    variant's ``tools`` (at load for declared tools; once an MCP server listed its own,
    at the preflight); ``fix`` ends the message."""
    success = scenario.success
    if success is None:
        return
    forbidden = ("success", "forbidden", variant if variant in success.forbidden else "*")
    calls: list[tuple[Any, tuple[str | int, ...]]] = [
        (call, forbidden) for call in success.forbidden_for(variant)
    ]
    reference = success.reference
    if reference is not None and reference.via == variant:
        calls += [(c, ("success", "reference", "calls", i)) for i, c in enumerate(reference.calls)]
    for call, loc in calls:
        if call.tool not in tools:
            raise ScenarioFault(
                f"{where}: names tool {call.tool!r}, which variant {variant!r} "
                f"does not have (it has: {', '.join(sorted(tools))}){fix}",
                *loc,
            )


def _check_tools(scenario: Scenario, variant: Variant, where: str) -> None:
    if scenario.success is not None:
        if variant.mcp is None:  # an MCP variant's tools are checked once listed
            check_tool_names(scenario, variant.name, variant.tool_names, where)
        return
    try:
        expectation = scenario.expectation_for(variant.name)
    except KeyError:
        raise ScenarioFault(
            f"{where}: no expectation for variant {variant.name!r}; add one or a '*'", "expect"
        ) from None
    loc = ("expect", variant.name if variant.name in scenario.expect else "*")
    for call in expectation.calls:
        if call.tool not in variant.tool_names:
            raise ScenarioFault(
                f"{where}: expects tool {call.tool!r}, which variant {variant.name!r} does "
                f"not have (it has: {', '.join(sorted(variant.tool_names))})",
                *loc,
            )
        tool = next(t for t in variant.tools if t.name == call.tool)
        _check_arguments(call, tool.input_schema, variant.name, where, loc)


def _check_arguments(
    call: ExpectedCall,
    schema: dict[str, Any],
    variant: str,
    where: str,
    loc: tuple[str | int, ...],
) -> None:
    """An expectation names only arguments its tool's schema declares (a typo there
    could never match, and would score every answer wrong). Not checked: a schema that
    declares no properties (``input_schema`` left out) and, the opt-out, one with
    ``additionalProperties: true``."""
    declared = set(schema.get("properties") or {})
    if not declared or schema.get("additionalProperties") is True:
        return
    for key in [*call.args, *call.optional]:
        name = str(key).split(".", 1)[0]
        if name not in declared:
            listed = ", ".join(sorted(declared))
            raise ScenarioFault(
                f"{where}: expects argument {name!r} of tool {call.tool!r}, which its "
                f"schema in variant {variant!r} does not declare (it declares: {listed}); "
                "fix the name, or declare it (additionalProperties: true takes any)",
                *loc,
            )
