"""Bad definitions are refused before any model call: one message naming file, entry and fix.

Each case copies the sample experiment, breaks one thing, runs ``tooltrial run`` and checks
the message, the exit code (2) and that the results folder was neither created nor changed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from support.paths import TESTS

from tooltrial.cli import main
from tooltrial.definitions import load_experiment
from tooltrial.errors import DefinitionError

SAMPLE = TESTS / "experiment"


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    target = tmp_path / "exp"
    shutil.copytree(SAMPLE, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def _edit(path: Path, change: Callable[[dict], None]) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _run_refused(
    sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> str:
    results = tmp_path / "results"
    results.mkdir()
    (results / "earlier.jsonl").write_text('{"type": "metadata"}\n')
    before = {p.name: p.read_bytes() for p in results.iterdir()}
    code = main(["run", str(sample), "--results", str(results), "--runs", "1", *extra])
    after = {p.name: p.read_bytes() for p in results.iterdir()}
    assert code == 2
    assert after == before, "a refused run must not create or change result files"
    return " ".join(capsys.readouterr().err.split())


def test_duplicate_scenario_id(sample, tmp_path, capsys):
    def duplicate(data: dict) -> None:
        data["scenarios"][3]["id"] = data["scenarios"][0]["id"]

    _edit(sample / "scenarios.yaml", duplicate)
    err = _run_refused(sample, tmp_path, capsys)
    assert "scenarios.yaml" in err
    assert "'create-task-tomorrow-at-3': duplicate id" in err
    assert "give each scenario its own id" in err


def test_expectation_for_unknown_variant(sample, tmp_path, capsys):
    def rename(data: dict) -> None:
        expect = data["scenarios"][0]["expect"]
        expect["app-like"] = expect.pop("applike")

    _edit(sample / "scenarios.yaml", rename)
    err = _run_refused(sample, tmp_path, capsys)
    lines = (sample / "scenarios.yaml").read_text().splitlines()
    key = next(n for n, line in enumerate(lines, 1) if "app-like:" in line)
    assert f"scenarios.yaml:{key}: scenario 'create-task-tomorrow-at-3'" in err  # the key's line
    assert "unknown variant 'app-like'" in err
    assert "use one of baseline, applike" in err


def test_unknown_variant_on_the_command_line(sample, tmp_path, capsys):
    err = _run_refused(sample, tmp_path, capsys, "--variant", "apilike")
    assert "unknown variant 'apilike'" in err
    assert "this experiment has: baseline, applike" in err


def test_tool_schema_that_is_not_json_schema(sample, tmp_path, capsys):
    def break_schema(data: dict) -> None:
        data["tools"][1]["input_schema"]["properties"]["resource_type"]["type"] = "text"

    _edit(sample / "variants" / "baseline.yaml", break_schema)
    err = _run_refused(sample, tmp_path, capsys)
    assert "baseline.yaml:" in err
    assert "entry #2 ('query_records') under 'tools'" in err
    assert "not valid JSON Schema at properties/resource_type/type" in err


def test_expectation_naming_a_tool_the_variant_lacks(sample, tmp_path, capsys):
    def wrong_tool(data: dict) -> None:
        data["scenarios"][0]["expect"]["applike"]["calls"][0]["tool"] = "create_record"

    _edit(sample / "scenarios.yaml", wrong_tool)
    err = _run_refused(sample, tmp_path, capsys)
    assert "scenario 'create-task-tomorrow-at-3'" in err
    assert "expects tool 'create_record', which variant 'applike' does not have" in err


def test_malformed_scenario_entry_names_its_line(sample, tmp_path, capsys):
    text = (sample / "scenarios.yaml").read_text()
    (sample / "scenarios.yaml").write_text(
        text.replace("    prompt: I need to submit", "    ask: I")
    )
    err = _run_refused(sample, tmp_path, capsys)
    line = next(
        n
        for n, row in enumerate(text.splitlines(), 1)
        if row.strip() == "- id: create-task-next-friday"
    )
    assert f"scenarios.yaml:{line}: entry #2 ('create-task-next-friday')" in err
    assert "prompt: Field required" in err


def test_yaml_that_does_not_parse(sample, tmp_path, capsys):
    (sample / "scenarios.yaml").write_text("scenarios:\n  - id: [unclosed\n")
    err = _run_refused(sample, tmp_path, capsys)
    assert "scenarios.yaml:3: not valid YAML" in err
    assert "fix the syntax" in err


def test_bad_matcher_is_refused(sample, tmp_path, capsys):
    def bad_matcher(data: dict) -> None:
        data["scenarios"][0]["expect"]["applike"]["calls"][0]["args"]["title"] = {"like": "x"}

    _edit(sample / "scenarios.yaml", bad_matcher)
    err = _run_refused(sample, tmp_path, capsys)
    assert "entry #1 ('create-task-tomorrow-at-3')" in err
    assert "a matcher is one of" in err


def test_toml_definitions_load(tmp_path):
    (tmp_path / "v.toml").write_text(
        'name = "only"\nsystem_prompt = "Be brief."\n'
        '[[tools]]\nname = "ping"\ndescription = "Ping."\n'
    )
    (tmp_path / "s.toml").write_text(
        '[[scenarios]]\nid = "hello"\nprompt = "Say hi"\n[scenarios.expect."*"]\nkind = "no_call"\n'
    )
    (tmp_path / "experiment.toml").write_text(
        'name = "t"\nfixed_timestamp = 2025-01-01T00:00:00Z\n'
        'variants = ["v.toml"]\nscenarios = "s.toml"\n'
    )
    experiment = load_experiment(tmp_path)
    assert experiment.scenario_ids == ("hello",)
    assert experiment.scenarios[0].expectation_for("only").kind == "no_call"


PY_EXPERIMENT = """
from tooltrial import Experiment, Expectation, Scenario, Tool, Variant

def build(tool):
    variant = Variant(name="v", system_prompt="s", tools=(Tool(name="ping", description="Ping."),))
    expect = {"*": Expectation.model_validate({"calls": [{"tool": tool}]})}
    return Experiment(
        name="py",
        scenarios=(Scenario(id="a", prompt="p", expect=expect),),
        variants=(variant,),
        fixed_timestamp="2025-01-01T00:00:00+00:00",
    )
"""


def test_python_module_definitions_are_checked_too(tmp_path):
    (tmp_path / "good.py").write_text(PY_EXPERIMENT + "experiment = build('ping')\n")
    (tmp_path / "bad.py").write_text(
        PY_EXPERIMENT + "def experiment():\n    return build('pong')\n"
    )
    assert load_experiment(tmp_path / "good.py").scenario_ids == ("a",)
    with pytest.raises(DefinitionError, match=r"bad.py: scenario 'a': expects tool 'pong'"):
        load_experiment(tmp_path / "bad.py")


def test_timestamp_without_zone_is_refused(sample, tmp_path, capsys):
    _edit(sample / "experiment.yaml", lambda d: d.update(fixed_timestamp="2025-03-12T09:00:00"))
    err = _run_refused(sample, tmp_path, capsys)
    assert "experiment.yaml:2: fixed_timestamp: fixed_timestamp needs a UTC offset" in err
