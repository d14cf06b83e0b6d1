"""The report learns the experiment's kind in one place: ``build.experiment_kind``
sets ``ReportPayload.kind``, and every other module of ``tooltrial.report`` reads that
field. Checked on the source (``ast``), so a second way to decide the kind fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import tooltrial.report

REPORT = Path(tooltrial.report.__file__).parent
DEFINE_KIND = {"document.py", "build.py"}
"""Where the literal "agentic" may appear outside a comparison with ``kind``."""
MARKERS = {"agentic", "success", "conversations", "per_model"}
"""What the report once tested for membership to tell an agentic payload apart."""


def modules() -> dict[str, ast.Module]:
    return {p.name: ast.parse(p.read_text(), str(p)) for p in sorted(REPORT.glob("*.py"))}


def other_tests_of_the_kind(tree: ast.Module, may_name_it: bool) -> list[str]:
    """Every place ``tree`` tells the kind by anything but ``kind``: ``.agentic``,
    ``is_agentic``, ``"success" in …``, or the literal "agentic" used other than in a
    comparison with ``kind`` (``data.get("agentic")``)."""
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        line = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute) and node.attr == "agentic":
            found.append(f"{line}: {ast.unparse(node)}")
        if isinstance(node, ast.Name | ast.FunctionDef) and "is_agentic" in ast.unparse(node):
            found.append(f"{line}: is_agentic")
        if (
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Constant)
            and node.left.value in MARKERS
            and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
        ):
            found.append(f"{line}: {ast.unparse(node)}")
        if isinstance(node, ast.Constant) and node.value == "agentic" and not may_name_it:
            parent = parents.get(node)
            sides = [parent.left, *parent.comparators] if isinstance(parent, ast.Compare) else []
            if not any(_is_kind(side) for side in sides):
                found.append(f"{line}: {ast.unparse(parent) if parent else node.value}")
    return found


def _is_kind(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "kind") or (
        isinstance(node, ast.Name) and node.id == "kind"
    )


def test_the_kind_is_the_one_the_results_record():
    """The report never guesses the kind from the table (``metric_set``): it takes the one
    the files record (``Analysis.kind``), in ``build.experiment_kind`` alone."""
    guessed, taken = [], []
    for name, tree in modules().items():
        for top in tree.body:
            for node in ast.walk(top):
                if isinstance(node, ast.Call) and "metric_set" in ast.unparse(node.func):
                    guessed.append((name, getattr(top, "name", None)))
                if isinstance(node, ast.Attribute) and ast.unparse(node) == "analysis.kind":
                    taken.append((name, getattr(top, "name", None)))
    assert guessed == []
    assert taken == [("build.py", "experiment_kind")]


def test_every_other_module_reads_the_kind_field():
    found = {
        name: lines
        for name, tree in modules().items()
        if (lines := other_tests_of_the_kind(tree, name in DEFINE_KIND))
    }
    assert found == {}


def test_the_check_catches_the_old_ways():
    old = ast.parse(
        'agentic = data.get("agentic", False)\n'
        'tested = "success" in metrics\n'
        'some = any("conversations" in v for v in section["variants"])\n'
        "if analysis.experiment.agentic: pass\n"
        'if data.kind == "agentic": pass\n'
    )
    assert len(other_tests_of_the_kind(old, may_name_it=False)) == 4
