"""An experiment: scenarios × variants under fixed controls, and the checks across them.

``check_experiment`` makes the cross-checks no single model can (unique ids, known
variants and tools) and compiles every expectation (``Experiment.expectations``); it runs
on every experiment, however it was loaded, so an expectation that cannot be scored
stops loading, before any call, with a message naming the file, scenario, argument and
value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from tooltrial.definitions.matchers import Expectations, compile_expectations
from tooltrial.definitions.scenarios import Scenario
from tooltrial.definitions.variants import Variant
from tooltrial.errors import DefinitionError, ExpectationError

PrimaryMetric = Literal["exact", "tool_correct", "args_correct", "abstain_correct"]
"""Metrics an experiment may declare primary (see ``tooltrial.analysis.table.METRICS``)."""


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
    not adjusted for multiplicity. Declare it before the run."""
    source: str | None = None
    """Where it was loaded from; recorded in metadata so analysis can find expectations."""

    @field_validator("fixed_timestamp")
    @classmethod
    def _timestamp_has_zone(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("fixed_timestamp needs a UTC offset, e.g. 2025-03-12T09:00:00+00:00")
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


def check_experiment(experiment: Experiment, source: str = "<python>") -> Experiment:
    """Cross-checks a single model cannot make (ids, variant and tool names), then every
    expectation compiled; the first problem raises a ``DefinitionError`` naming ``source``."""
    names = [v.name for v in experiment.variants]
    if len(set(names)) != len(names):
        raise DefinitionError(f"{source}: variant names must be unique; got {names}")
    _check_scenarios(experiment, names, source)
    try:
        experiment.expectations  # noqa: B018 (compiles and caches)
    except ExpectationError as exc:
        raise ExpectationError(f"{source}: {exc}") from None
    return experiment


def _check_scenarios(experiment: Experiment, names: list[str], source: str) -> None:
    seen: set[str] = set()
    for scenario in experiment.scenarios:
        where = f"{source}: scenario {scenario.id!r}"
        if scenario.id in seen:
            raise DefinitionError(f"{where}: duplicate id; give each scenario its own id")
        seen.add(scenario.id)
        for key in scenario.expect:
            if key != "*" and key not in names:
                raise DefinitionError(
                    f"{where}: expectation for unknown variant {key!r}; "
                    f"use one of {', '.join(names)} or '*'"
                )
        for variant in experiment.variants:
            _check_tools(scenario, variant, where)


def _check_tools(scenario: Scenario, variant: Variant, where: str) -> None:
    try:
        expectation = scenario.expectation_for(variant.name)
    except KeyError:
        raise DefinitionError(
            f"{where}: no expectation for variant {variant.name!r}; add one or a '*'"
        ) from None
    for call in expectation.calls:
        if call.tool not in variant.tool_names:
            raise DefinitionError(
                f"{where}: expects tool {call.tool!r}, which variant {variant.name!r} does "
                f"not have (it has: {', '.join(sorted(variant.tool_names))})"
            )
