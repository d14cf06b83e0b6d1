"""Scoring: is one response correct for its scenario, for the variant that produced it?

The rules (the matcher syntax itself is in ``tooltrial.scenarios``):

- ``call`` expectations: ``tool_correct`` when the response called exactly the expected
  tools (as a multiset; in the listed order when ``ordered``). ``args_correct`` is only
  judged when the tools are right (otherwise there is nothing to compare; it is ``None``):
  every required argument is present and matches, every optional one that is present
  matches. Arguments nobody asked for are counted in ``extra_args``; they do not make
  ``args_correct`` false, but they do make ``exact`` false (an invented due date is an
  error). An argument whose value is ``null`` or ``""`` counts as absent.
- ``no_call``: correct when no tool is called and the response has text.
- ``clarify``: correct when no tool is called and the text asks a question, i.e. contains
  a ``?``. ``tool_correct`` there means only "no tool called".
- ``hallucinated``: some called tool is not one of the variant's tools.
- ``exact`` = tool_correct and args_correct (where judged) and no extra arguments and, for
  ``clarify``/``no_call``, the text rule above.

Plain values compare by the expected value's type: booleans only equal booleans, numbers
numerically (not strings of digits), ISO dates/datetimes as instants, other strings
case- and whitespace-insensitively. Dates without a UTC offset are read in the offset of
the experiment's fixed timestamp.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from tooltrial.definitions import Experiment
from tooltrial.definitions.scenarios import Expectation, ExpectedCall
from tooltrial.errors import ExpectationError

_ISO_DAY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")
_MISSING = object()
_MAX_PERMUTATIONS = 5040  # 7 same-named calls; beyond that pair calls in order


@dataclass(frozen=True)
class Score:
    tool_correct: bool
    args_correct: bool | None
    exact: bool
    hallucinated: bool
    extra_args: int
    reason: str
    """Empty when exact; otherwise the first things that went wrong, '; '-separated."""


@dataclass(frozen=True)
class Call:
    """A tool call as scored: only the name and arguments matter."""

    name: str
    arguments: Mapping[str, Any]


# --- values ---------------------------------------------------------------------------


def _norm_text(value: str) -> str:
    return " ".join(value.split()).casefold()


def _parse_instant(text: str, zone: tzinfo) -> datetime | None:
    text = text.strip()
    if not _ISO_DAY.match(text):
        return None
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _parse_day(text: str, zone: tzinfo) -> date | None:
    moment = _parse_instant(text, zone)
    if moment is None:
        return None
    # a bare date has no time; a datetime's day is the one in the experiment's zone
    return moment.date() if len(text.strip()) <= 10 else moment.astimezone(zone).date()


class _Matcher:
    """Checks values against one acceptable-value spec; built once per expectation."""

    def __init__(self, spec: Any, zone: tzinfo, where: str) -> None:
        self.zone = zone
        self.where = where
        self.options = [self._compile(s) for s in (spec if isinstance(spec, list) else [spec])]

    def _bad(self, spec: Any, why: str) -> ExpectationError:
        return ExpectationError(f"{self.where}: cannot evaluate {spec!r}: {why}")

    def _compile(self, spec: Any) -> tuple[str, Any]:
        if isinstance(spec, dict):
            ((key, value),) = spec.items()
            if key == "any":
                if value is not True:
                    raise self._bad(spec, "write {any: true}")
                return ("any", None)
            if key == "contains":
                if not isinstance(value, str) or not value.strip():
                    raise self._bad(spec, "{contains: ...} takes non-empty text")
                return ("contains", _norm_text(value))
            text = value if isinstance(value, str) else str(value)
            if key == "datetime":
                moment = _parse_instant(text, self.zone)
                if moment is None or len(text.strip()) <= 10:
                    raise self._bad(spec, "not an ISO datetime; write e.g. 2025-03-13T15:00")
                return ("datetime", moment)
            day = _parse_day(text, self.zone)
            if day is None:
                raise self._bad(spec, "not an ISO date; write e.g. 2025-03-14")
            return ("date", day)
        if isinstance(spec, bool):
            return ("bool", spec)
        if isinstance(spec, int | float):
            return ("number", spec)
        if isinstance(spec, str):
            if _ISO_DAY.match(spec):
                moment = _parse_instant(spec, self.zone)
                if moment is None:
                    raise self._bad(spec, "looks like a date but is not ISO 8601")
                if len(spec.strip()) <= 10:
                    return ("date", moment.date())
                return ("datetime", moment)
            return ("text", _norm_text(spec))
        if spec is None:
            raise self._bad(spec, "null matches nothing (null counts as absent); leave it out")
        raise self._bad(spec, "expected a value, a matcher or a list of them")

    def matches(self, value: Any) -> bool:
        return any(self._one(kind, want, value) for kind, want in self.options)

    def _one(self, kind: str, want: Any, value: Any) -> bool:
        if kind == "any":
            return True
        if kind == "bool":
            return isinstance(value, bool) and value == want
        if kind == "number":
            return isinstance(value, int | float) and not isinstance(value, bool) and value == want
        if not isinstance(value, str):
            return False
        if kind == "text":
            return _norm_text(value) == want
        if kind == "contains":
            return want in _norm_text(value)
        if kind == "datetime":
            return _parse_instant(value, self.zone) == want
        return _parse_day(value, self.zone) == want


# --- arguments ------------------------------------------------------------------------


def _lookup(arguments: Mapping[str, Any], path: str) -> Any:
    value: Any = arguments
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return _MISSING if value is None or value == "" else value


def _leaves(arguments: Mapping[str, Any], prefix: str = "") -> list[str]:
    paths = []
    for key, value in arguments.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            paths.extend(_leaves(value, path + "."))
        elif value is not None and value != "" and value != {}:
            paths.append(path)
    return paths


@dataclass(frozen=True)
class _CompiledCall:
    tool: str
    required: dict[str, _Matcher]
    optional: dict[str, _Matcher]

    def check(self, call: Call) -> tuple[list[str], list[str]]:
        """(problems with the asked-for arguments, extra argument paths)."""
        problems = []
        for path, matcher in self.required.items():
            value = _lookup(call.arguments, path)
            if value is _MISSING:
                problems.append(f"{self.tool}: missing argument {path}")
            elif not matcher.matches(value):
                problems.append(f"{self.tool}: argument {path}={_short(value)} is not acceptable")
        for path, matcher in self.optional.items():
            value = _lookup(call.arguments, path)
            if value is not _MISSING and not matcher.matches(value):
                problems.append(f"{self.tool}: argument {path}={_short(value)} is not acceptable")
        known = [*self.required, *self.optional]
        extras = [
            leaf
            for leaf in _leaves(call.arguments)
            if not any(leaf == k or leaf.startswith(k + ".") for k in known)
        ]
        return problems, extras


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- whole responses ------------------------------------------------------------------


class Scorer:
    """Scores results of one experiment; every expectation is checked when it is built."""

    def __init__(self, experiment: Experiment) -> None:
        zone = experiment.fixed_timestamp.tzinfo
        assert zone is not None  # Experiment enforces an offset
        self._tools = {v.name: v.tool_names for v in experiment.variants}
        self._compiled: dict[tuple[str, str], tuple[Expectation, list[_CompiledCall]]] = {}
        for scenario in experiment.scenarios:
            for variant in experiment.variants:
                expectation = scenario.expectation_for(variant.name)
                where = f"scenario {scenario.id!r}, variant {variant.name!r}"
                calls = [
                    _compile_call(call, index, zone, where)
                    for index, call in enumerate(expectation.calls, start=1)
                ]
                self._compiled[(scenario.id, variant.name)] = (expectation, calls)

    def kind(self, scenario_id: str, variant: str) -> str:
        return self._entry(scenario_id, variant)[0].kind

    def _entry(self, scenario_id: str, variant: str) -> tuple[Expectation, list[_CompiledCall]]:
        try:
            return self._compiled[(scenario_id, variant)]
        except KeyError:
            raise ExpectationError(
                f"no expectation for scenario {scenario_id!r} and variant {variant!r} in this "
                "experiment; pass the definition the results came from with --experiment"
            ) from None

    def score(self, scenario_id: str, variant: str, calls: Sequence[Call], text: str) -> Score:
        expectation, compiled = self._entry(scenario_id, variant)
        names = [c.name for c in calls]
        unknown = sorted({n for n in names if n not in self._tools[variant]})
        hallucinated = bool(unknown)
        prefix = [f"hallucinated tool(s): {', '.join(unknown)}"] if unknown else []
        if expectation.kind != "call":
            return _score_no_call(expectation.kind, names, text, hallucinated, prefix)
        wanted = [c.tool for c in compiled]
        if Counter(names) != Counter(wanted):
            got = ", ".join(names) or "no tool call"
            reason = [*prefix, f"expected {', '.join(wanted)}; got {got}"]
            return Score(False, None, False, hallucinated, 0, "; ".join(reason))
        if expectation.ordered and names != wanted:
            reason = [*prefix, f"order: expected {', '.join(wanted)}; got {', '.join(names)}"]
            return Score(False, None, False, hallucinated, 0, "; ".join(reason))
        problems, extras = _best_pairing(compiled, list(calls), expectation.ordered)
        reasons = [*prefix, *problems, *(f"extra argument {e}" for e in extras)]
        args_ok = not problems
        exact = args_ok and not extras
        return Score(True, args_ok, exact, hallucinated, len(extras), "; ".join(reasons))


def _compile_call(call: ExpectedCall, index: int, zone: tzinfo, where: str) -> _CompiledCall:
    def build(specs: dict[str, Any]) -> dict[str, _Matcher]:
        return {
            path: _Matcher(spec, zone, f"{where}, call #{index} {call.tool!r}, argument {path!r}")
            for path, spec in specs.items()
        }

    both = sorted(set(call.args) & set(call.optional))
    if both:
        raise ExpectationError(
            f"{where}, call #{index} {call.tool!r}: {', '.join(both)} listed both under args "
            "and optional; keep one"
        )
    return _CompiledCall(call.tool, build(call.args), build(call.optional))


def _score_no_call(
    kind: str, names: list[str], text: str, hallucinated: bool, prefix: list[str]
) -> Score:
    if names:
        reason = [*prefix, f"called {', '.join(names)} (expected {kind.replace('_', ' ')})"]
        return Score(False, None, False, hallucinated, 0, "; ".join(reason))
    if kind == "clarify" and "?" not in text:
        return Score(True, None, False, False, 0, "no tool call, but no question asked")
    if kind == "no_call" and not text.strip():
        return Score(True, None, False, False, 0, "empty response")
    return Score(True, None, True, False, 0, "")


def _best_pairing(
    expected: list[_CompiledCall], calls: list[Call], ordered: bool
) -> tuple[list[str], list[str]]:
    """Pair expected and actual calls (same tool) so that the fewest things are wrong."""
    if ordered:
        return _pairing_cost(list(zip(expected, calls, strict=True)))
    groups = sorted({e.tool for e in expected})
    options = []
    for tool in groups:
        exp = [e for e in expected if e.tool == tool]
        act = [c for c in calls if c.name == tool]
        perms = itertools.permutations(act) if len(act) <= 7 else iter([tuple(act)])
        options.append([list(zip(exp, p, strict=True)) for p in itertools.islice(perms, 5040)])
    best: tuple[list[str], list[str]] | None = None
    for combo in itertools.islice(itertools.product(*options), _MAX_PERMUTATIONS):
        pairs = [pair for group in combo for pair in group]
        result = _pairing_cost(pairs)
        if best is None or len(result[0]) + len(result[1]) < len(best[0]) + len(best[1]):
            best = result
        if not best[0] and not best[1]:
            break
    assert best is not None
    return best


def _pairing_cost(pairs: list[tuple[_CompiledCall, Call]]) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    extras: list[str] = []
    for expected, call in pairs:
        p, e = expected.check(call)
        problems += p
        extras += [f"{call.name}.{x}" if len(pairs) > 1 else x for x in e]
    return problems, extras
