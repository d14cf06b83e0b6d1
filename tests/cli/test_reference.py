"""The command-line reference (docs/cli.md) is written from the parser and checked here,
so a flag cannot be added without appearing in it."""

from __future__ import annotations

import re
import subprocess
import sys

from support.paths import ROOT

from tooltrial.cli.reference import reference

PAGE = ROOT / "docs" / "cli.md"


def test_the_reference_page_is_what_the_parser_says():
    assert PAGE.read_text() == reference(), (
        "docs/cli.md is stale: python -m tooltrial.cli.reference > docs/cli.md"
    )


def test_every_flag_of_every_command_is_in_the_reference():
    page = PAGE.read_text()
    top = subprocess.run(
        [sys.executable, "-m", "tooltrial", "--help"], capture_output=True, text=True, check=True
    )
    listed = top.stdout.split("COMMAND\n", 2)[-1]
    commands = re.findall(r"^    ([a-z]+) ", listed, re.M)
    assert len(commands) >= 6, top.stdout
    for command in commands:
        shown = subprocess.run(
            [sys.executable, "-m", "tooltrial", command, "--help"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"## `tooltrial {command}`" in page
        for flag in set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", shown)) - {"--help"}:
            assert f"`{flag}" in page or f", {flag}" in page, f"{command} {flag}"
