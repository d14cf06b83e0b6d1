"""``tooltrial validate``: is a results folder complete?"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tooltrial.log.validate import Validation, validate


def add_parser(commands: Any) -> None:
    check = commands.add_parser("validate", help="check a results folder is complete")
    check.add_argument("results", type=Path)
    check.add_argument("--run-id", help="only the files of this run")
    check.set_defaults(handler=command)


def command(args: argparse.Namespace) -> int:
    result = validate(args.results, args.run_id)
    _print(result)
    return 0 if result.ok else 1


def _print(result: Validation) -> None:
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
