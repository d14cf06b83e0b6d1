"""``tooltrial init``: write a ready-to-run experiment into a folder.

The templates ship with the package (``tooltrial/templates``): a single-turn experiment,
(``--agentic``) an app with two tool interfaces and scenarios judged by its final state,
or (``--mcp``) two versions of an MCP server acting on that app's database. All run at
once on the embedded model (``--mcp`` with the ``mcp`` extra). A folder that already holds files is
refused, so nothing is overwritten.
"""

from __future__ import annotations

import argparse
import shutil
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

from rich.markup import escape

from tooltrial.cli.console import console
from tooltrial.errors import UsageError


def add_parser(commands: Any) -> None:
    init = commands.add_parser(
        "init",
        help="write a ready-to-run experiment into a folder",
        description="Write a small experiment to start from, with comments: two variants "
        "(tool designs) and a few scenarios. It runs at once on the embedded model.",
    )
    init.add_argument("folder", type=Path, help="where to write it (new, or empty)")
    kind = init.add_mutually_exclusive_group()
    kind.add_argument(
        "--agentic",
        action="store_true",
        help="tools that act on an app, multi-turn, judged by the app's final state",
    )
    kind.add_argument(
        "--mcp",
        action="store_true",
        help="two versions of an MCP server (tools from a real server), judged by the state "
        "it leaves (needs tooltrial[mcp])",
    )
    init.set_defaults(handler=command)


def command(args: argparse.Namespace) -> int:
    kind = "mcp" if args.mcp else "agentic" if args.agentic else "single_turn"
    folder: Path = args.folder
    _check_empty(folder)
    with as_file(files("tooltrial") / "templates" / kind) as template:
        shutil.copytree(template, folder, dirs_exist_ok=True, ignore=_not_shipped)
    written = sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
    console.print(f"wrote {len(written)} files to {escape(str(folder))}/:", soft_wrap=True)
    for path in written:
        console.print(f"  {escape(str(path))}", soft_wrap=True)
    console.print(
        f"next: tooltrial check {escape(str(folder))} && tooltrial run {escape(str(folder))}",
        soft_wrap=True,
    )
    return 0


def _check_empty(folder: Path) -> None:
    if folder.is_file() or folder.is_symlink():
        raise UsageError(f"{folder}: is a file; name a new folder for the experiment")
    if folder.is_dir() and any(folder.iterdir()):
        raise UsageError(
            f"{folder}: already holds files; name a new (or empty) folder, nothing is overwritten"
        )


def _not_shipped(directory: str, names: list[str]) -> list[str]:
    return [n for n in names if n == "__pycache__" or n.endswith(".pyc")]
