"""What differs between two tool sets, as the model sees them: plain data in, plain data
out, so the CLI (``tooltrial tools``), the MCP source (a server that lists other tools
than at the preflight) and the report can all use it.

A tool is a mapping with ``name``, ``description`` and ``input_schema`` (``inputSchema``,
as an MCP server lists it, is read too). ``diff_tools(before, after)`` pairs tools by
name; a tool only in ``before`` and one only in ``after`` with the same input schema are
one tool **renamed** (when several could pair, the one with the same description wins,
then the first in order). For each pair it reports a changed description and a changed
schema, with the JSON Pointer of every place the schemas differ. Everything is compared
exactly: a reworded description or a reordered ``required`` list is a change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

MAX_PATHS = 20
"""Schema differences listed per tool (the rest are counted)."""


@dataclass(frozen=True)
class Renamed:
    before: str
    after: str


@dataclass(frozen=True)
class Changed:
    """One tool's description or schema, before and after (``name`` as it is after)."""

    name: str
    before: Any
    after: Any
    paths: tuple[str, ...] = ()
    """For a schema: JSON Pointers of the places that differ (at most ``MAX_PATHS``)."""
    more: int = 0
    """Places that differ beyond ``paths``."""


@dataclass(frozen=True)
class ToolDiff:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    renamed: tuple[Renamed, ...] = ()
    descriptions: tuple[Changed, ...] = ()
    schemas: tuple[Changed, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.renamed or self.descriptions or self.schemas)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """One line per difference, for people."""
        out = [f"added {', '.join(self.added)}"] if self.added else []
        out += [f"removed {', '.join(self.removed)}"] if self.removed else []
        out += [f"renamed {r.before} -> {r.after}" for r in self.renamed]
        out += [f"description of {c.name}: {c.before!r} -> {c.after!r}" for c in self.descriptions]
        for change in self.schemas:
            more = f" (and {change.more} more)" if change.more else ""
            out.append(f"schema of {change.name} differs at {', '.join(change.paths)}{more}")
        return out

    def summary(self) -> str:
        return "; ".join(self.lines()) or "no difference"


def diff_tools(before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]) -> ToolDiff:
    """What changed from ``before`` to ``after`` (see the module docstring)."""
    old = {str(t["name"]): _plain(t) for t in before}
    new = {str(t["name"]): _plain(t) for t in after}
    gone = [n for n in old if n not in new]
    came = [n for n in new if n not in old]
    renamed: list[Renamed] = []
    for name in list(gone):
        candidates = [c for c in came if new[c]["input_schema"] == old[name]["input_schema"]]
        if not candidates:
            continue
        same_text = [c for c in candidates if new[c]["description"] == old[name]["description"]]
        chosen = (same_text or candidates)[0]
        renamed.append(Renamed(name, chosen))
        gone.remove(name)
        came.remove(chosen)
    pairs = [(n, n) for n in new if n in old] + [(r.before, r.after) for r in renamed]
    descriptions, schemas = [], []
    for was, now in pairs:
        a, b = old[was], new[now]
        if a["description"] != b["description"]:
            descriptions.append(Changed(now, a["description"], b["description"]))
        if a["input_schema"] != b["input_schema"]:
            paths = schema_paths(a["input_schema"], b["input_schema"])
            schemas.append(
                Changed(
                    now,
                    a["input_schema"],
                    b["input_schema"],
                    tuple(paths[:MAX_PATHS]),
                    max(0, len(paths) - MAX_PATHS),
                )
            )
    return ToolDiff(tuple(came), tuple(gone), tuple(renamed), tuple(descriptions), tuple(schemas))


def schema_paths(a: Any, b: Any, at: str = "") -> list[str]:
    """JSON Pointers of every place ``a`` and ``b`` differ (a whole subtree that exists
    on one side only counts once)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        found = []
        for key in [*a, *(k for k in b if k not in a)]:
            here = f"{at}/{_escape(str(key))}"
            if key not in a or key not in b:
                found.append(here)
            else:
                found += schema_paths(a[key], b[key], here)
        return found
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            p
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for p in schema_paths(x, y, f"{at}/{i}")
        ]
    return [] if a == b else [at or "/"]


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _plain(tool: Mapping[str, Any]) -> dict[str, Any]:
    schema = tool.get("input_schema", tool.get("inputSchema")) or {}
    return {"description": tool.get("description") or "", "input_schema": schema}
