"""An agentic experiment bound to its code: the app class, each variant's tool source,
each scenario's initial state and reference state.

``Workbench.bind`` imports the code and checks everything a run will need, before any
model call, raising one ``DefinitionError`` naming the file and what to fix: the app is
an ``App``; every variant's tools resolve (``tools.ToolSource.prepare``: for Python
tools, every tool has its function; an MCP server starts and lists its tools); every
tool a reference or a forbidden call names is one the variant has (for an MCP variant,
once its server listed them); every scenario's setup builds; every state check names a
table and columns the app has; every reference replays through its variant's tools
without a tool error and passes its own scenario's state checks. Initial states are built
once per scenario and copied per cell (``fresh``), so a cell always starts from the same
rows, whatever ran before it.

``close`` releases what the sources keep beyond a cell (a stateless MCP variant's shared
server); a bind that fails closes what it started before raising.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tooltrial.apps.base import App, State
from tooltrial.apps.judge import judge_state
from tooltrial.definitions import Experiment, Scenario, Tool, Variant
from tooltrial.definitions.experiment import ScenarioFault, check_tool_names
from tooltrial.definitions.loading import import_code, run_user_code, scenario_where
from tooltrial.errors import DefinitionError
from tooltrial.tools import PythonToolSource, ToolSource, ToolSourceFailed, ToolTimeout
from tooltrial.types import ToolCall


def tool_source(variant: Variant, experiment: Experiment) -> ToolSource:
    """Where the variant's tools come from: an MCP server (``mcp:``), else Python
    functions (``implementation:``)."""
    timeout = experiment.limits.tool_timeout_s
    if variant.mcp is not None:
        from tooltrial.tools.mcp import McpToolSource  # the SDK is imported on first use

        where = experiment.source or "<python>"
        return McpToolSource(variant, timeout, experiment.fixed_timestamp, where)
    return PythonToolSource(variant, timeout)


async def prepared_sources(experiment: Experiment, app_class: type[App]) -> dict[str, ToolSource]:
    """Every variant's tool source, prepared (its definitions resolved) on a seeded copy
    of the app; sources are prepared one after another, so two servers never start at
    once. On failure, the sources made so far are closed."""
    sources: dict[str, ToolSource] = {}
    app = run_user_code(experiment.app or "", app_class, experiment.fixed_timestamp)
    try:
        for variant in experiment.variants:
            sources[variant.name] = tool_source(variant, experiment)
            await sources[variant.name].prepare(app)
    except BaseException:
        for source in sources.values():
            source.close()
        raise
    finally:
        app.close()
    return sources


async def resolved_tools(
    experiment: Experiment,
) -> dict[str, tuple[tuple[Tool, ...], dict[str, Any]]]:
    """Each variant's tools as the model will be sent them, with their source's identity,
    and nothing else of a run (no scenario is prepared, no reference replayed): an MCP
    server is started once to list its tools. A single-turn experiment's variants declare
    theirs."""
    if experiment.app is None:
        return {v.name: (v.tools, {"kind": "declared"}) for v in experiment.variants}
    sources = await prepared_sources(experiment, _app_class(experiment.app))
    try:
        return {name: (s.definitions, s.identity) for name, s in sources.items()}
    finally:
        for source in sources.values():
            source.close()


@dataclass
class Workbench:
    experiment: Experiment
    app_class: type[App]
    sources: Mapping[str, ToolSource]
    """Variant name -> where its tools come from."""
    _initial: dict[str, App] = field(default_factory=dict, repr=False)
    _states: dict[str, State] = field(default_factory=dict, repr=False)
    _references: dict[str, State | None] = field(default_factory=dict, repr=False)

    @classmethod
    async def bind(cls, experiment: Experiment) -> Workbench:
        """Import and check an agentic experiment's code (see the module docstring)."""
        if experiment.app is None:
            raise DefinitionError(f"experiment {experiment.name!r} names no app")
        app_class = _app_class(experiment.app)
        bench = cls(experiment, app_class, await prepared_sources(experiment, app_class))
        try:
            bench._check_tool_names()
            for scenario in experiment.scenarios:
                await bench._prepare(scenario)
        except BaseException:
            bench.close()
            raise
        return bench

    def close(self) -> None:
        """Release what the tool sources keep beyond a cell."""
        for source in self.sources.values():
            source.close()

    def _check_tool_names(self) -> None:
        """The tools references and forbidden calls name, against the tools each MCP
        variant's server listed (declared tools were checked at load)."""
        for variant in self.experiment.variants:
            if variant.mcp is None:
                continue
            names = frozenset(t.name for t in self.sources[variant.name].definitions)
            for scenario in self.experiment.scenarios:
                where = _plain_where(self.experiment, scenario)
                fix = "; use a name the server lists (or one the variant renames it to)"
                try:
                    check_tool_names(scenario, variant.name, names, where, fix)
                except DefinitionError as exc:
                    raise _placed(exc, where, self.experiment, scenario) from None

    def app_identity(self) -> dict[str, Any]:
        """The app as a run starts from it: its schema (a ``SQLiteApp``'s SQL) and its
        seeded state before any scenario's setup (what a resume must find unchanged)."""
        app = run_user_code(
            self.experiment.app or "", self.app_class, self.experiment.fixed_timestamp
        )
        try:
            return {"schema": getattr(self.app_class, "schema", None), "seeded": app.snapshot()}
        finally:
            app.close()

    def fresh(self, scenario_id: str) -> App:
        """A copy of the scenario's initial state for one cell."""
        return self._initial[scenario_id].clone()

    def initial_state(self, scenario_id: str) -> State:
        return self._states[scenario_id]

    def reference_state(self, scenario_id: str) -> State | None:
        return self._references[scenario_id]

    async def _prepare(self, scenario: Scenario) -> None:
        """The scenario's initial state and reference state; a fault in its setup, state
        checks or reference names the scenarios file and the scenario's line."""
        where = _plain_where(self.experiment, scenario)
        try:
            await self._prepare_at(scenario, where)
        except DefinitionError as exc:
            raise _placed(exc, where, self.experiment, scenario) from None

    async def _prepare_at(self, scenario: Scenario, where: str) -> None:
        now = self.experiment.fixed_timestamp
        app = run_user_code(self.experiment.app or "", self.app_class, now)
        for table, rows in scenario.setup.items():
            try:
                app.add_rows(table, rows)
            except Exception as exc:
                failed = f"{where}: setup of {table!r} failed: {exc}"
                raise ScenarioFault(failed, "setup", table) from None
        self._initial[scenario.id] = app
        self._states[scenario.id] = run_user_code(self.experiment.app or "", app.snapshot)
        _check_tables(self._states[scenario.id], scenario, where)
        self._references[scenario.id] = await self._replay(scenario, where)

    async def _replay(self, scenario: Scenario, where: str) -> State | None:
        reference = scenario.success.reference if scenario.success else None
        if reference is None:
            return None
        app = self.fresh(scenario.id)
        try:
            async with self.sources[reference.via].bind(app) as tools:
                for index, step in enumerate(reference.calls, start=1):
                    call = ToolCall(id=f"reference-{index}", name=step.tool, arguments=step.args)
                    at = ("success", "reference", "calls", index - 1)
                    try:
                        result = await tools.call(call)
                    except (ToolTimeout, ToolSourceFailed) as exc:
                        failed = f"{where}: reference call #{index}: {exc}"
                        raise ScenarioFault(failed, *at) from None
                    if result.is_error:
                        raise ScenarioFault(
                            f"{where}: reference call #{index} {step.tool!r} failed: "
                            f"{result.content}; fix the reference calls",
                            *at,
                        )
            state: State = run_user_code(self.experiment.app or "", app.snapshot)
        finally:
            app.close()
        self._check_reference(scenario, state, where)
        return state

    def _check_reference(self, scenario: Scenario, reference: State, where: str) -> None:
        """The reference's own final state must pass the scenario's state checks: else
        the criteria contradict each other and no conversation could succeed."""
        criteria = self.experiment.expectations.success(scenario.id)
        failed = [c for c in judge_state(criteria.state, reference) if not c.ok]
        if failed:
            raise ScenarioFault(
                f"{where}: the reference's final state fails its own state checks "
                f"({failed[0].detail}); fix the reference calls or the state checks",
                *("success", "reference"),
            )


def _app_class(reference: str) -> type[App]:
    module, name = import_code(reference)
    found = getattr(module, name, None) if name else None
    if not (inspect.isclass(found) and issubclass(found, App)):
        raise DefinitionError(
            f"app {reference!r}: expected file.py:Class or module:Class naming a subclass of "
            "tooltrial.apps.App (SQLiteApp for a SQLite backend)"
        )
    return found


def _plain_where(experiment: Experiment, scenario: Scenario) -> str:
    return f"{experiment.source or '<python>'}: scenario {scenario.id!r}"


def _placed(
    exc: DefinitionError, where: str, experiment: Experiment, scenario: Scenario
) -> DefinitionError:
    """``exc`` led by the scenario's file and line instead of ``where`` (looked up only
    now, for the message: it reads the files again)."""
    message = str(exc)
    if not message.startswith(where):
        return exc  # the user's own code at fault: it names its file and line already
    loc = exc.loc if isinstance(exc, ScenarioFault) else ()
    place = scenario_where(experiment.source, scenario.id, *loc)
    return DefinitionError(place + message[len(where) :])


def _check_tables(state: State, scenario: Scenario, where: str) -> None:
    success = scenario.success
    for index, check in enumerate(success.state if success else (), start=1):
        rows = state.get(check.table)
        at = ("success", "state", index - 1)
        if rows is None:
            raise ScenarioFault(
                f"{where}: state check #{index} names table {check.table!r}; the app has: "
                f"{', '.join(state)}",
                *at,
            )
        columns = set().union(*(row.keys() for row in rows.values())) if rows else None
        unknown = sorted(set(check.where) | set(check.values))
        if columns is not None:
            unknown = [c for c in unknown if c not in columns]
            if unknown:
                raise ScenarioFault(
                    f"{where}: state check #{index} names column(s) {', '.join(unknown)} "
                    f"that table {check.table!r} does not have",
                    *at,
                )
