"""Variants whose tools come from an MCP server: real server processes (the SDK's
``MCPServer``, ``tests/mcp_servers/faults.py``) driven by a scripted model through the
one run path. What the model is sent, what comes back, what is recorded, and every way a
server can fail: at the preflight (one message, exit 2, nothing written) and mid-run (an
error line, retried, rerun by ``--resume``), never a traceback or a lost result."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from support.mcp import (
    FAULTS,
    call,
    faults_server,
    processes_with,
    say_result,
    steps,
    until_none_with,
    write_experiment,
)

from tooltrial import load_experiment, run_experiment
from tooltrial.cli import main
from tooltrial.errors import DefinitionError, ResumeError
from tooltrial.log.reader import iter_records
from tooltrial.testing.scripted import reply
from tooltrial.turns import RetryPolicy
from tooltrial.types import ToolTurn

ONCE = RetryPolicy(max_attempts=1)
TWICE = RetryPolicy(max_attempts=2, base_delay_s=0.01, max_delay_s=0.01)


def metadata(results: Path) -> dict:
    path = sorted(results.glob("*.jsonl"))[0]
    return next(iter_records(path)).model_dump(mode="json")  # type: ignore[union-attr]


def tool_results(outcome) -> list:
    return [r for m in outcome.conversation.messages if isinstance(m, ToolTurn) for r in m.results]


def starts(file: Path) -> int:
    return len(file.read_text().splitlines()) if file.exists() else 0


# --- what the model is sent, and what comes back ----------------------------------------


def test_the_model_gets_the_listed_tools_as_the_variant_shapes_them(tmp_path):
    shaped = (
        "  exclude: [shout]\n"
        "tools:\n"
        "  - {name: echo, rename: say, description: Repeat the text exactly.}\n"
    )
    folder = write_experiment(tmp_path / "e", {"srv": faults_server("ok", extra=shaped)})
    model = steps(call("say", text="hello"), say_result)
    run = run_experiment(folder, model, runs=1, results=tmp_path / "r", retry=ONCE)
    (outcome,) = run.outcomes
    assert outcome.conversation.success and outcome.response.text == "hello"
    definition = metadata(tmp_path / "r")["variant_definition"]
    assert [t["name"] for t in definition["tools"]] == ["say", "whoami", "add", "getenv"]
    assert definition["tools"][0]["description"] == "Repeat the text exactly."
    assert definition["tools"][2]["input_schema"]["required"] == ["a", "b"]
    source = definition["tool_source"]
    assert source["kind"] == "mcp" and source["server"] == {"name": "faults", "version": "0.1.0"}
    assert source["calls"] == {"say": "echo"} and source["transport"] == "stdio"
    assert source["command"][:2] == ["{python}", str(FAULTS)]


def test_the_server_gets_only_the_environment_the_variant_gives_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLTRIAL_TEST_PASSED_ON", "by name")
    monkeypatch.setenv("TOOLTRIAL_TEST_KEPT_BACK", "secret")
    given = "  env: {OWN: '{here}'}\n  inherit_env: [TOOLTRIAL_TEST_PASSED_ON, UNSET_HERE]\n"
    folder = write_experiment(tmp_path / "e", {"srv": faults_server("ok", extra=given)})
    names = ["TOOLTRIAL_TEST_PASSED_ON", "TOOLTRIAL_TEST_KEPT_BACK", "OWN", "UNSET_HERE"]
    model = steps(reply(calls=[("getenv", {"name": n}) for n in names]), reply("done"))
    (outcome,) = run_experiment(folder, model, runs=1, results=tmp_path / "r").outcomes
    seen = [r.content for r in tool_results(outcome)]
    assert seen == ["by name", "(unset)", str(folder.resolve()), "(unset)"]
    source = metadata(tmp_path / "r")["variant_definition"]["tool_source"]
    assert source["env"] == ["OWN"]
    assert source["inherit_env"] == ["TOOLTRIAL_TEST_PASSED_ON", "UNSET_HERE"]
    assert "by name" not in json.dumps(source)


def test_results_and_errors_come_back_as_the_server_gave_them(tmp_path):
    folder = write_experiment(tmp_path / "e", {"srv": faults_server("ok")})
    first = reply(
        calls=[
            ("shout", {"text": "careful"}),  # the tool's own error result
            ("add", {"a": "one"}),  # the server refuses the arguments
            ("whoami", {}),  # structured: a JSON object, as text
            ("nope", {}),  # not a tool the model was given
        ]
    )
    model = steps(first, reply("done"))
    (outcome,) = run_experiment(folder, model, runs=1, results=tmp_path / "r").outcomes
    shout, add, whoami, nope = tool_results(outcome)
    assert (shout.content, shout.is_error, shout.error_kind) == ("CAREFUL", True, "tool_error")
    assert add.is_error and "validation error" in add.content
    assert not whoami.is_error and json.loads(whoami.content)["calls"] == 1
    assert nope.is_error and nope.error_kind == "unknown_tool"
    assert "the tools are: add, echo, getenv, shout, whoami" in nope.content
    assert sum(r.is_error for r in outcome.conversation.tool_results) == 3


# --- the preflight: one message, exit 2, nothing written ---------------------------------


def refused(folder: Path, results: Path, monkeypatch, capsys) -> str:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-a-real-key-0000")
    code = main(["run", str(folder), "--model", "anthropic:claude-test", "--results", str(results)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and not results.exists()
    return " ".join(err.split())


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("exit", "exited (or closed its stdout) before answering the MCP handshake"),
        ("slow-start", "did not answer the MCP handshake within 1 s (raise startup_timeout_s"),
        ("bad-schema", "lists tool 'add' with an input schema tooltrial cannot send a model"),
        ("bad-name", "lists tool 'a.b', a name providers refuse"),
    ],
)
def test_a_server_that_fails_the_preflight_stops_the_run_before_anything(
    tmp_path, monkeypatch, capsys, mode, said
):
    patience = "  startup_timeout_s: 1\n" if mode == "slow-start" else ""
    folder = write_experiment(tmp_path / "e", {"srv": faults_server(mode, extra=patience)})
    err = refused(folder, tmp_path / "r", monkeypatch, capsys)
    assert f"variant 'srv': MCP server `{{python}} {FAULTS} {mode}`" in err
    assert said in err
    if mode == "exit":
        assert "exiting on purpose before the handshake" in err  # its stderr, quoted
    if mode == "bad-name":
        assert "rename: a_b" in err


def test_a_command_that_does_not_exist_is_named(tmp_path, monkeypatch, capsys):
    body = "mcp: {command: no-such-mcp-server, args: [--db, '{db}']}\n"
    folder = write_experiment(tmp_path / "e", {"srv": body})
    err = refused(folder, tmp_path / "r", monkeypatch, capsys)
    assert "cannot start 'no-such-mcp-server': No such file or directory" in err


@pytest.mark.parametrize(
    ("extra", "scenario_extra", "said"),
    [
        ("tools:\n  - {name: missing, rename: x}\n", "", "names tool(s) missing, which the"),
        ("", "    forbidden: {srv: [{tool: drop_all}]}\n", "names tool 'drop_all', which"),
    ],
)
def test_names_are_checked_against_what_the_server_lists(
    tmp_path, monkeypatch, capsys, extra, scenario_extra, said
):
    scenarios = "- id: echo\n  prompt: Echo.\n  success:\n    only_these_change: true\n"
    folder = write_experiment(
        tmp_path / "e", {"srv": faults_server("ok", extra=extra)}, scenarios + scenario_extra
    )
    err = refused(folder, tmp_path / "r", monkeypatch, capsys)
    assert said in err and "add, echo, getenv, shout, whoami" in err


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("mcp: {command: srv, args: ['{nope}']}\n", "{nope} is not a placeholder tooltrial fills"),
        (
            "mcp: {command: srv, args: ['{db}'], stateless: true}\n",
            "a stateless server is shared by every cell",
        ),
    ],
)
def test_placeholders_are_checked_before_a_server_starts(tmp_path, monkeypatch, capsys, body, said):
    folder = write_experiment(tmp_path / "e", {"srv": body})
    err = refused(folder, tmp_path / "r", monkeypatch, capsys)
    assert said in err and "{db}" in err


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("mcp: {url: 'http://127.0.0.1:9/mcp'}\n", "declare 'stateless: true'"),
        ("mcp: {}\n", "give the server's 'command'"),
        ("mcp: {command: x, args: ['{a.b}']}\n", "not a bare name"),
        ("mcp: {command: x}\nimplementation: tools.py\n", "not both"),
        ("mcp: {command: x}\ntools:\n  - {name: a, rename: 'a b'}\n", "refused by providers"),
    ],
)
def test_a_server_setting_that_cannot_work_is_refused_at_load(tmp_path, body, said):
    folder = write_experiment(tmp_path / "e", {"srv": body})
    with pytest.raises(DefinitionError, match=said.replace("(", r"\(")) as refused_:
        load_experiment(folder)
    assert "srv.yaml" in str(refused_.value)


def test_without_the_sdk_the_message_says_how_to_install_it(tmp_path, monkeypatch):
    folder = write_experiment(tmp_path / "e", {"srv": faults_server("ok")})
    monkeypatch.setitem(sys.modules, "mcp", None)  # import mcp raises ImportError
    with pytest.raises(DefinitionError, match=r"pip install 'tooltrial\[mcp\]'"):
        run_experiment(folder, steps(reply("hi")), runs=1, results=tmp_path / "r")
    assert not (tmp_path / "r").exists()


# --- mid-run: an error line, retried, rerun by --resume ------------------------------------


def test_a_server_that_dies_mid_conversation_is_an_error_line_retried(tmp_path):
    count = tmp_path / "starts"
    folder = write_experiment(tmp_path / "e", {"srv": faults_server("die", count)})
    model = steps(call("echo", text="hi"), say_result)
    run = run_experiment(folder, model, runs=1, results=tmp_path / "r", retry=TWICE)
    (outcome,) = run.outcomes
    assert outcome.response is None and outcome.attempts == 2
    assert outcome.failure.kind == "tool_source"
    assert "variant 'srv': MCP server" in outcome.failure.message
    assert "closed the connection" in outcome.failure.message
    assert "dying mid-call on purpose" in outcome.failure.message  # its stderr
    assert starts(count) == 3  # the preflight, then one process per attempt
    assert main(["validate", str(tmp_path / "r")]) == 1  # the cell has no result yet


def test_resume_reruns_a_cell_whose_server_died(tmp_path):
    count = tmp_path / "starts"
    folder = write_experiment(tmp_path / "e", {"srv": faults_server("die-once", count)})
    model = steps(call("echo", text="hi"), say_result)
    first = run_experiment(folder, model, runs=1, results=tmp_path / "r", retry=ONCE)
    assert first.errors == 1
    again = run_experiment(None, model, results=tmp_path / "r", resume=first.run_id)
    (outcome,) = again.outcomes
    assert outcome.failure is None and outcome.response.text == "hi"
    assert main(["validate", str(tmp_path / "r")]) == 0


def test_a_changed_server_cannot_resume_an_old_run(tmp_path):
    """The server's reported version is part of the variant's hash: the same command
    starting another version of the server is a change ``--resume`` refuses."""
    count = tmp_path / "starts"
    version = "  env: {{FAULTS_VERSION: '{}'}}\n"
    server = faults_server("die-once", count, extra=version.format("0.1.0"))
    folder = write_experiment(tmp_path / "e", {"srv": server})
    model = steps(call("echo", text="hi"), say_result)
    first = run_experiment(folder, model, runs=1, results=tmp_path / "r", retry=ONCE)
    assert first.errors == 1
    recorded = metadata(tmp_path / "r")["variant_definition"]["tool_source"]
    assert recorded["server"]["version"] == "0.1.0" and recorded["env"] == ["FAULTS_VERSION"]
    server = faults_server("die-once", count, extra=version.format("0.2.0"))
    write_experiment(tmp_path / "e", {"srv": server})
    with pytest.raises(ResumeError, match="its variant 'srv' was sha256:"):
        run_experiment(folder, model, results=tmp_path / "r", resume=first.run_id)


@pytest.mark.parametrize(
    ("mode", "kind", "said"),
    [
        ("garbage", "tool_source", "broke the MCP protocol"),
        ("exit-later", "tool_source", "exited (or closed its stdout) before answering the MCP"),
        ("bad-result", "tool_source", "broke the MCP protocol (RuntimeError: Invalid structured"),
        ("changing", "tool_source_changed", "lists other tools than at the preflight: added extra"),
    ],
)
def test_a_server_that_breaks_its_word_ends_the_cell(tmp_path, mode, kind, said):
    folder = write_experiment(tmp_path / "e", {"srv": faults_server(mode, tmp_path / "starts")})
    model = steps(call("whoami" if mode == "bad-result" else "echo", text="hi"), say_result)
    (outcome,) = run_experiment(folder, model, runs=1, results=tmp_path / "r", retry=ONCE).outcomes
    assert outcome.response is None and outcome.failure.kind == kind
    assert said in outcome.failure.message


def test_a_server_that_hangs_stops_the_conversation_and_is_ended(tmp_path):
    token = str(tmp_path / "starts")
    folder = write_experiment(tmp_path / "e", {"srv": faults_server("hang", tmp_path / "starts")})
    model = steps(call("echo", text="hi"), say_result)
    (outcome,) = run_experiment(folder, model, runs=1, results=tmp_path / "r").outcomes
    assert outcome.conversation.stop_reason == "tool_timeout"
    (timed_out,) = tool_results(outcome)
    assert timed_out.error_kind == "timeout"
    assert processes_with(token) == []  # ended when its cell ended


# --- one process per cell, or one per run when stateless ------------------------------------


def test_each_cell_gets_its_own_process_unless_the_variant_is_stateless(tmp_path):
    per_cell, shared = tmp_path / "per-cell", tmp_path / "shared"
    stateless = "  stateless: true\n"
    folder = write_experiment(
        tmp_path / "e",
        {
            "fresh": faults_server("ok", per_cell),
            "one": faults_server("ok", shared, extra=stateless),
            "other": faults_server("ok", shared, extra=stateless),
        },
    )
    model = steps(call("whoami"), say_result)
    run = run_experiment(folder, model, runs=2, results=tmp_path / "r", order="blocked")
    answers = {}
    for outcome in run.outcomes:
        answers.setdefault(outcome.cell.variant, []).append(json.loads(outcome.response.text))
    assert starts(per_cell) == 1 + 2  # the preflight, then a process per cell
    assert len({a["pid"] for a in answers["fresh"]}) == 2
    assert [a["calls"] for a in answers["fresh"]] == [1, 1]
    assert processes_with(str(per_cell)) == []  # each ended with its cell
    for name in ("one", "other"):  # one process per variant, serving both its cells
        assert len({a["pid"] for a in answers[name]}) == 1
        assert sorted(a["calls"] for a in answers[name]) == [1, 2]
    assert answers["one"][0]["pid"] != answers["other"][0]["pid"]  # never shared
    assert starts(shared) == 2 + 2  # each variant's preflight, then its one server
    assert until_none_with(str(shared)) == []  # ended with the run


# --- traces name the server ------------------------------------------------------------


def test_tool_spans_and_tool_runs_name_the_server(tmp_path, monkeypatch):
    """A run that traces (as ``tooltrial run`` does) tells its tracers where each tool
    ran: the OTel ``execute_tool`` span and the LangSmith ``tool`` run name the server."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from support.runs import run_cells
    from support.tracing import point_langsmith_at

    from tooltrial.testing.langsmith_server import LangSmithServer
    from tooltrial.tracing import otel
    from tooltrial.types import Cell

    exporter, real = InMemorySpanExporter(), otel.OTelTracer
    monkeypatch.setattr(
        otel, "OTelTracer", lambda c, e=None, **kw: real(c, exporter=exporter, **kw)
    )
    shaped = "tools:\n  - {name: echo, rename: say}\n"
    folder = write_experiment(tmp_path / "e", {"srv": faults_server("ok", extra=shaped)})
    experiment = load_experiment(folder)
    model = steps(call("say", text="hi"), say_result)
    cell = Cell(model=model.spec, variant="srv", scenario_id="echo", rep=1)
    with LangSmithServer() as langsmith:
        point_langsmith_at(monkeypatch, langsmith.url)
        options = {"trace": True, "otel_endpoint": "http://127.0.0.1:9"}
        run_cells(experiment, model, [cell], tmp_path / "r", **options)
        (tool_run,) = [r for r in langsmith.runs.values() if r["run_type"] == "tool"]
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "execute_tool say"]
    assert span.attributes["tooltrial.tool.source"] == "mcp"
    assert span.attributes["tooltrial.tool.server"] == "faults 0.1.0"
    assert span.attributes["tooltrial.tool.server_tool"] == "echo"
    assert span.attributes["mcp.protocol.version"]
    assert span.attributes["gen_ai.tool.description"] == "Answer with the text."
    metadata = tool_run["extra"]["metadata"]
    assert (metadata["tool_source"], metadata["tool_server"]) == ("mcp", "faults 0.1.0")
    assert metadata["tool_server_tool"] == "echo"


# --- streamable HTTP ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["ok", pytest.param("die", marks=pytest.mark.slow)])
def test_over_streamable_http_a_server_per_cell_on_a_port_of_its_own(tmp_path, mode):
    count = tmp_path / "starts"
    http = "  url: 'http://127.0.0.1:{port}/mcp'\n"
    server = faults_server(mode, count, extra=http).replace("]\n", ', --http, "{port}"]\n', 1)
    folder = write_experiment(tmp_path / "e", {"srv": server})
    model = steps(call("echo", text="hi"), say_result)
    run = run_experiment(folder, model, runs=2, results=tmp_path / "r", retry=ONCE)
    source = metadata(tmp_path / "r")["variant_definition"]["tool_source"]
    assert source["transport"] == "streamable-http"
    assert source["url"] == "http://127.0.0.1:{port}/mcp"
    if mode == "ok":
        assert [o.response.text for o in run.outcomes] == ["hi", "hi"]
    else:
        assert [o.failure.kind for o in run.outcomes] == ["tool_source", "tool_source"]
        assert "variant 'srv': MCP server" in run.outcomes[0].failure.message
    assert starts(count) == 3 and processes_with(str(count)) == []
