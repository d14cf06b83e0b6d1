"""Batch mode in one process, against the project's batch servers: grouping within
limits, items in flight, each item's outcome and the retry policy (errored, expired,
canceled; retried in a batch, online, or not), 500s while polling, a create whose
response was lost, and a run stopped at the worst moments then resumed — every cell
ends with exactly one result (or, its attempts spent, an error line), and no custom id
is ever submitted twice (the server counts)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import anthropic
import pytest
from support.batch import FAST, KEY, journal, journal_types, lines, results_per_cell, until

from tooltrial import load_experiment
from tooltrial.cli import main
from tooltrial.log.records import Error, Result
from tooltrial.log.validate import validate
from tooltrial.models import get_model
from tooltrial.run.options import RunOptions
from tooltrial.run.session import Run, open_run
from tooltrial.testing.batch_server import (
    AnthropicBatchServer,
    BatchFaults,
    OpenAIBatchServer,
)
from tooltrial.testing.scripted_agent import ScriptedAgent, call, result, say
from tooltrial.turns.batch.options import BatchOptions

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = load_experiment(ROOT / "tests" / "experiment")
MINI = load_experiment(ROOT / "tests" / "mini_agentic")
SCENARIOS = ("create-task-tomorrow-at-3", "no-call-weather", "multi-task-and-event")
CELLS = 2 * len(SCENARIOS)  # two variants, one rep


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    for name in ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "LANGSMITH_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def anthropic_server(**faults: Any) -> AnthropicBatchServer:
    return AnthropicBatchServer(batch_faults=BatchFaults(**faults), max_seconds=120)


def model_for(server: Any, spec: str = "anthropic:claude-test", experiment: Any = EXPERIMENT):
    url = server.base_url if spec.startswith("openai") else server.url
    return get_model(
        spec, temperature=experiment.temperature, max_tokens=experiment.max_tokens, base_url=url
    )


def options(results: Path, batch: BatchOptions | None = FAST, **kw: Any) -> RunOptions:
    settings: dict[str, Any] = {
        "results": results,
        "runs": 1,
        "order": "blocked",
        "scenarios": SCENARIOS,
        "run_id": "b",
        "batch": batch,
    }
    return RunOptions(**(settings | kw))


def run_batch(server: Any, results: Path, *, spec: str = "anthropic:claude-test", **kw: Any) -> Run:
    experiment = kw.pop("experiment", EXPERIMENT)
    with open_run(experiment, model_for(server, spec, experiment), options(results, **kw)) as run:
        assert asyncio.run(run.execute()) is None
    return run


def assert_never_twice(server: Any) -> None:
    counts = server.created_ids
    assert counts and set(counts.values()) == {1}, "a custom id was submitted twice"


def only_results(results: Path, cells: int = CELLS) -> list[Result]:
    found = lines(results)
    assert all(isinstance(r, Result) for r in found), [r for r in found if isinstance(r, Error)]
    per_cell = results_per_cell(results)
    assert len(per_cell) == cells and set(per_cell.values()) == {1}
    assert validate(results).ok
    return [r for r in found if isinstance(r, Result)]


# --- grouping, limits, what is recorded --------------------------------------------------


def test_a_batch_run_records_each_cell_once_with_its_batch(tmp_path: Path) -> None:
    batch = dataclasses.replace(FAST, max_items=15, in_flight=2)
    with anthropic_server(processing_s=0.03) as srv:
        run_batch(srv, tmp_path, batch=batch, runs=2, scenarios=())
        batches = srv.batches
    found = only_results(tmp_path, 80)
    assert {r.batch_id for r in found} == {b.id for b in batches}
    assert all(r.custom_id for r in found)
    assert [len(b.items) for b in batches] == [15, 15, 15, 15, 15, 5]
    spans = [(b.created_mono, b.ended_mono) for b in batches]
    most = max(sum(1 for s, e in spans if s <= t < (e or t + 1)) for t, _ in spans)
    assert most <= 2  # never more than --batch-in-flight open at once
    assert_never_twice(srv)
    types = journal_types(tmp_path, "b")
    assert types["group"] == types["submitted"] == types["ended"] == len(batches)
    meta = json.loads(next(iter(tmp_path.glob("*.jsonl"))).read_text().splitlines()[0])
    assert meta["settings"]["batch"] == batch.record()


def test_max_items_bounds_the_cells_waiting_at_once(tmp_path: Path) -> None:
    """Memory in batch mode grows with the cells waiting on batches: with --batch-max-items
    at most in_flight × max_items wait at once, and the run still completes."""
    batch = dataclasses.replace(FAST, max_items=5, in_flight=2)
    with anthropic_server(processing_s=0.01) as srv:
        run = run_batch(srv, tmp_path, batch=batch, runs=2, scenarios=())
        sizes = [len(b.items) for b in srv.batches]
    assert run.engine is not None and run.engine.concurrency == 10
    assert sum(sizes) == 80 and max(sizes) <= 5
    only_results(tmp_path, 80)
    assert_never_twice(srv)
    with open_run(EXPERIMENT, model_for(srv), options(tmp_path / "all", scenarios=())) as every:
        assert every.engine is not None and every.engine.concurrency == 40  # no max: every cell


def test_batches_stay_under_the_byte_limit(tmp_path: Path) -> None:
    batch = dataclasses.replace(FAST, max_bytes=9_000)
    with anthropic_server() as srv:
        run_batch(srv, tmp_path, batch=batch)
        sizes = [len(b.items) for b in srv.batches]
    only_results(tmp_path)
    groups = [r for r in journal(tmp_path, "b") if r.type == "group"]
    assert len(groups) > 1 and all(g.bytes <= 9_000 for g in groups)
    assert sum(sizes) == CELLS


def test_openai_batches_through_files(tmp_path: Path) -> None:
    with OpenAIBatchServer(max_seconds=120) as srv:
        run_batch(srv, tmp_path, spec="openai:gpt-test")
        assert srv.files and srv.batches[0].metadata["tooltrial_group"].startswith("g")
        assert_never_twice(srv)
    assert {r.model for r in only_results(tmp_path)} == {"openai:gpt-test"}


def test_a_conversation_goes_turn_by_turn(tmp_path: Path) -> None:
    agent = ScriptedAgent(
        [
            {
                "prompt": "dentist",
                "offers": "update_task",
                "steps": [
                    call("list_tasks", query="Dentist"),
                    call("update_task", id=result("0.id"), due="2025-03-21"),
                    say("Moved it."),
                ],
            },
            {
                "prompt": "dentist",
                "steps": [call("reschedule", title="Dentist", due="2025-03-21"), say(result())],
            },
            {"prompt": "rent", "steps": [say("Delete 'Pay rent'?")]},
        ]
    )
    with AnthropicBatchServer(
        responder=agent, batch_faults=BatchFaults(errored=0.3, seed=4)
    ) as srv:
        run_batch(srv, tmp_path, experiment=MINI, scenarios=())
        assert_never_twice(srv)
    found = only_results(tmp_path, 4)
    assert all(
        r.conversation is not None and r.conversation.success
        for r in found
        if "dentist" in r.scenario_id
    )


# --- each item's outcome and the retry policy ---------------------------------------------


def test_errored_items_go_in_a_later_batch(tmp_path: Path) -> None:
    with anthropic_server(errored=0.5, seed=1) as srv:
        run_batch(srv, tmp_path)
        assert len(srv.batches) == 2
        assert_never_twice(srv)
    found = only_results(tmp_path)
    assert sorted(r.attempts for r in found).count(2) == len(srv.batches[1].items)
    statuses = Counter(
        o.status for r in journal(tmp_path, "b") if r.type == "outcomes" for o in r.items
    )
    assert statuses["errored"] == len(srv.batches[1].items) and statuses["succeeded"] == CELLS


def test_errored_items_end_as_error_lines_once_their_attempts_are_spent(tmp_path: Path) -> None:
    batch = dataclasses.replace(FAST, max_attempts=2)
    with anthropic_server(errored=1.0, fault_times=99) as srv:
        run_batch(srv, tmp_path, batch=batch)
        assert [len(b.items) for b in srv.batches] == [CELLS, CELLS]
        assert_never_twice(srv)
    errors = lines(tmp_path)
    assert len(errors) == CELLS and all(isinstance(e, Error) for e in errors)
    assert {(e.kind, e.attempts) for e in errors} == {("api_error", 2)}  # type: ignore[union-attr]
    assert not validate(tmp_path).ok


def test_an_error_a_retry_cannot_fix_is_not_retried(tmp_path: Path) -> None:
    with anthropic_server(errored=1.0, errored_kind="invalid_request_error") as srv:
        run_batch(srv, tmp_path)
        assert len(srv.batches) == 1
    assert {(e.kind, e.attempts) for e in lines(tmp_path)} == {("invalid_request_error", 1)}  # type: ignore[union-attr]


def test_errored_items_can_be_called_online(tmp_path: Path) -> None:
    batch = dataclasses.replace(FAST, retry_errored="online")
    with anthropic_server(errored=1.0) as srv:
        run_batch(srv, tmp_path, batch=batch)
        online = [r for r in srv.requests if r.path == "/v1/messages" and r.body["max_tokens"] != 1]
    found = only_results(tmp_path)
    assert len(online) == CELLS and all(r.batch_id is None for r in found)
    assert journal_types(tmp_path, "b")["direct"] == CELLS


def test_with_retry_none_an_errored_item_is_an_error_line(tmp_path: Path) -> None:
    batch = dataclasses.replace(FAST, retry_errored="none")
    with anthropic_server(errored=1.0) as srv:
        run_batch(srv, tmp_path, batch=batch)
    assert {(e.kind, e.attempts) for e in lines(tmp_path)} == {("api_error", 1)}  # type: ignore[union-attr]


def test_expired_items_are_submitted_again(tmp_path: Path) -> None:
    with anthropic_server(expired=0.5, seed=2) as srv:
        run_batch(srv, tmp_path)
        assert len(srv.batches) == 2
        assert_never_twice(srv)
    only_results(tmp_path)


def test_items_that_always_expire_end_as_error_lines(tmp_path: Path) -> None:
    with OpenAIBatchServer(batch_faults=BatchFaults(expired=1.0, fault_times=99)) as srv:
        run_batch(srv, tmp_path, spec="openai:gpt-test")
        assert len(srv.batches) == FAST.max_attempts
        assert_never_twice(srv)
    assert {(e.kind, e.attempts) for e in lines(tmp_path)} == {("expired", 3)}  # type: ignore[union-attr]


async def test_canceled_items_are_submitted_again(tmp_path: Path) -> None:
    with anthropic_server(hold=True) as srv:
        with open_run(EXPERIMENT, model_for(srv), options(tmp_path)) as run:
            task = asyncio.create_task(run.execute())
            first = await until(lambda: srv.batches, what="a batch")
            srv.cancel(first[0].id)
            await until(lambda: len(srv.batches) == 2, what="the items submitted again")
            srv.release()
            assert await task is None
        assert_never_twice(srv)
    assert {r.attempts for r in only_results(tmp_path)} == {2}
    outcomes = [o for r in journal(tmp_path, "b") if r.type == "outcomes" for o in r.items]
    assert Counter(o.status for o in outcomes) == {"canceled": CELLS, "succeeded": CELLS}


def test_500s_while_polling_are_waited_out(tmp_path: Path) -> None:
    with anthropic_server(poll_500=3) as srv:
        run_batch(srv, tmp_path)
        assert srv.stats().get("error", 0) >= 3
    only_results(tmp_path)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_create_whose_response_is_lost_is_found_not_sent_again(
    tmp_path: Path, provider: str
) -> None:
    faults = BatchFaults(lose_create=frozenset({1}))
    if provider == "anthropic":
        server: Any = AnthropicBatchServer(batch_faults=faults)
        spec, how = "anthropic:claude-test", "matched"
    else:
        server = OpenAIBatchServer(batch_faults=faults)
        spec, how = "openai:gpt-test", "found"
    with server:
        run_batch(server, tmp_path, spec=spec)
        assert len(server.batches) == 1 and server.stats()["dropped"] == 1
        assert_never_twice(server)
    submitted = [r for r in journal(tmp_path, "b") if r.type == "submitted"]
    assert [s.how for s in submitted] == [how]
    only_results(tmp_path)


# --- stopped at the worst moments, then resumed --------------------------------------------


async def stop_when(srv: Any, results: Path, condition: Any, **kw: Any) -> None:
    """Start the run, and stop it (as a crash would: nothing more is written) once
    ``condition(srv)`` holds."""
    with open_run(
        EXPERIMENT, model_for(srv, kw.pop("spec", "anthropic:claude-test")), options(results, **kw)
    ) as run:
        task = asyncio.create_task(run.execute())
        await until(lambda: condition(srv), what="the moment to stop")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def resume(srv: Any, results: Path, spec: str = "anthropic:claude-test") -> Run:
    """``--resume b`` as the command line gives it: no batch flags (the run's own)."""
    with open_run(None, [model_for(srv, spec)], RunOptions(results=results, resume="b")) as run:
        assert run.options.batch is not None, "a batch run resumes in batch mode"
        assert asyncio.run(run.execute()) is None
    return run


@pytest.mark.parametrize("spec", ["anthropic:claude-test", "openai:gpt-test"])
def test_stopped_between_submit_and_record_the_batch_is_found(tmp_path: Path, spec: str) -> None:
    cls = AnthropicBatchServer if spec.startswith("anthropic") else OpenAIBatchServer
    with cls(batch_faults=BatchFaults(hold_create="after"), max_seconds=120) as srv:
        asyncio.run(stop_when(srv, tmp_path, lambda s: s.creates_held, spec=spec))
        assert len(srv.batches) == 1 and not journal_types(tmp_path, "b")["submitted"]
        srv.batch_faults = BatchFaults()
        resume(srv, tmp_path, spec)
        assert len(srv.batches) == 1, "the batch made before the stop was collected, not redone"
        assert_never_twice(srv)
    only_results(tmp_path)


def test_stopped_before_the_create_arrived_the_items_are_sent_under_new_ids(tmp_path: Path) -> None:
    with anthropic_server(hold_create="before") as srv:
        asyncio.run(stop_when(srv, tmp_path, lambda s: s.creates_held))
        assert not srv.batches and len(srv.received_ids) == CELLS
        srv.batch_faults = BatchFaults()
        resume(srv, tmp_path)
        assert_never_twice(srv)
        never_made = set(srv.received_ids) - set(srv.created_ids)
        assert len(never_made) == CELLS  # the first ids reached the server, never a batch
    assert journal_types(tmp_path, "b")["abandoned"] == 1
    assert {r.custom_id[-2:] for r in only_results(tmp_path)} == {"a2"}


def test_a_matched_batch_that_is_not_ours_is_rejected(tmp_path: Path) -> None:
    with anthropic_server(hold_create="before") as srv:
        asyncio.run(stop_when(srv, tmp_path, lambda s: s.creates_held))
        srv.batch_faults = BatchFaults()
        # Someone else's batch, of the same size, made after ours was written down.
        client = anthropic.Anthropic(base_url=srv.url, api_key=KEY)
        params = {"model": "other", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
        client.messages.batches.create(
            requests=[{"custom_id": f"other-{i}", "params": params} for i in range(CELLS)]
        )
        resume(srv, tmp_path)
        assert len(srv.batches) == 2
    types = journal_types(tmp_path, "b")
    assert types["rejected"] == 1 and types["abandoned"] == 1
    only_results(tmp_path)


def test_stopped_while_polling_the_batch_is_collected(tmp_path: Path) -> None:
    with anthropic_server(hold=True) as srv:
        asyncio.run(stop_when(srv, tmp_path, lambda s: s.batches and s.batches[0].looks >= 2))
        srv.release()
        resume(srv, tmp_path)
        assert len(srv.batches) == 1
        assert_never_twice(srv)
    only_results(tmp_path)


def test_stopped_while_collecting_the_results_are_read_again(tmp_path: Path) -> None:
    with anthropic_server(hold_results_after=2) as srv:
        asyncio.run(stop_when(srv, tmp_path, lambda s: s.results_sent >= 2))
        srv.batch_faults = BatchFaults()
        resume(srv, tmp_path)
        assert len(srv.batches) == 1
    only_results(tmp_path)


# --- the command line ----------------------------------------------------------------------


def test_batch_settings_need_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["run", str(ROOT / "tests" / "experiment"), "--results", str(tmp_path)]
    assert main([*args, "--batch-poll", "1"]) == 2
    assert "need --batch" in capsys.readouterr().err
    assert main([*args, "--batch", "--model", "local:smollm2"]) == 2
    assert "batch mode runs anthropic: and openai: models" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing made
