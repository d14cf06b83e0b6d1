"""Tracing of model calls to LangSmith and OpenTelemetry, off the model call's path.

``from_env(...)`` builds what the environment asks for: a ``LangSmithTracer`` when
``LANGSMITH_API_KEY`` is set (and ``LANGSMITH_TRACING`` is not ``false``), an
``OTelTracer`` when ``--otel-endpoint`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is given, both
behind a ``FanOutTracer``, or the runner's do-nothing ``Tracer``.

Every cell becomes one trace carrying model, variant, run id, rep, scenario id, model,
temperature and git commit: a single call is one LangSmith ``llm`` run / one ``chat``
span; a conversation (agentic experiments) is a LangSmith ``chain`` run with an ``llm``
child per model turn and a ``tool`` child per tool call, and an OpenTelemetry
``invoke_agent`` span with ``chat`` and ``execute_tool`` children (see
``tracing.langsmith`` and ``tracing.otel``). Finished traces go into a bounded queue
that a background thread (LangSmith) or a batch span processor (OpenTelemetry) sends; a
full queue drops the trace rather than wait. When the service is away or answers
errors, the first failed batch stops further sends and ``close()`` gives one warning
saying how many traces were not sent; what the tracing libraries log meanwhile is held
back and counted in it.
"""

from tooltrial.tracing.base import FanOutTracer, Span, Tracer
from tooltrial.tracing.context import TraceContext, TracingWarning, Warn, warn_on_stderr
from tooltrial.tracing.langsmith import (
    LangSmithTracer,
    langsmith_enabled,
    langsmith_endpoint,
    langsmith_ready,
    probe_langsmith,
)
from tooltrial.tracing.setup import from_env, project_name

__all__ = [
    "FanOutTracer",
    "LangSmithTracer",
    "Span",
    "TraceContext",
    "Tracer",
    "TracingWarning",
    "Warn",
    "from_env",
    "langsmith_enabled",
    "langsmith_endpoint",
    "langsmith_ready",
    "probe_langsmith",
    "project_name",
    "warn_on_stderr",
]
