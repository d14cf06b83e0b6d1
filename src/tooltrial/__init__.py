"""tooltrial: controlled, repeatable A/B experiments on LLM tool interfaces."""

__version__ = "0.1.0"

from tooltrial.experiment import DefinitionError, Experiment, load_experiment
from tooltrial.scenarios import Expectation, ExpectedCall, Scenario
from tooltrial.variants import Tool, Variant

__all__ = [
    "DefinitionError",
    "Expectation",
    "ExpectedCall",
    "Experiment",
    "Scenario",
    "Tool",
    "Variant",
    "__version__",
    "load_experiment",
]
