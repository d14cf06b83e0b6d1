"""What an experiment is: scenarios, variants (their tools declared, or from an MCP server:
``McpServer``) and the controls, loaded and checked."""

from tooltrial.definitions.experiment import Experiment, check_experiment
from tooltrial.definitions.loading import load_experiment
from tooltrial.definitions.scenarios import Expectation, ExpectedCall, Scenario
from tooltrial.definitions.servers import McpServer, ToolOverride
from tooltrial.definitions.variants import Tool, Variant

__all__ = [
    "Expectation",
    "ExpectedCall",
    "Experiment",
    "McpServer",
    "Scenario",
    "Tool",
    "ToolOverride",
    "Variant",
    "check_experiment",
    "load_experiment",
]
