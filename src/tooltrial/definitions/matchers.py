"""Expectations compiled into matchers, once, when the experiment is loaded.

Guarantees:

- ``compile_expectations`` reads every acceptable value of every expectation; one that
  cannot be read raises ``ExpectationError`` (a ``DefinitionError``) naming the scenario,
  variant, call, argument and value, and saying what is accepted. ``check_experiment``
  runs it on every loaded experiment, so a bad value stops loading before any call.
- Matching never raises: a value of the wrong type, or a date that cannot be read,
  simply does not match.
- Plain values compare by the expected value's type: booleans only equal booleans,
  numbers numerically (not strings of digits), ISO dates/datetimes as days/instants
  (see ``tooltrial.definitions.dates`` for what a model may write), other strings
  case- and whitespace-insensitively.
- An argument whose value is ``null`` or ``""`` counts as absent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from tooltrial.definitions import dates
from tooltrial.definitions.agentic import RowCheck, Success
from tooltrial.definitions.scenarios import Expectation, ExpectedCall, Scenario
from tooltrial.definitions.variants import Variant
from tooltrial.errors import ExpectationError

MISSING: Any = object()
"""What ``lookup`` returns for an absent argument."""

_DATE_HELP = (
    "write an ISO 8601 date such as 2025-03-14 (expectations must be unambiguous; "
    "the model may write the day in any common format)"
)
_DATETIME_HELP = (
    "write an ISO 8601 date and time such as 2025-03-13T15:00, optionally with an offset "
    "(+01:00 or Z; without one it is read in the fixed timestamp's offset)"
)


def _norm_text(value: str) -> str:
    return " ".join(value.split()).casefold()


@dataclass(frozen=True)
class _Option:
    """One acceptable value: a kind and the compiled value it is compared with."""

    kind: str
    want: Any

    def matches(self, value: Any, zone: tzinfo) -> bool:
        check = _CHECKS[self.kind]
        return check(self.want, value, zone)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _written(value: Any, zone: tzinfo) -> dates.Written | None:
    return dates.read_written(value, zone) if isinstance(value, str) else None


def _same_instant(want: datetime, value: Any, zone: tzinfo) -> bool:
    written = _written(value, zone)
    return written is not None and written.has_time and written.moment == want


def _same_day(want: date, value: Any, zone: tzinfo) -> bool:
    written = _written(value, zone)
    return written is not None and written.day(zone) == want


_CHECKS: dict[str, Callable[[Any, Any, tzinfo], bool]] = {
    "any": lambda want, value, zone: True,
    "bool": lambda want, value, zone: isinstance(value, bool) and value == want,
    "number": lambda want, value, zone: _is_number(value) and value == want,
    "text": lambda want, value, zone: isinstance(value, str) and _norm_text(value) == want,
    "contains": lambda want, value, zone: isinstance(value, str) and want in _norm_text(value),
    "datetime": _same_instant,
    "date": _same_day,
}


@dataclass(frozen=True)
class Matcher:
    """The acceptable values of one argument; a value matches if any option does."""

    options: tuple[_Option, ...]
    zone: tzinfo

    def matches(self, value: Any) -> bool:
        return any(option.matches(value, self.zone) for option in self.options)


def compile_matcher(spec: Any, zone: tzinfo, where: str) -> Matcher:
    """A matcher for ``spec`` (a value, a ``{kind: value}`` matcher, or a list of them)."""
    specs = spec if isinstance(spec, list) else [spec]
    return Matcher(tuple(_compile_option(s, zone, where) for s in specs), zone)


def _bad(where: str, spec: Any, why: str) -> ExpectationError:
    return ExpectationError(f"{where}: cannot evaluate {spec!r}: {why}")


def _compile_option(spec: Any, zone: tzinfo, where: str) -> _Option:
    if isinstance(spec, dict):
        return _compile_keyed(spec, zone, where)
    if isinstance(spec, bool):
        return _Option("bool", spec)
    if isinstance(spec, int | float):
        return _Option("number", spec)
    if isinstance(spec, str):
        return _compile_text(spec, zone, where)
    if spec is None:
        raise _bad(where, spec, "null matches nothing (null counts as absent); leave it out")
    raise _bad(where, spec, "expected a value, a matcher or a list of them")


def _compile_keyed(spec: dict[str, Any], zone: tzinfo, where: str) -> _Option:
    ((key, value),) = spec.items()  # the shape was checked when the scenario was read
    if key == "any":
        if value is not True:
            raise _bad(where, spec, "write {any: true}")
        return _Option("any", None)
    if key == "contains":
        if not isinstance(value, str) or not value.strip():
            raise _bad(where, spec, "{contains: ...} takes non-empty text")
        return _Option("contains", _norm_text(value))
    text = value if isinstance(value, str) else str(value)
    if key == "datetime":
        moment = dates.iso_instant(text, zone)
        if moment is None:
            raise _bad(where, spec, f"not an ISO datetime; {_DATETIME_HELP}")
        return _Option("datetime", moment)
    day = dates.iso_day(text)
    if day is None:
        raise _bad(where, spec, f"not an ISO date; {_DATE_HELP}")
    return _Option("date", day)


def _compile_text(spec: str, zone: tzinfo, where: str) -> _Option:
    if not dates.LOOKS_ISO.match(spec):
        return _Option("text", _norm_text(spec))
    day = dates.iso_day(spec)
    if day is not None:
        return _Option("date", day)
    moment = dates.iso_instant(spec, zone)
    if moment is None:
        why = f"looks like a date but is not ISO 8601; {_DATE_HELP}, or {_DATETIME_HELP}"
        raise _bad(where, spec, why)
    return _Option("datetime", moment)


# --- arguments ------------------------------------------------------------------------


def lookup(arguments: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, or ``MISSING`` (also for ``null`` and ``""``)."""
    value: Any = arguments
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return MISSING if value is None or value == "" else value


def leaves(arguments: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of every non-empty leaf value."""
    paths = []
    for key, value in arguments.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            paths.extend(leaves(value, path + "."))
        elif value is not None and value != "" and value != {}:
            paths.append(path)
    return paths


def short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class CompiledCall:
    """One expected call: its tool, and matchers for required and optional arguments."""

    tool: str
    required: Mapping[str, Matcher]
    optional: Mapping[str, Matcher]
    selects: frozenset[str] = frozenset()
    """Arguments that choose the action (see ``ExpectedCall.selects``)."""

    def selection_problems(self, arguments: Mapping[str, Any]) -> list[str]:
        """What is wrong with the arguments that choose the action."""
        matchers = {**self.optional, **self.required}
        return [
            problem
            for path in sorted(self.selects)
            if (problem := self._problem(arguments, path, matchers[path], path in self.required))
        ]

    def check(self, arguments: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """(problems with the asked-for arguments, paths of arguments nobody asked for)."""
        problems = [
            problem
            for path, matcher in [*self.required.items(), *self.optional.items()]
            if (problem := self._problem(arguments, path, matcher, path in self.required))
        ]
        known = [*self.required, *self.optional]
        extras = [
            leaf
            for leaf in leaves(arguments)
            if not any(leaf == k or leaf.startswith(k + ".") for k in known)
        ]
        return problems, extras

    def _problem(
        self, arguments: Mapping[str, Any], path: str, matcher: Matcher, required: bool
    ) -> str | None:
        value = lookup(arguments, path)
        if value is MISSING:
            return f"{self.tool}: missing argument {path}" if required else None
        if matcher.matches(value):
            return None
        return f"{self.tool}: argument {path}={short(value)} is not acceptable"


@dataclass(frozen=True)
class CompiledExpectation:
    """What a correct answer is for one (scenario, variant), ready to score."""

    kind: str
    ordered: bool
    calls: tuple[CompiledCall, ...]


@dataclass(frozen=True)
class CompiledRowCheck:
    """A ``RowCheck`` ready to judge: matchers on the selecting and the checked columns."""

    check: RowCheck
    where: Mapping[str, Matcher]
    values: Mapping[str, Matcher]

    def selects(self, row: Mapping[str, Any]) -> bool:
        return all(m.matches(row.get(column)) for column, m in self.where.items())

    def problems(self, row: Mapping[str, Any]) -> list[str]:
        return [
            f"{column}={short(row.get(column))} is not acceptable"
            for column, matcher in self.values.items()
            if not matcher.matches(row.get(column))
        ]


@dataclass(frozen=True)
class CompiledSuccess:
    """A scenario's success criteria with every matcher compiled."""

    success: Success
    state: tuple[CompiledRowCheck, ...]
    forbidden: Mapping[str, tuple[CompiledCall, ...]]
    """Per variant name (every variant of the experiment)."""


class Expectations:
    """Every (scenario, variant) expectation of an experiment, compiled, and every agentic
    scenario's success criteria."""

    def __init__(
        self,
        compiled: dict[tuple[str, str], CompiledExpectation],
        built_from: tuple[Any, ...],
        success: dict[str, CompiledSuccess] | None = None,
    ) -> None:
        self._compiled = compiled
        self._built_from = built_from
        self._success = success or {}

    def get(self, scenario_id: str, variant: str) -> CompiledExpectation:
        """Raises ``KeyError`` for a scenario or variant the experiment does not have."""
        return self._compiled[(scenario_id, variant)]

    def success(self, scenario_id: str) -> CompiledSuccess:
        """An agentic scenario's criteria; ``KeyError`` for any other."""
        return self._success[scenario_id]

    def built_from(self, *inputs: Any) -> bool:
        """Whether these are the very objects it was compiled from (not copies, not edits)."""
        return len(inputs) == len(self._built_from) and all(
            a is b for a, b in zip(inputs, self._built_from, strict=True)
        )


def compile_expectations(
    scenarios: tuple[Scenario, ...], variants: tuple[Variant, ...], now: datetime
) -> Expectations:
    """Compile every scenario's expectation for every variant; the first bad value raises.

    Dates without an offset are read in ``now``'s (the experiment's fixed timestamp).
    """
    zone = now.tzinfo
    if zone is None:
        raise ExpectationError("the fixed timestamp needs a UTC offset to read dates in")
    compiled = {}
    success = {}
    for scenario in scenarios:
        if scenario.success is not None:
            names = [v.name for v in variants]
            where = f"scenario {scenario.id!r}"
            success[scenario.id] = compile_success(scenario.success, names, zone, where)
        if not scenario.expect:
            continue
        for variant in variants:
            where = f"scenario {scenario.id!r}, variant {variant.name!r}"
            expectation = scenario.expectation_for(variant.name)
            compiled[(scenario.id, variant.name)] = compile_expectation(expectation, zone, where)
    return Expectations(compiled, (scenarios, variants, now), success)


def compile_success(
    success: Success, variants: list[str], zone: tzinfo, where: str
) -> CompiledSuccess:
    def build(specs: dict[str, Any], place: str) -> dict[str, Matcher]:
        return {
            column: compile_matcher(spec, zone, f"{where}, {place}, column {column!r}")
            for column, spec in specs.items()
        }

    state = tuple(
        CompiledRowCheck(
            check,
            build(check.where, f"state check #{index} where"),
            build(check.values, f"state check #{index} values"),
        )
        for index, check in enumerate(success.state, start=1)
    )
    forbidden = {
        name: tuple(
            compile_call(call, zone, f"{where}, forbidden call {call.tool!r}")
            for call in success.forbidden_for(name)
        )
        for name in variants
    }
    return CompiledSuccess(success, state, forbidden)


def compile_expectation(expectation: Expectation, zone: tzinfo, where: str) -> CompiledExpectation:
    calls = tuple(
        compile_call(call, zone, f"{where}, call #{index} {call.tool!r}")
        for index, call in enumerate(expectation.calls, start=1)
    )
    return CompiledExpectation(expectation.kind, expectation.ordered, calls)


def compile_call(call: ExpectedCall, zone: tzinfo, where: str) -> CompiledCall:
    both = sorted(set(call.args) & set(call.optional))
    if both:
        raise ExpectationError(
            f"{where}: {', '.join(both)} listed both under args and optional; keep one"
        )

    def build(specs: dict[str, Any]) -> dict[str, Matcher]:
        return {
            path: compile_matcher(spec, zone, f"{where}, argument {path!r}")
            for path, spec in specs.items()
        }

    return CompiledCall(call.tool, build(call.args), build(call.optional), frozenset(call.selects))
