"""Command line: ``tooltrial run / validate / report``.

Exit codes: 0 done; 1 the run or the files are incomplete; 2 bad input (definitions,
arguments, files, environment); 3 the model refused a setting; 4 a bug in tooltrial
(shown with its traceback); 130 interrupted (Ctrl-C); 143 stopped by SIGTERM.

Every error the user can fix is a ``TooltrialError`` (``tooltrial.errors``) and becomes
one message; anything else is a bug and is never dressed up as bad input.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tooltrial import tracing
from tooltrial.apps import Workbench
from tooltrial.definitions import Experiment, load_experiment
from tooltrial.definitions.limits import check_flags, flag_temperature
from tooltrial.errors import ResumeError, TooltrialError, UsageError
from tooltrial.log.validate import Validation, validate
from tooltrial.log.writer import WriterPool
from tooltrial.models import Model, get_model, model_specs_from
from tooltrial.run.cache import ResponseCache
from tooltrial.run.lock import SIGTERM_EXIT, RunLock, Terminated, run_stoppable, sigterm_raises
from tooltrial.run.pacing import Pacer
from tooltrial.run.places import check_report_places, check_run_places
from tooltrial.run.plan import (
    git_commit,
    metadata_for,
    new_order,
    new_run_id,
    order_cells,
    plan_cells,
    plan_of,
)
from tooltrial.run.progress import RunProgress
from tooltrial.run.resume import PriorRun, read_run, run_files
from tooltrial.run.runner import RetryPolicy, Runner, prepare_agentic
from tooltrial.run.session import execute
from tooltrial.types import Cell, Order, Outcome

console = Console(stderr=True, highlight=False)
BUG = 4


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with sigterm_raises():
            return int(args.handler(args))
    except (KeyboardInterrupt, Terminated) as exc:  # outside a run's own handling
        stopped = isinstance(exc, Terminated)
        console.print(f"[yellow]{'stopped (SIGTERM)' if stopped else 'interrupted'}[/yellow]")
        return SIGTERM_EXIT if stopped else 130
    except TooltrialError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        return exc.exit_code
    except Exception:
        traceback.print_exc()
        console.print(
            "[red]this is a bug in tooltrial[/red], not a problem with your input: "
            "please report it with the traceback above",
            soft_wrap=True,
        )
        return BUG


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tooltrial", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run an experiment: variants × scenarios × runs",
        description="Run every (model, variant, scenario, rep) cell, up to --concurrency "
        "at once. "
        "Ctrl-C stops cleanly and prints the command that resumes the run.",
    )
    run.add_argument(
        "experiment",
        nargs="?",
        help="folder, experiment.yaml/.toml, file.py or module:attr "
        "(with --resume: default, the run's own)",
    )
    run.add_argument(
        "--model",
        action="append",
        help="e.g. local:smollm2 (default), anthropic:claude-sonnet-4-5; repeat (or separate "
        "with commas) to compare models in one run",
    )
    run.add_argument("--base-url", help="for openai:/anthropic: models, the server's URL")
    run.add_argument("--runs", type=int, help="repetitions of every cell (3)")
    run.add_argument("--concurrency", type=int, default=1, help="calls in flight at once (1)")
    run.add_argument(
        "--temperature",
        help="override the experiment's; 'default' sends none (provider default)",
    )
    run.add_argument("--variant", action="append", help="only this variant (repeatable)")
    run.add_argument("--scenario", action="append", help="only this scenario id (repeatable)")
    run.add_argument("--results", default="results", type=Path, help="output folder (results)")
    run.add_argument("--run-id", help="run id to record (default: a new one)")
    run.add_argument(
        "--order",
        choices=("random", "blocked"),
        help="random (default): within each rep, the cells in a seeded random order; "
        "blocked: variant by variant (latency comparisons then carry any drift)",
    )
    run.add_argument(
        "--order-seed",
        type=int,
        metavar="N",
        help="seed of the random order (default: a fresh one, printed and recorded)",
    )
    pace = run.add_argument_group("pace and failures")
    pace.add_argument(
        "--rpm", type=float, help="at most this many requests a minute, for each model"
    )
    pace.add_argument(
        "--tpm", type=float, help="at most this many tokens a minute (estimated), for each model"
    )
    pace.add_argument("--timeout", type=float, default=120.0, help="seconds per call (120)")
    pace.add_argument(
        "--max-attempts", type=int, default=6, help="tries per cell before an error line (6)"
    )
    pace.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="run only the cells of RUN_ID (in --results) that have no result yet",
    )
    pace.add_argument(
        "--cache",
        metavar="DIR",
        type=Path,
        help="reuse responses stored in DIR for identical calls (off by default)",
    )
    pace.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="live progress bar (default: only when stderr is a terminal)",
    )
    traces = run.add_argument_group("tracing (LangSmith: set LANGSMITH_API_KEY)")
    traces.add_argument(
        "--langsmith-experiment",
        help="LangSmith project for the traces (default: LANGSMITH_EXPERIMENT, "
        "else 'tooltrial MODELS VARIANTS RUN_ID')",
    )
    traces.add_argument(
        "--otel-endpoint",
        help="also send OpenTelemetry spans to this OTLP/HTTP base URL "
        "(default: OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    run.set_defaults(handler=cmd_run)

    check = commands.add_parser("validate", help="check a results folder is complete")
    check.add_argument("results", type=Path)
    check.add_argument("--run-id", help="only the files of this run")
    check.set_defaults(handler=cmd_validate)

    report = commands.add_parser("report", help="score results and compare variants")
    report.add_argument("results", nargs="+", type=Path, help="result folders or .jsonl files")
    report.add_argument("-o", "--output", type=Path, help="file (html: report.html; else stdout)")
    report.add_argument("--format", choices=("html", "md", "json"), default="html")
    report.add_argument("--experiment", help="definition to score against (default: from files)")
    report.add_argument("--reference", help="variant the others are compared with (first)")
    report.add_argument(
        "--reference-model", help="model the others are compared with (first in sorted order)"
    )
    report.add_argument("--export", type=Path, help="also write the scored table: .csv/.parquet")
    report.set_defaults(handler=cmd_report)
    return parser


def _models_for(args: argparse.Namespace, experiment: Experiment) -> list[Model]:
    temperature = experiment.temperature
    if args.temperature is not None:
        temperature = flag_temperature(args.temperature)
    return [
        get_model(
            spec,
            temperature=temperature,
            max_tokens=experiment.max_tokens,
            timeout_s=args.timeout,
            base_url=args.base_url,
        )
        for spec in model_specs_from(args.model)
    ]


def _check_run_args(args: argparse.Namespace) -> None:
    keys = ("runs", "concurrency", "rpm", "tpm", "timeout", "max_attempts", "temperature")
    check_flags({key: getattr(args, key) for key in keys})
    check_run_places(args.results, args.cache)
    if args.order == "blocked" and args.order_seed is not None:
        raise UsageError("--order-seed only applies to the random order: drop one of them")
    if args.resume is None and args.experiment is None:
        raise UsageError("name the experiment to run (a folder or file), or --resume RUN_ID")


def _resume_settings(args: argparse.Namespace, prior: PriorRun) -> None:
    """Take the run's own settings; refuse flags that would change what it measures."""
    if args.variant or args.scenario:
        raise ResumeError(
            "--resume runs exactly the cells the run planned: drop --variant/--scenario"
        )
    if args.run_id and args.run_id != prior.run_id:
        raise ResumeError(f"--run-id {args.run_id} differs from --resume {prior.run_id}")
    args.experiment = args.experiment or prior.setting("experiment_source")
    if args.experiment is None:
        raise ResumeError(
            f"run {prior.run_id} does not record where its experiment came from: name it"
        )
    args.model = args.model or prior.models
    if args.temperature is None:
        temperature = prior.first.temperature
        args.temperature = "default" if temperature is None else str(temperature)
    args.runs = args.runs or prior.planned_runs
    recorded = prior.order
    wanted = (args.order or recorded.kind, args.order_seed)
    if wanted[0] != recorded.kind or wanted[1] not in (None, recorded.seed):
        given = " ".join(
            f"{flag} {value}"
            for flag, value in (("--order", args.order), ("--order-seed", args.order_seed))
            if value is not None
        )
        raise ResumeError(
            f"run {prior.run_id} was run in {recorded.describe()} order; --resume keeps it: "
            f"drop {given}"
        )


def cmd_run(args: argparse.Namespace) -> int:
    """Run (or resume) under the run's lock: one process writes a run at a time.

    A new run checks every input (flags, places, definitions, models, the plan) before it
    takes the lock, so a refused command creates nothing; a resume takes the lock before
    it reads what the run already holds."""
    _check_run_args(args)
    if args.resume:
        if not Path(args.results).is_dir():
            read_run(args.results, args.resume)  # says there is nothing to resume there
        with RunLock(args.results, args.resume):
            prior = read_run(args.results, args.resume)
            _resume_settings(args, prior)
            return _run(args, _plan(args, prior), prior)
    planned = _plan(args, None)
    run_id = args.run_id or new_run_id()
    with RunLock(args.results, run_id):
        if args.run_id:
            _refuse_a_finished_run_id(args)
        args.run_id = run_id
        return _run(args, planned, None)


def _refuse_a_finished_run_id(args: argparse.Namespace) -> None:
    """A new run under the id of an earlier one would mix two runs' results in one."""
    files = run_files(args.results, args.run_id)
    if files:
        raise UsageError(
            f"run {args.run_id} already exists: {len(files)} files in {args.results}/ hold "
            "its results. A new run under its id would mix two runs' results; to run the "
            f"cells it lacks, `tooltrial run --resume {args.run_id} --results {args.results}`; "
            "for a new run, choose another --run-id (or leave it out)"
        )


@dataclass(frozen=True)
class _Planned:
    experiment: Experiment
    models: list[Model]
    runs: int
    cells: list[Cell]
    plan: dict[str, Any]
    order: Order
    workbench: Workbench | None = None


def _plan(args: argparse.Namespace, prior: PriorRun | None) -> _Planned:
    """The run's experiment, models and cells; every name in them is checked here."""
    experiment = load_experiment(args.experiment)
    models = _models_for(args, experiment)
    workbench = prepare_agentic(experiment, models)  # an app's code is checked here too
    runs = args.runs or 3
    if prior is not None:
        prior.check_same(experiment, models, runs)
        remaining = prior.remaining()  # in the run's recorded order
        plan = prior.setting("plan")
        return _Planned(experiment, models, runs, remaining, plan, prior.order, workbench)
    order = new_order(args.order or "random", args.order_seed)
    cells = plan_cells(experiment, [m.spec for m in models], runs, args.variant, args.scenario)
    plan = plan_of(cells, runs)
    return _Planned(experiment, models, runs, order_cells(cells, order), plan, order, workbench)


def _run(args: argparse.Namespace, planned: _Planned, prior: PriorRun | None) -> int:
    experiment, models, runs, cells, plan, order = (
        planned.experiment,
        planned.models,
        planned.runs,
        planned.cells,
        planned.plan,
        planned.order,
    )
    if prior is not None and not cells:
        console.print(f"run {prior.run_id} is complete: every cell has a result")
        return 0
    cache = ResponseCache(args.cache) if args.cache else None
    runner = Runner(
        experiment,
        models,
        policy=RetryPolicy(max_attempts=args.max_attempts, timeout_s=args.timeout),
        concurrency=args.concurrency,
        pacer=Pacer(rpm=args.rpm, tpm=args.tpm),
        cache=cache,
        warn=_warn,
        workbench=planned.workbench,
    )
    settings = {
        "front_end": "cli",
        "plan": plan,
        "cache": str(args.cache) if cache else None,
        "order": order.record(),
    }
    pool = WriterPool(
        run_id=prior.run_id if prior else args.run_id or new_run_id(),
        git_commit=git_commit(),
        metadata=metadata_for(experiment, models, runs, plan["scenario_ids"], **settings),
        directory=args.results,
    )
    runner.tracer = tracing.from_env(
        experiment,
        models,
        pool.run_id,
        pool.git_commit,
        variants=args.variant,
        otel_endpoint=args.otel_endpoint,
        langsmith_experiment=args.langsmith_experiment,
        warn=_warn,
    )
    resumed = f" (resuming: {len(cells)} cells left)" if prior else ""
    specs = ", ".join(m.spec for m in models)
    unit = "conversations with" if experiment.agentic else "calls to"
    console.print(
        f"run {pool.run_id}: {len(cells)} {unit} {specs} "
        f"(temperature {models[0].temperature}) → {args.results}/{resumed}",
        soft_wrap=True,
    )
    repeat = f"; --order-seed {order.seed} repeats it" if order.randomised and not prior else ""
    console.print(f"order: {order.describe()}{repeat}", soft_wrap=True)
    return _execute(runner, cells, pool, args)


def _warn(message: str) -> None:
    console.print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True)


def _execute(runner: Runner, cells: list[Cell], pool: WriterPool, args: argparse.Namespace) -> int:
    """Run the cells with a progress display; on Ctrl-C or SIGTERM say how to resume."""
    progress = RunProgress(len(cells), console, live=args.progress)
    runner.on_retry, runner.on_outcome = progress.retry, _reporter(progress)
    resume = f"tooltrial run --resume {pool.run_id} --results {args.results}"
    try:
        failure = run_stoppable(execute(runner, cells, pool, progress))
    except (KeyboardInterrupt, Terminated) as exc:
        how = "stopped (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        console.print(f"[yellow]{how}:[/yellow] {progress.summary()}", soft_wrap=True)
        if pool.paths:
            console.print(f"resume with: {resume}", soft_wrap=True)
        else:
            console.print("nothing was recorded yet: start the run again", soft_wrap=True)
        return SIGTERM_EXIT if isinstance(exc, Terminated) else 130
    finally:
        pool.close_all()
        runner.tracer.close()  # flushes queued traces; warns once if some were not sent
    if failure is not None:
        spec, why = failure
        console.print(
            f"[red]error:[/red] {escape(spec)} did not answer a first test call "
            f"({why.kind}): {escape(why.message)}",
            soft_wrap=True,
        )
        return 1
    console.print(progress.summary(), soft_wrap=True)
    for path in sorted(pool.paths):
        console.print(f"  {path}", soft_wrap=True)
    if progress.errors:
        console.print(
            f"{progress.errors} cells failed every attempt (scenario_error lines); "
            f"re-run them with: {resume}",
            soft_wrap=True,
        )
    return 1 if progress.errors else 0


def _reporter(progress: RunProgress) -> Callable[[Outcome], None]:
    def report(outcome: Outcome) -> None:
        progress.outcome(outcome)
        if outcome.failure is not None:
            cell = outcome.cell
            console.print(
                f"[yellow]{escape(cell.model)} {cell.variant}/{cell.scenario_id} run {cell.rep}: "
                f"{outcome.failure.kind} after {outcome.attempts} attempt(s)[/yellow]",
                soft_wrap=True,
            )

    return report


def cmd_report(args: argparse.Namespace) -> int:
    from tooltrial.report import make_report  # polars/scipy load only when reporting

    check_report_places(args.output or _default_output(args.format), args.export)
    return make_report(
        args.results,
        args.output,
        args.format,
        args.experiment,
        args.reference,
        args.export,
        reference_model=args.reference_model,
    )


def _default_output(fmt: str) -> Path | None:
    return Path("report.html") if fmt == "html" else None


def cmd_validate(args: argparse.Namespace) -> int:
    result = validate(args.results, args.run_id)
    _print_validation(result)
    return 0 if result.ok else 1


def _print_validation(result: Validation) -> None:
    out = Console(highlight=False)
    table = Table(title="results by model, variant and run")
    columns = ("experiment", "model", "variant", "run", "files", "results", "tool-only")
    for column in (*columns, "missing", "empty"):
        table.add_column(column)
    for arm in result.arms:
        table.add_row(
            arm.experiment,
            escape(arm.model),
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
        out.print(f"[red]✗[/red] {escape(problem.where)}: {escape(problem.what)}", soft_wrap=True)
    out.print("[green]complete[/green]" if result.ok else "[red]incomplete[/red]")


if __name__ == "__main__":
    sys.exit(main())
