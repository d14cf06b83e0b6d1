"""``tooltrial run``: the flags become ``RunOptions`` once; ``open_run`` builds the run.

A refused command creates nothing (every check comes before the run's lock and files);
Ctrl-C and SIGTERM stop cleanly and print the command that resumes the run.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.markup import escape

from tooltrial.cli.console import console, warn
from tooltrial.definitions.limits import flag_temperature
from tooltrial.errors import UsageError
from tooltrial.run.lock import SIGTERM_EXIT, Terminated, run_stoppable
from tooltrial.run.options import RunOptions, TemperatureOption
from tooltrial.run.progress import RunProgress
from tooltrial.run.session import Run, open_run
from tooltrial.turns import RetryPolicy
from tooltrial.turns.batch.options import BatchOptions
from tooltrial.types import Outcome


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """What a run is planned from: shared by ``run`` and ``check``."""
    parser.add_argument(
        "experiment",
        nargs="?",
        help="folder, experiment.yaml/.toml, file.py or module:attr "
        "(with --resume: default, the run's own)",
    )
    parser.add_argument(
        "--model",
        action="append",
        help="e.g. local:smollm2 (default), anthropic:claude-sonnet-4-5; repeat (or separate "
        "with commas) to compare models in one run",
    )
    parser.add_argument("--base-url", help="for openai:/anthropic: models, the server's URL")
    parser.add_argument("--runs", type=int, help="repetitions of every cell (3)")
    parser.add_argument(
        "--temperature",
        help="override the experiment's; 'default' sends none (provider default)",
    )
    parser.add_argument("--variant", action="append", help="only this variant (repeatable)")
    parser.add_argument("--scenario", action="append", help="only this scenario id (repeatable)")


def add_parser(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="run an experiment: variants × scenarios × runs",
        description="Run every (model, variant, scenario, rep) cell, up to --concurrency "
        "at once. "
        "Ctrl-C stops cleanly and prints the command that resumes the run.",
    )
    add_plan_arguments(run)
    run.add_argument("--concurrency", type=int, default=1, help="calls in flight at once (1)")
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
    _add_batch_flags(run)
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
    run.set_defaults(handler=command)


BATCH_FLAGS = {
    "in_flight": ("--batch-in-flight", int, "batches open at once (4)"),
    "max_items": (
        "--batch-max-items",
        int,
        "items a batch, at most (the provider's limit); also bounds the cells waiting at "
        "once to in-flight × this",
    ),
    "max_bytes": ("--batch-max-bytes", int, "bytes a batch, at most (the provider's limit)"),
    "poll_s": ("--batch-poll", float, "seconds before the first poll of a batch (30)"),
    "poll_max_s": ("--batch-poll-max", float, "longest wait between polls (600)"),
    "gather_s": ("--batch-gather", float, "seconds ready turns wait for more (2)"),
    "max_attempts": ("--batch-attempts", int, "batch submissions of a turn, at most (3)"),
}


def _add_batch_flags(run: Any) -> None:
    """``--batch`` and its settings (``turns.batch.options.BatchOptions``)."""
    group = run.add_argument_group(
        "batch mode (anthropic: and openai: models; half price, results within 24 h)"
    )
    group.add_argument(
        "--batch",
        action="store_true",
        help="send the model turns through the providers' batch APIs; crash-safe: "
        "--resume collects the batches already submitted",
    )
    for dest, (flag, kind, text) in BATCH_FLAGS.items():
        group.add_argument(flag, dest=f"batch_{dest}", type=kind, help=text)
    group.add_argument(
        "--batch-retry",
        choices=("batch", "online", "none"),
        help="an item that errored: in a later batch (default), online, or an error line",
    )


def _batch(args: argparse.Namespace) -> BatchOptions | None:
    given = {d: getattr(args, f"batch_{d}") for d in (*BATCH_FLAGS, "retry")}
    given = {d: v for d, v in given.items() if v is not None}
    if not args.batch:
        if given:
            raise UsageError("the --batch-… settings need --batch")
        return None
    if "retry" in given:
        given["retry_errored"] = given.pop("retry")
    return BatchOptions(**given)


def options(args: argparse.Namespace) -> RunOptions:
    """The flags as typed options (checked: a value out of range names its flag)."""
    return RunOptions(
        runs=args.runs,
        variants=tuple(args.variant or ()),
        scenarios=tuple(args.scenario or ()),
        results=args.results,
        run_id=args.run_id,
        resume=args.resume,
        order=args.order,
        order_seed=args.order_seed,
        concurrency=args.concurrency,
        rpm=args.rpm,
        tpm=args.tpm,
        retry=RetryPolicy(max_attempts=args.max_attempts, timeout_s=args.timeout),
        cache=args.cache,
        temperature=temperature_option(args.temperature),
        base_url=args.base_url,
        trace=True,
        langsmith_experiment=args.langsmith_experiment,
        keep_outcomes=False,  # each is on disk once written; memory stays flat
        otel_endpoint=args.otel_endpoint,
        front_end="cli",
        batch=_batch(args),
    )


def temperature_option(text: str | None) -> TemperatureOption:
    """``--temperature`` as the option: None (the experiment's), "default" or a number."""
    if text is None:
        return None
    if text == "default":
        return "default"
    return flag_temperature(text)


def command(args: argparse.Namespace) -> int:
    """Run (or resume) under the run's lock: one process writes a run at a time."""
    with open_run(args.experiment, args.model, options(args), warn=warn) as run:
        if run.prior is not None and not run.cells:
            console.print(f"run {run.run_id} is complete: every cell has a result")
            return 0
        _announce(run)
        return _execute(run, args.progress)


def _announce(run: Run) -> None:
    resumed = f" (resuming: {len(run.cells)} cells left)" if run.prior else ""
    specs = ", ".join(m.spec for m in run.models)
    unit = "conversations with" if run.experiment.agentic else "calls to"
    console.print(
        f"run {run.run_id}: {len(run.cells)} {unit} {specs} "
        f"(temperature {run.models[0].temperature}) → {run.options.results}/{resumed}",
        soft_wrap=True,
    )
    order = run.order
    repeat = f"; --order-seed {order.seed} repeats it" if order.randomised and not run.prior else ""
    console.print(f"order: {order.describe()}{repeat}", soft_wrap=True)


class _Progress(RunProgress):
    """The progress line, one line for each cell that failed every attempt, and in
    batch mode one line each time a batch is submitted or ended or results come in."""

    _batch_shown: tuple[int, int] | None = None

    def batch(self, status: Any) -> None:
        shown = (status.in_flight, status.collected)
        if shown == self._batch_shown:
            return
        self._batch_shown = shown
        console.print(f"[cyan]batch:[/cyan] {status.describe()}", soft_wrap=True)

    def outcome(self, outcome: Outcome) -> None:
        super().outcome(outcome)
        if outcome.failure is not None:
            cell = outcome.cell
            console.print(
                f"[yellow]{escape(f'{cell.model} {cell.variant}/{cell.scenario_id}')} run "
                f"{cell.rep}: {escape(outcome.failure.kind)} after {outcome.attempts} "
                "attempt(s)[/yellow]",
                soft_wrap=True,
            )


def _execute(run: Run, live: bool | None) -> int:
    """Run the cells with a progress display; on Ctrl-C or SIGTERM say how to resume."""
    progress = _Progress(len(run.cells), console, live=live)
    resume = f"tooltrial run --resume {run.run_id} --results {run.options.results}"
    try:
        failure = run_stoppable(run.execute(progress))
    except (KeyboardInterrupt, Terminated) as exc:
        how = "stopped (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        console.print(f"[yellow]{how}:[/yellow] {progress.summary()}", soft_wrap=True)
        if run.files:
            console.print(f"resume with: {resume}", soft_wrap=True)
        else:
            console.print("nothing was recorded yet: start the run again", soft_wrap=True)
        return SIGTERM_EXIT if isinstance(exc, Terminated) else 130
    if failure is not None:
        spec, why = failure
        console.print(
            f"[red]error:[/red] {escape(spec)} did not answer a first test call "
            f"({why.kind}): {escape(why.message)}",
            soft_wrap=True,
        )
        return 1
    console.print(progress.summary(), soft_wrap=True)
    for path in run.files:
        console.print(f"  {path}", soft_wrap=True)
    if progress.errors:
        console.print(
            f"{progress.errors} cells failed every attempt (scenario_error lines); "
            f"re-run them with: {resume}",
            soft_wrap=True,
        )
    return 1 if progress.errors else 0
