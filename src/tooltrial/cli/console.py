"""Where the command line talks: messages on stderr, one warning line per problem."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

console = Console(stderr=True, highlight=False)


def warn(message: str) -> None:
    console.print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True)
