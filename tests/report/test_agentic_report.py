"""The agentic report in its three formats: success and pass^k lead, then steps, tokens
and tool errors per success, why conversations failed, and (HTML) every conversation,
variants side by side. Numbers are the hand-computed ones of
``tests/analysis/test_agentic_analysis.py``.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from support.agentic_results import SPECS, Spec, write_experiment, write_results
from support.pages import External, open_in_chromium
from support.paths import TESTS

from tooltrial import load_experiment, run_experiment
from tooltrial.analysis import analyze
from tooltrial.cli import main
from tooltrial.report import ReportPayload, payload, render_markdown, write_report
from tooltrial.testing.scripted import Request, ScriptedModel, reply

MINI = TESTS / "mini_agentic"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("agentic-report")
    write_results(write_experiment(root / "def"), root / "results")
    paths = {fmt: root / f"report.{fmt}" for fmt in ("html", "md", "json")}
    for fmt, path in paths.items():
        assert main(["report", str(root / "results"), "--format", fmt, "-o", str(path)]) == 0
    return paths


@pytest.fixture(scope="module")
def data(outputs: dict[str, Path]) -> dict:
    return json.loads(outputs["json"].read_text())


def test_json_says_agentic_and_holds_the_costs(data):
    assert data["kind"] == "agentic" and data["primary_metric"] == "success"
    assert data["primary_label"] == "success"
    (section,) = data["per_model"]
    api = next(v for v in section["variants"] if v["variant"] == "api")
    costs = api["conversations"]
    assert (costs["conversations"], costs["successes"], costs["failed"]) == (12, 6, 6)
    assert costs["per_success"]["input_tokens"] == pytest.approx(4600 / 6)
    assert costs["stop_reasons"] == {"answered": 10, "max_tool_calls": 1, "max_turns": 1}
    scenario = next(s for s in section["scenarios"] if s["id"] == "drop-bill")
    assert scenario["rates"] == {"api": 0.0, "app": pytest.approx(2 / 3)}
    assert next(s for s in data["scenarios"] if s["id"] == "drop-bill")["expect"] is None
    assert "per_success" in data["method"] and "clarify_rule" not in data["method"]


def test_a_single_turn_payload_has_no_agentic_keys(tmp_path):
    from support.sample_results import sample_answers
    from support.sample_results import write_experiment as single_experiment
    from support.sample_results import write_results as single_results

    single_results(single_experiment(tmp_path / "def"), tmp_path / "res", sample_answers(reps=1))
    data = payload(analyze([tmp_path / "res"]))
    assert data.kind == "single-turn"
    assert all(v.conversations is None for v in data.per_model[0].variants)


def test_markdown_leads_with_success_and_pass_k(outputs):
    text = outputs["md"].read_text()
    headline = text.split("## Headline")[1].split("## ")[0]
    assert "**success** (the declared primary metric): app 83.3% vs api 50.0%, +33.3 pp" in headline
    assert "- pass^3 (all 3 tries of a scenario succeed): api 25.0%, app 50.0%" in headline
    assert "- pass^3, app − api: +25.0 pp" in headline
    order = [text.index(h) for h in ("## Headline", "## Steps, tokens", "## Why conversations")]
    assert order == sorted(order)


def test_markdown_costs_per_success(outputs):
    text = outputs["md"].read_text()
    # per success (per conversation): turns 26/6 (26/12), tool calls 14/6 (14/12), …
    assert (
        "| api | 12 | 6 | 50.0% | 4.33 (2.17) | 2.33 (1.17) | 0.17 (0.08) | 767 (383) "
        "| 43 (22) | 2.17 (1.08) |" in text
    )
    assert (
        "| app | 12 | 10 | 83.3% | 2.20 (1.83) | 1.10 (0.92) | 0.10 (0.08) | 320 (267) "
        "| 22 (18) | 1.10 (0.92) |" in text
    )


def test_markdown_says_why_conversations_failed(outputs):
    text = outputs["md"].read_text()
    assert (
        "| variant | failed | answered | state | unchanged | reference | forbidden | reply |"
        in text
    )
    assert (
        "| api | 6 of 12 | 2 of 12 | 4 of 9 | 2 of 12 | 2 of 3 | 1 of 6 | 0 of 3 "
        "| answered 10, max_tool_calls 1, max_turns 1 |" in text
    )
    assert (
        "| app | 2 of 12 | 1 of 12 | 1 of 9 | 0 of 12 | 0 of 3 | 0 of 3 | 1 of 3 "
        "| answered 11, tool_timeout 1 |" in text
    )


def test_markdown_comparison_tests_input_tokens(outputs):
    text = outputs["md"].read_text()
    row = next(line for line in text.splitlines() if line.startswith("| input tokens |"))
    assert "not tested" not in row
    assert "| success (primary) | 50.0% | 83.3% | +33.3 pp |" in text
    assert "| turns | 2.17 | 1.83 | -0.33 |" in text


def test_no_success_shows_a_dash(tmp_path):
    specs = {
        k: Spec(failed=("state",)) if k[0] == "api" else v
        for k, v in SPECS.items()
        if k[1] != "confirm-delete"
    }
    write_results(write_experiment(tmp_path / "def"), tmp_path / "results", specs)
    text = write_report(analyze([tmp_path / "results"]), None, "md")
    assert (
        "| api | 9 | 0 | 0.0% | – (2.00) | – (1.00) | – (0.00) | – (300) | – (20) | – (1.00) |"
        in text
    )


def test_markdown_renders_from_the_payload_alone(outputs):
    data = ReportPayload.model_validate_json(outputs["json"].read_text())
    assert render_markdown(data) == outputs["md"].read_text()


# --- the HTML page ----------------------------------------------------------------------


class _Page(HTMLParser):
    """data-key values, element ids and the text inside each scenario's details."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: dict[str, str] = {}
        self.ids: list[str] = []
        self._key: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.append(values["id"] or "")
        self._key = values.get("data-key")

    def handle_data(self, data: str) -> None:
        if self._key is not None:
            self.keys.setdefault(self._key, data)  # the first element with the key

    def handle_endtag(self, tag: str) -> None:
        self._key = None


def parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def test_html_is_self_contained_and_embeds_the_json(outputs):
    page = outputs["html"].read_text()
    external = External()
    external.feed(page)
    assert external.fetches == [] and external.scripts == 2
    embedded = json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1))
    assert embedded == json.loads(outputs["json"].read_text())


def test_html_headline_is_success_and_pass_k(outputs):
    keys = parse(outputs["html"].read_text()).keys
    assert keys["variants.api.success"] == "50.0%"
    assert keys["variants.app.success"] == "83.3%"
    assert keys["variants.api.pass_hat"] == "25.0%"
    assert keys["variants.app.pass_hat"] == "50.0%"
    assert keys["diff.app.success"] == "+33.3 pp"


def test_html_shows_costs_and_failures(outputs):
    page = outputs["html"].read_text()
    assert "<h2>Steps, tokens and tool errors per success</h2>" in page
    assert '<td class="num">4.33 (2.17)</td>' in page
    assert "<td>answered 11, tool_timeout 1</td>" in page
    assert page.index("per success</h2>") < page.index("<h2>app vs api: every metric</h2>")


def test_drill_down_has_one_collapsed_details_per_scenario_and_a_row_per_rep(outputs):
    page = outputs["html"].read_text()
    drill = page[page.index('<div id="drill">') :]
    assert drill.count("<details") == 4 and "<details open" not in drill
    ids = parse(page).ids
    for scenario in ("move-dentist", "confirm-delete", "finish-rent", "drop-bill"):
        assert f"s-{scenario}" in ids
        assert [f"s-{scenario}-r{rep}" in ids for rep in (1, 2, 3)] == [True] * 3
        assert f'href="#s-{scenario}-r2"' in drill
    assert "successes api 0/3 · app 2/3" in drill  # drop-bill's summary


def scenario_html(page: str, scenario: str) -> str:
    start = page.index(f'<details id="s-{scenario}">')
    return page[start : page.index("</details>", start)]


def rep_row(page: str, scenario: str, rep: int) -> list[str]:
    """The cells (variants in definition order: api, app) of one rep's row (3 reps)."""
    block = scenario_html(page, scenario)
    start = block.index(f'<tr id="s-{scenario}-r{rep}">')
    end = block.index(f'<tr id="s-{scenario}-r{rep + 1}">') if rep < 3 else len(block)
    row = block[start:end]
    return row.split('<td data-column="')[1:]


def test_a_rep_shows_both_variants_side_by_side(outputs):
    page = outputs["html"].read_text()
    api, app = rep_row(page, "drop-bill", 2)
    assert "✗ failed" in api and "✓ success" in app
    # api: the state part failed, with its detail; a tool error, marked, with its size
    assert '<span class="bad">✗ state</span>: state failed' in api
    assert '<div class="msg tool err">' in api and "8 bytes" in api
    assert "boom &lt;b&gt;" in api and "boom <b>" not in api  # what a tool wrote is escaped
    # the tool calls with their arguments, and the user's text
    assert "→ <b>list_tasks</b>" in api and "&quot;query&quot;: &quot;q2&quot;" in api
    assert "please (drop-bill)" in app
    assert "stopped: answered · 2 turns · 1 tool calls · 0 tool errors" in app


def test_a_limit_stop_says_the_last_calls_never_ran(outputs):
    page = outputs["html"].read_text()
    api, _ = rep_row(page, "move-dentist", 3)
    assert "stopped: max_turns" in api
    assert "stopped (max_turns): these calls never ran" in api
    assert '<span class="bad">✗ answered</span>: answered failed' in api


def test_the_state_diff_is_shown_before_and_after(outputs):
    page = outputs["html"].read_text()
    _, app = rep_row(page, "move-dentist", 1)
    assert "<td>tasks</td><td>1</td><td>changed</td>" in app
    assert "due: &quot;2025-03-14&quot; → &quot;2025-03-21&quot;" in app
    api, _ = rep_row(page, "move-dentist", 2)
    assert "state: no row changed" in api


@pytest.mark.slow
def test_page_in_headless_chromium(outputs, data, tmp_path):
    shown, errors, fetches = open_in_chromium(outputs["html"], tmp_path / "profile")
    assert errors == [] and fetches == []
    assert shown["shown"] == "4 of 4 scenarios"  # the filter counts scenarios, not reps
    assert shown["keys"]["variants.app.success"] == "83.3%"
    assert shown["keys"]["variants.app.pass_hat"] == "50.0%"


def test_the_drill_down_is_of_conversations(outputs):
    page = outputs["html"].read_text()
    assert "Every scenario's conversations" in page
    assert "Every scenario's responses" not in page


def test_several_models_get_a_section_each_and_the_interaction(tmp_path):
    experiment = write_experiment(tmp_path / "def")
    write_results(experiment, tmp_path / "res", model="test:a", timestamp="20250312T1-a")
    better = {
        k: Spec() if k[0] == "api" and k[1] != "confirm-delete" else v for k, v in SPECS.items()
    }
    write_results(experiment, tmp_path / "res", better, model="test:b", timestamp="20250312T1-b")
    result = analyze([tmp_path / "res"])
    data = json.loads(payload(result).to_json())
    rates = {
        (s["model"], v["variant"]): v["rates"]["success"]
        for s in data["per_model"]
        for v in s["variants"]
    }
    assert rates[("test:a", "api")] == 0.5 and rates[("test:b", "api")] == 1.0
    (block,) = data["interaction"]
    success = next(m for m in block["metrics"] if m["metric"] == "success")
    # app − api: +1/3 in test:a, 10/12 − 1 = −1/6 in test:b
    assert success["interaction"] == pytest.approx(-1 / 6 - 1 / 3)
    page = write_report(result, None)
    assert page.count('<td data-column="test:b · api">') == 12
    assert "## Model test:b" in render_markdown(payload(result))


# --- end to end: a real (scripted) run, reported and validated --------------------------


def agent(request: Request):
    """Finds the dentist task and moves it; asks before deleting."""
    if "Delete" in request.prompt:
        return reply("Delete 'Pay rent'?")
    if request.call == 1:
        return reply(calls=[("list_tasks", {"query": "Dentist"})])
    if request.call == 2 and request.variant == "api":
        found = json.loads(request.results[0].content)
        exact = next(t for t in found if t["title"] == "Dentist")
        return reply(calls=[("update_task", {"id": exact["id"], "due": "2025-03-21"})])
    return reply("Moved to Friday the 21st.")


def test_a_scripted_run_reports_and_validates(tmp_path, capsys):
    experiment = load_experiment(MINI)
    model = ScriptedModel(name="agent", experiment=experiment, script=agent)
    run_experiment(
        experiment, model, runs=2, results=tmp_path, scenarios=["move-dentist", "confirm-delete"]
    )
    assert main(["validate", str(tmp_path)]) == 0
    out = tmp_path / "report.json"
    assert main(["report", str(tmp_path), "--format", "json", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    (section,) = data["per_model"]
    rates = {v["variant"]: v["rates"]["success"] for v in section["variants"]}
    # api moves the task; app calls list_tasks, which it does not have, and never moves it
    assert rates == {"api": 1.0, "app": 0.5}
    app = next(v for v in section["variants"] if v["variant"] == "app")["conversations"]
    assert app["failed_checks"]["state"] == 2 and app["mean"]["tool_errors"] == 0.5
    page = tmp_path / "report.html"
    assert main(["report", str(tmp_path), "-o", str(page)]) == 0
    assert "unknown tool &#x27;list_tasks&#x27;" in page.read_text()


def test_a_conversation_with_backslashes_and_quotes_reaches_the_drill_down(tmp_path):
    """What a model writes is shown as written: the nested parts are read exactly (polars
    alone undoes the escapes of nested text, and the drill-down could not parse it)."""
    mini = TESTS / "mini_agentic"
    experiment = load_experiment(mini)
    said = 'Saved to C:\\tasks\\new "for real"'

    def agent(request: Request):
        if request.call == 1:
            return reply(said, calls=[("list_tasks", {"query": 'a\\b "c"'})])
        return reply(said)

    model = ScriptedModel(name="agent", experiment=experiment, script=agent)
    run_experiment(experiment, model, runs=1, results=tmp_path / "r", variants=["api"])
    analysis = analyze([tmp_path / "r"])
    page = write_report(analysis, tmp_path / "report.html", "html")
    text = (tmp_path / "report.html").read_text() if page is None else page
    assert "C:\\tasks\\new &quot;for real&quot;" in text or "C:\\\\tasks" in text
