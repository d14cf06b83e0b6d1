"""The payload's JSON Schema, generated from ``document.ReportPayload`` and published in
the package as ``report.schema.json`` (beside this module) for readers of
``tooltrial report --format json``.

Regenerate it after changing ``document``::

    python -m tooltrial.report.schema > src/tooltrial/report/report.schema.json

Guarantee: the published file is exactly :func:`schema_text` (a test compares them), and
every payload the report writes validates against it (tests validate real outputs).
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from typing import Any

from tooltrial.report.document import ReportPayload

DIALECT = "https://json-schema.org/draft/2020-12/schema"
FILE_NAME = "report.schema.json"


def schema() -> dict[str, Any]:
    """The JSON Schema of the payload as written (serialization mode: every field is
    required, since every field is always written)."""
    return {"$schema": DIALECT, **ReportPayload.model_json_schema(mode="serialization")}


def schema_text() -> str:
    """:func:`schema` as the published file holds it."""
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


def published() -> str:
    """The schema file shipped in the package."""
    return (resources.files("tooltrial.report") / FILE_NAME).read_text(encoding="utf-8")


if __name__ == "__main__":
    sys.stdout.write(schema_text())
