"""Is a results folder complete? The checks the experiment plan makes, rerun-aware.

For every (experiment, model, variant, rep) the metadata promises — its scenario ids and
its number of runs — there must be a file, and every scenario must have a result. An
empty answer (``types.empty_answer``: no text, no tool call) is a result — the judge fails
it, the report counts it, ``--resume`` treats its cell as done — so it is counted
(``Arm.empty``) and never makes a run incomplete. Partial reruns and resumes add files;
which result counts for a cell is ``log.reader``'s rule (latest timestamp, ties to the
later line, ``scenario_error`` lines never count), so runs of several models in one
folder never collapse into one.

Every result line holding a conversation (agentic experiments) must also be whole
(``conversation_problems``): it starts with a user turn; every tool turn follows an
assistant turn and answers each of its tool calls exactly once, by id (only a tool
timeout may cut the last tool turn short, and a limit may leave the last turn's calls
unrun); ``success`` is every check holding; the counts agree with the messages; the stop
reason is one of ``STOP_REASONS``. A line answered in batch mode must name an item its
run's batch journal records as succeeded (``batch_check``). A problem names the file
and line.

Bounded whatever the folder holds: files are streamed (``log.reader``), a file that is
not a regular file or a line that is not a record is one problem naming it, the runs a
metadata line may promise are bounded (``--runs``' range), runs that never started are
one problem per (model, variant), a list of scenario ids is shown up to ``SHOWN`` of
them, and at most ``KEPT`` problems are kept (the rest are counted). A conversation is
"empty" when it stopped as answered with an empty final answer; one a limit stopped
never is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tooltrial.definitions.agentic import CHECK_NAMES
from tooltrial.errors import CorruptLine, ResultsError
from tooltrial.files import UnreadableFile
from tooltrial.log.batch_check import batch_problems
from tooltrial.log.reader import iter_records, latest_results, result_files
from tooltrial.log.records import ConversationRecord, Error, Metadata, Result
from tooltrial.types import (
    STOP_REASONS,
    AssistantTurn,
    Message,
    ToolCall,
    ToolResult,
    ToolTurn,
    conversation_counts,
    empty_answer,
    final_answer_empty,
)

LIMIT_STOPS = ("max_turns", "max_tool_calls", "max_tokens")
"""Stop reasons that end a conversation before the last turn's tool calls run."""

ArmKey = tuple[str, str, str, int]
"""(experiment, model, variant, rep)."""

SHOWN = 10
"""Names (scenario ids, runs) listed in one problem; the rest are counted."""
KEPT = 1000
"""Problems kept in full; any more are only counted (``Validation.more``)."""


@dataclass(frozen=True)
class Problem:
    where: str
    what: str


@dataclass
class Arm:
    """One (experiment, model, variant, rep): its files and the result per scenario that
    counts."""

    experiment: str
    model: str
    variant: str
    rep: int
    expected: set[str] = field(default_factory=set)
    files: list[Path] = field(default_factory=list)
    records: list[Result | Error] = field(default_factory=list, repr=False)
    latest: dict[str, Result] = field(default_factory=dict)
    errors: dict[str, Error] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.model} {self.experiment}/{self.variant} run {self.rep}"

    def settle(self) -> None:
        """Apply the latest-result rule to the records read for this arm."""
        self.latest = {key[2]: r for key, r in latest_results(self.records).items()}
        self.errors = {r.scenario_id: r for r in self.records if isinstance(r, Error)}

    @property
    def missing(self) -> list[str]:
        return sorted(self.expected - self.latest.keys())

    @property
    def empty(self) -> list[str]:
        return sorted(s for s, r in self.latest.items() if _empty(r))

    @property
    def tool_only(self) -> int:
        """Single-turn results with tool calls and no text (a conversation never is)."""
        return sum(
            1
            for r in self.latest.values()
            if r.conversation is None and r.tool_calls and not r.response_text
        )


def _empty(result: Result) -> bool:
    """An empty answer (``types.empty_answer``); for a conversation, its final answer
    (``types.final_answer_empty``: a limit stopping it is not an empty answer)."""
    conversation = result.conversation
    if conversation is None:
        return empty_answer(result.response_text, result.tool_calls)
    return final_answer_empty(conversation.messages, conversation.stop_reason)


@dataclass
class Validation:
    arms: list[Arm]
    problems: list[Problem]
    more: int = 0
    """Problems beyond the first ``KEPT``, counted but not kept."""

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.arms)


class _Problems(list[Problem]):
    """The problems found, the first ``KEPT`` kept and the rest counted."""

    more = 0

    def append(self, problem: Problem) -> None:
        if len(self) < KEPT:
            super().append(problem)
        else:
            self.more += 1

    def __iadd__(self, problems: Iterable[Problem]) -> _Problems:  # type: ignore[override,misc]
        for problem in problems:
            self.append(problem)
        return self


def listed(names: Sequence[object], shown: int = SHOWN) -> str:
    """``names`` joined, at most ``shown`` of them, then how many more."""
    head = ", ".join(str(n) for n in names[:shown])
    return head + (f" and {len(names) - shown:,} more" if len(names) > shown else "")


def validate(directory: str | Path, run_id: str | None = None) -> Validation:
    directory = Path(directory)
    try:
        files = result_files([directory])
    except UnreadableFile as exc:  # a FIFO or a device given as the folder
        return Validation([], [Problem(str(directory), f"{exc.what}; {exc.fix}")])
    except ResultsError:
        what = "no .jsonl result files here" if directory.is_dir() else "no such folder"
        return Validation([], [Problem(str(directory), what)])
    problems = _Problems()
    arms: dict[ArmKey, Arm] = {}
    batched: list[tuple[Path, int, Result | Error]] = []  # lines answered in batch mode
    runs: dict[tuple[str, str, str], int] = defaultdict(int)
    for path in files:
        metadata = _read_file(path, run_id, arms, problems, batched)
        if metadata is not None:
            key = (metadata.experiment, metadata.model, metadata.variant)
            runs[key] = max(runs[key], metadata.runs or metadata.rep)
    for (experiment, model, variant), count in runs.items():
        never = [r for r in range(1, count + 1) if (experiment, model, variant, r) not in arms]
        if len(never) == 1:
            where = Arm(experiment, model, variant, never[0]).where
            problems.append(Problem(where, "no file: this run never started"))
        elif never:
            where = f"{model} {experiment}/{variant}"
            problems.append(
                Problem(where, f"no file for runs {listed(never)}: these runs never started")
            )
    if run_id is not None and not arms:
        problems.append(Problem(f"--run-id {run_id}", _no_such_run(directory, files)))
    for arm in arms.values():
        arm.settle()
        _check_arm(arm, problems)
    problems += [Problem(where, what) for where, what in batch_problems(directory, batched)]
    ordered = sorted(arms.values(), key=lambda a: (a.experiment, a.model, a.variant, a.rep))
    return Validation(ordered, list(problems), problems.more)


def _no_such_run(directory: Path, files: list[Path]) -> str:
    runs: list[str] = []
    for path in files:
        try:
            head = next(iter_records(path), None)
        except ResultsError:
            continue
        if isinstance(head, Metadata) and head.run_id not in runs:
            runs.append(head.run_id)
    found = f"the runs there: {listed(runs, 5)}" if runs else "no run's files are there"
    return f"no file of this run in {directory}/ ({found}); check the run id"


def _read_file(
    path: Path,
    run_id: str | None,
    arms: dict[ArmKey, Arm],
    problems: list[Problem],
    batched: list[tuple[Path, int, Result | Error]],
) -> Metadata | None:
    records = iter_records(path)
    metadata = None
    try:
        first = next(records, None)
        if not isinstance(first, Metadata):
            problems.append(Problem(f"{path}:1", "the first line must be the metadata line"))
            return None
        metadata = first
        if run_id is not None and metadata.run_id != run_id:
            return None
        key = (metadata.experiment, metadata.model, metadata.variant, metadata.rep)
        arm = arms.setdefault(key, Arm(*key))
        arm.expected |= set(metadata.scenario_ids)
        arm.files.append(path)
        for line_no, record in enumerate(records, start=2):
            if isinstance(record, Metadata):
                problems.append(Problem(str(path), "a second metadata line"))
            elif (record.model, record.variant, record.rep) != key[1:]:
                problems.append(Problem(f"{path}:{line_no}", _stray(record)))
            else:
                arm.records.append(record)
                problems += _conversation_problems(path, line_no, record)
                if isinstance(record, Result) and (record.batch_id or record.conversation):
                    batched.append((path, line_no, record))
        return metadata
    except CorruptLine as exc:
        problems.append(Problem(f"{exc.path}:{exc.line_no}", exc.problem))
        return metadata  # what came before the bad line still counts
    except UnreadableFile as exc:
        problems.append(Problem(str(exc.path), exc.what))
        return None


def _stray(record: Result | Error) -> str:
    return (
        f"a line of {record.model} {record.variant} run {record.rep} in the file of another "
        "(model, variant, run): not counted"
    )


def _check_arm(arm: Arm, problems: list[Problem]) -> None:
    where = arm.where
    if arm.missing:
        failed = [s for s in arm.missing if s in arm.errors]
        detail = f" ({len(failed)} failed after retries: {listed(failed)})" if failed else ""
        problems.append(
            Problem(
                where,
                f"{len(arm.missing):,} scenario(s) without a result{detail}: {listed(arm.missing)}",
            )
        )
    unknown = sorted(arm.latest.keys() - arm.expected)
    if unknown:
        problems.append(
            Problem(where, f"results for scenarios not in the metadata: {listed(unknown)}")
        )


def _conversation_problems(path: Path, line_no: int, record: Result | Error) -> list[Problem]:
    if not isinstance(record, Result) or record.conversation is None:
        return []
    cell = f"{record.variant}/{record.scenario_id} run {record.rep}"
    return [
        Problem(f"{path}:{line_no}", f"conversation of {cell}: {what}")
        for what in conversation_problems(record.conversation)
    ]


def conversation_problems(conversation: ConversationRecord) -> list[str]:
    """What makes a recorded conversation structurally broken (see the module docstring);
    empty when it is whole."""
    messages = conversation.messages
    stop = conversation.stop_reason
    problems: list[str] = []
    if not messages or messages[0].role != "user":
        problems.append("it does not start with a user turn")
    problems += _turn_problems(messages, stop)
    if stop not in STOP_REASONS:
        problems.append(f"stop_reason {stop!r} is not one of {', '.join(STOP_REASONS)}")
    failed = [c.name for c in conversation.checks if not c.ok]
    if conversation.success != (not failed):
        why = f"check(s) {', '.join(failed)} failed" if failed else "every check held"
        problems.append(f"success is {str(conversation.success).lower()} but {why}")
    unknown = sorted({c.name for c in conversation.checks} - set(CHECK_NAMES))
    if unknown:
        problems.append(f"unknown check(s) {', '.join(unknown)}; known: {', '.join(CHECK_NAMES)}")
    return problems + _count_problems(conversation)


def _turn_problems(messages: list[Message], stop: str) -> list[str]:
    """Every tool turn answers the assistant turn before it; every assistant turn with
    tool calls is answered (but a limit's last turn); an answered conversation ends with
    the model's reply."""
    problems: list[str] = []
    for i, message in enumerate(messages):
        before = messages[i - 1] if i else None
        after = messages[i + 1] if i + 1 < len(messages) else None
        where = f"message {i + 1}"
        if isinstance(message, ToolTurn):
            if not isinstance(before, AssistantTurn):
                problems.append(f"{where}: a tool turn that does not follow an assistant turn")
                continue
            cut = after is None and stop == "tool_timeout"
            problems += _answer_problems(where, before.response.tool_calls, message.results, cut)
        elif isinstance(message, AssistantTurn) and message.response.tool_calls:
            unrun = after is None and stop in LIMIT_STOPS
            if not isinstance(after, ToolTurn) and not unrun:
                calls = len(message.response.tool_calls)
                problems.append(f"{where}: {calls} tool call(s) that no tool turn answers")
    last = messages[-1] if messages else None
    if stop == "answered" and not (
        isinstance(last, AssistantTurn) and not last.response.tool_calls
    ):
        problems.append(
            "stopped as answered, but the last message is not a reply without tool calls"
        )
    return problems


def _answer_problems(
    where: str, calls: tuple[ToolCall, ...], results: tuple[ToolResult, ...], cut: bool
) -> list[str]:
    """Each call answered exactly once, by id, by a result of the same tool; ``cut``: a
    tool timeout may end the turn early, at an error result."""
    problems: list[str] = []
    ids = [c.id for c in calls]
    if len(set(ids)) != len(ids):
        problems.append(f"{where}: tool call ids repeat within one turn ({', '.join(ids)})")
    names = {c.id: c.name for c in calls}
    seen: set[str] = set()
    for result in results:
        if result.call_id not in names:
            problems.append(
                f"{where}: a result for call {result.call_id!r}, which the turn never made"
            )
        elif result.call_id in seen:
            problems.append(f"{where}: call {result.call_id!r} answered more than once")
        elif result.name != names[result.call_id]:
            problems.append(
                f"{where}: call {result.call_id!r} ({names[result.call_id]}) answered by a "
                f"result of {result.name}"
            )
        seen.add(result.call_id)
    missing = [i for i in ids if i not in seen]
    timed_out = cut and bool(results) and results[-1].is_error
    if missing and not timed_out:
        problems.append(f"{where}: call(s) {', '.join(map(repr, missing))} never answered")
    return problems


def _count_problems(conversation: ConversationRecord) -> list[str]:
    found = conversation_counts(conversation.messages)
    recorded = {
        "turns": conversation.turns,
        "tool_calls": conversation.tool_calls,
        "tool_errors": conversation.tool_errors,
    }
    return [
        f"{name} is {recorded[name]} but the messages hold {found[name]}"
        for name in found
        if recorded[name] != found[name]
    ]
