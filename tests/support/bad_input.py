"""The bad-input harness: a row (``Case``) breaks one thing in a copy of an experiment
(``Ctx``: the copy, the results folder, temp) or in the command line, then the real
``tooltrial`` command runs in-process (``invoke``) and the results folder is compared
byte for byte (``snapshot``). Used on the sample experiment and on ``tests/mini_agentic``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tooltrial.cli import main


@dataclass
class Ctx:
    """What a row's setup may touch: the experiment copy, the results folder, temp."""

    exp: Path
    results: Path
    tmp: Path
    monkeypatch: pytest.MonkeyPatch

    def replace(self, name: str, old: str, new: str) -> None:
        path = self.exp / name
        text = path.read_text()
        assert old in text, f"{old!r} not in {name}"
        path.write_text(text.replace(old, new, 1))

    def write(self, name: str, text: str | bytes) -> None:
        path = self.exp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)


Setup = Callable[[Ctx], None]


@dataclass
class Case:
    id: str
    args: list[str]
    """The command; ``{exp}``, ``{results}`` and ``{tmp}`` are filled in. A ``run``
    without ``--results`` gets ``--results {results}``, without ``--model`` gets the test
    server's model, without ``--runs`` gets ``--runs 1``."""
    expect: list[str]
    """Substrings of the message (whitespace collapsed)."""
    setup: Setup | None = None
    code: int = 2
    fresh: bool = False
    """The results folder does not exist beforehand (and must not afterwards)."""
    extra: dict[str, str] = field(default_factory=dict)


def edit(name: str, old: str, new: str) -> Setup:
    return lambda c: c.replace(name, old, new)


def write(name: str, text: str | bytes) -> Setup:
    return lambda c: c.write(name, text)


def run(*flags: str) -> list[str]:
    return ["run", "{exp}", *flags]


def snapshot(folder: Path) -> dict[str, bytes] | None:
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def invoke(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own refusals
        return int(exc.code or 0)
