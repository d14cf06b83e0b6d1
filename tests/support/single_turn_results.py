"""Single-turn result files for the report tests, written with the real writer.

The experiment is the small one of ``support.sample_results`` (variants ``app``, the
reference, and ``api``) with a fifth scenario, ``thanks``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tooltrial.definitions import Experiment, load_experiment
from tooltrial.log.writer import WriterPool

FILES = {
    "experiment.yaml": """\
name: mini
fixed_timestamp: "2025-03-12T09:00:00+00:00"
variants: [app.yaml, api.yaml]
scenarios: scenarios.yaml
""",
    "app.yaml": """\
name: app
system_prompt: app-shaped tools
tools:
  - {name: add_task, description: add a task}
  - {name: show_agenda, description: one day}
""",
    "api.yaml": """\
name: api
system_prompt: API-shaped tools
tools:
  - {name: create_record, description: POST}
  - {name: query_records, description: GET}
""",
    "scenarios.yaml": """\
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
- id: thanks
  category: no_call
  prompt: Thanks again!
  expect: {"*": {kind: no_call}}
""",
}

Answer = tuple[list[dict[str, Any]], str]
"""(tool calls, text)."""
Cell = tuple[str, str, int]
"""(variant, scenario, rep)."""


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


RIGHT: dict[tuple[str, str], Answer] = {
    ("app", "make-task"): ([call("add_task", title="Buy milk")], ""),
    ("app", "agenda"): ([call("show_agenda", date="2025-03-14")], ""),
    ("api", "make-task"): (
        [call("create_record", resource_type="task", payload={"title": "milk"})],
        "",
    ),
    ("api", "agenda"): ([call("query_records", filters={"from": "2025-03-14"})], ""),
}
"""An exact answer to each call scenario; text scenarios take ``SAYS``."""
WRONG: Answer = ([call("new_task", title="milk")], "")
"""Wrong everywhere (and a tool neither variant has)."""
SAYS = {"small-talk": "You're welcome!", "thanks": "Any time.", "vague": "Which meeting?"}


def right(variant: str, scenario: str) -> Answer:
    return RIGHT.get((variant, scenario), ([], SAYS.get(scenario, "")))


def write_experiment(folder: Path) -> Experiment:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in FILES.items():
        (folder / name).write_text(text)
    return load_experiment(folder)


def write_results(
    experiment: Experiment,
    directory: Path,
    answers: dict[Cell, Answer],
    errors: list[Cell] | None = None,
    model: str = "test:fixed",
) -> None:
    """Write ``answers`` (and an error line per cell of ``errors``) as ``model``'s run."""
    cells = [*answers, *(errors or [])]
    metadata = {
        v.name: {
            "experiment": experiment.name,
            "model": model,
            "temperature": 0.2,
            "fixed_timestamp": experiment.fixed_timestamp.isoformat(),
            "zero_persona": True,
            "variant_hash": v.definition_hash,
            "scenario_ids": list(experiment.scenario_ids),
            "runs": max(rep for _, _, rep in cells),
            "settings": {
                "experiment_source": experiment.source,
                "order": {"kind": "random", "seed": 7},
            },
        }
        for v in experiment.variants
    }
    stamp = "20250312T100000000000Z-" + model.replace(":", "-")
    pool = WriterPool("run-1", None, metadata, directory, timestamp=stamp)
    for i, ((variant, scenario_id, rep), (calls, text)) in enumerate(sorted(answers.items())):
        pool.get(variant, rep).write_result(
            scenario_id=scenario_id,
            variant=variant,
            rep=rep,
            response_text=text,
            tool_calls=[{"id": f"c{j}", **c} for j, c in enumerate(calls)],
            stop_reason="tool_use" if calls else "end_turn",
            usage={"input_tokens": 100 + i % 3, "output_tokens": 20},
            latency_s=0.5 + 0.01 * (i % 7),
            model=model,
            temperature=0.2,
            timestamp="2025-03-12T10:00:00.000+00:00",
        )
    for variant, scenario_id, rep in errors or []:
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
