"""Cost from a user's price table, checked against a hand computation: per model turn
(uncached input, cache reads and writes, output; the batch discount on turns a batch
answered), per variant, per conversation and per success, and what the study the power
table advises would cost; in every report format. Without a table: tokens only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.batch import FAST_FLAGS, KEY

from tooltrial.analysis import analyze
from tooltrial.analysis.cost import cell_cost, costs, turn_cost
from tooltrial.analysis.prices import ModelPrice, load_prices
from tooltrial.cli import main
from tooltrial.errors import UsageError
from tooltrial.log.records import ConversationRecord, Result
from tooltrial.testing.batch_server import AnthropicBatchServer
from tooltrial.testing.responders import default_responder
from tooltrial.types import AssistantTurn, BatchRef, ModelResponse, Usage, UserTurn

ROOT = Path(__file__).resolve().parents[2]
PRICES = """\
tooltrial_prices: 1
currency: USD
models:
  "anthropic:claude-test":
    {input: 3.0, output: 15.0, cache_read: 0.3, cache_write: 3.75, batch_discount: 0.5}
"""
# By hand: baseline turns send 800 fresh + 200 cached input tokens and get 100 back;
# applike turns 2000 fresh, 50 back. Online: (800·3 + 200·0.3 + 100·15)/1e6 = 0.00396;
# (2000·3 + 50·15)/1e6 = 0.00675. Every turn here is answered in batch mode: half.
PER_CELL = {"baseline": 0.00396 / 2, "applike": 0.00675 / 2}
SCENARIOS = ["create-task-tomorrow-at-3", "no-call-weather", "delete-task-by-title"]
CELLS = 3 * 2  # scenarios x reps, per variant


def responder(body: dict[str, Any]) -> dict[str, Any]:
    out = default_responder(body)
    if "rain" in json.dumps(body["messages"]):  # no-call-weather, answered right: a success
        out = {"content": [{"type": "text", "text": "I cannot see the weather."}]}
    if "add_task" in json.dumps(body.get("tools")):  # applike's tools
        usage = {"input_tokens": 2000, "output_tokens": 50}
    else:
        usage = {"input_tokens": 800, "cache_read_input_tokens": 200, "output_tokens": 100}
    return {**out, "usage": usage}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("cost")
    server = AnthropicBatchServer(responder=responder, max_seconds=120)
    with server as srv, pytest.MonkeyPatch.context() as env:
        env.setenv("ANTHROPIC_API_KEY", KEY)
        args = ["run", str(ROOT / "tests" / "experiment"), "--model", "anthropic:claude-test"]
        args += ["--base-url", srv.url, "--runs", "2", "--results", str(results)]
        for scenario in SCENARIOS:
            args += ["--scenario", scenario]
        assert main([*args, *FAST_FLAGS]) == 0
    (results.parent / "prices.yaml").write_text(PRICES)
    return results


def prices_file(folder: Path) -> Path:
    return folder.parent / "prices.yaml"


def test_per_variant_and_per_success_match_the_hand_computation(folder: Path) -> None:
    analysis = analyze([folder])
    found = costs(analysis, load_prices(prices_file(folder)))
    successes = {
        v: int(analysis.table.filter(analysis.table["variant"] == v)["exact"].sum())
        for v in PER_CELL
    }
    for row in found.variants:
        total = PER_CELL[row.variant] * CELLS
        assert row.cells == CELLS and row.batch_share == 1.0
        assert row.total == pytest.approx(total)
        assert row.per_cell == pytest.approx(PER_CELL[row.variant])
        assert row.successes == successes[row.variant] == 2  # no-call-weather, both reps
        expected = total / successes[row.variant] if successes[row.variant] else None
        assert row.per_success == pytest.approx(expected)
    assert found.studies
    for study in found.studies:
        per_pair = PER_CELL["baseline"] + PER_CELL["applike"]
        assert study.cost == pytest.approx(study.scenarios * study.reps * per_pair)
        assert study.cells == 2 * study.scenarios * study.reps


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_every_report_format_shows_the_cost(folder: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"report.{fmt}"
    args = ["report", str(folder), "--format", fmt, "-o", str(out)]
    assert main([*args, "--prices", str(prices_file(folder))]) == 0
    text = out.read_text()
    baseline_total = f"{PER_CELL['baseline'] * CELLS:.4f} USD"  # 0.0119 USD
    applike_each = f"{PER_CELL['applike']:.4f} USD"  # 0.0034 USD
    if fmt == "json":
        cost = json.loads(text)["cost"]
        rows = {v["variant"]: v for v in cost["variants"]}
        assert rows["baseline"]["total"] == pytest.approx(PER_CELL["baseline"] * CELLS)
        assert rows["applike"]["per_conversation"] == pytest.approx(PER_CELL["applike"])
        assert cost["studies"]
    else:
        assert baseline_total in text and applike_each in text
        assert "power table advises" in text
    # Without a table: tokens only, no cost section.
    assert main(["report", str(folder), "--format", fmt, "-o", str(out)]) == 0
    plain = out.read_text()
    assert baseline_total not in plain
    if fmt == "json":
        assert json.loads(plain)["cost"] is None


def conversation_result(turns: list[tuple[Usage, bool]]) -> Result:
    messages: list[Any] = [UserTurn(text="hi")]
    for n, (usage, batched) in enumerate(turns):
        response = ModelResponse(text="ok", tool_calls=(), stop_reason="end_turn", usage=usage)
        ref = BatchRef(batch_id="b", custom_id=f"c{n}") if batched else None
        messages.append(AssistantTurn(response=response, batch=ref))
    record = ConversationRecord(
        success=True,
        stop_reason="answered",
        turns=len(turns),
        tool_calls=0,
        tool_errors=0,
        checks=[],
        diff=[],
        messages=messages,
    )
    return Result(
        run_id="r",
        scenario_id="s",
        variant="v",
        rep=1,
        response_text="ok",
        tool_calls=[],
        stop_reason="end_turn",
        usage=Usage(),
        latency_s=0,
        model="m",
        temperature=None,
        conversation=record,
    )


def test_a_conversation_costs_its_turns_each_at_its_own_price() -> None:
    price = ModelPrice(input=2.0, output=10.0, cache_write=2.5, batch_discount=0.5)
    cached = Usage(
        input_tokens=1000, output_tokens=10, cache_read_tokens=400, cache_write_tokens=100
    )
    # By hand: 500 fresh·2 + 400 read·2 (no cache_read price: the input's) + 100 written·2.5
    # + 10 out·10 = 2150 per 1e6 online; half of it in batch mode.
    assert turn_cost(cached, price, 1_000_000, batch=False) == pytest.approx(0.00215)
    assert turn_cost(cached, price, 1_000_000, batch=True) == pytest.approx(0.001075)
    mixed = conversation_result([(cached, True), (cached, False)])  # 2nd turn answered online
    assert cell_cost(mixed, price, 1_000_000) == pytest.approx(0.001075 + 0.00215)


def test_a_bad_price_table_is_refused_with_its_file(tmp_path: Path) -> None:
    cases = {
        "unknown.yaml": 'models: {"a:b": {input: 1, output: 1, typo: 2}}',
        "negative.yaml": 'models: {"a:b": {input: -1, output: 1}}',
        "discount.yaml": 'models: {"a:b": {input: 1, output: 1, batch_discount: 2}}',
        "newer.yaml": "tooltrial_prices: 9\nmodels: {}",
        "broken.toml": "models = [",
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(UsageError, match=f"--prices {path}"):
            load_prices(path)
    toml = tmp_path / "ok.toml"
    toml.write_text('tooltrial_prices = 1\n[models."a:b"]\ninput = 1.0\noutput = 2.0\n')
    assert load_prices(toml).of("a:b") == ModelPrice(input=1.0, output=2.0)
