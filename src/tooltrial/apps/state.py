"""Differences between two snapshots of an app's state, row by row.

``diff`` is what a result line records (initial → final) and what the "nothing else
changed" check reads; ``same_state`` is the reference check's comparison, which treats
added rows as a multiset (their generated keys depend on the order they were added in,
which no success criterion should).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from tooltrial.apps.base import State
from tooltrial.types import RowChange


def diff(before: State, after: State) -> tuple[RowChange, ...]:
    """Every row added, removed or changed, by table then key (``before``'s order)."""
    changes: list[RowChange] = []
    for table in sorted(before.keys() | after.keys()):
        old, new = before.get(table, {}), after.get(table, {})
        for key in [*old, *(k for k in new if k not in old)]:
            a, b = old.get(key), new.get(key)
            if a != b:
                changes.append(RowChange(table=table, key=key, before=a, after=b))
    return tuple(changes)


def same_state(initial: State, final: State, expected: State) -> list[str]:
    """Where ``final`` differs from ``expected`` (both reached from ``initial``); rows
    present initially compare by key, added rows by their values as a multiset."""
    problems: list[str] = []
    for table in sorted(final.keys() | expected.keys()):
        start = initial.get(table, {})
        got, want = final.get(table, {}), expected.get(table, {})
        for key in start:
            if got.get(key) != want.get(key):
                problems.append(_row_problem(table, key, got.get(key), want.get(key)))
        added_got = _multiset(row for key, row in got.items() if key not in start)
        added_want = _multiset(row for key, row in want.items() if key not in start)
        for row, n in (added_want - added_got).items():
            problems.append(f"{table}: missing added row {dict(row)} ({n}×)")
        for row, n in (added_got - added_want).items():
            problems.append(f"{table}: unexpected added row {dict(row)} ({n}×)")
    return problems


def _multiset(rows: Iterable[dict[str, Any]]) -> Counter[tuple[tuple[str, Any], ...]]:
    # "id": a generated key differs with the order rows were added in
    return Counter(
        tuple(sorted((k, _hashable(v)) for k, v in row.items() if k != "id")) for row in rows
    )


def _hashable(value: Any) -> Any:
    return repr(value) if isinstance(value, list | dict) else value


def _row_problem(table: str, key: str, got: Any, want: Any) -> str:
    if got is None:
        return f"{table} {key}: removed, but the reference keeps it"
    if want is None:
        return f"{table} {key}: kept, but the reference removes it"
    columns = [c for c in sorted(got.keys() | want.keys()) if got.get(c) != want.get(c)]
    shown = ", ".join(f"{c}={got.get(c)!r} (reference {want.get(c)!r})" for c in columns)
    return f"{table} {key}: {shown}"
