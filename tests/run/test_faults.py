"""A 120-call run with 30% of requests failing in every way the server can fail:
every cell ends with exactly one result, and every failed attempt is on the record."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from support.paths import TESTS

from tooltrial import load_experiment
from tooltrial.log.reader import iter_records
from tooltrial.log.records import Error, Result
from tooltrial.log.validate import validate
from tooltrial.models import get_model
from tooltrial.run.options import RunOptions
from tooltrial.run.plan import plan_cells
from tooltrial.run.session import open_run
from tooltrial.testing.messages_server import Faults, MessagesServer
from tooltrial.turns import RetryPolicy
from tooltrial.types import Cell

EXPERIMENT_DIR = TESTS / "experiment"
MIXED = Faults(
    latency_s=0.01,
    latency_jitter_s=0.03,
    rate_429=0.06,
    rate_529=0.06,
    rate_500=0.06,
    rate_timeout=0.04,
    rate_drop=0.04,
    rate_malformed=0.04,
    retry_after_s=0.05,
    timeout_hold_s=5,
    seed=2024,
)
POLICY = RetryPolicy(max_attempts=12, base_delay_s=0.02, max_delay_s=0.2, timeout_s=1.0)


@pytest.mark.slow
def test_thirty_percent_mixed_failures_lose_and_duplicate_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-a-real-key-0000")
    experiment = load_experiment(EXPERIMENT_DIR)
    cells = plan_cells(experiment, "anthropic:claude-test", 3)
    assert len(cells) == 120
    with MessagesServer(MIXED, max_seconds=120) as srv:
        model = get_model("anthropic:claude-test", base_url=srv.url, timeout_s=POLICY.timeout_s)
        options = RunOptions(results=tmp_path, runs=3, run_id="faults", retry=POLICY, concurrency=8)
        with open_run(experiment, model, options) as run:
            assert asyncio.run(run.execute()) is None  # the preflight got through too
        pacer = run.turns.pacers[model.spec]
        outcomes = Counter(r.outcome for r in srv.requests if r.body["max_tokens"] != 1)

    lines = [r for path in tmp_path.glob("*.jsonl") for r in iter_records(path)]
    results = [r for r in lines if isinstance(r, Result)]
    assert not [r for r in lines if isinstance(r, Error)]
    recorded = Counter(Cell(r.model, r.variant, r.scenario_id, r.rep) for r in results)
    assert len(results) == 120 and set(recorded) == set(cells)
    assert max(recorded.values()) == 1  # no duplicates

    failed = sum(n for kind, n in outcomes.items() if kind != "ok")
    assert set(outcomes) == {"ok", "429", "529", "500", "timeout", "drop", "malformed"}
    assert failed / sum(outcomes.values()) == pytest.approx(0.3, abs=0.1)
    # Every attempt is on a result line: the failed ones as attempts - 1, with their wait.
    assert sum(r.attempts for r in results) == sum(outcomes.values())
    assert sum(r.attempts - 1 for r in results) == failed
    retried = [r for r in results if r.attempts > 1]
    assert retried and sum(r.retry_wait_s for r in retried) > 0
    assert all(r.retry_wait_s == 0 for r in results if r.attempts == 1)
    assert pacer.rate_limited == outcomes["429"]
    assert validate(tmp_path, "faults").ok
