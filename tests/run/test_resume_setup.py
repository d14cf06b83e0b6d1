"""What a resume checks beyond the models and variants: every part of the setup that
shaped the calls or the verdict, hashed into the metadata (``run.metadata.setup_hashes``).
The command-line rows are in ``tests/cli/test_hostile_files.py`` (``resume-*``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.paths import TESTS

from tooltrial.definitions import load_experiment
from tooltrial.errors import ResumeError
from tooltrial.log.records import Metadata
from tooltrial.run.metadata import setup_hashes
from tooltrial.run.plan import Plan
from tooltrial.run.resume import PriorRun

MINI = TESTS / "mini_agentic"
APP = {"schema": "CREATE TABLE t (id INTEGER PRIMARY KEY)", "seeded": {"t": {"1": {"id": 1}}}}


def hashes(folder: Path, app: dict | None = APP) -> dict[str, str]:
    experiment = load_experiment(folder)
    plan = Plan(("m",), ("api",), tuple(experiment.scenario_ids), 1)
    return setup_hashes(experiment, plan, app)


@pytest.fixture
def exp(tmp_path: Path) -> Path:
    shutil.copytree(MINI, tmp_path / "exp", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "exp"


def test_the_setup_is_stable_and_covers_every_part(exp: Path) -> None:
    first = hashes(exp)
    assert first == hashes(exp)
    assert set(first) == {"scenarios", "settings", "limits", "app"}
    assert all(h.startswith("sha256:") for h in first.values())


@pytest.mark.parametrize(
    ("name", "old", "new", "part"),
    [
        ("experiment.yaml", "max_turns: 4", "max_turns: 5", "limits"),
        (
            "experiment.yaml",
            'fixed_timestamp: "2025-03-12',
            'fixed_timestamp: "2025-03-13',
            "settings",
        ),
        ("scenarios.yaml", "Delete the rent task.", "Delete it.", "scenarios"),
    ],
)
def test_each_change_shows_in_its_own_part(
    exp: Path, name: str, old: str, new: str, part: str
) -> None:
    before = hashes(exp)
    path = exp / name
    path.write_text(path.read_text().replace(old, new, 1))
    after = hashes(exp)
    assert {p for p in before if before[p] != after[p]} == {part}


def test_the_app_part_is_its_schema_and_seeded_state(exp: Path) -> None:
    seeded = {**APP, "seeded": {"t": {"1": {"id": 1}, "2": {"id": 2}}}}
    assert hashes(exp)["app"] != hashes(exp, seeded)["app"]
    assert hashes(exp)["app"] != hashes(exp, {**APP, "schema": "CREATE TABLE u (x)"})["app"]


def prior(settings: dict) -> PriorRun:
    metadata = Metadata(
        run_id="r1",
        experiment="mini-agentic",
        variant="api",
        rep=1,
        model="m",
        temperature=None,
        fixed_timestamp="2025-03-12T09:00:00+00:00",
        zero_persona=True,
        git_commit=None,
        variant_hash="sha256:0",
        scenario_ids=["move-dentist"],
        settings=settings,
    )
    return PriorRun("r1", (metadata,), frozenset(), ())


def test_files_from_before_the_setup_was_recorded_are_not_refused(exp: Path) -> None:
    prior({})._check_setup(load_experiment(exp), hashes(exp))


def test_a_changed_part_is_refused_naming_it(exp: Path) -> None:
    recorded = {**hashes(exp), "limits": "sha256:old"}
    run = prior({"setup": recorded, "limits": {"max_turns": 9}})
    with pytest.raises(
        ResumeError, match=r"its setup changed since it ran: limits \(max_turns was 9, now 4"
    ):
        run._check_setup(load_experiment(exp), hashes(exp))
