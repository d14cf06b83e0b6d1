"""HTML building blocks the page's modules share: escaping, and the columns of the
drill-downs (one per model and variant).

Guarantee: :func:`escape` is the one way text reaches the page; it escapes quotes too, so
its output is safe inside an attribute.
"""

from __future__ import annotations

import html

from tooltrial.report.document import ReportPayload

Column = tuple[str | None, str]
"""A column of a drill-down: (model, or None when the report has one; variant)."""


def escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def columns(data: ReportPayload) -> list[Column]:
    """Every (model,) variant with results, the reference model's first."""
    several = data.several_models
    return [
        (section.model if several else None, v.variant)
        for section in data.per_model
        for v in section.variants
    ]


def column_label(column: Column) -> str:
    model, variant = column
    return variant if model is None else f"{model} · {variant}"
