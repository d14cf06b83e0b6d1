"""Scoring: is one response correct for its scenario, for the variant that produced it?

The matchers (what an acceptable argument value is, and how dates are read) are compiled
when the experiment is loaded: ``tooltrial.definitions.matchers``. The rules here:

- ``call`` expectations: ``tool_correct`` when the response called exactly the expected
  tools (as a multiset; in the listed order when ``ordered``). ``args_correct`` is only
  judged when the tools are right (otherwise there is nothing to compare; it is ``None``):
  every required argument is present and matches, every optional one that is present
  matches. Arguments nobody asked for are counted in ``extra_args``; they do not make
  ``args_correct`` false, but they do make ``exact`` false (an invented due date is an
  error). An argument whose value is ``null`` or ``""`` counts as absent.
- ``malformed_args``: a call whose arguments the model wrote as something other than a
  JSON object (stored as ``{"_unparsed": raw}``) is its own failure: ``malformed`` is
  true, ``args_correct`` false (when the tools are right), ``extra_args`` 0, and the
  reason begins ``malformed_args:``. It is never scored as a call with an extra argument.
- ``no_call``: correct when no tool is called and the response has text.
- ``clarify``: correct when no tool is called and the text asks a question, i.e. contains
  a ``?``. ``tool_correct`` there means only "no tool called".
- ``hallucinated``: some called tool is not one of the variant's tools.
- ``exact`` = tool_correct and args_correct (where judged) and no extra arguments and, for
  ``clarify``/``no_call``, the text rule above.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tooltrial.definitions import Experiment
from tooltrial.definitions.matchers import CompiledCall, CompiledExpectation, short
from tooltrial.errors import ExpectationError
from tooltrial.types import malformed_arguments

MALFORMED = "malformed_args"
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
    malformed: bool = False
    """Some call's arguments were not a JSON object (reason starts ``malformed_args:``)."""


@dataclass(frozen=True)
class Call:
    """A tool call as scored: only the name and arguments matter."""

    name: str
    arguments: Mapping[str, Any]


# --- whole responses ------------------------------------------------------------------


class Scorer:
    """Scores results of one experiment with the matchers compiled when it was loaded."""

    def __init__(self, experiment: Experiment) -> None:
        self._tools = {v.name: v.tool_names for v in experiment.variants}
        self._expectations = experiment.expectations  # compiled once per experiment

    def kind(self, scenario_id: str, variant: str) -> str:
        return self._entry(scenario_id, variant).kind

    def _entry(self, scenario_id: str, variant: str) -> CompiledExpectation:
        try:
            return self._expectations.get(scenario_id, variant)
        except KeyError:
            raise ExpectationError(
                f"no expectation for scenario {scenario_id!r} and variant {variant!r} in this "
                "experiment; pass the definition the results came from with --experiment"
            ) from None

    def score(self, scenario_id: str, variant: str, calls: Sequence[Call], text: str) -> Score:
        expectation = self._entry(scenario_id, variant)
        names = [c.name for c in calls]
        unknown = sorted({n for n in names if n not in self._tools[variant]})
        malformed = _malformed_reasons(calls)
        prefix = [*malformed, *([f"hallucinated tool(s): {', '.join(unknown)}"] if unknown else [])]
        flags = _Flags(hallucinated=bool(unknown), malformed=bool(malformed))
        if expectation.kind != "call":
            return _score_no_call(expectation.kind, names, text, flags, prefix)
        wanted = [c.tool for c in expectation.calls]
        if Counter(names) != Counter(wanted):
            got = ", ".join(names) or "no tool call"
            reason = f"expected {', '.join(wanted)}; got {got}"
            return flags.score(False, None, 0, [*prefix, reason])
        if expectation.ordered and names != wanted:
            reason = f"order: expected {', '.join(wanted)}; got {', '.join(names)}"
            return flags.score(False, None, 0, [*prefix, reason])
        if malformed:
            return flags.score(True, False, 0, prefix)
        pairs = _best_pairing(expectation.calls, list(calls), expectation.ordered)
        wrong_action = [p for e, c in pairs for p in e.selection_problems(c.arguments)]
        if wrong_action:  # the right tool, but the wrong action chosen through it
            return flags.score(False, None, 0, [*prefix, *(f"action: {p}" for p in wrong_action)])
        problems, extras = _pairing_cost(pairs)
        reasons = [*prefix, *problems, *(f"extra argument {e}" for e in extras)]
        return flags.score(True, not problems, len(extras), reasons)


@dataclass(frozen=True)
class _Flags:
    """What is true of a response whatever its expectation."""

    hallucinated: bool
    malformed: bool

    def score(self, tool_ok: bool, args_ok: bool | None, extras: int, reasons: list[str]) -> Score:
        exact = tool_ok and args_ok is not False and not extras and not reasons
        return Score(
            tool_ok, args_ok, exact, self.hallucinated, extras, "; ".join(reasons), self.malformed
        )


def _malformed_reasons(calls: Sequence[Call]) -> list[str]:
    return [
        f"{MALFORMED}: {c.name or '(no name)'} arguments are not a JSON object: {short(raw)}"
        for c in calls
        if (raw := malformed_arguments(c.arguments)) is not None
    ]


def _score_no_call(
    kind: str, names: list[str], text: str, flags: _Flags, prefix: list[str]
) -> Score:
    if names:
        reason = f"called {', '.join(names)} (expected {kind.replace('_', ' ')})"
        return flags.score(False, None, 0, [*prefix, reason])
    if kind == "clarify" and "?" not in text:
        return flags.score(True, None, 0, ["no tool call, but no question asked"])
    if kind == "no_call" and not text.strip():
        return flags.score(True, None, 0, ["empty response"])
    return flags.score(True, None, 0, [])


def _best_pairing(
    expected: Sequence[CompiledCall], calls: list[Call], ordered: bool
) -> list[tuple[CompiledCall, Call]]:
    """Pair expected and actual calls (same tool) so that the fewest things are wrong."""
    if ordered:
        return list(zip(expected, calls, strict=True))
    best: list[tuple[CompiledCall, Call]] | None = None
    best_cost = 0
    for pairs in itertools.islice(_pairings(expected, calls), _MAX_PERMUTATIONS):
        problems, extras = _pairing_cost(pairs)
        if best is None or len(problems) + len(extras) < best_cost:
            best, best_cost = pairs, len(problems) + len(extras)
        if best_cost == 0:
            break
    assert best is not None
    return best


def _pairings(
    expected: Sequence[CompiledCall], calls: list[Call]
) -> Iterator[list[tuple[CompiledCall, Call]]]:
    """Every way to pair each expected call with an actual call of the same tool."""
    options = []
    for tool in sorted({e.tool for e in expected}):
        exp = [e for e in expected if e.tool == tool]
        act = [c for c in calls if c.name == tool]
        perms = itertools.permutations(act) if len(act) <= 7 else iter([tuple(act)])
        options.append([list(zip(exp, p, strict=True)) for p in itertools.islice(perms, 5040)])
    for combo in itertools.product(*options):
        yield [pair for group in combo for pair in group]


def _pairing_cost(pairs: list[tuple[CompiledCall, Call]]) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    extras: list[str] = []
    for expected, call in pairs:
        p, e = expected.check(call.arguments)
        problems += p
        extras += [f"{call.name}.{x}" if len(pairs) > 1 else x for x in e]
    return problems, extras
