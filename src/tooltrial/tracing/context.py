"""What every tracer shares: the run's context, the one-warning rule, held-back logs."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tooltrial.definitions import Experiment, Tool
from tooltrial.log.records import VariantDefinition
from tooltrial.models.base import Model
from tooltrial.types import Cell

Warn = Callable[[str], None]


class TracingWarning(UserWarning):
    """Traces were not (all) sent; the run's results are complete all the same."""


def warn_on_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _reason(exc: BaseException) -> str:
    """A failure in words that carry no URL query, header or key."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status:
        return f"it answered HTTP {status}"
    name = type(exc).__name__
    if "Connection" in name or isinstance(exc, ConnectionError):
        return "it could not be reached"
    if "Timeout" in name or isinstance(exc, TimeoutError):
        return "it did not answer in time"
    text = str(exc)
    for status in (500, 502, 503, 504, 429, 401, 403, 404):
        if f"({status})" in text or f"code: {status}" in text or f"[{status}]" in text:
            return f"it answered HTTP {status}"
    return f"sending failed ({name})"


@dataclass(frozen=True)
class TraceContext:
    """What every trace of one run carries besides its cell; ``models`` are the run's
    models, and each trace names its cell's (``cell.model``). ``definitions``: each
    variant as resolved for the run (its tools, and where they came from: an MCP
    server's name and version), when the run resolved them; else the declared tools."""

    experiment: Experiment
    models: tuple[Model, ...]
    run_id: str
    git_commit: str | None
    variants: tuple[str, ...]
    definitions: Mapping[str, VariantDefinition] = field(default_factory=dict)

    def model_for(self, cell: Cell) -> Model:
        return next(m for m in self.models if m.spec == cell.model)

    def metadata(self, cell: Cell) -> dict[str, Any]:
        return {
            "variant": cell.variant,
            "run_id": self.run_id,
            "rep": cell.rep,
            "scenario_id": cell.scenario_id,
            "model": cell.model,
            "temperature": self.model_for(cell).temperature,
            "git_commit": self.git_commit,
            "experiment": self.experiment.name,
        }

    def tags(self, cell: Cell) -> list[str]:
        return [
            "tooltrial",
            f"model:{cell.model}",
            f"variant:{cell.variant}",
            f"rep:{cell.rep}",
            f"run:{self.run_id}",
            f"scenario:{cell.scenario_id}",
        ]

    def run_name(self, cell: Cell) -> str:
        """A call's name; it names the model only when the run has several."""
        name = f"{cell.variant}/{cell.scenario_id} rep {cell.rep}"
        return f"{cell.model} {name}" if len(self.models) > 1 else name

    def default_name(self) -> str:
        models = " + ".join(m.spec for m in self.models)
        return f"tooltrial {models} {' vs '.join(self.variants)} {self.run_id}"

    def tools(self, cell: Cell) -> list[dict[str, Any]]:
        """The cell's tools as the model's provider was sent them."""
        model = self.model_for(cell)
        return [model.tool_format(t) for t in self.resolved_tools(cell.variant)]

    def resolved_tools(self, variant: str) -> Sequence[Tool]:
        definition = self.definitions.get(variant)
        return definition.tools if definition else self.experiment.variant(variant).tools

    def tool_origin(self, variant: str, tool: str) -> dict[str, str]:
        """Where a variant's tool runs, for a tool call's trace: the source's kind and,
        for an MCP server, its name and version, the protocol, and the server's own name
        for a tool the variant renamed. Empty when the run did not resolve its tools."""
        definition = self.definitions.get(variant)
        if definition is None:
            return {}
        source = definition.tool_source
        origin = {"source": str(source.get("kind", ""))}
        if source.get("kind") == "mcp":
            server = source.get("server") or {}
            origin["server"] = f"{server.get('name', '?')} {server.get('version', '')}".strip()
            origin["protocol_version"] = str(source.get("protocol_version", ""))
            origin["server_tool"] = str((source.get("calls") or {}).get(tool, tool))
        return origin


class _HeldLogs(logging.Handler):
    """Takes the records of a library's loggers while a tracer runs, so a dead service
    gives one warning of ours rather than a log line (or stack trace) per batch."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _original_propagate: ClassVar[dict[str, bool]] = {}  # while any tracer holds it

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self._names = list(names)
        with self._lock:
            for name in self._names:
                logger = logging.getLogger(name)
                self._original_propagate.setdefault(name, logger.propagate)
                logger.addHandler(self)
                logger.propagate = False

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1

    def restore(self) -> None:
        with self._lock:
            for name in self._names:
                logger = logging.getLogger(name)
                logger.removeHandler(self)
                if not any(isinstance(h, _HeldLogs) for h in logger.handlers):
                    logger.propagate = self._original_propagate.pop(name, True)
            self._names = []


def _not_sent_warning(
    service: str, where: str, unsent: int, total: int, reason: str, held: int
) -> str:
    logs = f"; {held} log message(s) of its client were held back" if held else ""
    return (
        f"{service}: {unsent} of {total} traces were not sent to {where} ({reason}{logs}). "
        "The results are complete in the JSONL files."
    )
