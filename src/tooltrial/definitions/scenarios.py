"""Scenarios: a user request plus what a correct answer looks like, per variant.

Expectations are data, not code, so a scorer (``tooltrial.analysis``) can read them
and a person can review them without reading Python.

An acceptable argument value is written as one of:

- a plain value (``"task"``, ``3``, ``true``): equal, type-aware (numbers compare
  numerically, strings case- and whitespace-insensitively, ISO dates/datetimes as instants);
- ``{contains: "dentist"}``: a string containing this text (case-insensitive);
- ``{datetime: "2025-03-13T15:00"}`` / ``{date: "2025-03-14"}``: the same instant or day,
  whatever common format the model wrote it in (the expectation itself must be ISO 8601;
  see ``tooltrial.definitions.dates``);
- ``{any: true}``: present, any value;
- a list of the above: any one of them is acceptable.

Nested arguments (API-shaped tools often take a ``payload`` object) are addressed with
dotted paths: ``payload.title``.

This module checks an expectation's shape as it is read; ``tooltrial.definitions.matchers``
compiles every value when the experiment is loaded, so one that cannot be read (``{date:
"next week"}``) stops loading too.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MATCHER_KEYS = frozenset({"contains", "datetime", "date", "any"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_matcher(value: Any, where: str) -> None:
    if isinstance(value, list):
        if not value:
            raise ValueError(f"{where}: an empty list accepts nothing; list acceptable values")
        for item in value:
            _check_matcher(item, where)
    elif isinstance(value, dict) and (len(value) != 1 or next(iter(value)) not in MATCHER_KEYS):
        raise ValueError(
            f"{where}: a matcher is one of {{contains: ...}}, {{datetime: ...}}, "
            f"{{date: ...}}, {{any: true}}; got {value!r}"
        )


class ExpectedCall(_Frozen):
    """One tool call a correct answer makes."""

    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    """Required arguments: dotted path -> acceptable value(s)."""
    optional: dict[str, Any] = Field(default_factory=dict)
    """Arguments that may be left out, but must match when given."""
    selects: tuple[str, ...] = ()
    """Arguments (under ``args`` or ``optional``) that are part of *choosing the action*,
    not of carrying it out: ``resource_type`` of a generic ``create_record`` picks task vs
    event as ``add_task`` vs ``create_event`` does by name. Action selection counts them
    with the tool, so it means the same in every variant."""

    @model_validator(mode="after")
    def _matchers_are_valid(self) -> ExpectedCall:
        for path, value in {**self.args, **self.optional}.items():
            _check_matcher(value, f"argument {path!r} of {self.tool!r}")
        unknown = [p for p in self.selects if p not in self.args and p not in self.optional]
        if unknown:
            raise ValueError(
                f"selects {', '.join(unknown)} of {self.tool!r}: list only arguments "
                "that are under 'args' or 'optional'"
            )
        return self


class Expectation(_Frozen):
    """What a correct answer is for one variant.

    ``call``: the listed tool calls (in order when ``ordered``); ``no_call``: answer in
    text without any tool; ``clarify``: no tool, and ask the user a question instead.
    """

    kind: Literal["call", "no_call", "clarify"] = "call"
    calls: tuple[ExpectedCall, ...] = ()
    ordered: bool = False

    @model_validator(mode="before")
    @classmethod
    def _infer_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and "kind" not in data:
            data = {**data, "kind": "call" if data.get("calls") else "no_call"}
        return data

    @model_validator(mode="after")
    def _calls_match_kind(self) -> Expectation:
        if self.kind == "call" and not self.calls:
            raise ValueError("kind 'call' needs at least one entry under 'calls'")
        if self.kind != "call" and self.calls:
            raise ValueError(f"kind {self.kind!r} takes no 'calls'")
        return self


class Scenario(_Frozen):
    """A user request, with the correct answer for each variant.

    ``expect`` maps a variant name (or ``"*"`` for every variant not named) to its
    expectation.
    """

    id: str
    prompt: str
    category: str = "general"
    notes: str = ""
    expect: dict[str, Expectation]

    @field_validator("id")
    @classmethod
    def _id_is_a_slug(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value):
            raise ValueError(f"scenario id {value!r} must be non-empty with no spaces")
        return value

    def expectation_for(self, variant: str) -> Expectation:
        if variant in self.expect:
            return self.expect[variant]
        if "*" in self.expect:
            return self.expect["*"]
        raise KeyError(f"scenario {self.id!r} states no expectation for variant {variant!r}")
