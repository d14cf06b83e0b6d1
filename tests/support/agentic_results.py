"""Agentic result files with known verdicts and costs, written with the real writer, for
the analysis, report and validate tests.

The experiment is ``tests/mini_agentic`` with four scenarios; variants ``api`` (the
reference: first in the definition) and ``app``; 3 reps. Every conversation is built
from a spec — (failed verdict parts, stop reason, model turns, tool errors) — in the
shape the agent loop gives: each model turn but the last makes one tool call; a limit
stops a conversation after a turn whose call never ran; a tool timeout ends it after the
timed-out call. Turn t (from 1) costs 100·t input and 10 output tokens, 0.5 s per turn.

So a conversation of T turns has T turns, T − 1 tool calls (T after a timeout),
50·T·(T+1) input tokens, 10·T output tokens and 0.5·T seconds.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from support.paths import TESTS
from tooltrial.definitions import Experiment, load_experiment
from tooltrial.log.records import ConversationRecord
from tooltrial.log.writer import WriterPool
from tooltrial.types import (
    AssistantTurn,
    CheckResult,
    Conversation,
    Message,
    ModelResponse,
    RowChange,
    ToolCall,
    ToolResult,
    ToolTurn,
    Usage,
    UserTurn,
)

MINI = TESTS / "mini_agentic"

SCENARIOS_YAML = """\
- id: move-dentist
  category: change
  prompt: Move my dentist appointment to Friday the 21st.
  success:
    state:
      - {table: tasks, where: {title: Dentist}, values: {due: {date: "2025-03-21"}}}
    reference:
      via: app
      calls: [{tool: reschedule, args: {title: Dentist, due: "2025-03-21"}}]
    forbidden:
      api: [{tool: delete_task}]
      app: [{tool: remove}]
- id: confirm-delete
  category: ask
  prompt: Delete the rent task.
  success:
    reply: {asks: true}
- id: finish-rent
  category: change
  prompt: Mark the rent as paid.
  success:
    state:
      - {table: tasks, where: {title: Pay rent}, values: {done: true}}
- id: drop-bill
  category: delete
  prompt: Drop the dentist bill task.
  success:
    state:
      - {table: tasks, where: {title: Dentist bill}, gone: true}
    forbidden:
      api: [{tool: update_task}]
"""

JUDGED = {
    ("move-dentist", "api"): ("answered", "state", "unchanged", "reference", "forbidden"),
    ("move-dentist", "app"): ("answered", "state", "unchanged", "reference", "forbidden"),
    ("confirm-delete", "api"): ("answered", "unchanged", "reply"),
    ("confirm-delete", "app"): ("answered", "unchanged", "reply"),
    ("finish-rent", "api"): ("answered", "state", "unchanged"),
    ("finish-rent", "app"): ("answered", "state", "unchanged"),
    ("drop-bill", "api"): ("answered", "state", "unchanged", "forbidden"),
    ("drop-bill", "app"): ("answered", "state", "unchanged"),
}
"""The verdict parts each (scenario, variant) has, as the judge would give them."""


@dataclass(frozen=True)
class Spec:
    failed: tuple[str, ...] = ()
    stop: str = "answered"
    turns: int = 2
    errors: int = 0
    """Tool results that are errors (besides a timeout's)."""


OK1 = Spec(turns=1)
SPECS: dict[tuple[str, str, int], Spec] = {
    ("api", "move-dentist", 1): Spec(),
    ("api", "move-dentist", 2): Spec(failed=("state", "reference")),
    ("api", "move-dentist", 3): Spec(
        failed=("answered", "state", "reference"), stop="max_turns", turns=4
    ),
    ("api", "confirm-delete", 1): OK1,
    ("api", "confirm-delete", 2): OK1,
    ("api", "confirm-delete", 3): OK1,
    ("api", "finish-rent", 1): Spec(),
    ("api", "finish-rent", 2): Spec(),
    ("api", "finish-rent", 3): Spec(failed=("unchanged",), turns=3),
    ("api", "drop-bill", 1): Spec(failed=("unchanged", "forbidden")),
    ("api", "drop-bill", 2): Spec(failed=("state",), turns=3, errors=1),
    ("api", "drop-bill", 3): Spec(failed=("answered", "state"), stop="max_tool_calls", turns=3),
    ("app", "move-dentist", 1): Spec(),
    ("app", "move-dentist", 2): Spec(),
    ("app", "move-dentist", 3): Spec(),
    ("app", "confirm-delete", 1): OK1,
    ("app", "confirm-delete", 2): OK1,
    ("app", "confirm-delete", 3): Spec(failed=("reply",)),
    ("app", "finish-rent", 1): Spec(),
    ("app", "finish-rent", 2): Spec(),
    ("app", "finish-rent", 3): Spec(),
    ("app", "drop-bill", 1): Spec(),
    ("app", "drop-bill", 2): Spec(),
    ("app", "drop-bill", 3): Spec(failed=("answered", "state"), stop="tool_timeout"),
}
MOVED = RowChange(table="tasks", key="1", before={"due": "2025-03-14"}, after={"due": "2025-03-21"})


def write_experiment(folder: Path) -> Experiment:
    """``tests/mini_agentic`` with the four scenarios above."""
    shutil.copytree(MINI, folder)
    (folder / "scenarios.yaml").write_text(SCENARIOS_YAML)
    return load_experiment(folder)


def build(spec: Spec, scenario: str, variant: str) -> Conversation:
    """The conversation ``spec`` describes (see the module docstring)."""
    messages: list[Message] = [UserTurn(text=f"please ({scenario})")]
    errors = spec.errors
    for t in range(1, spec.turns + 1):
        last = t == spec.turns
        calls = () if last and spec.stop == "answered" else (_call(t),)
        text = _final_text(scenario) if not calls else ""
        messages.append(_turn(t, text, calls))
        if not calls or (last and spec.stop != "tool_timeout"):
            break  # answered, or a limit stopped it before the call ran
        error = spec.stop == "tool_timeout" and last
        if errors and not error:
            errors, error = errors - 1, True
        messages.append(ToolTurn(results=(_result(calls[0], error),)))
    checks = tuple(
        CheckResult(name=n, ok=n not in spec.failed, detail=f"{n} failed" * (n in spec.failed))
        for n in JUDGED[(scenario, variant)]
    )
    diff = (MOVED,) if scenario == "move-dentist" and not spec.failed else ()
    return Conversation(messages=tuple(messages), stop_reason=spec.stop, checks=checks, diff=diff)


def _call(t: int) -> ToolCall:
    return ToolCall(id=f"call_{t}", name="list_tasks", arguments={"query": f"q{t}"})


def _final_text(scenario: str) -> str:
    return "Delete 'Pay rent'?" if scenario == "confirm-delete" else "Done."


def _turn(t: int, text: str, calls: tuple[ToolCall, ...]) -> AssistantTurn:
    response = ModelResponse(
        text=text,
        tool_calls=calls,
        stop_reason="tool_use" if calls else "end_turn",
        usage=Usage(input_tokens=100 * t, output_tokens=10),
    )
    return AssistantTurn(response=response, latency_s=0.5)


def _result(call: ToolCall, error: bool) -> ToolResult:
    content = "boom <b>" if error else '[{"id": 1, "title": "Dentist"}]'
    return ToolResult(
        call_id=call.id, name=call.name, content=content, is_error=error, size=len(content)
    )


def write_results(
    experiment: Experiment,
    directory: Path,
    specs: dict[tuple[str, str, int], Spec] = SPECS,
    order: str = "random",
    model: str = "test:agent",
    timestamp: str = "20250312T100000000000Z",
) -> list[Path]:
    """One result line per spec, with the real WriterPool."""
    settings = {
        "experiment_source": experiment.source,
        "order": {"kind": "random", "seed": 7} if order == "random" else {"kind": "blocked"},
    }
    metadata = {
        v.name: {
            "experiment": experiment.name,
            "model": model,
            "temperature": 0.0,
            "fixed_timestamp": experiment.fixed_timestamp.isoformat(),
            "zero_persona": True,
            "variant_hash": v.definition_hash,
            "scenario_ids": list(experiment.scenario_ids),
            "runs": max(rep for _, _, rep in specs),
            "settings": settings,
        }
        for v in experiment.variants
    }
    pool = WriterPool("run-1", None, metadata, directory=directory, timestamp=timestamp)
    for (variant, scenario, rep), spec in sorted(specs.items()):
        conversation = build(spec, scenario, variant)
        record = ConversationRecord.of(conversation)
        last = conversation.assistant_turns[-1].response
        pool.get(variant, rep).write_result(
            scenario_id=scenario,
            variant=variant,
            rep=rep,
            response_text=last.text,
            tool_calls=list(last.tool_calls),
            stop_reason=last.stop_reason,
            usage=conversation.usage,
            latency_s=0.5 * record.turns,
            model=model,
            temperature=0.0,
            conversation=record,
        )
    pool.close_all()
    return pool.paths
