"""The report: one payload (what ``--format json`` prints), rendered as HTML or Markdown.

Every number on the HTML page and in the Markdown comes from :func:`payload`, so the
three formats cannot disagree. The HTML is one self-contained file: inline CSS, inline
SVG charts, and a few lines of inline JavaScript (filtering); nothing is fetched, so it
opens offline. Modules: ``payload`` (analysis → JSON-able dict), ``markdown``, ``html``
(with ``assets``), ``formatting`` (how a number is shown), and for agentic experiments
``agentic`` (the rows both formats show: costs per success, why conversations failed)
and ``conversations`` (the HTML drill-down: every conversation, variants side by side).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from tooltrial.analysis import Analysis, analyze, export_table
from tooltrial.errors import UsageError
from tooltrial.report.html import render_html
from tooltrial.report.markdown import render_markdown
from tooltrial.report.payload import payload, sections

__all__ = [
    "FORMATS",
    "default_output",
    "make_report",
    "payload",
    "render_html",
    "render_markdown",
    "sections",
    "write_report",
]

FORMATS = ("html", "md", "json")


def write_report(analysis: Analysis, output: str | Path | None, fmt: str = "html") -> str:
    """Render ``analysis`` as ``fmt``; write it to ``output`` (if given) and return it."""
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    data = _finite(payload(analysis))
    if fmt == "json":
        text = json.dumps(data, indent=2) + "\n"
    elif fmt == "md":
        text = render_markdown(data)
    else:
        text = render_html(data, analysis.table)
    if output is not None:
        Path(output).write_text(text, encoding="utf-8")
    return text


def default_output(fmt: str) -> Path | None:
    """Where a report goes when no file is named: HTML to report.html, else stdout."""
    return Path("report.html") if fmt == "html" else None


def _finite(value: Any) -> Any:
    """NaN (an undefined rate) becomes null, so the JSON is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def make_report(
    results: list[Path],
    output: Path | None,
    fmt: str = "html",
    experiment: str | None = None,
    reference: str | None = None,
    export: Path | None = None,
    reference_model: str | None = None,
) -> int:
    """The ``tooltrial report`` command: analyse, optionally export the table, render."""
    if export is not None and export.suffix not in (".csv", ".parquet"):
        raise UsageError(f"--export {export}: name a .csv or .parquet file")
    analysis = analyze(results, experiment, reference, reference_model=reference_model)
    if export is not None:
        export_table(analysis.table, export)
        print(f"scored table ({analysis.table.height} rows) → {export}", file=sys.stderr)
    output = output or default_output(fmt)
    text = write_report(analysis, output, fmt)
    if output is None:
        sys.stdout.write(text)
    else:
        print(f"{fmt} report → {output}", file=sys.stderr)
    return 0
