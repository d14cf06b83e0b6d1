"""Chat models behind one small interface, named by one string (see ``registry``)."""

from tooltrial.models.base import DEFAULT_MODEL, Model, require_chat
from tooltrial.models.registry import (
    PROVIDERS,
    default_model,
    get_model,
    lineup,
    model_specs_from,
)

__all__ = [
    "DEFAULT_MODEL",
    "PROVIDERS",
    "Model",
    "default_model",
    "get_model",
    "lineup",
    "model_specs_from",
    "require_chat",
]
