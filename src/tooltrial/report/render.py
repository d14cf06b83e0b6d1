"""Writing a report: ``write_report`` (an analysis as HTML, Markdown or JSON) and
``make_report`` (the ``tooltrial report`` command: analyse, export, render)."""

from __future__ import annotations

import sys
from pathlib import Path

from tooltrial.analysis import Analysis, analyze, export_table
from tooltrial.analysis.prices import PriceTable, load_prices
from tooltrial.errors import UsageError
from tooltrial.files import replace_whole
from tooltrial.report.build import payload
from tooltrial.report.costs import cost_section
from tooltrial.report.formats import FORMATS, default_output
from tooltrial.report.html import render_html
from tooltrial.report.markdown import render_markdown


def write_report(
    analysis: Analysis,
    output: str | Path | None,
    fmt: str = "html",
    prices: PriceTable | None = None,
) -> str:
    """Render ``analysis`` as ``fmt``; write it to ``output`` (if given) and return it.
    ``prices``: a price table, for the cost section (without: tokens only)."""
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    data = payload(analysis)
    if prices is not None:
        data = data.model_copy(update={"cost": cost_section(analysis, prices)})
    if fmt == "json":
        text = data.to_json() + "\n"
    elif fmt == "md":
        text = render_markdown(data)
    else:
        text = render_html(data, analysis.table)
    if output is not None:
        replace_whole(Path(output), text.encode("utf-8"))  # whole, or as it was
    return text


def make_report(
    results: list[Path],
    output: Path | None,
    fmt: str = "html",
    experiment: str | None = None,
    reference: str | None = None,
    export: Path | None = None,
    reference_model: str | None = None,
    prices: Path | None = None,
) -> int:
    """The ``tooltrial report`` command: analyse, optionally export the table, render."""
    if export is not None and export.suffix not in (".csv", ".parquet"):
        raise UsageError(f"--export {export}: name a .csv or .parquet file")
    table = load_prices(prices) if prices is not None else None  # checked before analysing
    analysis = analyze(results, experiment, reference, reference_model=reference_model)
    if export is not None:
        export_table(analysis.table, export)
        print(f"scored table ({analysis.table.height} rows) → {export}", file=sys.stderr)
    output = output or default_output(fmt)
    text = write_report(analysis, output, fmt, table)
    if output is None:
        sys.stdout.write(text)
    else:
        print(f"{fmt} report → {output}", file=sys.stderr)
    return 0
