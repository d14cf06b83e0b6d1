"""Bad input, every time: one clear message, before the first call, nothing lost.

One row per broken input: definition files (YAML, TOML, Python), flags, output places,
result files. Each row breaks one thing in a copy of the sample experiment (or in the
command line), runs the real ``tooltrial`` command in-process, and checks

- the exit code (2, bad input), and no traceback or "this is a bug";
- one message naming the file and line, or the flag, and saying what is wrong;
- that the results folder is byte-identical before and after (names and bytes), and that
  a results folder that did not exist still does not;
- that the model was never called: ``--model anthropic:x`` goes to the project's
  Messages API server on 127.0.0.1, which must have received no request.
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
from pathlib import Path

import pytest
from support.bad_input import Case, Ctx, Setup, edit, invoke, run, snapshot, write
from support.paths import TESTS

from tooltrial.cli import main
from tooltrial.cli.main import parser as cli_parser
from tooltrial.definitions.limits import LIMITS
from tooltrial.definitions.loading import load_experiment
from tooltrial.errors import DefinitionError
from tooltrial.log.reader import iter_records
from tooltrial.log.records import Result
from tooltrial.testing.messages_server import MessagesServer
from tooltrial.turns.cache import ResponseCache

SAMPLE = TESTS / "experiment"
SCENARIOS = (SAMPLE / "scenarios.yaml").read_text()
APPLIKE = (SAMPLE / "variants" / "applike.yaml").read_text()


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle`` in a sample file."""
    return next(n for n, row in enumerate(text.splitlines(), 1) if needle in row)


PROMPT_1 = line_of(SCENARIOS, "prompt: Remind me to call the plumber")
ENTRY_1 = line_of(SCENARIOS, "- id: create-task-tomorrow-at-3")
ADD_TASK = line_of(APPLIKE, "- name: add_task")


def exp_yaml(old: str, new: str) -> Setup:
    return edit("experiment.yaml", old, new)


def prompt(new: str) -> Setup:
    return edit("scenarios.yaml", "prompt: Remind me to call the plumber tomorrow at 3.", new)


PY_HEAD = """from tooltrial import Experiment, Expectation, Scenario, Tool, Variant

def build(**settings):
    variant = Variant(name="v", system_prompt="s", tools=(Tool(name="ping", description="P."),))
    expect = {"*": Expectation.model_validate({"calls": [{"tool": "ping"}]})}
    return Experiment(
        name="py",
        scenarios=(Scenario(id="a", prompt="p", expect=expect),),
        variants=(variant,),
        fixed_timestamp="2025-01-01T00:00:00+00:00",
        **settings,
    )
"""
PY_LINES = PY_HEAD.count("\n")
PY_BUILD = line_of(PY_HEAD, "return Experiment(")


def read_only(path: str) -> Setup:
    """A folder that cannot be written. Root writes through file modes, so for root the
    check's ``os.access`` is told the truth a non-root user would get."""

    def setup(c: Ctx) -> None:
        target = c.tmp / path
        target.mkdir(parents=True, exist_ok=True)
        target.chmod(0o555)
        if os.geteuid() == 0:
            real = os.access

            def access(p: object, mode: int, **kw: object) -> bool:
                inside = Path(os.path.abspath(str(p))).is_relative_to(target)
                return False if inside and mode & os.W_OK else real(p, mode, **kw)  # type: ignore[arg-type]

            c.monkeypatch.setattr("tooltrial.run.places.os.access", access)

    return setup


EARLIER = (
    '{"type": "metadata", "run_id": "r1", "experiment": "tasks-calendar", '
    '"variant": "baseline", "rep": 1, "model": "anthropic:x", "temperature": 0.2, '
    '"fixed_timestamp": "2025-03-12T09:00:00+00:00", "zero_persona": true, '
    '"git_commit": null, "variant_hash": "sha256:0", '
    '"scenario_ids": ["create-task-tomorrow-at-3"]}\n'
)
"""An earlier run's file that only got as far as its metadata line."""


def metadata_only(c: Ctx) -> None:
    (c.results / "applike_run1_20250101T000000Z.jsonl").write_text(
        EARLIER.replace("baseline", "applike")
    )


def file_at(path: str, text: str = "x\n") -> Setup:
    def setup(c: Ctx) -> None:
        (c.tmp / path).parent.mkdir(parents=True, exist_ok=True)
        (c.tmp / path).write_text(text)

    return setup


def both(*setups: Setup) -> Setup:
    def setup(c: Ctx) -> None:
        for s in setups:
            s(c)

    return setup


RANGE_FILE = "must be an integer from 1 to 1,000,000"
TEMP_RANGE = "must be a number from 0 to 2"

CASES = [
    # --- 1. values in range: definition files ---------------------------------------------
    Case(
        "max_tokens-0",
        run(),
        ["experiment.yaml:7: max_tokens:", RANGE_FILE, "got 0"],
        exp_yaml("max_tokens: 256", "max_tokens: 0"),
    ),
    Case(
        "max_tokens-negative",
        run(),
        ["experiment.yaml:7: max_tokens:", "got -5"],
        exp_yaml("max_tokens: 256", "max_tokens: -5"),
    ),
    Case(
        "max_tokens-fraction",
        run(),
        ["experiment.yaml:7: max_tokens:", RANGE_FILE],
        exp_yaml("max_tokens: 256", "max_tokens: 2.5"),
    ),
    Case(
        "max_tokens-bool",
        run(),
        ["experiment.yaml:7: max_tokens:", "got True"],
        exp_yaml("max_tokens: 256", "max_tokens: yes"),
    ),
    Case(
        "max_tokens-text",
        run(),
        ["experiment.yaml:7: max_tokens:", "got 'many'"],
        exp_yaml("max_tokens: 256", "max_tokens: many"),
    ),
    Case(
        "max_tokens-huge",
        run(),
        ["experiment.yaml:7: max_tokens:", "got 10,000,000"],
        exp_yaml("max_tokens: 256", "max_tokens: 10000000"),
    ),
    Case(
        "temperature-7.5",
        run(),
        ["experiment.yaml:5: temperature:", TEMP_RANGE, "7.5"],
        exp_yaml("temperature: 0.2", "temperature: 7.5"),
    ),
    Case(
        "temperature-negative",
        run(),
        ["experiment.yaml:5: temperature:", TEMP_RANGE],
        exp_yaml("temperature: 0.2", "temperature: -0.1"),
    ),
    Case(
        "temperature-nan",
        run(),
        ["experiment.yaml:5: temperature:", TEMP_RANGE, "nan"],
        exp_yaml("temperature: 0.2", "temperature: .nan"),
    ),
    Case(
        "temperature-text",
        run(),
        ["experiment.yaml:5: temperature:", "got 'hot'"],
        exp_yaml("temperature: 0.2", "temperature: hot"),
    ),
    # --- 1. values in range: flags ---------------------------------------------------------
    Case("runs-0", run("--runs", "0"), ["--runs must be an integer from 1 to 10,000; got 0"]),
    Case("runs-negative", run("--runs", "-1"), ["--runs must be an integer", "got -1"]),
    Case("runs-huge", run("--runs", "100000"), ["--runs must be", "got 100,000"]),
    Case("runs-not-a-number", run("--runs", "abc"), ["argument --runs: invalid int value"]),
    Case(
        "concurrency-0",
        run("--concurrency", "0"),
        ["--concurrency must be an integer from 1 to 1,000; got 0"],
    ),
    Case("concurrency-huge", run("--concurrency", "5000"), ["--concurrency must be", "5,000"]),
    Case("rpm-0", run("--rpm", "0"), ["--rpm must be a number above 0", "got 0"]),
    Case("rpm-negative", run("--rpm", "-5"), ["--rpm must be a number above 0", "got -5"]),
    Case("rpm-nan", run("--rpm", "nan"), ["--rpm must be", "got nan"]),
    Case("tpm-0", run("--tpm", "0"), ["--tpm must be a number above 0", "tokens a minute"]),
    Case(
        "timeout-0",
        run("--timeout", "0"),
        ["--timeout must be a number above 0 and at most 86,400 (seconds per call); got 0"],
    ),
    Case("timeout-negative", run("--timeout", "-1"), ["--timeout must be", "got -1"]),
    Case("timeout-inf", run("--timeout", "inf"), ["--timeout must be", "got inf"]),
    Case("timeout-not-a-number", run("--timeout", "soon"), ["argument --timeout: invalid"]),
    Case(
        "max-attempts-0",
        run("--max-attempts", "0"),
        ["--max-attempts must be an integer from 1 to 100; got 0"],
    ),
    Case("max-attempts-huge", run("--max-attempts", "1000"), ["--max-attempts must be"]),
    Case(
        "temperature-flag-7.5",
        run("--temperature", "7.5"),
        ["--temperature must be a number from 0 to 2; got 7.5", "or 'default'"],
    ),
    Case("temperature-flag-negative", run("--temperature", "-1"), ["--temperature must be"]),
    Case(
        "temperature-flag-text",
        run("--temperature", "hot"),
        ["--temperature must be", "got 'hot'", "'default' to send none"],
    ),
    # --- 2. meaningful content -------------------------------------------------------------
    Case(
        "no-scenarios",
        run(),
        ["scenarios.yaml: there are no scenarios; add at least one"],
        write("scenarios.yaml", "scenarios: []\n"),
    ),
    Case(
        "no-scenarios-bare-list",
        run(),
        ["scenarios.yaml: there are no scenarios"],
        write("scenarios.yaml", "[]\n"),
    ),
    Case(
        "empty-prompt",
        run(),
        [
            f"scenarios.yaml:{PROMPT_1}: entry #1 ('create-task-tomorrow-at-3')",
            "the prompt is empty",
        ],
        prompt('prompt: ""'),
    ),
    Case(
        "blank-prompt",
        run(),
        [f"scenarios.yaml:{PROMPT_1}: entry #1", "the prompt is empty"],
        prompt('prompt: "   \\n  "'),
    ),
    Case(
        "duplicate-key-in-scenario",
        run(),
        [
            f"scenarios.yaml:{PROMPT_1 + 1}: duplicate key 'prompt' (first given on line "
            f"{PROMPT_1})",
            "remove or rename one",
        ],
        prompt("prompt: Remind me to call the plumber tomorrow at 3.\n    prompt: Other."),
    ),
    Case(
        "duplicate-key-in-experiment",
        run(),
        ["experiment.yaml:8: duplicate key 'temperature' (first given on line 5)"],
        exp_yaml("max_tokens: 256", "max_tokens: 256\ntemperature: 0.9"),
    ),
    Case(
        "duplicate-key-in-variant",
        run(),
        [
            f"applike.yaml:{ADD_TASK + 2}: duplicate key 'description' (first given on line "
            f"{ADD_TASK + 1})"
        ],
        edit(
            "variants/applike.yaml",
            "    description: Add a task to the to-do list.",
            "    description: Add a task to the to-do list.\n    description: Again.",
        ),
    ),
    Case(
        "duplicate-key-in-flow-mapping",
        run(),
        ["scenarios.yaml:", "duplicate key 'contains' (first given earlier on this line)"],
        edit(
            "scenarios.yaml",
            "payload.title: {contains: plumber}",
            "payload.title: {contains: plumber, contains: pipes}",
        ),
    ),
    Case(
        "duplicate-scenario-key-in-expect",
        run(),
        ["scenarios.yaml:", "duplicate key 'applike'"],
        edit("scenarios.yaml", "      applike:\n", "      applike: {}\n      applike:\n"),
    ),
    Case(
        "no-variants",
        run(),
        ["experiment.yaml:8: 'variants' must list the variant files; got []"],
        exp_yaml(
            "variants:\n  - variants/baseline.yaml\n  - variants/applike.yaml", "variants: []"
        ),
    ),
    Case(
        "variant-name-with-slash",
        run(),
        ["applike.yaml:2: variant name 'app/like' names the result files"],
        edit("variants/applike.yaml", "name: applike", "name: app/like"),
    ),
    Case(
        "variant-name-blank",
        run(),
        ["applike.yaml:2: variant name ' '"],
        edit("variants/applike.yaml", "name: applike", "name: ' '"),
    ),
    Case(
        "tool-name-with-space",
        run(),
        [f"applike.yaml:{ADD_TASK}: tool name 'add task' is refused by providers"],
        edit("variants/applike.yaml", "- name: add_task", "- name: add task"),
    ),
    Case(
        "experiment-name-blank",
        run(),
        ["experiment.yaml:3: name: name must not be blank"],
        exp_yaml("name: tasks-calendar", "name: '  '"),
    ),
    Case(
        "unknown-key-typo",
        run(),
        ["experiment.yaml:5: temprature: Extra inputs are not permitted"],
        exp_yaml("temperature: 0.2", "temprature: 0.2"),
    ),
    Case(
        "scenario-id-with-space",
        run(),
        [f"scenarios.yaml:{ENTRY_1}: entry #1", "must be non-empty with no spaces"],
        edit("scenarios.yaml", "- id: create-task-tomorrow-at-3", "- id: create task"),
    ),
    # --- 3. Python definitions -------------------------------------------------------------
    Case(
        "py-syntax-error",
        ["run", "{exp}/bad.py"],
        ["bad.py:2: not valid Python", "fix the syntax"],
        write("bad.py", "x = 1\ndef broken(:\n"),
    ),
    Case(
        "py-raises-on-import",
        ["run", "{exp}/bad.py"],
        [f"bad.py:{PY_LINES + 1}: the definition raised ZeroDivisionError"],
        write("bad.py", PY_HEAD + "experiment = 1 / 0\n"),
    ),
    Case(
        "py-function-raises",
        ["run", "{exp}/bad.py"],
        [f"bad.py:{PY_LINES + 2}: the definition raised KeyError"],
        write("bad.py", PY_HEAD + "def experiment():\n    return {}['missing']\n"),
    ),
    Case("py-missing-file", ["run", "{exp}/absent.py"], ["absent.py: no such file"]),
    Case(
        "py-unimportable-module",
        ["run", "tooltrial_no_such_module_42:experiment"],
        ["no module named 'tooltrial_no_such_module_42'"],
    ),
    Case(
        "py-imports-missing-module",
        ["run", "{exp}/bad.py"],
        ["bad.py:1: the definition raised ModuleNotFoundError", "tooltrial_nope_42"],
        write("bad.py", "import tooltrial_nope_42\n"),
    ),
    Case(
        "py-out-of-range",
        ["run", "{exp}/bad.py"],
        [f"bad.py:{PY_BUILD}: max_tokens: must be an integer from 1 to 1,000,000"],
        write("bad.py", PY_HEAD + "experiment = build(max_tokens=0)\n"),
    ),
    Case(
        "py-no-attribute",
        ["run", "{exp}/bad.py"],
        ["bad.py: expected an attribute 'experiment' holding a tooltrial.Experiment"],
        write("bad.py", PY_HEAD),
    ),
    Case(
        "py-calls-exit",
        ["run", "{exp}/bad.py"],
        ["bad.py:2: the definition raised SystemExit"],
        write("bad.py", "import sys\nsys.exit(3)\n"),
    ),
    Case(
        "py-empty-prompt",
        ["run", "{exp}/bad.py"],
        ["bad.py: scenario 'a': the prompt is empty"],
        write("bad.py", PY_HEAD.replace('prompt="p"', 'prompt=" "') + "experiment = build\n"),
    ),
    Case("py-bad-module-path", ["run", "not-a/module:attr"], ["not a module path"]),
    # --- 4. every file read names the file -------------------------------------------------
    Case(
        "scenarios-not-utf8",
        run(),
        [f"scenarios.yaml:{PROMPT_1}: not UTF-8 text (byte 0xe9", "save the file as UTF-8"],
        lambda c: c.write(
            "scenarios.yaml",
            SCENARIOS.replace("call the plumber", "call the plombi\udce9r").encode(
                "utf-8", "surrogateescape"
            ),
        ),
    ),
    Case(
        "variant-not-utf8",
        run(),
        ["applike.yaml:1: not UTF-8 text (byte 0xff"],
        write("variants/applike.yaml", b"\xff" + APPLIKE.encode()),
    ),
    Case(
        "name-wrong-type",
        run(),
        ["experiment.yaml:3: name: Input should be a valid string"],
        exp_yaml("name: tasks-calendar", "name: [a, b]"),
    ),
    Case(
        "timestamp-not-a-date",
        run(),
        ["experiment.yaml:4: fixed_timestamp:"],
        exp_yaml('fixed_timestamp: "2025-03-12T09:00:00+00:00"', "fixed_timestamp: tomorrow"),
    ),
    Case(
        "variants-not-a-list",
        run(),
        ["experiment.yaml:8: 'variants' must list the variant files"],
        exp_yaml(
            "variants:\n  - variants/baseline.yaml\n  - variants/applike.yaml",
            "variants: variants/baseline.yaml",
        ),
    ),
    Case(
        "variants-entry-not-a-path",
        run(),
        ["experiment.yaml:9: 'variants' entry #1 must be a file path", "got 1"],
        exp_yaml("  - variants/baseline.yaml", "  - 1"),
    ),
    Case(
        "scenarios-is-a-list",
        run(),
        ["experiment.yaml:11: 'scenarios' must name one scenario file"],
        exp_yaml("scenarios: scenarios.yaml", "scenarios: [a.yaml, b.yaml]"),
    ),
    Case(
        "scenarios-missing",
        run(),
        ["experiment.yaml: 'scenarios' is missing or empty"],
        exp_yaml("scenarios: scenarios.yaml", ""),
    ),
    Case(
        "variant-file-missing",
        run(),
        ["variants/gone.yaml: no such file"],
        exp_yaml("  - variants/baseline.yaml", "  - variants/gone.yaml"),
    ),
    Case(
        "scenario-file-is-a-folder",
        run(),
        ["variants: is a folder; name the definition file"],
        exp_yaml("scenarios: scenarios.yaml", "scenarios: variants"),
    ),
    Case(
        "experiment-top-level-list",
        run(),
        ["experiment.yaml: expected a mapping of keys at the top level, got a list"],
        write("experiment.yaml", "- a\n- b\n"),
    ),
    Case(
        "experiment-empty-file",
        run(),
        ["experiment.yaml: expected a mapping", "an empty file"],
        write("experiment.yaml", ""),
    ),
    Case(
        "not-a-definition-file",
        ["run", "{exp}/notes.txt"],
        ["notes.txt: not a definition file"],
        write("notes.txt", "hello\n"),
    ),
    Case("folder-without-definition", ["run", "{exp}/variants"], ["no experiment definition"]),
    Case(
        "prompt-wrong-type",
        run(),
        [f"scenarios.yaml:{ENTRY_1}: entry #1", "prompt: Input should be a valid string"],
        prompt("prompt: [not, text]"),
    ),
    Case(
        "tools-wrong-type",
        run(),
        ["applike.yaml:9: variant 'applike': tools: Input should be a valid tuple"],
        lambda c: c.write("variants/applike.yaml", APPLIKE.split("tools:")[0] + "tools: add\n"),
    ),
    Case(
        "toml-invalid",
        ["run", "{exp}/experiment.toml"],
        ["experiment.toml: not valid TOML", "line 1"],
        write("experiment.toml", "name = \n"),
    ),
    Case(
        "yaml-invalid",
        run(),
        ["scenarios.yaml:3: not valid YAML", "fix the syntax"],
        write("scenarios.yaml", "scenarios:\n  - id: [unclosed\n"),
    ),
    # --- 5. unusable output places ---------------------------------------------------------
    Case(
        "results-is-a-file",
        run("--results", "{tmp}/taken"),
        ["--results", "taken: is a file, not a folder"],
        file_at("taken"),
    ),
    Case(
        "results-under-a-file",
        run("--results", "{tmp}/taken/sub"),
        ["--results", "cannot create it,", "taken is a file"],
        file_at("taken"),
        fresh=True,
    ),
    Case(
        "results-read-only",
        run(),
        ["--results", "this folder is not writable"],
        read_only("results"),
    ),
    Case(
        "results-parent-read-only",
        run("--results", "{tmp}/locked/new"),
        ["--results", "cannot create it,", "locked is not writable"],
        read_only("locked"),
        fresh=True,
    ),
    Case(
        "cache-is-a-file",
        run("--cache", "{tmp}/cachefile"),
        ["--cache", "cachefile: is a file, not a folder"],
        file_at("cachefile"),
    ),
    Case(
        "cache-read-only",
        run("--cache", "{tmp}/ro-cache"),
        ["--cache", "ro-cache: this folder is not writable"],
        read_only("ro-cache"),
    ),
    Case(
        "report-output-is-a-folder",
        ["report", "{results}", "--experiment", "{exp}", "-o", "{tmp}", "--format", "md"],
        ["--output", "is a folder; name a file"],
        metadata_only,
    ),
    Case(
        "report-output-folder-missing",
        ["report", "{results}", "--experiment", "{exp}", "-o", "{tmp}/nope/r.html"],
        ["--output", "nope/r.html: the folder", "does not exist; create it first"],
        metadata_only,
    ),
    Case(
        "report-output-read-only",
        ["report", "{results}", "--experiment", "{exp}", "-o", "{tmp}/ro/r.html"],
        ["--output", "ro/r.html: the folder", "is not writable"],
        both(metadata_only, read_only("ro")),
    ),
    Case(
        "report-export-is-a-folder",
        ["report", "{results}", "--experiment", "{exp}", "--format", "md", "--export", "{tmp}"],
        ["--export", "is a folder; name a file"],
        metadata_only,
    ),
    Case(
        "report-export-under-a-file",
        ["report", "{results}", "--format", "md", "--export", "{tmp}/taken/t.csv"],
        ["--export", "taken is a file, not a folder"],
        both(metadata_only, file_at("taken")),
    ),
    # --- 7. the right diagnosis ------------------------------------------------------------
    Case(
        "report-metadata-only",
        ["report", "{results}", "--experiment", "{exp}", "--format", "md"],
        ["no results in these files", "only metadata or error lines"],
        metadata_only,
    ),
    # --- the rest of the command line ------------------------------------------------------
    Case("unknown-model", run("--model", "nosuch"), ["cannot read model 'nosuch'"]),
    Case("unknown-variant-flag", run("--variant", "apilike"), ["unknown variant 'apilike'"]),
    Case("unknown-scenario-flag", run("--scenario", "nope"), ["unknown scenario 'nope'"]),
    Case("no-experiment-named", ["run"], ["name the experiment to run"]),
    Case(
        "missing-experiment-path",
        ["run", "{tmp}/nowhere.yaml"],
        ["nowhere.yaml: no such file"],
        fresh=True,
    ),
]


def command(case: Case, ctx: Ctx, server: MessagesServer) -> list[str]:
    fill = {"exp": str(ctx.exp), "results": str(ctx.results), "tmp": str(ctx.tmp)}
    argv = [a.format(**fill) for a in case.args]
    if argv[:1] == ["run"] and len(argv) > 1:
        if "--results" not in argv:
            argv += ["--results", str(ctx.results)]
        if "--model" not in argv:
            argv += ["--model", "anthropic:x"]
        if "--runs" not in argv:
            argv += ["--runs", "1"]
    return argv


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ctx:
    exp = tmp_path / "exp"
    shutil.copytree(SAMPLE, exp, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.chdir(tmp_path)  # report.html, the default output, would land here
    return Ctx(exp=exp, results=tmp_path / "results", tmp=tmp_path, monkeypatch=monkeypatch)


def test_the_table_has_every_class() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES), "row ids must be unique"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(
    case: Case, ctx: Ctx, env: MessagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    if not case.fresh:
        ctx.results.mkdir()
        (ctx.results / "baseline_run1_20250101T000000Z.jsonl").write_text(EARLIER)
    if case.setup is not None:
        case.setup(ctx)
    if case.fresh and not ctx.results.exists():
        ctx.results = ctx.tmp / "fresh-results"
    argv = command(case, ctx, env)
    before = snapshot(ctx.results)
    try:
        code = invoke(argv)
    finally:
        for path in ctx.tmp.rglob("*"):  # undo read_only() so tmp_path can be removed
            if path.is_dir():
                path.chmod(0o755)
    err = " ".join(capsys.readouterr().err.split())
    assert code == case.code, err
    assert "Traceback" not in err and "this is a bug" not in err, err
    for needle in case.expect:
        assert " ".join(needle.split()) in err, f"{needle!r} not in: {err}"
    assert snapshot(ctx.results) == before, "a refused command must not touch the results"
    if case.fresh:
        assert not ctx.results.exists()
    assert env.requests == [], "no model call may happen for bad input"


# --- the harness itself, and what the table cannot show ---------------------------------


def test_a_good_input_does_reach_the_model(
    ctx: Ctx, env: MessagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The harness is sharp: the same command with a good input calls the server."""
    case = Case("good", run("--variant", "applike", "--scenario", "no-call-small-talk"), [])
    code = invoke(command(case, ctx, env))
    assert code == 0, capsys.readouterr().err
    assert len(env.requests) == 2  # the preflight and the one cell


def test_a_failing_cache_never_costs_a_result(
    ctx: Ctx, env: MessagesServer, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    def full(self: ResponseCache, key: str, response: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ResponseCache, "put", full)
    flags = (
        "--variant",
        "applike",
        "--scenario",
        "no-call-small-talk",
        "--scenario",
        "no-call-weather",
    )
    argv = command(Case("c", run(*flags, "--cache", "{tmp}/cache"), []), ctx, env)
    assert invoke(argv) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("could not store a response (No space left on device)") == 1
    lines = [r for p in ctx.results.glob("*.jsonl") for r in iter_records(p)]
    assert len([r for r in lines if isinstance(r, Result)]) == 2


def test_a_failing_trace_never_costs_a_result(
    ctx: Ctx, env: MessagesServer, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from tooltrial.tracing.base import Span

    def broken(self: Span, outcome: object) -> None:
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(Span, "finish", broken)
    argv = command(
        Case("t", run("--variant", "applike", "--scenario", "no-call-small-talk"), []), ctx, env
    )
    assert invoke(argv) == 0
    assert "a trace could not be recorded" in capsys.readouterr().err
    lines = [r for p in ctx.results.glob("*.jsonl") for r in iter_records(p)]
    assert len([r for r in lines if isinstance(r, Result)]) == 1


def test_every_limit_with_a_flag_is_a_flag_of_run() -> None:
    parser = cli_parser()
    run_parser = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    ).choices["run"]
    flags = {o for a in run_parser._actions for o in a.option_strings}
    assert {limit.flag for limit in LIMITS.values() if limit.flag} <= flags


def test_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    """``<<: *base`` then a key of its own is YAML's override, not a duplicate."""
    (tmp_path / "v.yaml").write_text(
        "name: v\nsystem_prompt: s\ntools:\n"
        "  - &base {name: ping, description: Ping.}\n"
        "  - <<: *base\n    name: pong\n"
    )
    (tmp_path / "s.yaml").write_text("- id: a\n  prompt: p\n  expect: {'*': {kind: no_call}}\n")
    (tmp_path / "experiment.yaml").write_text(
        "name: t\nfixed_timestamp: '2025-01-01T00:00:00+00:00'\n"
        "variants: [v.yaml]\nscenarios: s.yaml\n"
    )
    experiment = load_experiment(tmp_path)
    assert sorted(experiment.variants[0].tool_names) == ["ping", "pong"]
    (tmp_path / "s.yaml").write_text("- id: a\n  id: b\n  prompt: p\n  expect: {}\n")
    with pytest.raises(DefinitionError, match=r"s.yaml:2: duplicate key 'id'"):
        load_experiment(tmp_path)


@pytest.mark.parametrize("error", [ZeroDivisionError, ValueError, KeyError])
def test_an_unexpected_exception_is_a_bug_with_its_traceback(error, tmp_path, capsys, monkeypatch):
    """Not dressed up as bad input: a ValueError from tooltrial's own code is a bug too."""

    def broken(*args: object, **kwargs: object) -> None:
        raise error("something tooltrial did not expect")

    monkeypatch.setattr("tooltrial.run.session.load_experiment", broken)
    code = main(["run", str(SAMPLE), "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 4
    assert "Traceback" in err and "this is a bug in tooltrial" in err
    assert not (tmp_path / "r").exists()
