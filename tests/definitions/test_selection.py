"""Loading a selection of scenarios: only the selected entries are parsed, built and
checked (a cost proportional to the selection), and a selection never changes what a
file means or what an error says. ``entries.split_list`` splits only a plainly written
list, and every entry it gives parses alone to what the whole file says."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tooltrial.cli import main
from tooltrial.definitions import Scenario, load_experiment
from tooltrial.definitions import loading as loading_module
from tooltrial.definitions.entries import split_list
from tooltrial.errors import DefinitionError

TESTS = Path(__file__).resolve().parent.parent
SAMPLES = [TESTS / "experiment", TESTS / "agentic", TESTS / "mini_agentic"]

SPLIT = {
    "top level": """\
# a comment before the list
- id: a
  prompt: first
  expect:
    "*":
      - tool: x
        args: {n: 1}

- id: b   # an id with a comment
  prompt: |
    a block scalar
    - that looks like an entry
  # a comment inside an entry
- {id: c, prompt: flow}
""",
    "under scenarios:": """\
scenarios:
- id: a
  prompt: one
- id: "b c"
  prompt: two
""",
    "indented under scenarios:": """\
scenarios:   # the list
  - id: 'a'
    prompt: one
    success:
      state:
        - table: t
  -
    id: b
    prompt: a dash alone
  - prompt: id second
    id: c
""",
    "ids YAML reads as other types": """\
- id: yes
  prompt: a bool
- id: 12
  prompt: an int
- id: 2025-01-01
  prompt: a date
- id: a # b
  prompt: a comment
- id: 'it''s'
  prompt: an escape
""",
    "a tab inside a block scalar": "- id: a\n  prompt: |\n    one\n    \ttwo\n- id: b\n  prompt: x",
    "windows line ends": "- id: a\r\n  prompt: one\r\n- id: b\r\n  prompt: two\r\n",
    "a plain scalar over lines": """\
- id: a
  prompt: a long
    plain scalar
- id: b
  prompt: two
""",
}

NOT_SPLIT = {
    "a flow list": "[{id: a, prompt: x}]\n",
    "a document marker": "---\n- id: a\n  prompt: x\n",
    "a directive": "%YAML 1.1\n---\n- id: a\n  prompt: x\n",
    "another key after the list": "scenarios:\n- id: a\n  prompt: x\nname: y\n",
    "another key before the list": "name: y\nscenarios:\n- id: a\n  prompt: x\n",
    "a tab at the list's indentation": "- id: a\n\tprompt: x\n",
    "a line break str.split misses": "- id: a\n  prompt: x\u2028y\n",
    "an indented top-level list": "  - id: a\n    prompt: x\n",
    "no list": "# nothing\n",
}


def listed(text: str) -> list:
    data = yaml.safe_load(text)
    return data["scenarios"] if isinstance(data, dict) else data


@pytest.mark.parametrize("text", SPLIT.values(), ids=SPLIT.keys())
def test_each_entry_parses_alone_to_what_the_whole_file_says(text: str) -> None:
    listing = split_list(text)
    assert listing is not None
    whole = listed(text)
    assert [yaml.safe_load(listing.text(i))[0] for i in range(len(listing.starts))] == whole
    for index, data in enumerate(whole):
        assert listing.text(index).lstrip().startswith("-")  # from its own '-' line
        if listing.ids[index] is not None:  # an id read from the text is the parsed one
            assert listing.ids[index] == data["id"]
    assert len(listing.ids) == len(whole)


def test_ids_are_read_from_the_text_only_when_plain() -> None:
    read = {
        name: (split_list(text) or pytest.fail("not split")).ids
        for name, text in SPLIT.items()
        if name in ("indented under scenarios:", "ids YAML reads as other types")
    }
    assert read["indented under scenarios:"] == ["a", None, "c"]  # '-' alone: parsed
    assert read["ids YAML reads as other types"] == [None, None, None, "a", None]
    twice = split_list("- id: a\n  prompt: x\n  id: b\n- prompt: y\n  id: c\n  id: d\n")
    assert twice is not None and twice.ids == [None, None]  # a key given twice: parsed


@pytest.mark.parametrize("text", NOT_SPLIT.values(), ids=NOT_SPLIT.keys())
def test_a_list_not_written_plainly_is_not_split(text: str) -> None:
    assert split_list(text) is None


@pytest.mark.parametrize("folder", SAMPLES, ids=[p.name for p in SAMPLES])
def test_a_selection_loads_exactly_the_scenarios_a_whole_load_has(folder: Path) -> None:
    whole = load_experiment(folder)
    for scenario in whole.scenarios:
        chosen = load_experiment(folder, scenarios=[scenario.id])
        assert chosen.scenarios == (scenario,)
        assert chosen.variants == whole.variants
    pair = [whole.scenarios[-1].id, whole.scenarios[0].id]
    assert load_experiment(folder, scenarios=pair).scenarios == (
        whole.scenarios[0],
        whole.scenarios[-1],
    )  # in the file's order, whatever the selection's


def big_experiment(folder: Path, copies: int, extra: str = "") -> Path:
    """mini_agentic with its first scenario copied ``copies`` times under new ids."""
    shutil.copytree(TESTS / "mini_agentic", folder)
    entry = (folder / "scenarios.yaml").read_text().split("- id: confirm-delete")[0]
    text = "".join(entry.replace("- id: move-dentist", f"- id: s{n}") for n in range(copies))
    (folder / "scenarios.yaml").write_text(text + extra)
    return folder


def test_only_the_selected_entries_are_built(tmp_path: Path, monkeypatch) -> None:
    folder = big_experiment(tmp_path / "big", 300)
    built: list[str] = []

    class Counted(Scenario):
        @classmethod
        def model_validate(cls, obj, *args, **kwargs):  # type: ignore[override]
            built.append(obj.get("id") if isinstance(obj, dict) else "?")
            return Scenario.model_validate(obj, *args, **kwargs)

    monkeypatch.setattr(loading_module, "Scenario", Counted)
    experiment = load_experiment(folder, scenarios=["s7", "s250"])
    assert [s.id for s in experiment.scenarios] == ["s7", "s250"]
    assert built == ["s7", "s250"]
    built.clear()
    assert len(load_experiment(folder).scenarios) == 300 and len(built) == 300


BROKEN = "- id: broken\n  prompt: 5\n"


def test_a_fault_in_a_selected_entry_says_what_the_whole_load_says(tmp_path: Path) -> None:
    folder = big_experiment(tmp_path / "big", 20, extra=BROKEN)
    with pytest.raises(DefinitionError) as whole:
        load_experiment(folder)
    with pytest.raises(DefinitionError) as selected:
        load_experiment(folder, scenarios=["broken"])
    assert str(selected.value) == str(whole.value)
    assert "scenarios.yaml:" in str(whole.value) and "'broken'" in str(whole.value)
    # an entry not selected is not built, so its fault does not stop this run
    assert [s.id for s in load_experiment(folder, scenarios=["s3"]).scenarios] == ["s3"]


def test_a_duplicate_id_is_found_whatever_is_selected(tmp_path: Path) -> None:
    folder = big_experiment(tmp_path / "big", 20)
    scenarios = folder / "scenarios.yaml"
    scenarios.write_text(scenarios.read_text().replace("- id: s12", "- id: s11"))
    with pytest.raises(DefinitionError, match="duplicate id"):
        load_experiment(folder, scenarios=["s3"])


def test_an_unknown_id_loads_everything_for_the_plan_to_name_it(tmp_path: Path, capsys) -> None:
    folder = big_experiment(tmp_path / "big", 5)
    assert len(load_experiment(folder, scenarios=["nope"]).scenarios) == 5
    assert main(["check", str(folder), "--scenario", "nope"]) == 2
    assert "unknown scenario 'nope'" in capsys.readouterr().err


def test_an_entry_that_needs_another_loads_the_whole_file(tmp_path: Path) -> None:
    """An alias to another entry's anchor: the entry cannot be read alone."""
    folder = big_experiment(tmp_path / "big", 3)
    text = (
        "- id: shared\n  prompt: &p Move my dentist appointment.\n"
        "  success: &s {reply: {asks: true}}\n"
        "- id: uses\n  prompt: *p\n  success: *s\n"
    )
    (folder / "scenarios.yaml").write_text(text)
    experiment = load_experiment(folder, scenarios=["uses"])
    assert [s.id for s in experiment.scenarios] == ["shared", "uses"]
    assert experiment.scenario("uses").prompt == "Move my dentist appointment."


def test_check_with_a_selection_checks_only_it_and_says_so(tmp_path: Path, capsys) -> None:
    folder = big_experiment(tmp_path / "big", 20, extra=BROKEN)
    assert main(["check", str(folder), "--scenario", "s2"]) == 0
    out = capsys.readouterr().out
    assert "every check of the selected scenarios passed" in out and "scenarios: 1" in out
    assert main(["check", str(folder)]) == 2
    assert "scenarios.yaml:" in capsys.readouterr().err
