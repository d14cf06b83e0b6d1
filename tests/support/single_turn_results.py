"""Single-turn result files for the report tests, written with the real writer.

The experiment is the small one of ``support.sample_results`` (variants ``app``, the
reference, and ``api``) with a fifth scenario, ``thanks``.
"""

from __future__ import annotations

from pathlib import Path

from support import sample_results
from support.sample_results import Answer, call
from tooltrial.definitions import Experiment

THANKS_YAML = """\
- id: thanks
  category: no_call
  prompt: Thanks again!
  expect: {"*": {kind: no_call}}
"""

Cell = tuple[str, str, int]
"""(variant, scenario, rep)."""


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
    return sample_results.write_experiment(folder, sample_results.SCENARIOS_YAML + THANKS_YAML)


def write_results(
    experiment: Experiment,
    directory: Path,
    answers: dict[Cell, Answer],
    errors: list[Cell] | None = None,
    model: str = "test:fixed",
) -> None:
    """Write ``answers`` (and an error line per cell of ``errors``) as ``model``'s run,
    in a random order (seed 7) as the metadata says."""
    sample_results.write_results(
        experiment,
        directory,
        answers,
        errors=errors or (),
        model=model,
        file_stamp="20250312T100000000000Z-" + model.replace(":", "-"),
        settings={"order": {"kind": "random", "seed": 7}},
    )
