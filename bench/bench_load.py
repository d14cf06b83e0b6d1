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
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0, help="size of scenarios.yaml (50)")
    args = parser.parse_args()
    if not getattr(yaml, "__with_libyaml__", False):
        raise SystemExit("PyYAML has no libyaml here: the new path falls back to pure Python")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        count = write_experiment(folder, args.mb)
        megabytes = (folder / "scenarios.yaml").stat().st_size / 1e6
        print(f"scenarios.yaml: {megabytes:.1f} MB, {count:,} scenarios")
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


if __name__ == "__main__":
    main()
