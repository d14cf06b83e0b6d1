"""The agentic worked experiment: every scenario against every variant, one test per
cell, each a whole conversation against a fresh copy of the app, judged by the state it
leaves.

    uv run pytest tests/agentic/test_experiment.py -m experiment --count 3 \
        --reruns 2 --reruns-delay 5 -v

With several ``--tooltrial-model`` options every test runs once per model
(``tooltrial_model_spec``). LangSmith's pytest integration records inputs and a ``rep``
feedback when LangSmith is configured (LANGSMITH_API_KEY) and answers; without it the
tests run offline.
"""

from pathlib import Path

import pytest

from tooltrial import load_experiment
from tooltrial.tracing import langsmith_ready

EXPERIMENT = load_experiment(Path(__file__).parent)  # as conftest.py's tooltrial_experiment
LANGSMITH = langsmith_ready()  # a service that is away must not fail the tests
pytestmark = [pytest.mark.experiment] + ([pytest.mark.langsmith] if LANGSMITH else [])

CELLS = [
    pytest.param(variant.name, scenario.id, id=f"{variant.name}-{scenario.id}")
    for variant in EXPERIMENT.variants
    for scenario in EXPERIMENT.scenarios
]


@pytest.mark.parametrize(("variant_name", "scenario_id"), CELLS)
def test_scenario(
    variant_name, scenario_id, writer_pool, rep_number, tooltrial_caller, tooltrial_model_spec
):
    if LANGSMITH:
        from langsmith import testing as t

        prompt = EXPERIMENT.scenario(scenario_id).prompt
        t.log_inputs(
            {
                "variant": variant_name,
                "scenario_id": scenario_id,
                "rep": rep_number,
                "prompt": prompt,
            }
        )

    outcome = tooltrial_caller(variant_name, scenario_id, rep_number, tooltrial_model_spec)
    writer = writer_pool.get(variant_name, rep_number, tooltrial_model_spec)
    writer.write_outcome(outcome)

    if LANGSMITH:
        t.log_outputs({"text": outcome.response.text if outcome.response else None})
        t.log_feedback(key="rep", score=rep_number)
    assert outcome.response is not None, (
        f"{outcome.failure.kind} after {outcome.attempts} attempts: {outcome.failure.message}"
    )
    assert outcome.response.text or outcome.response.tool_calls, f"empty response in {writer.path}"
