"""The report: one typed payload (what ``--format json`` prints), rendered as HTML or
Markdown.

Every number on the HTML page and in the Markdown comes from :func:`payload`, a
:class:`~tooltrial.report.document.ReportPayload`, so the three formats cannot disagree.
The HTML is one self-contained file: inline CSS, inline SVG charts, and a few lines of
inline JavaScript (filtering); nothing is fetched, so it opens offline. Modules:
``document`` (the payload's types), ``build`` (analysis → payload), ``schema`` (its
published JSON Schema, ``report.schema.json``), ``markdown``, ``html`` (with ``charts``,
``markup``, ``assets`` and the single-turn drill-down ``responses``), ``formatting`` (how
a number is shown), and for agentic experiments ``agentic`` (the rows both formats show:
costs per success, why conversations failed) and ``conversations`` (the HTML drill-down:
every conversation, variants side by side).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tooltrial.report.formats import FORMATS, default_output

if TYPE_CHECKING:
    from tooltrial.report.build import payload
    from tooltrial.report.document import ReportPayload
    from tooltrial.report.html import render_html
    from tooltrial.report.markdown import render_markdown
    from tooltrial.report.render import make_report, write_report

_LAZY = {
    "ReportPayload": "tooltrial.report.document",
    "make_report": "tooltrial.report.render",
    "payload": "tooltrial.report.build",
    "render_html": "tooltrial.report.html",
    "render_markdown": "tooltrial.report.markdown",
    "write_report": "tooltrial.report.render",
}

__all__ = [
    "FORMATS",
    "ReportPayload",
    "default_output",
    "make_report",
    "payload",
    "render_html",
    "render_markdown",
    "write_report",
]


def __getattr__(name: str) -> Any:
    """The report's parts, imported on first use (PEP 562): polars and scipy load only
    when a report is made."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tooltrial.report' has no attribute {name!r}")
