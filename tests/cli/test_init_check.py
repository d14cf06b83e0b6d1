"""``tooltrial init`` writes an experiment that checks and runs at once; ``tooltrial
check`` runs every load-time check and prints the plan, creating and sending nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tooltrial.cli import main
from tooltrial.log.validate import validate
from tooltrial.testing.messages_server import MessagesServer

TEMPLATES = {"single-turn": [], "agentic": ["--agentic"], "mcp": ["--mcp"]}


@pytest.mark.parametrize("kind", TEMPLATES)
def test_init_writes_an_experiment_that_checks(kind, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "exp", *TEMPLATES[kind]]) == 0
    assert "next: tooltrial check exp && tooltrial run exp" in capsys.readouterr().err
    assert (tmp_path / "exp" / "experiment.yaml").is_file()
    assert main(["check", "exp", "--model", "anthropic:claude-x"]) == 0
    out = capsys.readouterr().out
    shown = "agentic" if kind == "mcp" else kind
    assert f"({shown}, primary metric" in out and "every check passed" in out
    cells = "36 calls (1 × 2 × 6 × 3)" if kind == "single-turn" else "24 conversations"
    assert cells in out and "tokens counted by: estimate (4 characters a token)" in out
    assert not (tmp_path / "results").exists()  # checking creates nothing


def test_init_never_overwrites(tmp_path: Path, capsys):
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep me")
    assert main(["init", str(folder)]) == 2
    assert "already holds files" in capsys.readouterr().err
    assert [p.name for p in folder.iterdir()] == ["mine.txt"]
    assert main(["init", str(folder / "mine.txt")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_check_names_what_is_wrong_and_calls_nothing(env: MessagesServer, tmp_path, capsys):
    assert main(["init", str(tmp_path / "exp"), "--agentic"]) == 0
    tools = tmp_path / "exp" / "by_title_tools.py"
    tools.write_text(tools.read_text().replace("def complete(", "def completed("))
    assert main(["check", str(tmp_path / "exp"), "--model", "anthropic:claude-test"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "variant 'by_title' has no function for tool(s) complete" in err
    assert env.requests == []


def test_the_templates_run_against_a_provider(env: MessagesServer, tmp_path: Path, capsys):
    for kind, flags in TEMPLATES.items():
        folder, results = tmp_path / kind, tmp_path / f"{kind}-results"
        assert main(["init", str(folder), *flags]) == 0
        run = ["run", str(folder), "--model", "anthropic:claude-test", "--runs", "1"]
        assert main([*run, "--results", str(results)]) == 0, capsys.readouterr().err
        assert validate(results).ok
        assert main(["report", str(results), "--format", "md"]) == 0


@pytest.mark.slow  # the embedded model: "runs at once" means with no setting at all
@pytest.mark.parametrize("kind", TEMPLATES)
def test_the_templates_run_on_the_embedded_model(kind, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.delenv("TOOLTRIAL_MODEL", raising=False)
    monkeypatch.setenv("LANGSMITH_TRACING", "false")
    folder, results = tmp_path / "exp", tmp_path / "results"
    assert main(["init", str(folder), *TEMPLATES[kind]]) == 0
    assert main(["run", str(folder), "--runs", "1", "--results", str(results)]) == 0
    assert validate(results).ok
