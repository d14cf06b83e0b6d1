"""The live progress line of ``tooltrial run``: done/total, calls/s, retries, errors, tokens, ETA.

On a terminal it is a rich progress bar; anywhere else (CI logs, pipes) it stays quiet and
only the one-line summary is printed at the end.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tooltrial.types import Cell, Failure, Outcome


class RunProgress:
    """Counts what the runner reports; shows it live when ``console`` is a terminal."""

    def __init__(self, total: int, console: Console, live: bool | None = None) -> None:
        self.total, self.console = total, console
        self.done = self.results = self.errors = self.retries = self.cached = 0
        self.tokens = 0
        self.started = time.monotonic()
        self.live = console.is_terminal if live is None else live
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> RunProgress:
        self.started = time.monotonic()
        if self.live:
            self._bar = Progress(
                TextColumn("[bold]run"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:.1f} calls/s"),
                TextColumn("retries {task.fields[retries]}"),
                TextColumn("errors {task.fields[errors]}"),
                TextColumn("tokens {task.fields[tokens]:,}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task("run", total=self.total, **self._fields())
        return self

    def display(self) -> RunProgress:
        """Shown while the cells run (``RunObserver.display``)."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._refresh()
            self._bar.stop()

    def retry(self, cell: Cell, failure: Failure) -> None:
        self.retries += 1
        self._refresh()

    def outcome(self, outcome: Outcome) -> None:
        self.done += 1
        if outcome.response is None:
            self.errors += 1
        else:
            self.results += 1
            self.cached += outcome.cached
            conversation = outcome.conversation
            usage = conversation.usage if conversation else outcome.response.usage
            self.tokens += usage.input_tokens + usage.output_tokens
        self._refresh()

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def summary(self) -> str:
        elapsed = time.monotonic() - self.started
        cached = f" ({self.cached} from cache)" if self.cached else ""
        return (
            f"{self.done}/{self.total} cells in {elapsed:.1f}s ({self.rate:.1f} calls/s): "
            f"{self.results} results{cached}, {self.errors} errors, {self.retries} retries, "
            f"{self.tokens:,} tokens"
        )

    def _fields(self) -> dict[str, Any]:  # rich takes task fields as **Any
        return {
            "rate": self.rate,
            "retries": self.retries,
            "errors": self.errors,
            "tokens": self.tokens,
        }

    def _refresh(self) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.done, **self._fields())
