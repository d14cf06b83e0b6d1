"""tooltrial: controlled, repeatable A/B experiments on LLM tool interfaces."""

__version__ = "0.1.0"

from tooltrial.experiment import DefinitionError, Experiment, load_experiment  # noqa: E402
from tooltrial.scenarios import Expectation, ExpectedCall, Scenario  # noqa: E402
from tooltrial.variants import Tool, Variant  # noqa: E402

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
