"""``tooltrial validate``: is a results folder complete?

Whatever the folder holds, the output is bounded and literal: every name from the files
is printed as text (never as console markup), at most ``PRINTED`` problems are printed,
each at most ``WIDTH`` characters, then how many more there are. A ``--run-id`` that
names no run there is bad input (exit 2), saying which runs are there.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tooltrial.errors import UsageError
from tooltrial.log.validate import Validation, validate

PRINTED = 50
WIDTH = 2000


def add_parser(commands: Any) -> None:
    check = commands.add_parser("validate", help="check a results folder is complete")
    check.add_argument("results", type=Path)
    check.add_argument("--run-id", help="only the files of this run")
    check.set_defaults(handler=command)


def command(args: argparse.Namespace) -> int:
    result = validate(args.results, args.run_id)
    if args.run_id is not None and not result.arms:
        unknown = next((p for p in result.problems if p.where == f"--run-id {args.run_id}"), None)
        if unknown is not None:
            raise UsageError(f"{unknown.where}: {unknown.what}")
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
            escape(arm.experiment),
            escape(arm.model),
            escape(arm.variant),
            str(arm.rep),
            str(len(arm.files)),
            f"{len(arm.latest)}/{len(arm.expected)}",
            str(arm.tool_only),
            str(len(arm.missing)),
            str(len(arm.empty)),
        )
    out.print(table)
    for problem in result.problems[:PRINTED]:
        out.print(
            f"[red]✗[/red] {escape(_cut(f'{problem.where}: {problem.what}'))}", soft_wrap=True
        )
    hidden = len(result.problems) - PRINTED + result.more
    if hidden > 0:
        out.print(f"[red]✗[/red] … and {hidden:,} more problems", soft_wrap=True)
    out.print("[green]complete[/green]" if result.ok else "[red]incomplete[/red]")


def _cut(text: str) -> str:
    return (
        text if len(text) <= WIDTH else f"{text[:WIDTH]}… ({len(text) - WIDTH:,} more characters)"
    )
