"""The analysis tests' small single-turn experiment and its sample answers, written with
the real writer (``WriterPool``); also used by the report tests.

The experiment (``mini``): variants ``app`` (the reference: first in the definition) and
``api``; scenarios make-task, agenda (call scenarios), small-talk (no call) and vague
(clarify). ``sample_answers``: ``app`` right every rep on all four; ``api`` right on
make-task 1/3, agenda 3/3, small-talk 3/3, vague 1/3 (exact match).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tooltrial.definitions import Experiment, load_experiment
from tooltrial.log.writer import WriterPool

# --- a small experiment, on disk so the metadata can point at it ------------------------

EXPERIMENT_YAML = """\
name: mini
fixed_timestamp: "2025-03-12T09:00:00+00:00"
variants: [app.yaml, api.yaml]
scenarios: scenarios.yaml
"""
APP_YAML = """\
name: app
system_prompt: app-shaped tools
tools:
  - {name: add_task, description: add a task}
  - {name: show_agenda, description: one day}
"""
API_YAML = """\
name: api
system_prompt: API-shaped tools
tools:
  - {name: create_record, description: POST}
  - {name: query_records, description: GET}
"""
SCENARIOS_YAML = """\
- id: make-task
  category: create
  prompt: Remind me to buy milk.
  expect:
    app: {calls: [{tool: add_task, args: {title: {contains: milk}}}]}
    api:
      calls:
        - tool: create_record
          args: {resource_type: task, payload.title: {contains: milk}}
- id: agenda
  category: query
  prompt: What's on Friday?
  expect:
    app: {calls: [{tool: show_agenda, args: {date: {date: "2025-03-14"}}}]}
    api: {calls: [{tool: query_records, args: {filters.from: {date: "2025-03-14"}}}]}
- id: small-talk
  category: no_call
  prompt: Thanks!
  expect: {"*": {kind: no_call}}
- id: vague
  category: clarify
  prompt: Move my meeting.
  expect: {"*": {kind: clarify}}
"""


def write_experiment(folder: Path, scenarios: str = SCENARIOS_YAML) -> Experiment:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in {
        "experiment.yaml": EXPERIMENT_YAML,
        "app.yaml": APP_YAML,
        "api.yaml": API_YAML,
        "scenarios.yaml": scenarios,
    }.items():
        (folder / name).write_text(text)
    return load_experiment(folder)


Answer = tuple[list[dict[str, Any]], str]  # (tool calls, text)


def write_results(
    experiment: Experiment,
    directory: Path,
    answers: dict[tuple[str, str, int], Answer],
    run_id: str = "run-1",
    stamp: str = "2025-03-12T10:00:00.000+00:00",
    errors: Iterable[tuple[str, str, int]] = (),
    usage: tuple[int, int] = (100, 20),
    model: str = "test:fixed",
    file_stamp: str | None = None,
    settings: dict[str, Any] | None = None,
    vary: bool = True,
) -> list[Path]:
    """Write ``answers[(variant, scenario, rep)]`` (and a ``rate_limit`` error line per
    cell of ``errors``) as ``model``'s run, with the real WriterPool. ``vary``: input
    tokens and latency differ a little from line to line (else every line is the same);
    ``file_stamp``: the files' timestamp (several models' runs in one folder)."""
    errors = list(errors)
    metadata = {
        v.name: {
            "experiment": experiment.name,
            "model": model,
            "temperature": 0.2,
            "fixed_timestamp": experiment.fixed_timestamp.isoformat(),
            "zero_persona": True,
            "variant_hash": v.definition_hash,
            "scenario_ids": list(experiment.scenario_ids),
            "runs": max(rep for _, _, rep in [*answers, *errors]),
            "settings": {"experiment_source": experiment.source, **(settings or {})},
        }
        for v in experiment.variants
    }
    stamped = {"timestamp": file_stamp} if file_stamp else {}
    pool = WriterPool(run_id, None, metadata, directory, **stamped)
    for i, ((variant, scenario_id, rep), (calls, text)) in enumerate(sorted(answers.items())):
        pool.get(variant, rep).write_result(
            scenario_id=scenario_id,
            variant=variant,
            rep=rep,
            response_text=text,
            tool_calls=[{"id": f"c{j}", **c} for j, c in enumerate(calls)],
            stop_reason="tool_use" if calls else "end_turn",
            usage={"input_tokens": usage[0] + vary * (i % 3), "output_tokens": usage[1]},
            latency_s=0.5 + vary * 0.01 * (i % 7),
            model=model,
            temperature=0.2,
            timestamp=stamp,
        )
    for variant, scenario_id, rep in errors:
        pool.get(variant, rep).write_error(
            scenario_id=scenario_id,
            variant=variant,
            rep=rep,
            kind="rate_limit",
            message="429",
            attempts=6,
            model=model,
        )
    pool.close_all()
    return pool.paths


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


# app: every answer right. api: make-task right/wrong argument/hallucinated tool;
# vague: asks / does not ask / calls a tool; agenda and small-talk right.
APP_RIGHT = {
    "make-task": ([call("add_task", title="Buy milk")], ""),
    "agenda": ([call("show_agenda", date="2025-03-14")], ""),
    "small-talk": ([], "You're welcome!"),
    "vague": ([], "Which meeting, and to when?"),
}
API_ANSWERS = {
    ("make-task", 1): (
        [call("create_record", resource_type="task", payload={"title": "milk"})],
        "",
    ),
    ("make-task", 2): (
        [call("create_record", resource_type="event", payload={"title": "milk"})],
        "",
    ),
    ("make-task", 3): ([call("new_task", title="milk")], ""),
    ("vague", 1): ([], "Which meeting?"),
    ("vague", 2): ([], "Done, I moved it."),
    ("vague", 3): ([call("query_records", filters={"text": "meeting"})], ""),
}


def sample_answers(reps: int = 3) -> dict[tuple[str, str, int], Answer]:
    answers: dict[tuple[str, str, int], Answer] = {}
    for rep in range(1, reps + 1):
        for scenario_id, answer in APP_RIGHT.items():
            answers[("app", scenario_id, rep)] = answer
        answers[("api", "agenda", rep)] = (
            [call("query_records", filters={"from": "2025-03-14"})],
            "",
        )
        answers[("api", "small-talk", rep)] = ([], "Glad to help.")
        answers[("api", "make-task", rep)] = API_ANSWERS[("make-task", rep)]
        answers[("api", "vague", rep)] = API_ANSWERS[("vague", rep)]
    return answers
