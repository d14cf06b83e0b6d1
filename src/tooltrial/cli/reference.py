"""The command-line reference, written from the parser itself, so it cannot drift:
``python -m tooltrial.cli.reference > docs/cli.md`` (a test checks the committed page
is what this prints)."""

from __future__ import annotations

import argparse
import sys

from tooltrial.cli.main import parser


def reference() -> str:
    top = parser()
    lines = [
        "# Command line",
        "",
        "<!-- written by `python -m tooltrial.cli.reference > docs/cli.md`; do not edit -->",
        "",
        f"`tooltrial COMMAND ...`: {top.description}",
        "",
        "Exit codes: 0 done; 1 the run or the files are incomplete; 2 bad input "
        "(definitions, arguments, files, environment, a missing extra); 3 the model refused "
        "a setting; 4 a bug in tooltrial (with its traceback); 130 interrupted (Ctrl-C); "
        "143 stopped by SIGTERM.",
        "",
    ]
    for name, command in _commands(top).items():
        lines += _command(name, command)
    return "\n".join(lines).rstrip() + "\n"


def _commands(top: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _command(name: str, command: argparse.ArgumentParser) -> list[str]:
    usage = " ".join(command.format_usage().split())
    out = [f"## `tooltrial {name}`", "", command.description or "", "", "```", usage, "```", ""]
    for group in command._action_groups:
        actions = [a for a in group._group_actions if not isinstance(a, argparse._HelpAction)]
        if not actions:
            continue
        title = group.title or ""
        out += [f"**{title[0].upper() + title[1:]}**", "", "| argument | meaning |", "|---|---|"]
        out += [f"| `{_spelling(a)}` | {_meaning(a)} |" for a in actions]
        out.append("")
    return out


def _spelling(action: argparse.Action) -> str:
    if not action.option_strings:
        return action.metavar if isinstance(action.metavar, str) else action.dest
    spelled = ", ".join(action.option_strings)
    if action.nargs == 0:
        return spelled
    return f"{spelled} {action.metavar or action.dest.upper()}"


def _meaning(action: argparse.Action) -> str:
    text = (action.help or "").replace("|", "\\|")
    if action.choices:
        text += f" (one of: {', '.join(map(str, action.choices))})"
    return text


if __name__ == "__main__":
    sys.stdout.write(reference())
