"""Chat models behind one small interface, named by one string (see ``registry``)."""

from tooltrial.models.base import DEFAULT_MODEL, Model, classify
from tooltrial.models.registry import PROVIDERS, get_model, model_specs_from

__all__ = ["DEFAULT_MODEL", "PROVIDERS", "Model", "classify", "get_model", "model_specs_from"]
