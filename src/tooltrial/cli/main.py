"""Command line: ``tooltrial init / check / run / validate / report / tools``.

Exit codes: 0 done; 1 the run or the files are incomplete; 2 bad input (definitions,
arguments, files, environment); 3 the model refused a setting; 4 a bug in tooltrial
(shown with its traceback); 130 interrupted (Ctrl-C); 143 stopped by SIGTERM.

Every error the user can fix is a ``TooltrialError`` (``tooltrial.errors``) and becomes
one message; anything else is a bug and is never dressed up as bad input. Each command
lives in its own module (``run``, ``report``, ``validate``, ``tools``): it adds its parser and turns
the parsed flags into typed settings once.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from rich.markup import escape

from tooltrial.cli import check, init, report, run, tools, validate
from tooltrial.cli.console import console
from tooltrial.errors import TooltrialError
from tooltrial.redact import install_log_redaction
from tooltrial.run.lock import SIGTERM_EXIT, Terminated, sigterm_raises

BUG = 4


def main(argv: list[str] | None = None) -> int:
    install_log_redaction()  # from here on, no log record holds a key's value
    args = parser().parse_args(argv)
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


def parser() -> argparse.ArgumentParser:
    """The whole command line (the reference in the docs is generated from it)."""
    top = argparse.ArgumentParser(
        prog="tooltrial",
        description="Controlled, repeatable A/B experiments on LLM tool interfaces.",
    )
    commands = top.add_subparsers(required=True, metavar="COMMAND")
    init.add_parser(commands)
    check.add_parser(commands)
    run.add_parser(commands)
    validate.add_parser(commands)
    report.add_parser(commands)
    tools.add_parser(commands)
    return top


if __name__ == "__main__":
    sys.exit(main())
