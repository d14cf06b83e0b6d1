"""One run, built in one place: ``open_run`` turns (experiment, models, options) into a
``Run`` that ``tooltrial run``, the pytest plugin and ``run_experiment`` all use.

Guarantees, and how they are kept:

- Everything is checked before anything is created: options (``RunOptions``), places,
  the definition, the models, an agentic experiment's code (``Workbench.bind``) and the
  plan are built and checked first; only then does a new run take its lock (which makes
  the results folder) and open its writer pool. A resume takes the lock *before* it reads
  what the run already holds, then refuses anything that would change what the run
  measures (``run.resume``).
- One writer per run: the run's lock (``run.lock``) is held from before the first file is
  written until the pool is closed, except where another process holds it for this run
  (``RunOptions.lock``: pytest-xdist workers).
- A model is asked a one-token test call before any of its cells (unless every one of its
  cells is answered from the cache), so a refused setting or a dead endpoint stops the run
  before a result line is written.
- What a run records is the same whatever the front end (``run.metadata``).
- Whatever ends the run, its files are closed and its traces flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Callable, Coroutine, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from tooltrial.definitions import Experiment, load_experiment
from tooltrial.errors import UsageError
from tooltrial.log.records import VariantDefinition
from tooltrial.log.writer import WriterPool, file_timestamp
from tooltrial.models import Model, get_model, lineup, model_specs_from, require_chat
from tooltrial.redact import install_log_redaction
from tooltrial.run.lock import RunLock
from tooltrial.run.metadata import (
    run_metadata,
    setup_hashes,
    variant_definitions,
    variant_hash,
)
from tooltrial.run.options import RunOptions
from tooltrial.run.places import check_run_places
from tooltrial.run.plan import Plan, git_commit, new_order, new_run_id, order_cells, plan_cells
from tooltrial.run.resume import (
    PriorRun,
    read_run,
    resumed_options,
    resumed_source,
    run_files,
)
from tooltrial.run.runner import Runner
from tooltrial.run.workbench import Workbench
from tooltrial.tracing import Tracer, from_env, warn_on_stderr
from tooltrial.turns import LiveTurns, Pacer, ResponseCache, RetryPolicy
from tooltrial.turns.batch.options import BatchOptions
from tooltrial.types import Cell, Failure, Order, Outcome

ModelsArg = str | Model | Iterable[str | Model] | None
"""Model specs (``"anthropic:claude-sonnet-4-5"``) or ``Model`` objects; None: the
default (``TOOLTRIAL_MODEL``, else the embedded model)."""

T = TypeVar("T")


class RunObserver(Protocol):
    """What a front end is told while a run goes (the CLI's progress line)."""

    def outcome(self, outcome: Outcome) -> None: ...

    def retry(self, cell: Cell, failure: Failure) -> None: ...

    def display(self) -> AbstractContextManager[Any]:
        """Entered once the preflight passed, left when the last cell ended."""
        ...


@dataclass(frozen=True)
class RunResult:
    """What ``run_experiment`` did: its id, its files and every cell's outcome."""

    run_id: str
    files: tuple[Path, ...]
    outcomes: tuple[Outcome, ...]
    """Every cell's outcome (empty with ``RunOptions.keep_outcomes`` off)."""
    failure: tuple[str, Failure] | None = None
    """(model, failure) when a model failed its preflight; then nothing was called."""
    order: Order = field(default_factory=Order)
    """The order the cells were called in (its seed, when random, is in the metadata too)."""
    errors: int = 0
    """Cells that failed every attempt (error lines)."""


@dataclass
class Run:
    """A run, built and checked (``open_run``); ``execute`` it, or ``call`` its cells."""

    experiment: Experiment
    models: tuple[Model, ...]
    options: RunOptions
    run_id: str
    plan: Plan
    order: Order
    cells: tuple[Cell, ...]
    """The cells to call, in the order to call them (resuming: those left)."""
    definitions: dict[str, VariantDefinition]
    workbench: Workbench | None = None
    prior: PriorRun | None = None
    setup: dict[str, str] = field(default_factory=dict)
    """What shaped the calls or the verdict, part by part (``metadata.setup_hashes``)."""
    pool: WriterPool = field(init=False)
    engine: Runner = field(init=False)
    outcomes: list[Outcome] = field(default_factory=list)
    """Every cell's outcome so far (``RunOptions.keep_outcomes``)."""
    errors: int = 0
    _observer: RunObserver | None = None

    @property
    def turns(self) -> LiveTurns:
        """The live source (in batch mode, the one behind the batches: preflight,
        online retries)."""
        live = getattr(self.engine.turns, "live", self.engine.turns)
        assert isinstance(live, LiveTurns)
        return live

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(sorted(self.pool.paths))

    async def preflight(self, cells: Iterable[Cell] | None = None) -> tuple[str, Failure] | None:
        """The preflight of every model with a cell to call (default: of every model)."""
        if cells is None:
            specs = [m.spec for m in self.models]
        else:
            specs = list(dict.fromkeys(c.model for c in cells if self.engine.needs_model(c)))
        return await self.turns.preflight(specs)

    async def execute(
        self, observer: RunObserver | None = None, cells: Iterable[Cell] | None = None
    ) -> tuple[str, Failure] | None:
        """Preflight, then call every cell (or these of the run's cells) and write its
        line; (model, failure) if a preflight never got through (then no cell was
        called)."""
        self._observer = observer
        chosen = self.cells if cells is None else self._of_this_run(cells)
        failure = await self.preflight(chosen)
        if failure is not None:
            return failure
        display = observer.display() if observer is not None else contextlib.nullcontext()
        with display:
            await self.engine.run(chosen, self.pool)
        return None

    def _of_this_run(self, cells: Iterable[Cell]) -> tuple[Cell, ...]:
        chosen = tuple(cells)
        planned = set(self.cells)
        foreign = [c for c in chosen if c not in planned]
        if foreign:
            raise UsageError(f"cell {foreign[0]} is not one of run {self.run_id}'s cells")
        return chosen

    async def call(self, cell: Cell) -> Outcome:
        """One cell's outcome, not written (the pytest front end's test writes it)."""
        return await self.engine.call(cell)

    def result(self, failure: tuple[str, Failure] | None) -> RunResult:
        outcomes = tuple(self.outcomes)
        return RunResult(self.run_id, self.files, outcomes, failure, self.order, self.errors)

    def _outcome(self, outcome: Outcome) -> None:
        self.errors += outcome.failure is not None
        if self.options.keep_outcomes:
            self.outcomes.append(outcome)
        if self._observer is not None:
            self._observer.outcome(outcome)

    def _retry(self, cell: Cell, failure: Failure) -> None:
        if self._observer is not None:
            self._observer.retry(cell, failure)

    def _batch(self, status: Any) -> None:
        """Batch mode's progress, for an observer that shows it (``batch(status)``)."""
        shown = getattr(self._observer, "batch", None)
        if shown is not None:
            shown(status)


@contextlib.contextmanager
def open_run(
    experiment: Experiment | str | Path | None,
    models: ModelsArg = None,
    options: RunOptions | None = None,
    *,
    tracer: Tracer | None = None,
    warn: Callable[[str], None] | None = None,
) -> Iterator[Run]:
    """Build and check a run, take its lock, open its files and traces; close them all
    when the block ends (see the module docstring for the order of these steps).

    ``tracer``: where traces go (default: what the environment says when
    ``options.trace``, else nowhere). ``warn``: where an auxiliary store's problem is
    told, once each (default: Python's ``warnings``)."""
    install_log_redaction()  # a library caller's logs hold no key value either
    options = options or RunOptions()
    check_run_places(options.results, options.cache)
    if options.resume is None:
        run = prepare_run(experiment, models, options)
        with _closing(run), _lock(options, run.run_id):
            if options.run_id is not None:
                _refuse_a_finished_run_id(options.results, options.run_id)
            with _opened(run, tracer, warn):
                yield run
        return
    if not options.results.is_dir():
        read_run(options.results, options.resume)  # says there is nothing to resume there
    with _lock(options, options.resume):
        prior = read_run(options.results, options.resume)
        resumed = resumed_options(prior, options)
        source = experiment if experiment is not None else resumed_source(prior, None)
        run = prepare_run(source, models or prior.models, resumed, prior)
        with _closing(run), _opened(run, tracer, warn):
            yield run


@contextlib.contextmanager
def _closing(run: Run) -> Iterator[None]:
    """The run's workbench closed (its shared tool servers ended) however the run ends."""
    try:
        yield
    finally:
        if run.workbench is not None:
            run.workbench.close()


def _lock(options: RunOptions, run_id: str) -> AbstractContextManager[Any]:
    if not options.lock:
        return contextlib.nullcontext()
    return RunLock(options.results, run_id, options.front_end)


def _refuse_a_finished_run_id(results: Path, run_id: str) -> None:
    """A new run under the id of an earlier one would mix two runs' results in one."""
    files = run_files(results, run_id)
    if files:
        raise UsageError(
            f"run {run_id} already exists: {len(files)} files in {results}/ hold its "
            "results. A new run under its id would mix two runs' results; to run the cells "
            f"it lacks, `tooltrial run --resume {run_id} --results {results}`; for a new "
            "run, choose another --run-id (or leave it out)"
        )


def prepare_run(
    given: Experiment | str | Path | None,
    models: ModelsArg = None,
    options: RunOptions | None = None,
    prior: PriorRun | None = None,
) -> Run:
    """Every check a run can make before it creates anything (the definition, the models,
    an agentic experiment's code and references, the plan), and the run it plans; not
    opened: ``open_run`` opens it (``tooltrial check`` only shows it)."""
    options = options or RunOptions()
    if given is None:
        raise UsageError("name the experiment to run (a folder or file), or --resume RUN_ID")
    if isinstance(given, Experiment):
        experiment = given
    else:  # only what the run will use is built and checked: a cost proportional to it
        selected = prior.plan.scenario_ids if prior is not None else options.scenarios
        experiment = load_experiment(given, scenarios=selected or None)
    lineup_ = _models(experiment, models, options)
    if options.batch is not None:
        from tooltrial.turns.batch.api import check_batch_models

        check_batch_models(lineup_)
    workbench = None
    if experiment.agentic:
        for model in lineup_:
            require_chat(model)
        workbench = _now(Workbench.bind(experiment))
    try:
        return _planned(experiment, lineup_, options, prior, workbench)
    except BaseException:
        if workbench is not None:
            workbench.close()
        raise


def _planned(
    experiment: Experiment,
    lineup_: tuple[Model, ...],
    options: RunOptions,
    prior: PriorRun | None,
    workbench: Workbench | None,
) -> Run:
    """The run's definitions as resolved, its plan and its cells (see ``prepare_run``)."""
    resolved = (
        {n: (s.definitions, s.identity) for n, s in workbench.sources.items()}
        if workbench is not None
        else {}
    )
    definitions = variant_definitions(experiment, resolved)
    runs = options.runs or 3
    app = workbench.app_identity() if workbench is not None else None
    if prior is not None:
        hashes = {name: variant_hash(d) for name, d in definitions.items()}
        setup = setup_hashes(experiment, prior.plan, app)
        prior.check_same(experiment, lineup_, runs, hashes, setup)
        plan, order, cells = prior.plan, prior.order, prior.remaining()
    else:
        order = new_order(options.order or "random", options.order_seed)
        specs = [m.spec for m in lineup_]
        planned = plan_cells(experiment, specs, runs, options.variants, options.scenarios)
        plan, cells = Plan.of(planned, runs), order_cells(planned, order)
        setup = setup_hashes(experiment, plan, app)
    return Run(
        experiment=experiment,
        models=lineup_,
        options=options,
        run_id=prior.run_id if prior is not None else options.run_id or new_run_id(),
        plan=plan,
        order=order,
        cells=tuple(cells),
        definitions=definitions,
        workbench=workbench,
        prior=prior,
        setup=setup,
    )


def _models(experiment: Experiment, models: ModelsArg, options: RunOptions) -> tuple[Model, ...]:
    """The run's models: ``Model`` objects as given, specs built with the experiment's
    temperature (or the option's) and max_tokens; none named twice."""
    items = [models] if isinstance(models, str | Model) else list(models or ())
    if all(isinstance(item, str) for item in items):
        items = list(model_specs_from(items))  # type: ignore[arg-type]  # all str
    temperature = experiment.temperature
    if options.temperature == "default":
        temperature = None
    elif options.temperature is not None:
        temperature = float(options.temperature)
    settings = {
        "temperature": temperature,
        "max_tokens": experiment.max_tokens,
        "timeout_s": options.retry.timeout_s,
        "base_url": options.base_url,
    }
    built = [m if isinstance(m, Model) else get_model(m, **settings) for m in items]
    return tuple(lineup(built).values())


def _now(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end on a loop of its own, from sync code or from inside a
    running loop (a notebook, an async test): there, in a thread, as a loop cannot be
    nested."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


@contextlib.contextmanager
def _opened(run: Run, tracer: Tracer | None, warn: Callable[[str], None] | None) -> Iterator[None]:
    """The run's writer pool, traces and engine; closed and flushed however it ends."""
    options = run.options
    run.pool = WriterPool(
        run_id=run.run_id,
        git_commit=git_commit(),
        metadata=run_metadata(
            run.experiment,
            run.models,
            run.plan,
            run.order,
            run.definitions,
            front_end=options.front_end,
            cache=options.cache,
            batch=options.batch.record() if options.batch is not None else None,
            setup=run.setup,
        ),
        directory=options.results,
        timestamp=options.timestamp or file_timestamp(),
    )
    tracer = tracer or _tracer(run, warn)
    once = _once(warn)
    live = LiveTurns(
        run.models,
        policy=options.retry,
        pacer=Pacer(rpm=options.rpm, tpm=options.tpm),
        cache=ResponseCache(options.cache) if options.cache is not None else None,
        on_retry=run._retry,
        warn=once,
    )
    turns, concurrency, closing = live, options.concurrency, contextlib.ExitStack()
    if options.batch is not None:  # batch mode: cells wait on their batches together
        turns = closing.enter_context(_batch_turns(run, live, options))
        concurrency = max(concurrency, batch_window(options.batch, len(run.cells)))
    engine = Runner(
        run.experiment,
        {m.spec: m for m in run.models},
        turns=turns,
        workbench=run.workbench,
        tracer=tracer,
        retry=options.retry,
        concurrency=concurrency,
        on_outcome=run._outcome,
        warn=once,
    )
    run.engine = engine
    try:
        yield
    finally:
        closing.close()  # the batch journal
        run.pool.close_all()
        tracer.close()  # flushes queued traces; warns once if some were not sent


def batch_window(batch: BatchOptions, cells: int) -> int:
    """Cells in flight at once in batch mode: every cell, unless ``max_items`` bounds
    the batches; then as many as the batches in flight can hold, so memory (about 10 KB
    per waiting cell) is bounded by the options, not by the size of the run."""
    if batch.max_items is None:
        return cells
    return min(cells, batch.max_items * batch.in_flight)


@contextlib.contextmanager
def _batch_turns(run: Run, live: LiveTurns, options: RunOptions) -> Iterator[Any]:
    """Batch mode's turn source, its journal open (under the run's lock) while the run
    is; imported only in batch mode."""
    from tooltrial.turns.batch.source import BatchTurns

    assert options.batch is not None
    turns = BatchTurns(
        run_id=run.run_id,
        results=options.results,
        models=run.models,
        live=live,
        options=options.batch,
        on_change=run._batch,
    )
    try:
        yield turns
    finally:
        turns.close()


def _once(warn: Callable[[str], None] | None) -> Callable[[str, str], None]:
    """``warn(topic, message)`` that tells each topic once (an auxiliary store that
    fails fails again: one message says it); default: Python's ``warnings``."""
    told: set[str] = set()

    def once(topic: str, message: str) -> None:
        if topic in told:
            return
        told.add(topic)
        if warn is not None:
            warn(message)
        else:
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    return once


def _tracer(run: Run, warn: Callable[[str], None] | None) -> Tracer:
    options = run.options
    if not options.trace:
        return Tracer()
    return from_env(
        run.experiment,
        run.models,
        run.run_id,
        git_commit(),
        variants=options.variants or None,
        otel_endpoint=options.otel_endpoint,
        langsmith_experiment=options.langsmith_experiment,
        warn=warn or warn_on_stderr,
        definitions=run.definitions,
    )


def run_experiment(
    experiment: Experiment | str | Path | None,
    models: ModelsArg = None,
    *,
    runs: int | None = None,
    results: str | Path = "results",
    concurrency: int = 1,
    variants: Iterable[str] | None = None,
    scenarios: Iterable[str] | None = None,
    run_id: str | None = None,
    resume: str | None = None,
    cache: str | Path | None = None,
    rpm: float | None = None,
    tpm: float | None = None,
    retry: RetryPolicy | None = None,
    tracer: Tracer | None = None,
    order: Literal["random", "blocked"] | None = None,
    order_seed: int | None = None,
    batch: BatchOptions | None = None,
) -> RunResult:
    """Run every (model, variant, scenario, rep) cell and write the usual JSONL files.

    ``models`` are specs (``"anthropic:claude-sonnet-4-5"``) or ``Model`` objects; the
    default is ``TOOLTRIAL_MODEL`` or the embedded model. Specs get the experiment's
    temperature and max_tokens. ``runs``: repetitions (default 3). ``resume``: run only
    the cells of that earlier run (in ``results``) that have no result yet, with its own
    settings (``experiment`` may then be None: the one the run records). ``cache``: reuse
    responses stored there for identical calls. ``rpm``/``tpm``: at most this many
    requests/tokens a minute per model. ``retry``: attempts per model turn, backoff and
    each call's timeout. No tracing unless a ``tracer`` is given. The run
    is written under its lock: ``RunInProgress`` if another process is writing it.

    ``order``: ``"random"`` (the default: within each rep, a seeded random order;
    ``order_seed``, or a fresh seed, recorded in the metadata) or ``"blocked"`` (variant
    by variant); resuming, the run's own. ``batch``: run the model turns through the
    providers' batch APIs (``BatchOptions``; anthropic: and openai: models).
    """
    options = RunOptions(
        runs=runs,
        variants=tuple(variants or ()),
        scenarios=tuple(scenarios or ()),
        results=Path(results),
        run_id=run_id,
        resume=resume,
        order=order,
        order_seed=order_seed,
        concurrency=concurrency,
        rpm=rpm,
        tpm=tpm,
        retry=retry or RetryPolicy(),
        cache=Path(cache) if cache is not None else None,
        batch=batch,
    )
    with open_run(experiment, models, options, tracer=tracer) as run:
        failure = _now(run.execute())
        return run.result(failure)
