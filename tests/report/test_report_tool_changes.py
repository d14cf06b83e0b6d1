"""The report shows what changed in the tools beside each comparison: the same diff as
``tooltrial tools``, in the JSON, the Markdown and the HTML, escaped, long lines cut."""

from __future__ import annotations

from pathlib import Path

from support.sample_results import call, write_results

from tooltrial import analysis
from tooltrial.definitions import load_experiment
from tooltrial.report import payload, render_markdown, write_report
from tooltrial.report.formatting import TOOL_LINE

SCENARIOS = """\
- id: thanks
  prompt: Thanks!
  expect: {"*": {kind: no_call}}
- id: vague
  prompt: Move my meeting.
  expect: {"*": {kind: clarify}}
"""
SCHEMA = "{type: object, properties: {title: {type: string}}}"


def variant(name: str, description: str, extra: str = "") -> str:
    return (
        f"name: {name}\nsystem_prompt: p\ntools:\n"
        f"  - {{name: add_task, description: {description!r}, input_schema: {SCHEMA}}}\n"
        f"  - {{name: show_agenda, description: one day}}\n{extra}"
    )


def experiment(folder: Path, treatment_description: str, extra: str = "") -> Path:
    folder.mkdir()
    (folder / "experiment.yaml").write_text(
        "name: tools\nfixed_timestamp: '2025-03-12T09:00:00+00:00'\n"
        "variants: [ref.yaml, new.yaml, same.yaml]\nscenarios: scenarios.yaml\n"
    )
    (folder / "scenarios.yaml").write_text(SCENARIOS)
    (folder / "ref.yaml").write_text(variant("ref", "add a task"))
    (folder / "new.yaml").write_text(variant("new", treatment_description, extra))
    (folder / "same.yaml").write_text(variant("same", "add a task"))
    results = folder / "results"
    answers = {
        (v, s, rep): ([], "Which meeting?") if s == "vague" else ([], "You're welcome")
        for v in ("ref", "new", "same")
        for s in ("thanks", "vague")
        for rep in (1, 2)
    }
    answers[("new", "thanks", 1)] = ([call("add_task", title="x")], "")
    write_results(load_experiment(folder), results, answers)
    return results


def comparisons(results: Path) -> dict[str, object]:
    data = payload(analysis.analyze([results]))
    return {c.treatment: c for c in data.per_model[0].comparisons}


def test_the_json_names_what_changed_and_nothing_when_the_tools_are_the_same(tmp_path):
    extra = "  - {name: cancel_task, description: drop it}\n"
    found = comparisons(experiment(tmp_path / "e", "Add a task to the list.", extra))
    changed, same = found["new"].tools, found["same"].tools
    assert changed.added == ("cancel_task",) and changed.removed == ()
    assert changed.descriptions == ("add_task",) and changed.schemas == ()
    assert changed.lines == (
        "added cancel_task",
        "description of add_task: 'add a task' -> 'Add a task to the list.'",
    )
    assert same.lines == () and same.added == same.descriptions == ()


def test_markdown_and_html_show_the_lines_escaped_and_cut(tmp_path):
    long = "<i>Add</i> a task. " + "x" * (2 * TOOL_LINE)
    extra = "  - {name: cancel_task, description: drop it}\n"
    results = experiment(tmp_path / "e", long, extra)
    result = analysis.analyze([results])
    markdown = render_markdown(payload(result))
    assert "What changed in the tools, ref → new:" in markdown
    assert "What changed in the tools, ref → same" not in markdown
    line = next(x for x in markdown.splitlines() if x.startswith("- description of add_task"))
    assert len(line) == len("- ") + TOOL_LINE and line.endswith("…")
    page = tmp_path / "r.html"
    write_report(result, page)
    html = page.read_text()
    assert "added cancel_task" in html
    assert "&#x27;&lt;i&gt;Add&lt;/i&gt; a task." in html and "<i>Add</i>" not in html
