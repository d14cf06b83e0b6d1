"""The writer's file names stay in the results folder whatever a variant or model is
called, and it never writes through something already under a result file's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tooltrial.files import FileRefused
from tooltrial.log.reader import iter_records
from tooltrial.log.writer import JSONLWriter, WriterPool

FIELDS = {
    "experiment": "e",
    "temperature": 0.2,
    "fixed_timestamp": "2025-01-01T00:00:00+00:00",
    "zero_persona": True,
    "variant_hash": "sha256:0",
    "scenario_ids": ["a"],
    "runs": 1,
}


@pytest.mark.parametrize("variant", ["../../outside", "/etc/passwd", ".hidden", "x" * 300, "a\nb"])
@pytest.mark.parametrize("models", [["m:1"], ["m:1", "../../m" + "y" * 300]])
def test_every_file_lands_in_the_folder(tmp_path: Path, variant: str, models: list[str]) -> None:
    results = tmp_path / "results"
    metadata = {(m, variant): {**FIELDS, "model": m} for m in models}
    pool = WriterPool(run_id="r1", git_commit=None, metadata=metadata, directory=results)
    for model in models:
        pool.get(variant, 1, model).write_error(
            scenario_id="a", variant=variant, rep=1, kind="k", message="m", attempts=1, model=model
        )
    pool.close_all()
    files = sorted(results.iterdir())
    assert len(files) == len(models) and all(p.parent == results for p in files)
    assert all(len(p.name.encode()) < 255 and not p.name.startswith(".") for p in files)
    assert {next(iter_records(p)).variant for p in files} == {variant}  # type: ignore[union-attr]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_a_link_under_a_result_files_name_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    (tmp_path / "v_run1_t.jsonl").symlink_to(outside)
    writer = JSONLWriter("r1", tmp_path, "v_run1_t.jsonl")
    assert writer.write_metadata(**FIELDS, model="m", variant="v", rep=1, git_commit=None) is False
    with pytest.raises(FileRefused, match="a symbolic link"):
        writer.write_error(
            scenario_id="a", variant="v", rep=1, kind="k", message="m", attempts=1, model="m"
        )
    assert outside.read_text() == "keep\n"
    assert not list(tmp_path.glob(".meta-*"))
