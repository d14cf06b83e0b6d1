"""The batch journal: append-only, fsync'd records that replay to the same state; a torn
last line (a write cut by SIGKILL) is skipped and ended by the next writer; a newer
format or a garbled line is refused rather than guessed past; ``journal_problems``
finds a custom id used twice; custom ids are deterministic, distinct per attempt and
fit both providers' rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tooltrial.errors import TooltrialError
from tooltrial.files import FileRefused
from tooltrial.turns.batch.ids import custom_id, request_sha
from tooltrial.turns.batch.journal import (
    Direct,
    Ended,
    Group,
    ItemOutcome,
    Journal,
    JournalError,
    JournalItem,
    Outcomes,
    Submitted,
    journal_path,
    journal_problems,
    replay,
    succeeded_in,
)
from tooltrial.types import Cell, ModelResponse, Usage

CELL = Cell("anthropic:m", "v", "s", 1)


def item(attempt: int = 1, turn: int = 1) -> JournalItem:
    return JournalItem(
        custom_id=custom_id("r", CELL, turn, attempt),
        cell=("anthropic:m", "v", "s", 1),
        turn=turn,
        attempt=attempt,
        sha="x",
    )


def group(*items: JournalItem, name: str = "g1") -> Group:
    return Group(
        group=name,
        model="anthropic:m",
        at="2025-01-01T00:00:00+00:00",
        count=len(items),
        bytes=10,
        items=list(items),
    )


RESPONSE = ModelResponse(text="hi", tool_calls=(), stop_reason="end_turn", usage=Usage())


def test_records_replay_to_the_state_they_describe(tmp_path: Path) -> None:
    path = journal_path(tmp_path, "r")
    journal = Journal(path, "r")
    state = journal.open()
    first = item()
    journal.append(group(first))
    journal.append(Submitted(group="g1", batch_id="b1"))
    assert replay(path).open_batches() == ["b1"]
    journal.append(
        Outcomes(
            batch_id="b1",
            items=[ItemOutcome(custom_id=first.custom_id, status="succeeded", response=RESPONSE)],
        )
    )
    journal.append(Ended(batch_id="b1", status="ended"))
    journal.close()
    state = replay(path)
    assert state.open_batches() == [] and state.unsubmitted() == []
    latest = state.latest(first.key)
    assert latest is not None and latest.outcome is not None
    assert latest.outcome.status == "succeeded"
    assert latest.outcome.response is None  # the answer stays on disk, not in memory
    reader = Journal(path, "r")
    reader.open()
    assert (answer := reader.outcome(latest)) is not None and answer.response == RESPONSE
    reader.close()
    assert list(succeeded_in(state)) == [("b1", first.custom_id)]
    assert state.next_attempt(first.key) == 2 and state.spent(first.key) == 1


def test_answers_are_read_back_from_where_they_were_written(tmp_path: Path) -> None:
    """Offsets hold across a torn line ended by the next writer, records written in one
    call, and a reopened file; each item's answer is its own."""
    path = journal_path(tmp_path, "r")
    journal = Journal(path, "r")
    journal.open()
    items = [item(turn=t) for t in range(1, 5)]
    journal.append(group(*items), Submitted(group="g1", batch_id="b1"))
    journal.close()
    with path.open("ab") as handle:
        handle.write(b'{"type": "outcomes", "batch')  # cut by a kill
    journal = Journal(path, "r")
    state = journal.open()

    def answer(n: int) -> ItemOutcome:
        response = RESPONSE.model_copy(update={"text": f"answer {n}"})
        return ItemOutcome(custom_id=items[n].custom_id, status="succeeded", response=response)

    journal.record(state, Outcomes(batch_id="b1", items=[answer(0), answer(1)]))
    journal.record(state, Outcomes(batch_id="b1", items=[answer(2)]))
    journal.record(state, Direct(item=items[3], outcome=answer(3)))
    for states in (state, replay(path)):
        for n, one in enumerate(items):
            held = states.items[one.custom_id]
            assert held.outcome is not None and held.outcome.response is None
            read = journal.outcome(held)
            assert read is not None and read.response is not None
            assert read.response.text == f"answer {n}"
    journal.close()


def test_a_group_without_its_batch_id_is_unsubmitted(tmp_path: Path) -> None:
    journal = Journal(journal_path(tmp_path, "r"), "r")
    journal.open()
    journal.append(group(item()))
    journal.close()
    assert [g.record.group for g in replay(journal.path).unsubmitted()] == ["g1"]


def test_a_torn_last_line_is_skipped_then_ended(tmp_path: Path) -> None:
    path = journal_path(tmp_path, "r")
    journal = Journal(path, "r")
    journal.open()
    journal.append(group(item()))
    journal.close()
    with path.open("ab") as handle:
        handle.write(b'{"type": "submitted", "group": "g1", "batch')  # cut by a kill
    assert replay(path).unsubmitted()  # the torn record never counted
    again = Journal(path, "r")
    again.open()
    again.append(Submitted(group="g1", batch_id="b1"))
    again.close()
    assert replay(path).open_batches() == ["b1"]
    assert path.read_bytes().count(b"\n") == 4  # header, group, torn line ended, submitted


def test_a_newer_or_garbled_journal_is_refused(tmp_path: Path) -> None:
    path = journal_path(tmp_path, "r")
    path.parent.mkdir(parents=True)
    path.write_text('{"type": "journal", "format_version": 99, "run_id": "r", "created_at": "x"}\n')
    with pytest.raises(JournalError, match="newer"):
        replay(path)
    path.write_text('{"type": "journal", "format_version": 1, "run_id": "r"}\n{"type": "nope"}\n')
    with pytest.raises(JournalError, match=":2: not a batch journal record"):
        replay(path)
    Journal(path.with_name("r2.jsonl"), "r2").open()
    with pytest.raises(JournalError, match="journal of run r2"):
        Journal(path.with_name("r2.jsonl"), "other").open()


def test_a_custom_id_in_two_attempts_is_a_problem(tmp_path: Path) -> None:
    journal = Journal(journal_path(tmp_path, "r"), "r")
    journal.open()
    journal.append(group(item()), group(item(), name="g2"), Submitted(group="g9", batch_id="b"))
    journal.close()
    _, problems = journal_problems(journal.path)
    assert any("used by two attempts" in p for p in problems)
    assert any("unknown group g9" in p for p in problems)


def test_custom_ids_are_stable_distinct_and_valid() -> None:
    ids = {custom_id("run", CELL, turn, attempt) for turn in (1, 2) for attempt in (1, 2, 3)}
    assert len(ids) == 6
    assert custom_id("run", CELL, 1, 1) == custom_id("run", CELL, 1, 1)
    assert custom_id("run", CELL, 1, 1) != custom_id("other", CELL, 1, 1)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", i) for i in ids)
    assert request_sha(b"{}") == request_sha(b"{}") != request_sha(b"[]")


def test_a_journal_is_never_written_through_a_link_nor_its_run_id_a_path(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.write_text("keep\n")
    path = journal_path(tmp_path / "results", "r1")
    path.parent.mkdir(parents=True)
    path.symlink_to(outside)
    with pytest.raises(FileRefused, match="a symbolic link"):
        Journal(path, "r1").open()
    assert outside.read_text() == "keep\n"
    with pytest.raises(TooltrialError, match=r"run id '\.\./x' must be"):
        journal_path(tmp_path / "results", "../x")
