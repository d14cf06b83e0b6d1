"""The report in its three formats, and the HTML page in a real headless Chromium."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from test_analysis import sample_answers, write_experiment, write_results

from tooltrial.analysis import analyze
from tooltrial.cli import main
from tooltrial.report import ReportPayload, payload, render_markdown, write_report


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    experiment = write_experiment(root / "def")
    write_results(experiment, root / "results", sample_answers())
    return root / "results"


@pytest.fixture(scope="module")
def outputs(results: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three formats, each from its own run of the command."""
    out = tmp_path_factory.mktemp("out")
    paths = {fmt: out / f"report.{fmt}" for fmt in ("html", "md", "json")}
    for fmt, path in paths.items():
        assert main(["report", str(results), "--format", fmt, "-o", str(path)]) == 0
    return paths


def test_json_holds_the_headline(outputs):
    data = json.loads(outputs["json"].read_text())
    assert data["experiment"] == "mini" and data["results"] == 24
    (section,) = data["per_model"]
    rates = {v["variant"]: v["rates"]["exact"] for v in section["variants"]}
    assert rates == {"app": 1.0, "api": pytest.approx(8 / 12)}
    (comp,) = section["comparisons"]
    exact = next(m for m in comp["metrics"] if m["metric"] == "exact")
    assert exact["difference"] == pytest.approx(-1 / 3)
    assert exact["ci_low"] <= exact["difference"] <= exact["ci_high"]
    assert [d["scenario_id"] for d in comp["largest_differences"]] == ["make-task", "vague"]
    assert {p["reps"] for p in comp["power"]["plans"]} == {1, 3, 5, 10}
    assert [f["scenario_id"] for f in section["consistency"]["flips"]] == ["make-task", "vague"]


def test_markdown_summary(outputs):
    text = outputs["md"].read_text()
    assert text.startswith("# tooltrial report: mini")
    assert "| app | 12 | 100.0% |" in text
    assert "| exact match (primary) | 100.0% | 66.7% | -33.3 pp |" in text
    assert "- make-task: 100.0% → 33.3%" in text
    assert "flip between right and wrong" in text


def test_markdown_renders_from_the_payload_alone(results):
    data = ReportPayload.model_validate_json(payload(analyze([results])).to_json())
    assert render_markdown(data).count("\n|---") >= 3


class _External(HTMLParser):
    """Collects every reference the page would fetch."""

    def __init__(self) -> None:
        super().__init__()
        self.fetches: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            self.scripts += 1
        for name in ("src", "href"):
            if values.get(name) and not values[name].startswith("#"):
                self.fetches.append(f"<{tag} {name}={values[name]}>")
        if tag == "link":
            self.fetches.append("<link>")


def test_html_is_self_contained(outputs):
    page = outputs["html"].read_text()
    parser = _External()
    parser.feed(page)
    assert parser.fetches == []
    assert parser.scripts == 2  # the data and the inline script
    assert "<svg" in page and "@import" not in page
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1))
    assert data == json.loads(outputs["json"].read_text())


def test_html_escapes_what_the_model_wrote(tmp_path):
    experiment = write_experiment(tmp_path / "def")
    answers = sample_answers(reps=1)
    answers[("api", "small-talk", 1)] = ([], "<script>alert(1)</script></script> & done")
    write_results(experiment, tmp_path / "res", answers)
    page = write_report(analyze([tmp_path / "res"]), None)
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- a real browser ---------------------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI needs Chromium for the report check: apt-get install -y chromium")
        pytest.skip("Chromium is not installed (apt-get install chromium); CI runs this check")
    return path


class DevTools:
    """Chrome DevTools Protocol over --remote-debugging-pipe (fd 3 in, fd 4 out)."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_child, self._to_browser = os.pipe()
        self._from_browser, from_child = os.pipe()

        def wire() -> None:  # runs in the child: the protocol's fds are 3 and 4
            os.dup2(to_child, 3)
            os.dup2(from_child, 4)

        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(3, 4),
            preexec_fn=wire,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read(deadline - time.monotonic()))
        return next(e for e in self.events if e.get("method") == method)

    def _read(self, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(0.0, left))
            if not ready:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the protocol pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


READ_PAGE = """
JSON.stringify({
  keys: Object.fromEntries([...document.querySelectorAll('[data-key]')]
    .map(e => [e.dataset.key, e.textContent])),
  shown: document.getElementById('shown').textContent,
  svgs: document.querySelectorAll('svg').length,
})
"""


def open_in_chromium(page: Path, profile: Path) -> tuple[dict[str, Any], list[str], list[str]]:
    """Load ``page``; return what it shows, its console errors and its network fetches."""
    browser = DevTools(chromium(), profile)
    try:
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        session = browser.send("Target.attachToTarget", targetId=target, flatten=True)
        sid = session["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            browser.send(f"{domain}.enable", sid)
        browser.send("Page.navigate", sid, url=page.resolve().as_uri())
        browser.wait_for("Page.loadEventFired")
        shown = browser.send("Runtime.evaluate", sid, expression=READ_PAGE, returnByValue=True)
        events = browser.events
    finally:
        browser.close()
    errors = [
        json.dumps(e["params"])[:300]
        for e in events
        if e.get("method") == "Runtime.exceptionThrown"
        or (
            e.get("method") == "Runtime.consoleAPICalled"
            and e["params"]["type"] in ("error", "assert")
        )
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    fetches = [
        e["params"]["request"]["url"]
        for e in events
        if e.get("method") == "Network.requestWillBeSent"
        and not e["params"]["request"]["url"].startswith(("file:", "data:", "about:"))
    ]
    return json.loads(shown["result"]["value"]), errors, fetches


def _number(text: str) -> float:
    return float(text.replace("pp", "").replace("%", "").replace("+", "").replace(",", "").strip())


@pytest.mark.slow
def test_page_in_headless_chromium_matches_the_json(outputs, tmp_path):
    data = json.loads(outputs["json"].read_text())
    shown, errors, fetches = open_in_chromium(outputs["html"], tmp_path / "profile")
    assert errors == []
    assert fetches == []  # opens offline
    assert shown["shown"] == f"{len(data['scenarios'])} of {len(data['scenarios'])} scenarios"
    assert shown["svgs"] >= 4
    keys = shown["keys"]
    assert int(keys["results"]) == data["results"]
    (section,) = data["per_model"]
    for variant, rate in section["headline"]["rates"].items():
        assert _number(keys[f"variants.{variant}.exact"]) == pytest.approx(100 * rate, abs=0.05)
    for v in section["variants"]:
        for metric, rate in v["rates"].items():
            assert _number(keys[f"rates.{v['variant']}.{metric}"]) == pytest.approx(
                100 * rate, abs=0.05
            ), metric
    for comp in section["comparisons"]:
        t = comp["treatment"]
        exact = next(m for m in comp["metrics"] if m["metric"] == "exact")
        assert _number(keys[f"diff.{t}.exact"]) == pytest.approx(
            100 * exact["difference"], abs=0.05
        )
        low, high = (_number(x) for x in keys[f"ci.{t}.exact"].strip("[]").split(", "))
        assert (low, high) == (
            pytest.approx(100 * exact["ci_low"], abs=0.05),
            pytest.approx(100 * exact["ci_high"], abs=0.05),
        )
        assert _number(keys[f"p.{t}.exact"].replace("<", "")) == pytest.approx(
            exact["p_value"], abs=0.0005 if exact["p_value"] >= 0.001 else 0.001
        )
