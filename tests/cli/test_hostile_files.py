"""Hostile names and hostile folder contents: a clear answer, never a crash, a hang or a
file touched outside the results folder.

One row per hostile thing, in the style of ``test_bad_input`` (``support.bad_input``):

- **paths**: run ids that are not plain names (``--run-id``, ``--resume``) and things left
  under the names tooltrial writes (a link, a hard link, a folder, a FIFO, a stranger's
  file where the run's lock goes; a link or a FIFO where ``report --output`` or
  ``--export`` goes);
- **given**: a FIFO or a device (a link to ``/dev/null``) named as the input of
  ``validate`` (exit 1) or ``report`` (exit 2): said to be what it is, never opened;
- **readers**: every kind of corruption a results folder can hold, through ``validate``
  (exit 1, the problem naming the file and line) and ``report`` (exit 2, the same);
- **resume**: a change to anything that shaped the calls or the verdict (the app's seed
  or schema, the limits, a scenario, a setting) between a run and its ``--resume``.

Each row checks the exit code, the file and line (or flag) named, no traceback, no model
request, the results folder byte for byte as it was (names, kinds, bytes, link targets),
and nothing outside it changed (a sentinel file that hostile names aim at, the
experiment). The results folder starts complete: the sample answers of
``support.sample_results``, two files of four results each.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from support.bad_input import Case, Ctx, invoke, run
from support.paths import TESTS
from support.sample_results import sample_answers, write_experiment, write_results

from tooltrial.log.reader import iter_records
from tooltrial.log.validate import validate as validate_folder
from tooltrial.testing.messages_server import MessagesServer

SAMPLE = TESTS / "experiment"
MINI = TESTS / "mini_agentic"
API = "api_run1_20250101T000000Z.jsonl"
"""The api variant's file: its metadata on line 1, its four results on lines 2-5."""
APP = "app_run1_20250101T000000Z.jsonl"
SENTINEL = "keep me\n"
OUT = "{tmp}/out/report.md"
"""Where report rows write (outside the results folder, and allowed to appear)."""


# --- what a row can leave in the results folder ----------------------------------------


def line_of(c: Ctx, name: str = API, number: int = 2) -> dict:
    return json.loads((c.results / name).read_text().splitlines()[number - 1])


def append(raw: bytes | str, name: str = API) -> object:
    """A line added at the end of a result file (line 6 of ``API``)."""

    def setup(c: Ctx) -> None:
        data = raw.encode() if isinstance(raw, str) else raw
        with (c.results / name).open("ab") as handle:
            handle.write(data)

    return setup


def result_with(**changes: object) -> object:
    """The api file's first result again, changed, as line 6; ``None`` drops a field."""

    def setup(c: Ctx) -> None:
        record = line_of(c)
        for key, value in changes.items():
            if value is None:
                record.pop(key, None)
            else:
                record[key] = value
        append(json.dumps(record) + "\n")(c)

    return setup


def new_file(name: str, text: str | bytes) -> object:
    def setup(c: Ctx) -> None:
        data = text.encode() if isinstance(text, str) else text
        (c.results / name).write_bytes(data)

    return setup


def metadata_with(raw_changes: dict[str, str], name: str = "z.jsonl") -> object:
    """A new file holding the api file's metadata line with raw JSON text swapped in."""

    def setup(c: Ctx) -> None:
        text = (c.results / API).read_text().splitlines()[0]
        for old, new in raw_changes.items():
            assert old in text, old
            text = text.replace(old, new, 1)
        (c.results / name).write_text(text + "\n")

    return setup


def special(kind: str, name: str = "x.jsonl") -> object:
    def setup(c: Ctx) -> None:
        path = c.results / name
        if kind == "folder":
            path.mkdir()
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "zero":
            path.symlink_to("/dev/zero")
        elif kind == "null":
            path.symlink_to("/dev/null")
        elif kind == "outside":
            path.symlink_to(c.tmp / "outside" / "important")
        elif kind == "hardlink":
            os.link(c.tmp / "outside" / "important", path)
        elif kind == "stranger":
            path.write_text("my notes, not a lock\n")

    return setup


def at_out(kind: str, name: str) -> object:
    """``special`` in the folder the report rows write to (``{tmp}/out``)."""

    def setup(c: Ctx) -> None:
        path = c.tmp / "out" / name
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "null":
            path.symlink_to("/dev/null")
        elif kind == "outside":
            path.symlink_to(c.tmp / "outside" / "important")

    return setup


def validate(*flags: str) -> list[str]:
    return ["validate", "{results}", *flags]


def report(*flags: str) -> list[str]:
    return ["report", "{results}", "--format", "md", "-o", OUT, *flags]


RUN_ID_RULE = "must be 1 to 128 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
DEEP = b"[" * 200_000 + b"]" * 200_000 + b"\n"

PATHS = [
    Case("run-id-escapes", run("--run-id", "/../important"), ["--run-id:", RUN_ID_RULE]),
    Case("run-id-parent", run("--run-id", ".."), ["--run-id: run id '..'", RUN_ID_RULE]),
    Case("run-id-dot", run("--run-id", "."), ["--run-id: run id '.'"]),
    Case("run-id-hidden", run("--run-id", ".hidden"), ["--run-id: run id '.hidden'"]),
    Case("run-id-dash", run("--run-id=-rf"), ["--run-id: run id '-rf'"]),
    Case("run-id-slash", run("--run-id", "a/b"), ["--run-id: run id 'a/b'"]),
    Case("run-id-backslash", run("--run-id", "a\\b"), ["--run-id: run id 'a\\\\b'"]),
    Case("run-id-newline", run("--run-id", "a\nb"), ["--run-id: run id 'a\\nb'"]),
    Case("run-id-space", run("--run-id", "a b"), ["--run-id: run id 'a b'"]),
    Case("run-id-empty", run("--run-id", ""), ["--run-id: run id ''"]),
    Case("run-id-too-long", run("--run-id", "r" * 129), ["--run-id: run id 'rrrr", "…'"]),
    Case("run-id-unicode", run("--run-id", "läuft"), ["--run-id: run id 'läuft'"]),
    Case("resume-escapes", run("--resume", "../outside/important"), ["--resume: run id"]),
    Case("resume-absolute", ["run", "--resume", "/etc/passwd"], ["--resume: run id '/etc/"]),
    Case(
        "lock-is-a-symlink",
        run("--run-id", "r9"),
        ["results/.r9.lock: a symbolic link", "move it out of the results folder"],
        special("outside", ".r9.lock"),
    ),
    Case(
        "lock-is-a-hard-link",
        run("--run-id", "r9"),
        ["results/.r9.lock: a hard link to another file", "move it out"],
        special("hardlink", ".r9.lock"),
    ),
    Case(
        "lock-is-a-folder",
        run("--run-id", "r9"),
        ["results/.r9.lock: tooltrial cannot write this file", "move what is there out"],
        special("folder", ".r9.lock"),
    ),
    Case(
        "lock-is-a-fifo",
        run("--run-id", "r9"),
        ["results/.r9.lock: a FIFO (named pipe), not a file tooltrial made"],
        special("fifo", ".r9.lock"),
    ),
    Case(
        "lock-is-a-strangers-file",
        run("--run-id", "r9"),
        ["results/.r9.lock: this file is not a lock tooltrial made"],
        special("stranger", ".r9.lock"),
    ),
]

LINK = ["is a symbolic link; tooltrial writes only a file of its own there"]
OUTPUTS = [
    Case(
        "output-is-a-symlink",
        ["report", "{results}", "--format", "md", "-o", "{tmp}/out/r.md"],
        ["--output", "out/r.md:", *LINK, "remove the link or name another file"],
        at_out("outside", "r.md"),  # type: ignore[arg-type]
    ),
    Case(
        "output-is-a-link-to-dev-null",
        ["report", "{results}", "--format", "md", "-o", "{tmp}/out/r.md"],
        ["--output", "out/r.md:", *LINK],
        at_out("null", "r.md"),  # type: ignore[arg-type]
    ),
    Case(
        "output-is-a-fifo",
        ["report", "{results}", "--format", "md", "-o", "{tmp}/out/r.md"],
        ["--output", "out/r.md: is a FIFO (named pipe), not a file; name a file"],
        at_out("fifo", "r.md"),  # type: ignore[arg-type]
    ),
    Case(
        "export-csv-is-a-symlink",
        report("--export", "{tmp}/out/t.csv"),
        ["--export", "out/t.csv:", *LINK],
        at_out("outside", "t.csv"),  # type: ignore[arg-type]
    ),
    Case(
        "export-parquet-is-a-symlink",
        report("--export", "{tmp}/out/t.parquet"),
        ["--export", "out/t.parquet:", *LINK],
        at_out("outside", "t.parquet"),  # type: ignore[arg-type]
    ),
    Case(
        "export-is-a-fifo",
        report("--export", "{tmp}/out/t.csv"),
        ["--export", "out/t.csv: is a FIFO (named pipe), not a file"],
        at_out("fifo", "t.csv"),  # type: ignore[arg-type]
    ),
]

NOT_RESULTS = "name a .jsonl file of results or a results folder"
GIVEN = [
    Case(
        "validate-given-a-fifo",
        ["validate", "{results}/x.jsonl"],
        ["results/x.jsonl: a FIFO (named pipe), not a file of results", NOT_RESULTS],
        special("fifo"),  # type: ignore[arg-type]
        code=1,
    ),
    Case(
        "report-given-a-fifo",
        ["report", "{results}/x.jsonl", "--format", "md", "-o", OUT],
        ["results/x.jsonl: a FIFO (named pipe), not a file of results", NOT_RESULTS],
        special("fifo"),  # type: ignore[arg-type]
    ),
    Case(
        "validate-given-a-device",
        ["validate", "{results}/x.jsonl"],
        ["results/x.jsonl: a character device, not a file of results", NOT_RESULTS],
        special("null"),  # type: ignore[arg-type]
        code=1,
    ),
    Case(
        "report-given-a-device",
        ["report", "{results}", "{results}/x.jsonl", "--format", "md", "-o", OUT],
        ["results/x.jsonl: a character device, not a file of results", NOT_RESULTS],
        special("null"),  # type: ignore[arg-type]
    ),
]

READERS = [
    # (id, setup, what validate and report both name)
    ("invalid-utf8", append(b'{"type": "res\xffult"}\n'), [f"{API}:6: not UTF-8 text"]),
    (
        "gzip-named-jsonl",
        lambda c: new_file("z.jsonl", gzip.compress((c.results / API).read_bytes()))(c),
        ["z.jsonl:1: a gzip-compressed file, not JSON lines: decompress it"],
    ),
    (
        "format-version-text",
        metadata_with({'"format_version":5': '"format_version":"3"'}),
        ["z.jsonl:1: format_version '3' is not a format version"],
    ),
    (
        "format-version-null",
        metadata_with({'"format_version":5': '"format_version":null'}),
        ["z.jsonl:1: format_version null is not a format version"],
    ),
    (
        "format-version-future",
        metadata_with({'"format_version":5': '"format_version":99'}),
        ["z.jsonl:1: format_version 99 is newer than this tooltrial reads"],
    ),
    ("nested-200k-deep", append(DEEP), [f"{API}:6: nested more than 100 levels deep"]),
    ("a-folder-named-jsonl", special("folder"), ["x.jsonl: a folder, not a file of results"]),
    ("a-fifo-named-jsonl", special("fifo"), ["x.jsonl: a FIFO (named pipe)"]),
    ("a-link-to-dev-zero", special("zero"), ["x.jsonl: a character device"]),
    (
        "runs-a-billion",
        metadata_with({'"runs":1': '"runs":1e9'}),
        ["z.jsonl:1: metadata record: runs:", "must be an integer from 1 to 10,000"],
    ),
    (
        "rep-zero",
        result_with(rep=0),
        [f"{API}:6: scenario_result record: rep:", "must be an integer from 1 to 10,000"],
    ),
    (
        "missing-fields",
        result_with(latency_s=None, usage=None),
        [f"{API}:6: scenario_result record: usage: Field required"],
    ),
    (
        "nan-latency",
        lambda c: append(json.dumps({**line_of(c), "latency_s": float("nan")}) + "\n")(c),
        [f"{API}:6: not valid JSON (NaN is not a JSON number)"],
    ),
    (
        "infinite-number",
        lambda c: append(
            json.dumps(line_of(c)).replace('"latency_s": 0.5', '"latency_s": 1e999') + "\n"
        )(c),
        [f"{API}:6: not valid JSON (1e999 is too large for a number)"],
    ),
    ("not-json", append("{this is not json\n"), [f"{API}:6: not valid JSON"]),
    ("not-an-object", append("[1, 2]\n"), [f"{API}:6: unknown record type null"]),
    ("unknown-type", append('{"type": "[/x]"}\n'), [f"{API}:6: unknown record type '[/x]'"]),
    (
        "settings-order-broken",
        metadata_with({'"settings":{': '"settings":{"order":{"kind":"random","seed":"x"},'}),
        ["z.jsonl:1: metadata record: ", "settings.order:"],
    ),
    (
        "settings-limits-broken",
        metadata_with({'"settings":{': '"settings":{"limits":{"max_turns":"many"},'}),
        ["z.jsonl:1: metadata record: ", "settings.limits.max_turns:"],
    ),
    (
        "timestamp-not-a-date",
        metadata_with({'"fixed_timestamp":"2025-03-12T09:00:00+00:00"': '"fixed_timestamp":"x"'}),
        ["z.jsonl:1: metadata record: fixed_timestamp:", "'x' is not an ISO 8601 date"],
    ),
]


def reader_cases() -> list[Case]:
    cases = []
    for name, setup, expect in READERS:
        cases.append(Case(f"validate-{name}", validate(), expect, setup, code=1))  # type: ignore[arg-type]
        cases.append(Case(f"report-{name}", report(), expect, setup))  # type: ignore[arg-type]
    return cases


def renamed(name: str, in_definition: bool) -> object:
    """The api variant renamed ``name`` in its results (and in its definition)."""

    def setup(c: Ctx) -> None:
        path = c.results / API
        path.write_text(path.read_text().replace('"api"', json.dumps(name)))
        if in_definition:
            definition = c.tmp / "mini" / "api.yaml"
            definition.write_text(definition.read_text().replace("name: api", f"name: '{name}'"))
            scenarios = c.tmp / "mini" / "scenarios.yaml"
            scenarios.write_text(scenarios.read_text().replace(" api:", f" '{name}':"))

    return setup


MARKUP = renamed("[/x]", in_definition=False)
"""A variant named ``[/x]``, rich's markup for closing a style (no definition may have
that name, as it holds a ``/``; a results file may)."""

OTHERS = [
    Case("validate-markup-variant", validate(), ["[/x]", "complete"], MARKUP, code=0),  # type: ignore[arg-type]
    Case(
        "report-markup-variant",
        report(),
        [f"{API}: variant '[/x]' is not in experiment 'mini'"],
        MARKUP,  # type: ignore[arg-type]
    ),
    Case(
        "report-markup-variant-defined",
        report(),
        ["md report →"],
        renamed("[red]x", in_definition=True),  # type: ignore[arg-type]
        code=0,
    ),
    Case(
        "validate-a-million-missing-ids",
        validate(),
        ["mini/api run 1: 1,000,000 scenario(s) without a result", "and 999,990 more"],
        lambda c: metadata_with(
            {
                '"scenario_ids":[': '"scenario_ids":['
                + ",".join(f'"s{i}"' for i in range(10**6))
                + ","
            }
        )(c),  # type: ignore[operator]
        code=1,
    ),
    Case(
        "validate-problems-are-counted-past-50",
        validate(),
        ["bad0.jsonl:1: not valid JSON", "… and 10 more problems", "incomplete"],
        lambda c: [new_file(f"bad{i}.jsonl", "x\n")(c) for i in range(60)] and None,  # type: ignore[func-returns-value]
        code=1,
    ),
    Case(
        "validate-a-long-name-is-cut",
        validate(),
        ["results for scenarios not in the metadata: sss", "more characters)", "incomplete"],
        result_with(scenario_id="s" * 10_000),  # type: ignore[arg-type]
        code=1,
    ),
    Case("validate-blank-line", validate(), [f"{API}:6: not valid JSON"], append("\n"), code=1),  # type: ignore[arg-type]
    Case(
        "validate-unknown-run-id",
        validate("--run-id", "nope"),
        ["--run-id nope: no file of this run in", "the runs there: run-1", "check the run id"],
    ),
]


def ran_then(*edits: tuple[str, str, str]) -> object:
    """Run r5 of a copy of ``tests/mini_agentic`` (one scenario, one variant), then change
    the copy: ``(file, old, new)`` each."""

    def setup(c: Ctx) -> None:
        exp = c.tmp / "agentic"
        shutil.copytree(MINI, exp, ignore=shutil.ignore_patterns("__pycache__"))
        first = ["run", str(exp), "--results", str(c.results), "--run-id", "r5", "--runs", "1"]
        first += ["--variant", "api", "--scenario", "confirm-delete", "--model", "anthropic:x"]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert invoke(first) in (0, 1)
        for name, old, new in edits:
            path = exp / name
            assert old in path.read_text(), old
            path.write_text(path.read_text().replace(old, new, 1))

    return setup


def resume() -> list[str]:
    return ["run", "--resume", "r5", "--results", "{results}"]


REFUSED = "cannot resume run r5: its setup changed since it ran:"
RESUME = [
    Case(
        "resume-app-seed-changed",
        resume(),
        [REFUSED, "the app (its schema or seeded state)", "start a new run"],
        ran_then(("app.py", '("Pay rent", "2025-03-31")', '("Pay rent", "2025-04-01")')),  # type: ignore[arg-type]
    ),
    Case(
        "resume-app-schema-changed",
        resume(),
        [REFUSED, "the app (its schema or seeded state)"],
        ran_then(("app.py", "due TEXT,", "due TEXT, note TEXT,")),  # type: ignore[arg-type]
    ),
    Case(
        "resume-limits-changed",
        resume(),
        [REFUSED, "limits (max_turns was 4, now 3)"],
        ran_then(("experiment.yaml", "max_turns: 4", "max_turns: 3")),  # type: ignore[arg-type]
    ),
    Case(
        "resume-tool-timeout-changed",
        resume(),
        [REFUSED, "limits (tool_timeout_s was 2", "now 5"],
        ran_then(("experiment.yaml", "tool_timeout_s: 2", "tool_timeout_s: 5")),  # type: ignore[arg-type]
    ),
    Case(
        "resume-scenario-prompt-changed",
        resume(),
        [REFUSED, "the scenarios (a prompt"],
        ran_then(("scenarios.yaml", "Delete the rent task.", "Delete the dentist task.")),  # type: ignore[arg-type]
    ),
    Case(
        "resume-success-criteria-changed",
        resume(),
        [REFUSED, "the scenarios"],
        ran_then(("scenarios.yaml", "reply: {asks: true}", "reply: {asks: false}")),  # type: ignore[arg-type]
    ),
    Case(
        "resume-zero-persona-changed",
        resume(),
        [REFUSED, "the experiment's settings"],
        ran_then(("experiment.yaml", "limits:", "zero_persona: false\nlimits:")),  # type: ignore[arg-type]
    ),
    Case(
        "resume-two-parts-changed",
        resume(),
        [REFUSED, "the scenarios", "; limits (max_tool_calls was 6, now 9)"],
        ran_then(  # type: ignore[arg-type]
            ("experiment.yaml", "max_tool_calls: 6", "max_tool_calls: 9"),
            ("scenarios.yaml", "Delete the rent task.", "Delete it."),
        ),
    ),
]

CASES = PATHS + OUTPUTS + GIVEN + reader_cases() + OTHERS + RESUME


# --- the harness ---------------------------------------------------------------------


def tree(folder: Path, skip: Path | None = None) -> dict[str, object]:
    """Every entry under ``folder`` by kind, never following a link or reading a FIFO."""
    found: dict[str, object] = {}
    if not folder.exists():
        return found
    for path in sorted(folder.rglob("*")):
        if skip is not None and path.is_relative_to(skip):
            continue
        info = path.lstat()
        name = str(path.relative_to(folder))
        if stat.S_ISLNK(info.st_mode):
            found[name] = ("link", os.readlink(path))
        elif stat.S_ISREG(info.st_mode):
            found[name] = ("file", path.read_bytes(), info.st_nlink)
        else:
            found[name] = ("other", stat.S_IFMT(info.st_mode))
    return found


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ctx:
    exp = tmp_path / "exp"
    shutil.copytree(SAMPLE, exp, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    results = tmp_path / "results"
    experiment = write_experiment(tmp_path / "mini")
    for path in write_results(experiment, results, sample_answers(1)):
        path.rename(results / f"{path.name.split('_')[0]}_run1_20250101T000000Z.jsonl")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "important").write_text(SENTINEL)
    (tmp_path / "important").write_text(SENTINEL)
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    return Ctx(exp=exp, results=results, tmp=tmp_path, monkeypatch=monkeypatch)


def command(case: Case, ctx: Ctx) -> list[str]:
    fill = {"exp": str(ctx.exp), "results": str(ctx.results), "tmp": str(ctx.tmp)}
    argv = [a.format(**fill) for a in case.args]
    if argv[:1] == ["run"]:
        if "--results" not in argv:
            argv += ["--results", str(ctx.results)]
        if "--model" not in argv and not any(a.startswith("--resume") for a in argv):
            argv += ["--model", "anthropic:x", "--runs", "1"]
    return argv


def checked(case: Case, ctx: Ctx, env: MessagesServer) -> str:
    """Run ``case`` and check everything a row promises; its output, whitespace folded."""
    if case.setup is not None:
        case.setup(ctx)
    asked = len(env.requests)  # a row's setup may run a first run
    inside, outside = tree(ctx.results), tree(ctx.tmp, skip=ctx.results)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = invoke(command(case, ctx))
    text = " ".join((out.getvalue() + err.getvalue()).split())
    assert code == case.code, text[:3000]
    assert "Traceback" not in text and "this is a bug" not in text, text[:3000]
    for needle in case.expect:
        assert " ".join(needle.split()) in text, f"{needle!r} not in: {text[:3000]}"
    assert tree(ctx.results) == inside, "nothing in the results folder may change"
    after = {k: v for k, v in tree(ctx.tmp, skip=ctx.results).items() if k != "out/report.md"}
    assert after == outside, "nothing outside the results folder may change"
    assert env.requests[asked:] == [], "no model call may happen"
    return text


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 45
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile(case: Case, ctx: Ctx, env: MessagesServer) -> None:
    text = checked(case, ctx, env)
    assert len(text) < 20_000, "output is bounded whatever the folder holds"


# --- machine faults: a full disk while writing ------------------------------------------


def full_disk_after(monkeypatch: pytest.MonkeyPatch, lines: int) -> list[int]:
    """``os.write`` to a result file fails with ENOSPC after ``lines`` whole writes, having
    written half of the line first (what a disk filling up mid-write leaves)."""
    real, written = os.write, [0]

    def write(fd: int, data: bytes) -> int:
        target = os.readlink(f"/proc/self/fd/{fd}")
        if not target.endswith(".jsonl") or written[0] < lines:
            written[0] += target.endswith(".jsonl")
            return real(fd, data)
        real(fd, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", write)
    return written


def test_a_full_disk_stops_the_run_with_the_resume_command(ctx: Ctx, env: MessagesServer) -> None:
    results = ctx.tmp / "full"
    flags = ["--variant", "applike", "--scenario", "no-call-small-talk"]
    flags += ["--scenario", "no-call-weather", "--order", "blocked", "--concurrency", "1"]
    argv = command(Case("full", run(*flags, "--run-id", "r1", "--results", str(results)), []), ctx)
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as fault:
        full_disk_after(fault, lines=1)
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = invoke(argv)
    text = " ".join(err.getvalue().split())
    assert code == 2, text
    assert "could not write (No space left on device (ENOSPC))" in text
    assert f"tooltrial run --resume r1 --results {results}" in text
    assert "Traceback" not in text
    (path,) = results.glob("*.jsonl")
    assert path.read_bytes().endswith(b"\n"), "nothing half-written"
    assert [type(r).__name__ for r in iter_records(path)] == ["Metadata", "Result"]
    assert not list(results.glob(".meta-*")) and not list(results.glob(".*.lock"))
    assert tree(ctx.tmp / "outside") == {"important": ("file", SENTINEL.encode(), 1)}
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(err):
        resumed = invoke(["run", "--resume", "r1", "--results", str(results)])
    assert resumed == 0, err.getvalue()
    assert validate_folder(results).ok


def test_an_io_error_before_the_first_line_leaves_no_file(ctx: Ctx, env: MessagesServer) -> None:
    results = ctx.tmp / "full"
    flags = ["--variant", "applike", "--scenario", "no-call-small-talk", "--run-id", "r1"]
    argv = command(Case("full", run(*flags, "--results", str(results)), []), ctx)
    real = os.write

    def write(fd: int, data: bytes) -> int:
        if "/.meta-" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.EIO, "Input/output error")
        return real(fd, data)

    err = io.StringIO()
    with pytest.MonkeyPatch.context() as fault:
        fault.setattr(os, "write", write)
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = invoke(argv)
    text = " ".join(err.getvalue().split())
    assert code == 2 and "could not write (Input/output error (EIO))" in text, text
    assert "tooltrial run --resume r1" in text and "Traceback" not in text
    assert not results.exists() or list(results.iterdir()) == []
    assert len([r for r in env.requests if r.body and r.body.get("max_tokens") != 1]) == 0
