"""One run path: ``tooltrial run``, the pytest plugin and ``run_experiment`` build their
runs in one place (``open_run``), so they record the same metadata for the same settings,
and the library has what the command line has (cache, pacing, resume)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import ROOT

from tooltrial import load_experiment, run_experiment
from tooltrial.cli import main
from tooltrial.errors import ResumeError
from tooltrial.log.reader import iter_records, read_results
from tooltrial.log.records import Metadata, Result
from tooltrial.log.validate import validate
from tooltrial.testing.messages_server import Faults, MessagesServer
from tooltrial.testing.scripted import ScriptedModel, reply
from tooltrial.tools.diff import diff_tools

SAMPLE = ROOT / "tests" / "experiment"
MODEL = "anthropic:claude-test"


def metadata_lines(folder: Path) -> dict[tuple[str, int], dict]:
    """Each file's metadata line by (variant, rep), without what differs by nature:
    when it was written and which front end wrote it."""
    out = {}
    for path in sorted(folder.glob("*.jsonl")):
        head = json.loads(path.read_text().splitlines()[0])
        del head["created_at"]
        assert head["settings"].pop("front_end") in ("cli", "library", "pytest")
        out[(head["variant"], head["rep"])] = head
    return out


@pytest.mark.slow  # a pytest session in a process of its own
def test_the_three_front_ends_record_identical_metadata(env: MessagesServer, tmp_path: Path):
    same = ["--run-id", "same-run", "--order-seed", "7"]
    cli = tmp_path / "cli"
    assert (
        main(["run", str(SAMPLE), "--model", MODEL, "--runs", "1", *same, "--results", str(cli)])
        == 0
    )
    library = tmp_path / "library"
    run_experiment(SAMPLE, MODEL, runs=1, run_id="same-run", order_seed=7, results=library)
    plugin = tmp_path / "pytest"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "tests/experiment/test_experiment.py"),
            *("-m", "experiment", "-p", "no:cacheprovider", "-q", "--tooltrial-model", MODEL),
            *("--tooltrial-run-id", "same-run", "--tooltrial-order-seed", "7"),
            *("--tooltrial-results", str(plugin)),
        ],
        cwd=ROOT,
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    written = [metadata_lines(folder) for folder in (cli, library, plugin)]
    assert len(written[0]) == 2  # a file per variant
    assert written[0] == written[1] == written[2]
    head = next(iter(written[0].values()))
    assert head["kind"] == "single-turn" and head["primary_metric"] == "exact"
    assert head["settings"]["plan"]["runs"] == 1 and head["settings"]["cache"] is None


def test_the_library_uses_the_cache(env: MessagesServer, tmp_path: Path):
    options = {"runs": 1, "variants": ["baseline"], "scenarios": ["query-agenda-friday"]}
    first = run_experiment(SAMPLE, MODEL, results=tmp_path / "a", cache=tmp_path / "c", **options)
    asked = len(env.requests)
    assert asked == 2 and first.errors == 0  # the preflight and the cell
    again = run_experiment(SAMPLE, MODEL, results=tmp_path / "b", cache=tmp_path / "c", **options)
    assert len(env.requests) == asked  # answered from the cache, not even a preflight
    assert [o.cached for o in again.outcomes] == [True]
    (meta, result) = list(iter_records(again.files[0]))
    assert isinstance(meta, Metadata) and meta.settings["cache"] == str(tmp_path / "c")
    assert isinstance(result, Result) and result.cached


def test_a_run_need_not_keep_its_outcomes(env: MessagesServer, tmp_path: Path):
    """The command line keeps no outcome (each is on disk once written: memory stays flat
    however long the run); the errors are still counted."""
    import asyncio

    from tooltrial.cli.main import parser
    from tooltrial.cli.run import options as cli_options
    from tooltrial.run.options import RunOptions
    from tooltrial.run.session import open_run
    from tooltrial.turns import RetryPolicy

    env.faults = Faults(on_requests={2: "500"})  # the first cell, after the preflight
    settings = RunOptions(
        runs=1, variants=("baseline",), results=tmp_path, keep_outcomes=False,
        retry=RetryPolicy(max_attempts=1),
    )  # fmt: skip
    with open_run(load_experiment(SAMPLE), MODEL, settings) as run:
        assert asyncio.run(run.execute()) is None
    result = run.result(None)
    assert result.outcomes == () and result.errors == 1
    assert len(read_results([tmp_path])) == 19  # every other cell written
    assert not cli_options(parser().parse_args(["run", str(SAMPLE)])).keep_outcomes


def test_the_library_paces_requests(tmp_path: Path):
    """--rpm through the library: 4 cells at 240 a minute start at least 0.25 s apart."""
    experiment = load_experiment(SAMPLE)
    starts: list[float] = []

    def timed(request):
        import time

        starts.append(time.monotonic())
        return reply("ok")

    model = ScriptedModel(name="paced", experiment=experiment, script=timed)
    cells = {"runs": 4, "variants": ["baseline"], "scenarios": ["no-call-small-talk"]}
    run = run_experiment(experiment, model, results=tmp_path, rpm=240, concurrency=4, **cells)
    assert run.errors == 0 and len(starts) == 4
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.24  # 240 a minute: one every 0.25 s, whatever the concurrency


def test_the_library_resumes_a_run(env: MessagesServer, tmp_path: Path):
    """A run whose every call failed leaves error lines; resuming it runs exactly those."""
    options = {"runs": 1, "variants": ["baseline"], "results": tmp_path, "run_id": "r1"}
    from tooltrial.turns import RetryPolicy

    once = RetryPolicy(max_attempts=1)
    env.faults = Faults(on_requests={n: "500" for n in range(2, 100)})  # after the preflight
    failed = run_experiment(SAMPLE, MODEL, retry=once, **options)
    assert failed.errors == 20 and read_results([tmp_path]) == {}
    env.faults = Faults()
    with pytest.raises(ResumeError, match="--run-id other differs"):
        run_experiment(None, MODEL, resume="r1", run_id="other", results=tmp_path)
    resumed = run_experiment(None, resume="r1", results=tmp_path)  # its own experiment, model
    assert resumed.run_id == "r1" and resumed.errors == 0 and len(resumed.outcomes) == 20
    assert validate(tmp_path, "r1").ok
    again = run_experiment(None, resume="r1", results=tmp_path)
    assert again.outcomes == ()  # nothing left to run


def test_a_report_needs_no_definition_files(env: MessagesServer, tmp_path: Path, capsys):
    """The metadata records the definition as it ran: delete the files, the report stays."""
    copy = tmp_path / "experiment"
    shutil.copytree(SAMPLE, copy)
    results = tmp_path / "results"
    run_experiment(copy, MODEL, runs=1, results=results)
    before = main(["report", str(results), "--format", "json", "-o", str(tmp_path / "a.json")])
    shutil.rmtree(copy)
    after = main(["report", str(results), "--format", "json", "-o", str(tmp_path / "b.json")])
    assert before == after == 0, capsys.readouterr().err
    first, second = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert first == second
    footprint = first["per_model"][0]["variants"][0]["tool_footprint"]
    assert footprint["counted_by"] == "estimate (4 characters a token)"  # Claude counts remotely
    # What changed in the tools, read from the metadata alone: `tooltrial tools`' diff.
    sample = load_experiment(SAMPLE)
    expected = diff_tools(
        [t.model_dump() for t in sample.variant("baseline").tools],
        [t.model_dump() for t in sample.variant("applike").tools],
    )
    (comparison,) = first["per_model"][0]["comparisons"]
    assert comparison["tools"]["lines"] == expected.lines() != []
    assert footprint["tokens"] == -(-footprint["chars"] // 4)


def test_an_agentic_report_needs_no_definition_files_nor_app_code(tmp_path: Path, capsys):
    copy = tmp_path / "mini"
    shutil.copytree(ROOT / "tests" / "mini_agentic", copy)
    experiment = load_experiment(copy)
    model = ScriptedModel(name="agent", experiment=experiment, script=lambda r: reply("Done."))
    results = tmp_path / "results"
    run_experiment(experiment, model, runs=2, results=results)
    shutil.rmtree(copy)
    assert main(["report", str(results), "--format", "md"]) == 0
    out = capsys.readouterr().out
    assert "success" in out and "Per category" in out
    assert validate(results).ok


@pytest.mark.slow  # loads the embedded model
def test_the_embedded_model_counts_its_own_tool_tokens(tmp_path: Path):
    from tooltrial.models import get_model
    from tooltrial.run.metadata import tool_footprint

    tools = load_experiment(SAMPLE).variant("applike").tools
    counted = tool_footprint(get_model("local:smollm2"), tools)
    assert counted.counted_by == "local:smollm2 tokenizer"
    assert counted.chars / 8 < counted.tokens < counted.chars  # BPE: a few characters a token
    assert counted.tokens != -(-counted.chars // 4)  # counted, not estimated


def test_a_changed_definition_is_scored_as_it_ran(env: MessagesServer, tmp_path: Path):
    """Rewriting a tool's description after the run changes nothing in its report; giving
    the new definition with --experiment scores against it, with a warning."""
    copy = tmp_path / "experiment"
    shutil.copytree(SAMPLE, copy)
    results = tmp_path / "results"
    run_experiment(copy, MODEL, runs=1, results=results, variants=["applike"])
    variant = copy / "variants" / "applike.yaml"
    variant.write_text(variant.read_text().replace("Add a task to the to-do list.", "Add a task."))
    from tooltrial import analyze

    assert analyze([results]).warnings == []
    given = analyze([results], experiment=copy)
    assert any("its definition changed since the run" in w for w in given.warnings)
