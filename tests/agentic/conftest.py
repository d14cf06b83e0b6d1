"""The agentic worked experiment's settings: which experiment, which model, which temperature."""

import os
from pathlib import Path

import pytest

from tooltrial import load_experiment
from tooltrial.definitions import Experiment
from tooltrial.models import DEFAULT_MODEL

EXPERIMENT = load_experiment(Path(__file__).parent)
# One setting switches the model: TOOLTRIAL_MODEL=anthropic:claude-sonnet-4-5 (with a key).
EVAL_MODEL = os.environ.get("TOOLTRIAL_MODEL", DEFAULT_MODEL)
EVAL_TEMPERATURE = EXPERIMENT.temperature  # 0.2, from experiment.yaml


@pytest.fixture(scope="session")
def tooltrial_experiment() -> Experiment:
    return EXPERIMENT
