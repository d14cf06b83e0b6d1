"""What each variant cost, at the prices of a user's table (``prices``).

The rule, for every model turn: uncached input tokens at the input price, cache reads and
cache writes at theirs (the input price where the table gives none), output tokens at
the output price, all divided by the table's ``per_tokens``; a turn answered in batch
mode (its result, or its conversation turn, names a batch) has the model's
``batch_discount`` taken off. A cell (a conversation, in an agentic experiment) costs
the sum of its turns; the cell that counts is the one every reader uses (the latest
result, ``log.reader``), and error lines cost nothing here (they are not results).

Per variant: the total over its cells, per cell (per conversation), and per success —
the total over *all* its cells divided by its successes on the primary metric (None
without one), as the report's other per-success figures. A study the power table
advises (scenarios × reps for each of the two variants compared) is priced at the two
variants' mean cost per cell, as these results ran (batch or not).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from tooltrial.analysis.analyze import Analysis
from tooltrial.analysis.prices import ModelPrice, PriceTable
from tooltrial.log.reader import CellKey, read_results
from tooltrial.log.records import Result
from tooltrial.types import AssistantTurn, Usage


def turn_cost(usage: Usage, price: ModelPrice, per_tokens: int, batch: bool) -> float:
    read = usage.cache_read_tokens or 0
    written = usage.cache_write_tokens or 0
    uncached = max(0, usage.input_tokens - read - written)
    read_price = price.input if price.cache_read is None else price.cache_read
    write_price = price.input if price.cache_write is None else price.cache_write
    cost = (
        uncached * price.input
        + read * read_price
        + written * write_price
        + usage.output_tokens * price.output
    ) / per_tokens
    return cost * (1 - price.batch_discount) if batch else cost


def turns_of(result: Result) -> list[tuple[Usage, bool]]:
    """Each model turn's usage and whether a batch answered it."""
    if result.conversation is None:
        return [(result.usage, result.batch_id is not None)]
    return [
        (m.response.usage, m.batch is not None)
        for m in result.conversation.messages
        if isinstance(m, AssistantTurn)
    ]


def cell_cost(result: Result, price: ModelPrice, per_tokens: int) -> float:
    return sum(turn_cost(u, price, per_tokens, b) for u, b in turns_of(result))


@dataclass(frozen=True)
class VariantCost:
    model: str
    variant: str
    cells: int
    successes: int
    total: float
    per_cell: float
    per_success: float | None
    batch_share: float
    """Share of its model turns answered in batch mode."""


@dataclass(frozen=True)
class StudyCost:
    model: str
    reference: str
    treatment: str
    difference: float
    reps: int
    scenarios: int
    cells: int
    cost: float


@dataclass(frozen=True)
class Costs:
    currency: str
    per_tokens: int
    variants: list[VariantCost]
    studies: list[StudyCost]
    unpriced: list[str]
    """Models with results but no row in the table (tokens only)."""


def costs(analysis: Analysis, prices: PriceTable) -> Costs:
    """Every (model, variant)'s cost, and the advised studies' (see the module docstring)."""
    results = read_results(analysis.loaded.files)
    wins = _successes(analysis.table, analysis.experiment.primary_metric)
    variants: list[VariantCost] = []
    unpriced: list[str] = []
    for section in analysis.models:
        price = prices.of(section.model)
        if price is None:
            unpriced.append(section.model)
            continue
        for summary in section.variants:
            name = summary.variant
            mine = [r for k, r in results.items() if k[0] == section.model and k[1] == name]
            variants.append(_variant(section.model, name, mine, wins, price, prices.per_tokens))
    by_key = {(v.model, v.variant): v for v in variants}
    studies = list(_studies(analysis, by_key))
    return Costs(prices.currency, prices.per_tokens, variants, studies, unpriced)


def _variant(
    model: str,
    variant: str,
    results: list[Result],
    wins: set[CellKey],
    price: ModelPrice,
    per_tokens: int,
) -> VariantCost:
    total = sum(cell_cost(r, price, per_tokens) for r in results)
    turns = [b for r in results for _, b in turns_of(r)]
    successes = sum(1 for r in results if (r.model, r.variant, r.scenario_id, r.rep) in wins)
    return VariantCost(
        model=model,
        variant=variant,
        cells=len(results),
        successes=successes,
        total=total,
        per_cell=total / len(results) if results else 0.0,
        per_success=total / successes if successes else None,
        batch_share=sum(turns) / len(turns) if turns else 0.0,
    )


def _successes(table: pl.DataFrame, metric: str) -> set[CellKey]:
    if metric not in table.columns:
        return set()
    rows = table.filter(pl.col(metric).cast(pl.Boolean).fill_null(False))
    return {
        (m, v, s, int(r))
        for m, v, s, r in rows.select("model", "variant", "scenario_id", "rep").iter_rows()
    }


def _studies(analysis: Analysis, by_key: dict[tuple[str, str], VariantCost]) -> Iterable[StudyCost]:
    for section in analysis.models:
        reference = by_key.get((section.model, analysis.reference))
        for treatment, advice in section.power.items():
            other = by_key.get((section.model, treatment))
            if reference is None or other is None:
                continue
            per_pair = reference.per_cell + other.per_cell
            for plan in advice.plans:
                # A 1-rep pilot advises a range: cost its larger end, the study that
                # suffices in every reading of the pilot.
                scenarios = plan.scenarios if plan.scenarios is not None else plan.high
                if scenarios is None:
                    continue
                yield StudyCost(
                    model=section.model,
                    reference=analysis.reference,
                    treatment=treatment,
                    difference=plan.difference,
                    reps=plan.reps,
                    scenarios=scenarios,
                    cells=2 * scenarios * plan.reps,
                    cost=scenarios * plan.reps * per_pair,
                )
