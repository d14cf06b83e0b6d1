"""Which tracers a run gets: ``from_env`` builds what the environment and options ask
for (see the package docstring)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

from tooltrial.definitions import Experiment
from tooltrial.extras import found
from tooltrial.log.records import VariantDefinition
from tooltrial.models.base import Model
from tooltrial.tracing.base import FanOutTracer, Tracer
from tooltrial.tracing.context import TraceContext, Warn, warn_on_stderr
from tooltrial.tracing.langsmith import (
    _PROBES,
    LangSmithTracer,
    _langsmith_switched_off,
    langsmith_enabled,
    langsmith_endpoint,
    probe_langsmith,
)


def from_env(
    experiment: Experiment,
    models: Model | Sequence[Model],
    run_id: str,
    git_commit: str | None,
    *,
    variants: Iterable[str] | None = None,
    otel_endpoint: str | None = None,
    langsmith_experiment: str | None = None,
    warn: Warn = warn_on_stderr,
    definitions: Mapping[str, VariantDefinition] | None = None,
) -> Tracer:
    """The tracer the environment and options ask for; close() it at the end of the run.
    ``definitions``: the variants as the run resolved them (tools from an MCP server)."""
    names = tuple(variants or (v.name for v in experiment.variants))
    lineup = (models,) if isinstance(models, Model) else tuple(models)
    context = TraceContext(experiment, lineup, run_id, git_commit, names, definitions or {})
    tracers: list[Tracer] = []
    otel_on = bool(otel_endpoint or _otel_env_endpoint())
    missing = [
        name
        for name, wanted, module in (
            ("LangSmith", langsmith_enabled(), "langsmith"),
            ("OpenTelemetry", otel_on, "opentelemetry.sdk"),
        )
        if wanted and not found(module)
    ]
    if missing:
        warn(
            f"{' and '.join(missing)}: no traces are sent: tooltrial's 'tracing' extra is "
            "not installed (pip install 'tooltrial[tracing]'). The run goes on; the "
            "results are complete in the JSONL files."
        )
        return Tracer()
    if langsmith_enabled():
        reason = probe_langsmith()
        if reason is None:
            info = _PROBES[langsmith_endpoint()][0]
            tracers.append(LangSmithTracer(context, langsmith_experiment, info=info, warn=warn))
        else:
            warn(
                f"LangSmith: traces are not sent to {langsmith_endpoint()} ({reason}). "
                "The run goes on; the results are complete in the JSONL files."
            )
    elif not _langsmith_switched_off() and not otel_on:
        warn(
            "LangSmith: LANGSMITH_API_KEY is not set, so no traces are sent "
            "(set LANGSMITH_TRACING=false to silence this)."
        )
    if otel_on:
        from tooltrial.tracing.otel import OTelTracer

        tracers.append(OTelTracer(context, otel_endpoint, warn=warn))
    if not tracers:
        return Tracer()
    return tracers[0] if len(tracers) == 1 else FanOutTracer(tracers)


def _otel_env_endpoint() -> str | None:
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )


def project_name(tracer: Tracer) -> str | None:
    """The LangSmith project (experiment) a tracer sends to, if any."""
    for candidate in [tracer, *getattr(tracer, "tracers", [])]:
        if isinstance(candidate, LangSmithTracer):
            return candidate.project
    return None
