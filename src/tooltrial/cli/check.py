"""``tooltrial check``: every load-time check, and the plan, without calling a model.

It builds the run exactly as ``tooltrial run`` would (``prepare_run``: the definition,
the models, an agentic experiment's app, tools and references, the plan) and prints
what the run would do: models, variants and their tools, scenarios, cells, model calls,
and an estimate of the tokens. It creates nothing and sends nothing: no results folder,
no lock, no preflight.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tooltrial.cli.run import add_plan_arguments, temperature_option
from tooltrial.models.base import Model, estimate_tokens
from tooltrial.run.metadata import tool_footprint
from tooltrial.run.options import RunOptions
from tooltrial.run.session import Run, prepare_run


def add_parser(commands: Any) -> None:
    check = commands.add_parser(
        "check",
        help="check an experiment and show its plan, without calling a model",
        description="Run every check `tooltrial run` makes before its first call and print "
        "the plan: models, variants, scenarios, cells, calls and an estimate of tokens.",
    )
    add_plan_arguments(check)
    check.set_defaults(handler=command)


def command(args: argparse.Namespace) -> int:
    options = RunOptions(
        runs=args.runs,
        variants=tuple(args.variant or ()),
        scenarios=tuple(args.scenario or ()),
        temperature=temperature_option(args.temperature),
        base_url=args.base_url,
        results=Path("results"),
    )
    run = prepare_run(args.experiment, args.model, options)
    _print_plan(run)
    return 0


def _print_plan(run: Run) -> None:
    out = Console(highlight=False)
    experiment = run.experiment
    # With --scenario only the selected scenarios are loaded and checked (a cost
    # proportional to them): say so, so "every check" is not read as the whole file.
    which = " of the selected scenarios" if run.options.scenarios else ""
    out.print(
        f"[bold]{escape(experiment.name)}[/bold] ({experiment.kind}, primary metric "
        f"{experiment.primary_metric}) from {escape(str(experiment.source))}: every check"
        f"{which} passed",
        soft_wrap=True,
    )
    table = Table(title="variants")
    for column in ("variant", "tools", "tool definitions", "a first request"):
        table.add_column(column)
    counted_by = set()
    for model in run.models:
        for name in run.plan.variants:
            definition = run.definitions[name]
            footprint = tool_footprint(model, definition.tools)
            counted_by.add(footprint.counted_by)
            table.add_row(
                escape(name) + (f" ({escape(model.spec)})" if len(run.models) > 1 else ""),
                ", ".join(t.name for t in definition.tools),
                f"{footprint.chars:,} chars ≈ {footprint.tokens:,} tokens",
                f"≈ {_first_request_tokens(run, model, name):,} tokens",
            )
    out.print(table)
    out.print(f"tokens counted by: {escape('; '.join(sorted(counted_by)))}", soft_wrap=True)
    cells = len(run.cells)
    unit = "conversations" if experiment.agentic else "calls"
    out.print(
        f"models: {', '.join(m.spec for m in run.models)} (temperature "
        f"{run.models[0].temperature}, max_tokens {experiment.max_tokens})\n"
        f"scenarios: {len(run.plan.scenario_ids)}; runs: {run.plan.runs}; order: "
        f"{run.order.kind}\n"
        f"cells: {cells} {unit} "
        f"({len(run.models)} × {len(run.plan.variants)} × {len(run.plan.scenario_ids)} × "
        f"{run.plan.runs})",
        soft_wrap=True,
    )
    out.print(_token_estimate(run), soft_wrap=True)


def _first_request_tokens(run: Run, model: Model, variant: str) -> int:
    """Tokens of a first request, averaged over the planned scenarios: the system prompt,
    the tools and the user's request (counted by the model when it can, else estimated)."""
    experiment = run.experiment
    system = experiment.system_prompt(experiment.variant(variant))
    tools = tool_footprint(model, run.definitions[variant].tools).tokens
    prompts = [experiment.scenario(s).prompt for s in run.plan.scenario_ids]
    count = model.count_tokens
    said = sum(count(p) or estimate_tokens(p) for p in prompts) / len(prompts)
    return round((count(system) or estimate_tokens(system)) + tools + said)


def _token_estimate(run: Run) -> str:
    experiment = run.experiment
    per_cell = {
        (m.spec, v): _first_request_tokens(run, m, v) for m in run.models for v in run.plan.variants
    }
    first = sum(per_cell[(c.model, c.variant)] for c in run.cells)
    if experiment.agentic:
        limit = experiment.limits.max_tokens * len(run.cells)
        return (
            f"tokens: first requests ≈ {first:,} input in all; every conversation re-sends "
            f"its growing history each turn, up to max_tokens {experiment.limits.max_tokens:,} "
            f"(at most {limit:,} in all)"
        )
    output = experiment.max_tokens * len(run.cells)
    return f"tokens: ≈ {first:,} input in all, plus at most {output:,} output"
