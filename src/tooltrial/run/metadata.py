"""What every file of a run records in its metadata line, built in one place.

Every front end records the same fields for the same run settings (only ``front_end``,
the run id and the times differ): the experiment's controls, each model's own settings,
the plan, the order, the cache, and — so a results folder reports without its definition
files — the kind, the primary metric, each variant exactly as the model saw it (system
prompt, every tool as resolved, where the tools came from), the scenarios the run planned
and what the tool definitions cost in tokens for each model.

``settings.setup`` holds, part by part, a hash of everything that shaped the calls or the
verdict beyond the variants (which ``variant_hash`` covers) and the models (their own
fields): ``scenarios`` (each planned scenario in full: prompt, setup rows, user turns,
expectations, success criteria), ``settings`` (fixed timestamp, zero persona, max_tokens,
kind, primary metric) and, for an agentic run, ``limits`` and ``app`` (its schema and
seeded state). ``--resume`` recomputes them and refuses a run whose setup changed
(``run.resume``), naming the parts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tooltrial.definitions import Experiment, Tool
from tooltrial.definitions.variants import tool_set_hash
from tooltrial.log.records import ToolFootprint, VariantDefinition
from tooltrial.models.base import ESTIMATED, Model, estimate_tokens
from tooltrial.run.plan import Plan
from tooltrial.types import Order


def tool_footprint(model: Model, tools: Sequence[Tool]) -> ToolFootprint:
    """The tool definitions as ``model``'s API takes them: their characters, and tokens
    counted by the model's own tokenizer (``Model.count_tokens``) or estimated."""
    text = json.dumps([model.tool_format(t) for t in tools], ensure_ascii=False)
    counted = model.count_tokens(text)
    if counted is not None:
        return ToolFootprint(chars=len(text), tokens=counted, counted_by=f"{model.spec} tokenizer")
    return ToolFootprint(chars=len(text), tokens=estimate_tokens(text), counted_by=ESTIMATED)


def variant_definitions(
    experiment: Experiment, resolved: Mapping[str, tuple[tuple[Tool, ...], dict[str, Any]]]
) -> dict[str, VariantDefinition]:
    """Each variant as the model sees it; ``resolved``: its tools and their source's
    identity (absent: the tools the variant declares)."""
    out = {}
    for variant in experiment.variants:
        tools, identity = resolved.get(variant.name, (variant.tools, {"kind": "declared"}))
        out[variant.name] = VariantDefinition(
            name=variant.name,
            description=variant.description,
            system_prompt=variant.system_prompt,
            tools=list(tools),
            tool_source=identity,
        )
    return out


def variant_hash(definition: VariantDefinition) -> str:
    return tool_set_hash(definition.system_prompt, definition.tools, definition.tool_source)


def run_metadata(
    experiment: Experiment,
    models: Sequence[Model],
    plan: Plan,
    order: Order,
    definitions: Mapping[str, VariantDefinition],
    *,
    front_end: str,
    cache: Path | None,
    batch: dict[str, Any] | None = None,
    setup: Mapping[str, str] | None = None,
) -> dict[tuple[str, str], dict[str, Any]]:
    """The metadata fields of each (model spec, variant)'s files (the pool adds variant,
    rep and git commit). ``batch``: batch mode's options, recorded only in batch mode;
    ``setup``: ``setup_hashes`` of the run."""
    planned = set(plan.scenario_ids)
    scenarios = [s for s in experiment.scenarios if s.id in planned]
    run_settings = {
        "experiment_source": experiment.source,
        "max_tokens": experiment.max_tokens,
        **_agentic_settings(experiment),
        "front_end": front_end,
        "plan": plan.record(),
        "cache": str(cache) if cache is not None else None,
        "order": order.record(),
        **({"batch": batch} if batch is not None else {}),  # batch mode's options
        **({"setup": dict(setup)} if setup is not None else {}),
    }
    return {
        (model.spec, name): {
            "experiment": experiment.name,
            "model": model.spec,
            "temperature": model.temperature,
            "fixed_timestamp": experiment.fixed_timestamp.isoformat(),
            "zero_persona": experiment.zero_persona,
            "variant_hash": variant_hash(definition),
            "scenario_ids": list(plan.scenario_ids),
            "runs": plan.runs,
            "settings": {**model.settings(), **run_settings},
            "kind": experiment.kind,
            "primary_metric": experiment.primary_metric,
            "variant_definition": definition,
            "scenarios": scenarios,
            "tool_footprint": tool_footprint(model, definition.tools),
        }
        for model in models
        for name, definition in definitions.items()
    }


def _agentic_settings(experiment: Experiment) -> dict[str, Any]:
    """An agentic run also records its app and its conversation limits."""
    if not experiment.agentic:
        return {}
    return {"app": experiment.app, "limits": experiment.limits.model_dump()}


def setup_hashes(
    experiment: Experiment, plan: Plan, app: Mapping[str, Any] | None
) -> dict[str, str]:
    """Each part of the run's setup (see the module docstring) as ``sha256:…``; ``app``:
    the app's identity (``Workbench.app_identity``), None for a single-turn run."""
    planned = set(plan.scenario_ids)
    parts: dict[str, Any] = {
        "scenarios": [s.model_dump(mode="json") for s in experiment.scenarios if s.id in planned],
        "settings": {
            "fixed_timestamp": experiment.fixed_timestamp.isoformat(),
            "zero_persona": experiment.zero_persona,
            "max_tokens": experiment.max_tokens,
            "kind": experiment.kind,
            "primary_metric": experiment.primary_metric,
        },
    }
    if experiment.agentic:
        parts["limits"] = experiment.limits.model_dump(mode="json")
        parts["app"] = app
    return {name: _hash(value) for name, value in parts.items()}


def _hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
