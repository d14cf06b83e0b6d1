"""JSONL capture: append-only, never overwritten, whole lines even when killed."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest
from support.capture import append_many, result_fields

from tooltrial import __version__
from tooltrial.errors import CorruptLine
from tooltrial.log.reader import iter_records
from tooltrial.log.records import Metadata, Result
from tooltrial.log.writer import JSONLWriter, WriterPool

META = {
    "experiment": "e",
    "model": "local:smollm2",
    "temperature": 0.2,
    "fixed_timestamp": "2025-03-12T09:00:00+00:00",
    "zero_persona": True,
    "variant_hash": "sha256:0",
    "scenario_ids": ["a", "b"],
}


def test_writer_with_filename_writes_that_file(tmp_path):
    writer = JSONLWriter("run-1", tmp_path, filename="mine.jsonl")
    assert writer.write_metadata(**META, variant="v", rep=1, git_commit="abc")
    writer.write_result(**result_fields())
    writer.close()
    records = list(iter_records(tmp_path / "mine.jsonl"))
    assert [type(r) for r in records] == [Metadata, Result]
    assert records[1].run_id == "run-1"
    assert records[1].tool_calls[0].arguments == {"title": "x"}


def test_writer_without_filename_names_one_from_run_id_and_time(tmp_path):
    first = JSONLWriter("run-1", tmp_path)
    second = JSONLWriter("run-1", tmp_path)
    assert first.path.name.startswith("run-1_") and first.path.suffix == ".jsonl"
    assert first.path != second.path


def test_existing_file_is_appended_never_truncated(tmp_path):
    path = tmp_path / "kept.jsonl"
    path.write_bytes(b'{"earlier": true}\n')
    writer = JSONLWriter("run-1", tmp_path, filename="kept.jsonl")
    assert writer.write_metadata(**META, variant="v", rep=1, git_commit=None) is False
    writer.write_result(**result_fields())
    writer.close()
    lines = path.read_bytes().splitlines()
    assert lines[0] == b'{"earlier": true}'
    assert json.loads(lines[1])["type"] == "scenario_result"


def test_metadata_is_written_once_even_when_raced(tmp_path):
    writers = [JSONLWriter("r", tmp_path, filename="f.jsonl") for _ in range(5)]
    won = [w.write_metadata(**META, variant="v", rep=1, git_commit=None) for w in writers]
    assert won == [True, False, False, False, False]
    assert len((tmp_path / "f.jsonl").read_text().splitlines()) == 1
    assert not list(tmp_path.glob(".meta-*")), "temporary metadata files are cleaned up"


def test_pool_one_writer_per_variant_and_rep_with_one_timestamp(tmp_path):
    pool = WriterPool("run-9", "abc123", {"v": META, "w": META}, directory=tmp_path)
    assert pool.get("v", 1) is pool.get("v", 1)
    pool.get("v", 2).write_result(**result_fields(rep=2))
    pool.get("w", 1)
    pool.close_all()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        f"{v}_run{r}_{pool.timestamp}.jsonl" for v, r in [("v", 1), ("v", 2), ("w", 1)]
    )
    meta = next(iter_records(tmp_path / f"v_run2_{pool.timestamp}.jsonl"))
    assert isinstance(meta, Metadata)
    assert (meta.variant, meta.rep, meta.run_id, meta.git_commit) == ("v", 2, "run-9", "abc123")
    assert meta.tooltrial_version == __version__
    assert meta.temperature == 0.2 and meta.zero_persona is True


def test_pool_refuses_an_unknown_variant(tmp_path):
    pool = WriterPool("r", None, {"baseline": META}, directory=tmp_path)
    with pytest.raises(KeyError, match="unknown variant 'applik'; the pool knows: baseline"):
        pool.get("applik", 1)
    assert not list(tmp_path.iterdir())


def test_processes_appending_to_one_file_never_interleave(tmp_path):
    path = tmp_path / "shared.jsonl"
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=append_many, args=(str(path), w, 40)) for w in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    ids = [r.scenario_id for r in iter_records(path)]
    assert sorted(ids) == sorted(f"w{w}-{i}" for w in range(4) for i in range(40))


KILL_SCRIPT = """
import sys
from tooltrial.log.writer import JSONLWriter
from tooltrial.types import ToolCall, Usage
writer = JSONLWriter("r", sys.argv[1], filename="k.jsonl")
i = 0
while True:
    writer.write_result(scenario_id=f"s{i}", variant="v", rep=1, response_text="y" * 20000,
        tool_calls=[], stop_reason="end_turn", usage=Usage(), latency_s=0.1, model="m",
        temperature=0.2)
    i += 1
"""


@pytest.mark.slow
@pytest.mark.parametrize("lines_before_kill", [1, 7, 40])
def test_sigkill_mid_run_leaves_only_whole_lines(tmp_path, lines_before_kill):
    path = tmp_path / "k.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tmp_path)])
    try:
        deadline = time.monotonic() + 60
        while not path.exists() or path.read_bytes().count(b"\n") < lines_before_kill:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    records = list(iter_records(path))
    assert len(records) >= lines_before_kill
    assert [r.scenario_id for r in records] == [f"s{i}" for i in range(len(records))]


def test_corrupt_line_names_file_line_and_fix(tmp_path):
    path = tmp_path / "bad.jsonl"
    writer = JSONLWriter("r", tmp_path, filename="bad.jsonl")
    writer.write_metadata(**META, variant="v", rep=1, git_commit=None)
    writer.close()
    with path.open("a") as handle:
        handle.write('{"type": "scenario_result", "scenario_id": \n')
    with pytest.raises(CorruptLine) as caught:
        list(iter_records(path))
    message = str(caught.value)
    assert f"{path}:2: not valid JSON" in message
    assert "tooltrial run --resume" in message


def test_torn_last_line_is_skipped_and_the_next_writer_ends_it(tmp_path):
    writer = JSONLWriter("r", tmp_path, filename="torn.jsonl")
    writer.write_metadata(**META, variant="v", rep=1, git_commit=None)
    path = tmp_path / "torn.jsonl"
    with path.open("ab") as handle:
        handle.write(b'{"type": "scenario_result", "scenario_id": "a", "resp')  # killed here
    assert [r.type for r in iter_records(path)] == ["metadata"], "never committed"
    writer.write_result(**result_fields("b"))
    writer.close()
    lines = path.read_bytes().splitlines()
    assert lines[1].endswith(b'"resp') and json.loads(lines[2])["scenario_id"] == "b"
    with pytest.raises(CorruptLine, match=r"torn.jsonl:2: not valid JSON"):
        list(iter_records(path))  # in the middle now: reported, with the fix


def test_result_needs_its_fields(tmp_path):
    path = tmp_path / "short.jsonl"
    path.write_text('{"type": "scenario_result", "scenario_id": "a"}\n')
    with pytest.raises(CorruptLine, match=r"short.jsonl:1: scenario_result record: run_id"):
        list(iter_records(path))
