"""Loading a large experiment: the old pure-Python YAML path against the new one.

    uv run python bench/bench_load.py [--mb 50]

Writes an experiment whose scenarios file is about ``--mb`` MB (the sample experiment's
20 scenarios repeated under new ids, so every entry is realistic and valid) to a
temporary folder, then, in this one process, loads it twice:

- old: what ``tooltrial.definitions.loading`` did before libyaml: the whole file parsed
  by PyYAML's pure-Python ``SafeLoader``, then composed again, also in pure Python, for
  the entries' line numbers (on every load, not only when something was wrong);
- new: ``load_experiment``: libyaml's parser (``yaml.CSafeLoader``) with the
  duplicate-key check, line numbers looked up only when an entry is wrong.

Both then build and check the same ``Experiment`` (pydantic), so the ratio is the whole
load, not the parse alone. Prints the two times as a ratio (old / new).

Then a selection (``--scenario``): the same file loaded with one scenario selected,
against the whole file (the ratio is what a run of one scenario saves) and against an
experiment whose file holds that one scenario only (the bound: what is left is reading
and splitting the text, ``definitions.entries``); and the peak RSS of each load in a
fresh process (``--select-only`` skips the old/new comparison).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tooltrial.definitions import load_experiment
from tooltrial.definitions.experiment import Experiment, check_experiment
from tooltrial.definitions.scenarios import Scenario
from tooltrial.definitions.variants import Variant

SAMPLE = Path(__file__).parent.parent / "tests" / "experiment"


def write_experiment(folder: Path, megabytes: float) -> int:
    """The sample experiment with its scenarios repeated to about ``megabytes``."""
    for name in ("experiment.yaml", "variants/baseline.yaml", "variants/applike.yaml"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text((SAMPLE / name).read_text())
    sample = yaml.safe_load((SAMPLE / "scenarios.yaml").read_text())["scenarios"]
    block = yaml.safe_dump(sample, sort_keys=False, width=100)
    entries = block.split("\n- id: ")
    target, size, copies = megabytes * 1_000_000, 0, 0
    with (folder / "scenarios.yaml").open("w") as out:
        out.write("scenarios:\n")
        while size < target:
            text = block.replace("- id: ", f"- id: c{copies}-", 1)
            text = text.replace("\n- id: ", f"\n- id: c{copies}-")
            out.write(text)
            size += len(text)
            copies += 1
    return copies * len(entries)


def load_the_old_way(folder: Path) -> Experiment:
    """The loader before this change, parse for parse (pure-Python PyYAML, twice)."""

    def read(path: Path) -> Any:
        return yaml.load(path.read_text(), Loader=yaml.SafeLoader)

    def entry_lines(path: Path, key: str | None) -> list[int]:
        node = yaml.compose(path.read_text(), Loader=yaml.SafeLoader)
        if key is not None and isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        return [i.start_mark.line + 1 for i in node.value] if node is not None else []

    raw = read(folder / "experiment.yaml")
    variants = []
    for name in raw.pop("variants"):
        variants.append(Variant.model_validate(read(folder / name)))
        entry_lines(folder / name, "tools")  # the old loader did this only on error
    path = folder / raw.pop("scenarios")
    data = read(path)["scenarios"]
    entry_lines(path, "scenarios")  # ... but this on every load
    scenarios = tuple(Scenario.model_validate(entry) for entry in data)
    experiment = Experiment(**raw, variants=tuple(variants), scenarios=scenarios)
    return check_experiment(experiment, source=str(path))


PEAK = """
import re, sys
from tooltrial.definitions import load_experiment
load_experiment(sys.argv[1], scenarios=sys.argv[2:] or None)
status = open("/proc/self/status").read()
print(int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1)) / 1024)
"""
"""The child's own peak (``VmHWM``: ``ru_maxrss`` would carry this process's over)."""


def peak_mb(folder: Path, *selected: str) -> float:
    """Peak RSS of a fresh process that loads ``folder`` (with this selection)."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK, str(folder), *selected],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.split()[-1])


def timed(folder: Path, *selected: str) -> tuple[float, Experiment]:
    started = time.perf_counter()
    experiment = load_experiment(folder, scenarios=selected or None)
    return time.perf_counter() - started, experiment


def selection(folder: Path, count: int) -> None:
    whole_s, whole = timed(folder)
    last = whole.scenarios[-1]  # the file's last: every entry before it is split
    chosen = last.id
    one_s, one = timed(folder, chosen)
    assert len(whole.scenarios) == count and one.scenarios == (last,)
    with tempfile.TemporaryDirectory() as tmp:
        alone = Path(tmp)
        for name in ("experiment.yaml", "variants/baseline.yaml", "variants/applike.yaml"):
            (alone / name).parent.mkdir(parents=True, exist_ok=True)
            (alone / name).write_text((folder / name).read_text())
        entry = yaml.safe_dump({"scenarios": [last.model_dump(mode="json", exclude_defaults=True)]})
        (alone / "scenarios.yaml").write_text(entry)
        bound_s, _ = timed(alone)
        bound_mb = peak_mb(alone)
    whole_mb, one_mb = peak_mb(folder), peak_mb(folder, chosen)
    print(
        f"--scenario {chosen}: {one_s:.2f} s, peak RSS {one_mb:.0f} MB; the whole file "
        f"{whole_s:.1f} s, {whole_mb:.0f} MB; a file of that scenario alone {bound_s:.2f} s, "
        f"{bound_mb:.0f} MB"
    )
    print(
        f"ratio whole / selected: {whole_s / one_s:.0f}x the time, {whole_mb / one_mb:.1f}x "
        f"the memory; selected / alone: {one_s / bound_s:.1f}x the time, "
        f"{one_mb / bound_mb:.2f}x the memory"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0, help="size of scenarios.yaml (50)")
    parser.add_argument("--select-only", action="store_true", help="only the selection")
    args = parser.parse_args()
    if not getattr(yaml, "__with_libyaml__", False):
        raise SystemExit("PyYAML has no libyaml here: the new path falls back to pure Python")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        count = write_experiment(folder, args.mb)
        megabytes = (folder / "scenarios.yaml").stat().st_size / 1e6
        print(f"scenarios.yaml: {megabytes:.1f} MB, {count:,} scenarios")
        if args.select_only:
            selection(folder, count)
            return
        started = time.perf_counter()
        new = load_experiment(folder)
        new_s = time.perf_counter() - started
        print(f"new (libyaml, lines only on error): {new_s:.1f} s")
        started = time.perf_counter()
        old = load_the_old_way(folder)
        old_s = time.perf_counter() - started
        print(f"old (pure-Python parse + compose):  {old_s:.1f} s")
        assert old.scenario_ids == new.scenario_ids and len(new.scenarios) == count
        print(f"ratio old / new: {old_s / new_s:.1f}x")
        selection(folder, count)


if __name__ == "__main__":
    main()
