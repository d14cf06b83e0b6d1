"""Analysis of 1,000,000 result lines, timed against reading the same files alone.

    uv run python bench/bench_analysis.py [--lines 1000000] [--repeat 3]

Writes synthetic results of the sample experiment (tests/experiment: 2 variants × 20
scenarios, so 25,000 reps per variant) to a temporary folder, in the exact line format of
``tooltrial.capture`` (checked by parsing a sample of lines with ``capture.parse_line``).
Answers are drawn per scenario from a pool of plausible ones (right, wrong date, wrong
tool, extra argument, text, question), with free text that differs on every line, as a
real run at temperature > 0 would give.

Then, in this one process, it times (best of ``--repeat``):

- read: polars scanning every line of the files into a table (the floor for any
  analysis that must look at every line);
- analyse: ``tooltrial.analysis.analyze``: read, keep the latest result per cell, score,
  per-variant rates, consistency, the paired comparison with its 10,000-resample
  bootstrap, power;

and prints analyse / read as the ratio.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

from tooltrial import analysis
from tooltrial.analysis import load
from tooltrial.definitions import Experiment, load_experiment
from tooltrial.log.records import Metadata, Result, parse_line

ROOT = Path(__file__).resolve().parents[1]
FILES_PER_VARIANT = 10


def candidate_answers(experiment: Experiment, variant: str, scenario_id: str) -> list[Any]:
    """A pool of answers for one cell: (tool calls, text template)."""
    expectation = experiment.scenario(scenario_id).expectation_for(variant)
    tools = sorted(experiment.variant(variant).tool_names)
    pool: list[Any] = [([], "I can't do that, sorry ({n})."), ([], "Which one do you mean? ({n})")]
    for call in expectation.calls:
        right = {path: _value_for(spec) for path, spec in call.args.items()}
        pool.append(([_nest(call.tool, right)], ""))
        pool.append(([_nest(call.tool, {**right, "notes": "extra"})], ""))
        for path in right:
            pool.append(([_nest(call.tool, {**right, path: "2025-01-01"})], ""))
    for tool in tools[:3]:
        pool.append(([_nest(tool, {"title": "something"})], "Done ({n})."))
    return pool


def _value_for(spec: Any) -> Any:
    spec = spec[0] if isinstance(spec, list) else spec
    if isinstance(spec, dict):
        key, value = next(iter(spec.items()))
        return {"contains": f"the {value} item", "datetime": value, "date": value}.get(key, "x")
    return spec


def _nest(tool: str, flat: dict[str, Any]) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, leaf = path.split(".")
        node = arguments
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return {"name": tool, "arguments": arguments}


def write_lines(experiment: Experiment, directory: Path, lines: int) -> list[Path]:
    rng = random.Random(1)
    variants = [v.name for v in experiment.variants]
    scenarios = list(experiment.scenario_ids)
    reps = lines // (len(variants) * len(scenarios))
    pools = {(v, s): candidate_answers(experiment, v, s) for v in variants for s in scenarios}
    paths = []
    for variant in variants:
        definition = experiment.variant(variant)
        per_file = -(-reps // FILES_PER_VARIANT)
        for index in range(FILES_PER_VARIANT):
            first = index * per_file + 1
            path = directory / f"{variant}_part{index:02d}.jsonl"
            meta = Metadata(
                run_id="bench",
                experiment=experiment.name,
                variant=variant,
                rep=first,
                model="bench:synthetic",
                temperature=0.2,
                fixed_timestamp=experiment.fixed_timestamp.isoformat(),
                zero_persona=True,
                git_commit=None,
                variant_hash=definition.definition_hash,
                scenario_ids=scenarios,
                runs=reps,
                settings={"experiment_source": experiment.source},
            )
            with path.open("w") as handle:
                handle.write(meta.model_dump_json() + "\n")
                for rep in range(first, min(reps, first + per_file - 1) + 1):
                    for scenario_id in scenarios:
                        calls, text = rng.choice(pools[(variant, scenario_id)])
                        handle.write(_result_line(rng, variant, rep, scenario_id, calls, text))
            paths.append(path)
    _check_format(paths[0])
    return paths


def _result_line(
    rng: random.Random, variant: str, rep: int, scenario_id: str, calls: list, text: str
) -> str:
    record = {
        "type": "scenario_result",
        "run_id": "bench",
        "scenario_id": scenario_id,
        "variant": variant,
        "rep": rep,
        "response_text": text.format(n=rng.random()) if text else "",
        "tool_calls": [{"id": f"call_{i}", **c} for i, c in enumerate(calls)],
        "stop_reason": "tool_use" if calls else "end_turn",
        "usage": {"input_tokens": rng.randint(700, 900), "output_tokens": rng.randint(10, 80)},
        "latency_s": round(rng.uniform(0.2, 3.0), 3),
        "model": "bench:synthetic",
        "temperature": 0.2,
        "timestamp": "2025-03-12T10:00:00.000+00:00",
    }
    return json.dumps(record) + "\n"


def _check_format(path: Path) -> None:
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            record = parse_line(path, line_no, raw)
            assert isinstance(record, Metadata if line_no == 1 else Result)
            if line_no > 200:
                break


def read_only(paths: list[Path]) -> int:
    table = pl.scan_ndjson(paths, schema=load._LINE_SCHEMA).collect()
    return table.height


def best_of(repeat: int, fn: Any) -> tuple[float, Any]:
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    experiment = load_experiment(ROOT / "tests" / "experiment")
    with tempfile.TemporaryDirectory(prefix="tooltrial-bench-") as tmp:
        start = time.perf_counter()
        paths = write_lines(experiment, Path(tmp), args.lines)
        size = sum(p.stat().st_size for p in paths)
        print(
            f"wrote {args.lines:,} result lines ({size / 2**20:,.0f} MiB, {len(paths)} files) "
            f"in {time.perf_counter() - start:.1f} s"
        )
        read_s, rows = best_of(args.repeat, lambda: read_only(paths))
        analyse_s, result = best_of(
            args.repeat, lambda: analysis.analyze(paths, count_tokens=False)
        )
        distinct = result.table.select("variant", "scenario_id", "tool_calls", "answer").n_unique()
    print(f"read only : {read_s:6.2f} s  ({rows:,} lines)")
    print(
        f"analyse   : {analyse_s:6.2f} s  ({result.table.height:,} results, "
        f"{distinct:,} distinct answers scored)"
    )
    print(f"ratio analyse / read: {analyse_s / read_s:.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak memory of this process: {peak:.1f} GiB")


if __name__ == "__main__":
    main()
