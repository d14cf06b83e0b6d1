"""The payload's published JSON Schema: the file in the package is what the model
generates now, and real ``tooltrial report --format json`` output (single-turn, agentic,
several models) validates against it; the payload refuses what the schema refuses."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import pytest
from support.paths import TESTS
from support.single_turn_results import WRONG, right, write_experiment, write_results

from tooltrial import load_experiment, run_experiment
from tooltrial.cli import main
from tooltrial.report import ReportPayload
from tooltrial.report.document import Headline, PowerPlan, ToolFootprint
from tooltrial.report.schema import published, schema, schema_text
from tooltrial.testing.scripted import Request, ScriptedModel, reply

MINI_AGENTIC = TESTS / "mini_agentic"


def report_json(results: Path, out: Path) -> dict[str, Any]:
    assert main(["report", str(results), "--format", "json", "-o", str(out)]) == 0
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def validator() -> jsonschema.protocols.Validator:
    published_schema = json.loads(published())
    cls = jsonschema.validators.validator_for(published_schema)
    cls.check_schema(published_schema)
    return cls(published_schema)


def test_the_published_schema_is_what_the_payload_generates():
    assert published() == schema_text(), (
        "report.schema.json is stale: python -m tooltrial.report.schema > "
        "src/tooltrial/report/report.schema.json"
    )
    assert schema()["properties"]["tooltrial_report"]["const"] == 3


def test_the_module_prints_the_schema():
    printed = subprocess.run(
        [sys.executable, "-m", "tooltrial.report.schema"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert printed.stdout == schema_text() and printed.stderr == ""


@pytest.fixture(scope="module")
def single_turn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("single")
    experiment = write_experiment(root / "def")
    cells = {(v, s, rep) for v in ("app", "api") for s in experiment.scenario_ids for rep in (1, 2)}
    answers = {c: WRONG if c[1] == "vague" and c[0] == "api" else right(c[0], c[1]) for c in cells}
    write_results(experiment, root / "results", answers, errors=[("api", "agenda", 3)])
    return report_json(root / "results", root / "r.json")


@pytest.fixture(scope="module")
def several_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("models")
    experiment = write_experiment(root / "def")
    for model, wrong in (("test:a", "vague"), ("test:b", "agenda")):
        cells = [(v, s, 1) for v in ("app", "api") for s in experiment.scenario_ids]
        answers = {
            c: WRONG if c[1] == wrong and c[0] == "api" else right(c[0], c[1]) for c in cells
        }
        write_results(experiment, root / "results", answers, model=model)
    return report_json(root / "results", root / "r.json")


def agent(request: Request):
    """Finds the dentist task and moves it (api only); asks before deleting."""
    if "Delete" in request.prompt:
        return reply("Delete 'Pay rent'?")
    if request.call == 1:
        return reply(calls=[("list_tasks", {"query": "Dentist"})])
    if request.call == 2 and request.variant == "api":
        found = json.loads(request.results[0].content)
        exact = next(t for t in found if t["title"] == "Dentist")
        return reply(calls=[("update_task", {"id": exact["id"], "due": "2025-03-21"})])
    return reply("Moved to Friday the 21st.")


@pytest.fixture(scope="module")
def agentic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("agentic")
    experiment = load_experiment(MINI_AGENTIC)
    model = ScriptedModel(name="agent", experiment=experiment, script=agent)
    run_experiment(
        experiment, model, runs=2, results=root, scenarios=["move-dentist", "confirm-delete"]
    )
    return report_json(root, root / "r.json")


def test_real_outputs_validate_against_the_published_schema(single_turn, several_models, agentic):
    check = validator()
    for data in (single_turn, several_models, agentic):
        check.validate(data)
    assert [d["kind"] for d in (single_turn, several_models, agentic)] == [
        "single-turn",
        "single-turn",
        "agentic",
    ]
    assert [len(d["per_model"]) for d in (single_turn, several_models)] == [1, 2]
    assert several_models["interaction"] and not single_turn["interaction"]
    assert agentic["per_model"][0]["variants"][0]["conversations"]["conversations"] == 4


def test_the_schema_refuses_what_the_payload_refuses(single_turn):
    check = validator()
    wrong_kind = {**single_turn, "kind": "multi-turn"}
    unknown_key = {**single_turn, "agentic": True}
    old_version = {**single_turn, "tooltrial_report": 1}
    for data in (wrong_kind, unknown_key, old_version):
        with pytest.raises(jsonschema.ValidationError):
            check.validate(data)
        with pytest.raises(pydantic.ValidationError):
            ReportPayload.model_validate(data)


def test_the_json_reads_back_into_the_payload(single_turn, several_models, agentic):
    for data in (single_turn, several_models, agentic):
        assert json.loads(ReportPayload.model_validate(data).to_json()) == data


def test_an_undefined_number_is_none_never_nan():
    headline = Headline(metric="exact", scenarios=0, rates={"app": math.nan, "api": 0.5})
    assert headline.rates == {"app": None, "api": 0.5}
    assert json.loads(headline.model_dump_json())["rates"]["app"] is None
    with pytest.raises(pydantic.ValidationError, match="finite"):
        PowerPlan(difference=math.nan, reps=1, scenarios=None)  # a float that must be defined
    with pytest.raises(pydantic.ValidationError, match="tokenizer"):
        ToolFootprint(chars=1, tokens=None, counted_by="none", tokenizer="x")
