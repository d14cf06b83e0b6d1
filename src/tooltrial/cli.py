"""Command line: ``tooltrial run / validate``.

Exit codes: 0 done; 1 the run or the files are incomplete; 2 bad input (definitions,
arguments, files); 3 the model refused a setting.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tooltrial.capture import WriterPool
from tooltrial.experiment import DefinitionError, Experiment, load_experiment
from tooltrial.models import Model, ModelSettingRejected, get_model
from tooltrial.runner import Outcome, Runner, git_commit, metadata_for, new_run_id, plan_cells
from tooltrial.validate import Validation, validate

console = Console(stderr=True, highlight=False)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except (DefinitionError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    except ModelSettingRejected as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tooltrial", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run an experiment: variants × scenarios × runs")
    run.add_argument("experiment", help="folder, experiment.yaml/.toml, file.py or module:attr")
    run.add_argument("--model", help="e.g. local:smollm2 (default), anthropic:claude-sonnet-4-5")
    run.add_argument("--base-url", help="for openai:/anthropic: models, the server's URL")
    run.add_argument("--runs", type=int, default=3, help="repetitions of every cell (3)")
    run.add_argument("--concurrency", type=int, default=1, help="calls in flight at once (1)")
    run.add_argument(
        "--temperature",
        help="override the experiment's; 'default' sends none (provider default)",
    )
    run.add_argument("--variant", action="append", help="only this variant (repeatable)")
    run.add_argument("--scenario", action="append", help="only this scenario id (repeatable)")
    run.add_argument("--results", default="results", type=Path, help="output folder (results)")
    run.add_argument("--run-id", help="run id to record (default: a new one)")
    run.set_defaults(handler=cmd_run)

    check = commands.add_parser("validate", help="check a results folder is complete")
    check.add_argument("results", type=Path)
    check.add_argument("--run-id", help="only the files of this run")
    check.set_defaults(handler=cmd_validate)
    return parser


def _model_for(args: argparse.Namespace, experiment: Experiment) -> Model:
    temperature = experiment.temperature
    if args.temperature is not None:
        temperature = None if args.temperature == "default" else float(args.temperature)
    return get_model(
        args.model,
        temperature=temperature,
        max_tokens=experiment.max_tokens,
        base_url=args.base_url,
    )


def cmd_run(args: argparse.Namespace) -> int:
    if args.runs < 1 or args.concurrency < 1:
        raise ValueError("--runs and --concurrency must be at least 1")
    experiment = load_experiment(args.experiment)
    cells = plan_cells(experiment, args.runs, args.variant, args.scenario)
    model = _model_for(args, experiment)
    asyncio.run(model.preflight())
    run_id = args.run_id or new_run_id()
    pool = WriterPool(
        run_id=run_id,
        git_commit=git_commit(),
        metadata=metadata_for(experiment, model, args.runs, front_end="cli"),
        directory=args.results,
    )
    console.print(
        f"run {run_id}: {len(cells)} calls to {model.spec} "
        f"(temperature {model.temperature}) → {args.results}/"
    )
    runner = Runner(experiment, model, concurrency=args.concurrency, on_outcome=_report_outcome)
    try:
        outcomes = asyncio.run(runner.run(cells, pool))
    finally:
        pool.close_all()
    failed = [o for o in outcomes if o.response is None]
    console.print(f"{len(outcomes) - len(failed)} results, {len(failed)} errors")
    for path in sorted(pool.paths):
        console.print(f"  {path}")
    return 1 if failed else 0


def _report_outcome(outcome: Outcome) -> None:
    if outcome.failure is not None:
        cell = outcome.cell
        console.print(
            f"[yellow]{cell.variant}/{cell.scenario_id} run {cell.rep}: "
            f"{outcome.failure.kind} after {outcome.attempts} attempt(s)[/yellow]"
        )


def cmd_validate(args: argparse.Namespace) -> int:
    result = validate(args.results, args.run_id)
    _print_validation(result)
    return 0 if result.ok else 1


def _print_validation(result: Validation) -> None:
    out = Console(highlight=False)
    table = Table(title="results by variant and run")
    for column in ("experiment", "variant", "run", "files", "results", "tool-only", "missing"):
        table.add_column(column)
    table.add_column("empty")
    for arm in result.arms:
        table.add_row(
            arm.experiment,
            arm.variant,
            str(arm.rep),
            str(len(arm.files)),
            f"{len(arm.latest)}/{len(arm.expected)}",
            str(arm.tool_only),
            str(len(arm.missing)),
            str(len(arm.empty)),
        )
    out.print(table)
    for problem in result.problems:
        out.print(f"[red]✗[/red] {problem.where}: {problem.what}")
    out.print("[green]complete[/green]" if result.ok else "[red]incomplete[/red]")


if __name__ == "__main__":
    sys.exit(main())
