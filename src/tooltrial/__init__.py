"""tooltrial: controlled, repeatable A/B experiments on LLM tool interfaces."""

__version__ = "0.2.0"

from tooltrial.definitions import (
    Expectation,
    ExpectedCall,
    Experiment,
    Scenario,
    Tool,
    Variant,
    load_experiment,
)
from tooltrial.errors import DefinitionError, TooltrialError

__all__ = [
    "DefinitionError",
    "Expectation",
    "ExpectedCall",
    "Experiment",
    "Scenario",
    "Tool",
    "TooltrialError",
    "Variant",
    "__version__",
    "load_experiment",
]
