"""The report's formats and where each goes by default; light (no analysis library), so
the command line can offer them without loading one."""

from __future__ import annotations

from pathlib import Path

FORMATS = ("html", "md", "json")


def default_output(fmt: str) -> Path | None:
    """Where a report goes when no file is named: HTML to report.html, else stdout."""
    return Path("report.html") if fmt == "html" else None
