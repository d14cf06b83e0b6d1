"""One headline in every format: with unequal reps, a scenario missing for one variant
and error lines, each variant's headline rate, the difference, its interval and p are
the same numbers in the JSON, the HTML (its ``data-key`` elements) and the Markdown, and
they are per-scenario numbers (each scenario weighs the same), not shares of results.

The results (exact match; reference ``app``, treatment ``api``):

=========== ============= =============
scenario    app           api
=========== ============= =============
make-task   3 of 3 right  1 of 3
agenda      1 of 1        1 of 1
small-talk  1 of 1        3 of 3
vague       2 of 3        0 of 1 (rep 2: an error line)
thanks      2 of 2        none (rep 1: an error line)
=========== ============= =============

Over the four scenarios both have: app 11/12, api 7/12, per-scenario differences
(agenda, make-task, small-talk, vague) 0, −2/3, 0, −2/3. Shares of results would say
app 7/8 and api 5/8 (and app 9/10 with ``thanks``).
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from support.single_turn_results import WRONG, Answer, Cell, right, write_experiment, write_results

from tooltrial.analysis import analyze, compare, difference_interval
from tooltrial.analysis.compare import headline_rates
from tooltrial.report import write_report
from tooltrial.report.formatting import p_text, pct, signed_pct

REPS = {"make-task": (3, 3), "agenda": (1, 1), "small-talk": (1, 3), "vague": (3, 1)}
"""Scenario → (app's reps, api's reps)."""
WRONG_CELLS = {("app", "vague", 3), ("api", "make-task", 2), ("api", "make-task", 3)}
WRONG_CELLS |= {("api", "vague", 1)}
ERRORS = [("api", "vague", 2), ("api", "thanks", 1)]
D = np.array([0, -2 / 3, 0, -2 / 3])  # agenda, make-task, small-talk, vague


def answers() -> dict[Cell, Answer]:
    out: dict[Cell, Answer] = {}
    for scenario, reps in REPS.items():
        for variant, n in zip(("app", "api"), reps, strict=True):
            for rep in range(1, n + 1):
                cell = (variant, scenario, rep)
                out[cell] = WRONG if cell in WRONG_CELLS else right(variant, scenario)
    out |= {("app", "thanks", rep): right("app", "thanks") for rep in (1, 2)}
    return out


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("headline")
    write_results(write_experiment(root / "def"), root / "results", answers(), ERRORS)
    analysis = analyze([root / "results"])
    return {fmt: write_report(analysis, None, fmt) for fmt in ("json", "md", "html")}


VOID = {"meta", "input", "br", "img", "link", "hr", "wbr", "source", "col", "area"}
"""Elements without an end tag."""


class _Keys(HTMLParser):
    """Every text shown under each data-key (a key may appear more than once)."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: dict[str, list[str]] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            return
        key = dict(attrs).get("data-key")
        if key is not None:
            self.keys.setdefault(key, []).append("")
        self._open.append(key)

    def handle_endtag(self, tag: str) -> None:
        self._open.pop()

    def handle_data(self, data: str) -> None:
        for key in self._open:
            if key is not None:
                self.keys[key][-1] += data


def html_keys(page: str) -> dict[str, str]:
    parser = _Keys()
    parser.feed(page)
    for key, texts in parser.keys.items():
        assert len(set(texts)) == 1, f"{key} shows different numbers: {texts}"
    return {key: texts[0] for key, texts in parser.keys.items()}


HEADLINE = re.compile(
    r"\*\*exact match\*\* \(the declared primary metric\): api (?P<api>\S+) vs app "
    r"(?P<app>\S+), (?P<diff>\S+ pp) (?P<ci>\[\S+ pp, \S+ pp\]), p = (?P<p>[^()]+) "
    r"\(paired t over (?P<n>\d+) scenarios\)\."
)


def test_the_json_headline_is_per_scenario(outputs):
    data = json.loads(outputs["json"])
    assert (data["results"], data["error_lines"]) == (18, 2)
    (section,) = data["per_model"]
    headline = section["headline"]
    assert headline["metric"] == "exact" and headline["scenarios"] == 4
    assert headline["rates"] == {"app": pytest.approx(11 / 12), "api": pytest.approx(7 / 12)}
    shares = {v["variant"]: v["rates"]["exact"] for v in section["variants"]}
    assert shares == {"app": pytest.approx(9 / 10), "api": pytest.approx(5 / 8)}  # not these
    exact = section["comparisons"][0]["metrics"][0]
    assert exact["metric"] == "exact" and exact["primary"]
    assert exact["scenarios"] == 4
    assert exact["reference_mean"] == headline["rates"]["app"]
    assert exact["treatment_mean"] == headline["rates"]["api"]
    assert exact["difference"] == pytest.approx(-1 / 3)
    assert exact["difference"] == pytest.approx(
        headline["rates"]["api"] - headline["rates"]["app"], abs=1e-12
    )
    low, high, p = difference_interval(D, stuck=2)  # agenda, small-talk: right every rep
    assert exact["p_value"] == pytest.approx(p)
    assert (exact["ci_low"], exact["ci_high"]) == pytest.approx((low, high))


def test_every_headline_number_is_the_same_in_the_three_formats(outputs):
    section = json.loads(outputs["json"])["per_model"][0]
    exact = section["comparisons"][0]["metrics"][0]
    expected = {
        "app": pct(section["headline"]["rates"]["app"]),
        "api": pct(section["headline"]["rates"]["api"]),
        "diff": signed_pct(exact["difference"]),
        "ci": f"[{signed_pct(exact['ci_low'])}, {signed_pct(exact['ci_high'])}]",
        "p": p_text(exact["p_value"]),
    }
    assert expected["app"] == "91.7%" and expected["api"] == "58.3%"
    assert expected["diff"] == "-33.3 pp"

    keys = html_keys(outputs["html"])
    shown_html = {
        "app": keys["variants.app.exact"],
        "api": keys["variants.api.exact"],
        "diff": keys["diff.api.exact"],
        "ci": keys["ci.api.exact"],
        "p": keys["p.api.exact"],
    }
    assert shown_html == expected

    (line,) = [m for m in HEADLINE.finditer(outputs["md"])]
    shown_md = {k: line[k] for k in ("app", "api", "diff", "ci", "p")}
    assert shown_md == expected
    assert int(line["n"]) == exact["scenarios"] == 4


def test_the_embedded_json_is_the_json_output(outputs):
    blob = re.search(r'id="report-data">(.*?)</script>', outputs["html"], re.S)
    assert blob is not None
    assert json.loads(blob.group(1)) == json.loads(outputs["json"])


def test_headline_rates_are_the_comparisons_own_means(tmp_path: Path):
    """Computed once: with two variants, bit for bit the primary comparison's means."""
    write_results(write_experiment(tmp_path / "def"), tmp_path / "results", answers(), ERRORS)
    table = analyze([tmp_path / "results"]).table
    rates = headline_rates(table, "exact", ["app", "api"])
    (exact,) = compare(table, "app", "api", metrics=["exact"])
    assert rates.scenarios == ("agenda", "make-task", "small-talk", "vague")
    assert (rates.rates["app"], rates.rates["api"]) == (exact.reference_mean, exact.treatment_mean)


def test_a_variant_without_any_value_has_no_headline_rate(tmp_path: Path):
    write_results(write_experiment(tmp_path / "def"), tmp_path / "results", answers(), ERRORS)
    table = analyze([tmp_path / "results"]).table
    only_app = table.filter(table["variant"] == "app")
    rates = headline_rates(only_app, "exact", ["app", "api"])
    assert rates.rates == {"app": pytest.approx(14 / 15), "api": None}
    assert len(rates.scenarios) == 5
