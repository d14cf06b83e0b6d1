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

from tooltrial.definitions.agentic import Success
from tooltrial.definitions.calls import MATCHER_KEYS, ExpectedCall, check_matcher

__all__ = ["MATCHER_KEYS", "Expectation", "ExpectedCall", "Scenario", "check_matcher"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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
    expectation (single-turn experiments). In an agentic experiment (one with an app),
    ``success`` says what must hold at the end instead, the same for every variant;
    ``setup`` adds rows to the app's seeded state (table -> rows) and ``user_turns``
    scripts what the user says each time the model answers (a reply to a clarifying
    question, a confirmation).
    """

    id: str
    prompt: str
    category: str = "general"
    notes: str = ""
    expect: dict[str, Expectation] = Field(default_factory=dict)
    success: Success | None = None
    setup: dict[str, tuple[dict[str, Any], ...]] = Field(default_factory=dict)
    user_turns: tuple[str, ...] = ()

    @field_validator("id")
    @classmethod
    def _id_is_a_slug(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value):
            raise ValueError(f"scenario id {value!r} must be non-empty with no spaces")
        return value

    @field_validator("user_turns")
    @classmethod
    def _turns_not_blank(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        blank = [n for n, text in enumerate(value, 1) if not text.strip()]
        if blank:
            raise ValueError(
                f"user turn #{blank[0]} is blank; write what the user says, or leave the "
                "turn out (a blank message is never sent)"
            )
        return value

    def expectation_for(self, variant: str) -> Expectation:
        if variant in self.expect:
            return self.expect[variant]
        if "*" in self.expect:
            return self.expect["*"]
        raise KeyError(f"scenario {self.id!r} states no expectation for variant {variant!r}")
