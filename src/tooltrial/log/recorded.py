"""The experiment as its results recorded it: rebuilt from the metadata lines alone.

From format 4 every file's metadata holds what the run was defined as (its kind, primary
metric, the variant exactly as the model saw it, the scenarios it planned), so a results
folder is scored and reported without its definition files, even if they changed or were
deleted since. Files from before format 4 record none of it: ``recorded_experiment``
then returns None and the reader falls back on the definition the files name.

Guarantees: the rebuilt experiment has each variant and scenario once, in the order the
run planned them; a variant recorded with different definitions in different files (two
runs of a changed variant in one folder) is rebuilt from the newest file, and
``changed_variants`` names it so the report can say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from tooltrial.definitions import Experiment, Scenario, Variant
from tooltrial.definitions.agentic import Limits
from tooltrial.log.records import Metadata, VariantDefinition

T = TypeVar("T")


def recorded_experiment(heads: Sequence[Metadata]) -> Experiment | None:
    """The experiment the metadata lines ``heads`` record, or None if any predates it."""
    if not heads or any(h.variant_definition is None or h.scenarios is None for h in heads):
        return None
    newest = sorted(heads, key=lambda h: h.created_at)
    first = newest[-1]
    variants: dict[str, VariantDefinition] = {}
    scenarios: dict[str, Scenario] = {}
    for head in newest:  # later files win
        assert head.variant_definition is not None and head.scenarios is not None
        variants[head.variant] = head.variant_definition
        scenarios.update((s.id, s) for s in head.scenarios)
    settings = first.settings
    planned = settings.get("plan") or {}
    return Experiment(
        name=first.experiment,
        scenarios=tuple(_in_order(scenarios, planned.get("scenario_ids"))),
        variants=tuple(_variant(d) for d in _in_order(variants, planned.get("variants"))),
        fixed_timestamp=datetime.fromisoformat(first.fixed_timestamp),
        temperature=first.temperature,
        zero_persona=first.zero_persona,
        max_tokens=settings.get("max_tokens", 512),
        primary_metric=first.primary_metric or "exact",
        app=settings.get("app"),
        limits=Limits.model_validate(settings.get("limits") or {}),
        source=settings.get("experiment_source"),
    )


def changed_variants(heads: Sequence[Metadata]) -> dict[str, list[str]]:
    """Variant → its distinct recorded hashes, for variants recorded with several."""
    hashes: dict[str, list[str]] = {}
    for head in sorted(heads, key=lambda h: h.created_at):
        seen = hashes.setdefault(head.variant, [])
        if head.variant_hash not in seen:
            seen.append(head.variant_hash)
    return {name: found for name, found in hashes.items() if len(found) > 1}


def _in_order(items: dict[str, T], planned: Sequence[str] | None) -> list[T]:
    """The items in the run's planned order, then any the plan does not name."""
    order = [name for name in planned or () if name in items]
    return [items[name] for name in [*order, *(n for n in items if n not in order)]]


def _variant(definition: VariantDefinition) -> Variant:
    return Variant(
        name=definition.name,
        description=definition.description,
        system_prompt=definition.system_prompt,
        tools=tuple(definition.tools),
    )
