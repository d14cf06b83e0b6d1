"""The runner against the real ChatAnthropic client and the project's Messages API server:
concurrency, retries and their records, timeouts, pacing, the response cache, progress."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from support.paths import TESTS
from support.runs import FAST, Recorder, run_cells

from tooltrial import load_experiment
from tooltrial.cli import main
from tooltrial.definitions import Experiment
from tooltrial.errors import UsageError
from tooltrial.log.reader import iter_records
from tooltrial.log.records import Error, Metadata, Result
from tooltrial.models import get_model
from tooltrial.run.plan import plan_cells
from tooltrial.run.progress import RunProgress
from tooltrial.run.session import Run
from tooltrial.testing.messages_server import Faults, MessagesServer
from tooltrial.turns import Pacer, RetryPolicy
from tooltrial.turns.cache import ResponseCache, cache_key
from tooltrial.turns.pacing import FLOOR, SLOWDOWN
from tooltrial.types import Cell, Failure

EXPERIMENT_DIR = TESTS / "experiment"
MODEL = "anthropic:claude-test"


@pytest.fixture(scope="module")
def experiment() -> Experiment:
    return load_experiment(EXPERIMENT_DIR)


@pytest.fixture(autouse=True)
def fake_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-a-real-key-0000")


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[MessagesServer]:
    faults = getattr(request, "param", None) or Faults()
    with MessagesServer(faults, max_seconds=60) as srv:
        yield srv


def run_on(
    experiment: Experiment,
    srv: MessagesServer,
    cells: list[Cell],
    results: Path,
    policy: RetryPolicy = FAST,
    **options: object,
) -> Run:
    """The cells through the run path, against ``srv`` (after the model's preflight)."""
    model = get_model(MODEL, base_url=srv.url, timeout_s=policy.timeout_s)
    return run_cells(experiment, model, cells, results, retry=policy, **options)


def records(results: Path) -> list[Metadata | Result | Error]:
    return [r for path in sorted(results.glob("*.jsonl")) for r in iter_records(path)]


# --- planning -------------------------------------------------------------------------


def test_plan_cells_covers_every_cell_once(experiment: Experiment) -> None:
    cells = plan_cells(experiment, MODEL, 3)
    assert len(cells) == len(set(cells)) == 3 * len(experiment.variants) * 20
    only = plan_cells(experiment, [MODEL, "openai:b"], 2, ["applike"], ["query-agenda-friday"])
    assert only == [
        Cell(MODEL, "applike", "query-agenda-friday", 1),
        Cell("openai:b", "applike", "query-agenda-friday", 1),
        Cell(MODEL, "applike", "query-agenda-friday", 2),
        Cell("openai:b", "applike", "query-agenda-friday", 2),
    ]


# --- the runner, through ChatAnthropic --------------------------------------------------


@pytest.mark.parametrize("server", [Faults(latency_s=0.2)], indirect=True)
def test_concurrency_is_what_was_asked(
    experiment: Experiment, server: MessagesServer, tmp_path: Path
) -> None:
    cells = plan_cells(experiment, MODEL, 1, ["baseline"])[:12]
    run_on(experiment, server, cells, tmp_path, concurrency=4)
    assert server.peak_inflight == 4
    results = [r for r in records(tmp_path) if isinstance(r, Result)]
    assert sorted(Cell(r.model, r.variant, r.scenario_id, r.rep) for r in results) == sorted(cells)


@pytest.mark.parametrize(
    "server",
    # request 1 is the model's preflight
    [Faults(on_requests={2: "500", 3: "529", 4: "drop", 5: "malformed"}, retry_after_s=0.01)],
    indirect=True,
)
def test_failed_attempts_are_retried_and_recorded(
    experiment: Experiment, server: MessagesServer, tmp_path: Path
) -> None:
    cell = Cell(MODEL, "baseline", "create-task-tomorrow-at-3", 1)
    seen = Recorder()
    run_on(experiment, server, [cell], tmp_path, RetryPolicy(6, 0.01, 0.05, 5), observer=seen)
    (result,) = [r for r in records(tmp_path) if isinstance(r, Result)]
    assert [f.kind for f in seen.retries] == [
        "server_error",
        "overloaded",
        "connection",
        "bad_response",
    ]
    assert result.attempts == 5 and result.retry_wait_s > 0
    assert len(server.requests) == 1 + 5


@pytest.mark.parametrize(
    "server",
    [Faults(on_requests={n: "500" for n in range(2, 10)}, latency_s=0.0)],  # not the preflight
    indirect=True,
)
def test_a_cell_that_keeps_failing_becomes_an_error_line(
    experiment: Experiment, server: MessagesServer, tmp_path: Path
) -> None:
    cells = plan_cells(experiment, MODEL, 1, ["applike"])[:2]
    run_on(experiment, server, cells, tmp_path, RetryPolicy(3, 0.01, 0.02, 5))
    lines = records(tmp_path)
    errors = [r for r in lines if isinstance(r, Error)]
    assert not [r for r in lines if isinstance(r, Result)]
    assert [(e.kind, e.attempts) for e in errors] == [("server_error", 3)] * 2
    assert all(e.retry_wait_s > 0 for e in errors)


@pytest.mark.parametrize(
    "server", [Faults(on_requests={2: "timeout"}, timeout_hold_s=10)], indirect=True
)
def test_a_call_that_hangs_times_out_and_is_retried(
    experiment: Experiment, server: MessagesServer, tmp_path: Path
) -> None:
    policy = RetryPolicy(max_attempts=3, base_delay_s=0.01, timeout_s=0.5)
    seen = Recorder()
    cell = Cell(MODEL, "baseline", "query-agenda-friday", 1)
    run = run_on(experiment, server, [cell], tmp_path, policy, observer=seen)
    assert run.models[0].timeout_s == 0.5  # the client's own timeout, as well as the runner's
    (result,) = [r for r in records(tmp_path) if isinstance(r, Result)]
    assert [f.kind for f in seen.retries] == ["timeout"] and result.attempts == 2


@pytest.mark.parametrize(
    "server", [Faults(on_requests={2: "429", 3: "429"}, retry_after_s=0.05)], indirect=True
)
def test_429s_pause_the_shared_pacer(
    experiment: Experiment, server: MessagesServer, tmp_path: Path
) -> None:
    run = run_on(experiment, server, [Cell(MODEL, "baseline", "query-agenda-friday", 1)], tmp_path)
    pacer = run.turns.pacers[MODEL]
    assert pacer.rate_limited == 2
    assert pacer.factor < 1.0  # slowed down for everyone, regaining pace with successes


def test_the_cache_answers_the_second_run(
    experiment: Experiment, server: MessagesServer, tmp_path: Path
) -> None:
    cells = plan_cells(experiment, MODEL, 2, ["baseline"])[:6]
    cache = tmp_path / "cache"
    run_on(experiment, server, cells, tmp_path / "a", cache=cache)
    calls = len(server.requests)
    assert calls == 1 + len(cells)  # the preflight, then every cell
    run_on(experiment, server, cells, tmp_path / "b", cache=cache)
    assert len(server.requests) == calls  # nothing asked twice, not even a preflight
    first = {
        r.scenario_id + str(r.rep): r for r in records(tmp_path / "a") if isinstance(r, Result)
    }
    again = [r for r in records(tmp_path / "b") if isinstance(r, Result)]
    assert len(again) == len(cells) and all(r.cached and r.attempts == 0 for r in again)
    assert all(r.tool_calls == first[r.scenario_id + str(r.rep)].tool_calls for r in again)
    assert not any(r.cached for r in first.values())


def test_cache_keys_separate_reps_and_settings(experiment: Experiment, tmp_path: Path) -> None:
    variant = experiment.variants[0]
    model = get_model("anthropic:m", temperature=0.2)
    hot = get_model("anthropic:m", temperature=0.9)
    key = cache_key(model, "sys", "hi", variant.tools, 1)
    assert key == cache_key(model, "sys", "hi", variant.tools, 1)
    assert key != cache_key(model, "sys", "hi", variant.tools, 2)
    assert key != cache_key(hot, "sys", "hi", variant.tools, 1)
    assert key != cache_key(model, "sys", "hi", experiment.variants[1].tools, 1)
    cache = ResponseCache(tmp_path)
    (tmp_path / key[:2]).mkdir()
    (tmp_path / key[:2] / f"{key}.json").write_text('{"text": "cut sh')
    assert cache.get(key) is None  # a damaged entry means "call the model"


# --- pacing (a fake clock: the arithmetic, not the wall time) ---------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


async def test_rpm_spaces_starts_evenly() -> None:
    clock = FakeClock()
    pacer = Pacer(rpm=600, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        await pacer.acquire()
    assert clock.slept == [0.1, 0.1, 0.1] and clock.now == pytest.approx(100.3)


async def test_tpm_charges_the_real_usage() -> None:
    clock = FakeClock()
    pacer = Pacer(tpm=6000, clock=clock, sleep=clock.sleep)  # 100 tokens a second
    await pacer.acquire(100)
    pacer.settle(estimated=100, actual=300)  # used 200 more than booked: 2 s more
    await pacer.acquire(100)
    assert clock.now == pytest.approx(103.0)


async def test_a_429_holds_everyone_and_slows_the_pace() -> None:
    clock = FakeClock()
    pacer = Pacer(rpm=60, clock=clock, sleep=clock.sleep)
    await pacer.acquire()
    pacer.rate_limited_by_server(5.0)
    assert pacer.factor == SLOWDOWN
    await pacer.acquire()
    assert clock.now == pytest.approx(105.0)  # retry-after outlasts the 1 s spacing
    await pacer.acquire()
    assert clock.now == pytest.approx(105.0 + 1 / SLOWDOWN)  # slower than 1 a second
    for _ in range(30):
        pacer.rate_limited_by_server(None)
    assert pacer.factor == FLOOR
    for _ in range(100):
        pacer.settle(0, 0)
    assert pacer.factor == 1.0


def test_bad_limits_are_refused() -> None:
    with pytest.raises(UsageError, match="--rpm must be a positive"):
        Pacer(rpm=0)


def test_retry_delay_never_undercuts_retry_after() -> None:
    policy = RetryPolicy(base_delay_s=0.1)
    rng = random.Random(1)
    told = Failure("rate_limit", "slow down", retryable=True, retry_after_s=3.0)
    assert all(policy.delay(a, told, rng) >= 3.0 for a in range(1, 6))
    free = Failure("server_error", "oops", retryable=True)
    assert all(0 <= policy.delay(a, free, rng) <= 0.1 * 2 ** (a - 1) for a in range(1, 6))


# --- progress --------------------------------------------------------------------------


def _outcome(experiment: Experiment, ok: bool) -> object:
    from tooltrial.types import ModelResponse, Outcome, Usage

    cell = Cell(MODEL, "baseline", experiment.scenario_ids[0], 1)
    if not ok:
        return Outcome(cell, None, Failure("timeout", "t", True), 3, 1.0, 0.0)
    response = ModelResponse(
        text="hi",
        tool_calls=(),
        stop_reason="end_turn",
        usage=Usage(input_tokens=1000, output_tokens=234),
    )
    return Outcome(cell, response, None, 2, 0.5, 0.1)


def test_progress_on_a_terminal_shows_the_counts(experiment: Experiment) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    with RunProgress(3, console) as progress:
        progress.retry(Cell(MODEL, "baseline", "x", 1), Failure("rate_limit", "", True))
        progress.outcome(_outcome(experiment, True))  # type: ignore[arg-type]
        progress.outcome(_outcome(experiment, False))  # type: ignore[arg-type]
    shown = out.getvalue()
    assert "2/3" in shown and "retries 1" in shown and "errors 1" in shown
    assert "tokens 1,234" in shown and "calls/s" in shown and "ETA" in shown
    assert "2/3 cells" in progress.summary()


def test_progress_is_quiet_off_a_terminal(experiment: Experiment) -> None:
    out = io.StringIO()
    with RunProgress(2, Console(file=out)) as progress:
        progress.outcome(_outcome(experiment, True))  # type: ignore[arg-type]
    assert out.getvalue() == ""
    assert "1/2 cells" in progress.summary() and "1,234 tokens" in progress.summary()


# --- the command ----------------------------------------------------------------------


def test_run_command_records_settings_and_uses_the_cache(
    server: MessagesServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", str(EXPERIMENT_DIR), "--model", "anthropic:claude-test"]
    args += ["--base-url", server.url, "--runs", "1", "--variant", "baseline"]
    args += ["--scenario", "query-agenda-friday", "--scenario", "create-task-next-friday"]
    args += ["--concurrency", "2", "--timeout", "7", "--cache", str(tmp_path / "c")]
    assert main([*args, "--results", str(tmp_path / "a"), "--run-id", "a"]) == 0
    assert "2/2 cells" in capsys.readouterr().err
    calls = len(server.requests)  # the preflight and the two cells
    assert main([*args, "--results", str(tmp_path / "b"), "--run-id", "b"]) == 0
    assert len(server.requests) == calls  # all cached: not even a preflight
    meta, *lines = records(tmp_path / "b")
    assert isinstance(meta, Metadata)
    assert meta.settings["cache"] == str(tmp_path / "c") and meta.settings["timeout_s"] == 7
    assert meta.scenario_ids == ["query-agenda-friday", "create-task-next-friday"]
    assert meta.settings["plan"]["variants"] == ["baseline"]
    assert [r.cached for r in lines if isinstance(r, Result)] == [True, True]
    assert "sk-test" not in json.dumps([r.model_dump() for r in records(tmp_path / "a")])


def test_run_command_refuses_bad_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["run", str(EXPERIMENT_DIR), "--results", str(tmp_path)]
    assert main([*base, "--concurrency", "0"]) == 2
    assert main([*base, "--timeout", "0"]) == 2
    assert main([*base, "--rpm", "-5", "--model", "anthropic:x"]) == 2
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "--concurrency" in err and "--timeout" in err and "--rpm must be" in err
    assert "--resume RUN_ID" in err
    assert not list(tmp_path.iterdir())
