"""``tooltrial validate``'s checks of batch mode: every line that says a batch answered it
names an item the run's batch journal records as succeeded in that batch, and the
journal itself is whole (no custom id in two attempts, no record naming an unknown
group).

A result names its batch with ``batch_id`` and ``custom_id`` (both or neither); each
assistant turn of a conversation with ``batch``. The journal is
``<results>/batches/<run_id>.jsonl`` (``turns.batch.journal``); a folder copied without
it is still checked line by line, and said to lack it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tooltrial.log.records import Error, Result
from tooltrial.turns.batch.journal import journal_path, journal_problems, succeeded_in
from tooltrial.types import AssistantTurn


def batch_problems(
    directory: Path, lines: Iterable[tuple[Path, int, Result | Error]]
) -> list[tuple[str, str]]:
    """(where, what) for every problem; ``lines``: each record with its file and line."""
    problems: list[tuple[str, str]] = []
    refs: dict[str, list[tuple[str, str, str]]] = {}  # run → (where, batch, custom id)
    for path, line_no, record in lines:
        if not isinstance(record, Result):
            continue
        where = f"{path}:{line_no}"
        if (record.batch_id is None) != (record.custom_id is None):
            problems.append((where, "names only one of batch_id and custom_id"))
        found = [(record.batch_id, record.custom_id)] if record.batch_id else []
        if record.conversation is not None:
            found = [
                (m.batch.batch_id, m.batch.custom_id)
                for m in record.conversation.messages
                if isinstance(m, AssistantTurn) and m.batch is not None
            ]
        for batch_id, custom_id in found:
            if batch_id and custom_id:
                refs.setdefault(record.run_id, []).append((where, batch_id, custom_id))
    for run_id, named in refs.items():
        path = journal_path(directory, run_id)
        if not path.exists():
            problems.append((str(path), f"run {run_id} names batches but has no batch journal"))
            continue
        state, journal = journal_problems(path)
        problems += [(str(path), what) for what in journal]
        succeeded = set(succeeded_in(state))
        for where, batch_id, custom_id in named:
            if (batch_id, custom_id) not in succeeded:
                problems.append(
                    (
                        where,
                        f"batch item {custom_id} of {batch_id}: the journal does not record "
                        "it as succeeded in that batch",
                    )
                )
    return problems
