"""tooltrial: controlled, repeatable A/B experiments on LLM tool interfaces.

The library in six names::

    import tooltrial

    experiment = tooltrial.load_experiment("tests/experiment")
    run = tooltrial.run_experiment(experiment, ["anthropic:claude-sonnet-4-5"], runs=3)
    results = tooltrial.read_results(["results"])     # latest result per cell
    check = tooltrial.validate("results")            # complete?
    analysis = tooltrial.analyze(["results"])          # scored, compared, with intervals
    tooltrial.write_report(analysis, "report.html")

``analyze`` and ``write_report`` load polars and scipy on first use, not on import, so
a run (and ``import tooltrial``) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tooltrial._version import __version__
from tooltrial.definitions import (
    Expectation,
    ExpectedCall,
    Experiment,
    Scenario,
    Tool,
    Variant,
    load_experiment,
)
from tooltrial.errors import DefinitionError, ResultsError, TooltrialError, UsageError
from tooltrial.log.reader import read_results
from tooltrial.log.validate import validate
from tooltrial.models import Model, get_model
from tooltrial.run.session import RunResult, run_experiment
from tooltrial.types import Cell, ModelResponse, Outcome, ToolCall, Usage

if TYPE_CHECKING:
    from tooltrial.analysis import Analysis, analyze
    from tooltrial.report import write_report

_LAZY = {
    "Analysis": "tooltrial.analysis",
    "analyze": "tooltrial.analysis",
    "write_report": "tooltrial.report",
}

__all__ = [
    "Analysis",
    "Cell",
    "DefinitionError",
    "Expectation",
    "ExpectedCall",
    "Experiment",
    "Model",
    "ModelResponse",
    "Outcome",
    "ResultsError",
    "RunResult",
    "Scenario",
    "Tool",
    "ToolCall",
    "TooltrialError",
    "Usage",
    "UsageError",
    "Variant",
    "__version__",
    "analyze",
    "get_model",
    "load_experiment",
    "read_results",
    "run_experiment",
    "validate",
    "write_report",
]


def __getattr__(name: str) -> Any:
    """The heavy parts of the API, imported on first use (PEP 562)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tooltrial' has no attribute {name!r}")
