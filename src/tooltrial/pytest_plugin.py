"""pytest front end: fixtures over the same engine and files as ``tooltrial run``.

Provides ``writer_pool`` (session), ``rep_number`` (from pytest-repeat),
``tooltrial_models`` / ``tooltrial_model``, ``tooltrial_model_spec`` and ``tooltrial_caller``,
plus a terminal summary of the experiment. A suite supplies its experiment by overriding
the ``tooltrial_experiment`` fixture (see tests/experiment).

Models: ``--tooltrial-model`` may be given several times (or comma-separated). With one
model nothing is parametrized, so test ids, ``-k`` and collection are as with no option.
With several, every test that takes ``tooltrial_model_spec`` runs once per model, its id
starting with the model's slug (``anthropic-claude-x-baseline-...``).

Order: the items marked ``experiment`` run rep by rep (pytest-repeat's ``--count``), and
within a rep in a seeded random order (``--tooltrial-order random``, the default; seed from
``--tooltrial-order-seed`` or fresh, printed in the header and recorded in the metadata as
``settings.order``); ``--tooltrial-order blocked`` keeps pytest's collection order.

Under pytest-xdist the controller picks the run id, file timestamp and order seed once and
hands them to every worker, so all workers collect the same order and append to the same
per-(model, variant, rep) files.

The run is built by ``tooltrial.run.session.open_run``, as for ``tooltrial run`` (the
``tooltrial_run`` session fixture; ``writer_pool``, ``tooltrial_models`` and
``tooltrial_caller`` are its parts), so it records the same metadata. Its lock
(``tooltrial.run.lock``): a session without xdist takes it when the run is built; under
xdist the controller takes it before starting the workers and holds it until the session
ends, and workers never take it, as they are one run. A session whose run another process
is writing stops with exit code 2.

Batch mode (``--tooltrial-batch``, one process): when the first test takes
``tooltrial_caller``, every collected experiment item's cell is started (read from its
parameters: ``variant_name``/``variant``, ``scenario_id``/``scenario``, the rep and the
model), so their turns go out in shared batches; each test then waits for its own answer
and writes it as usual. Crash-safe resume is ``tooltrial run --resume``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tooltrial import tracing
from tooltrial.definitions import Experiment
from tooltrial.errors import TooltrialError, UsageError
from tooltrial.log.writer import WriterPool, file_timestamp, model_slug
from tooltrial.models import Model, model_specs_from
from tooltrial.run.lock import RunInProgress, RunLock
from tooltrial.run.options import RunOptions
from tooltrial.run.plan import new_order, new_run_id, order_key
from tooltrial.run.session import Run, open_run
from tooltrial.turns.batch.options import BatchOptions
from tooltrial.types import Cell, Order, Outcome

_IDENTITY_KEYS = ("tooltrial_run_id", "tooltrial_timestamp", "tooltrial_order")
_REPEAT_PARAM = "__pytest_repeat_step_number"  # pytest-repeat's parameter (0-based)
_identity = pytest.StashKey[dict[str, str]]()
_lock = pytest.StashKey[RunLock]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tooltrial")
    group.addoption(
        "--tooltrial-model",
        action="append",
        default=None,
        help="model spec, e.g. local:smollm2; repeat (or separate with commas) to run every "
        "test for each model",
    )
    group.addoption("--tooltrial-results", default="results", help="folder for JSONL files")
    group.addoption("--tooltrial-run-id", default=None, help="run id (default: a new one)")
    group.addoption(
        "--tooltrial-langsmith-experiment",
        default=None,
        help="LangSmith experiment (default: LANGSMITH_EXPERIMENT, else model, variants, run id)",
    )
    group.addoption(
        "--tooltrial-otel-endpoint",
        default=None,
        help="also send OpenTelemetry spans to this OTLP/HTTP base URL",
    )
    group.addoption(
        "--tooltrial-order",
        choices=("random", "blocked"),
        default="random",
        help="experiment items: within each rep in a seeded random order (random, default) "
        "or as collected (blocked)",
    )
    group.addoption(
        "--tooltrial-batch",
        action="store_true",
        help="batch mode (anthropic:/openai: models): the session's experiment items are "
        "sent through the providers' batch APIs at its start; each test takes its answer",
    )
    group.addoption("--tooltrial-batch-poll", type=float, default=None, help="seconds (30)")
    group.addoption("--tooltrial-batch-gather", type=float, default=None, help="seconds (2)")
    group.addoption(
        "--tooltrial-order-seed",
        type=int,
        default=None,
        help="seed of the random order (default: a fresh one, shown in the header)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Registered here, so a suite of one's own marks its cells without a warning (and
    # works under --strict-markers) with nothing in its own configuration.
    config.addinivalue_line(
        "markers", "experiment: a cell of a tooltrial experiment (real model calls)"
    )
    if config.getoption("tooltrial_batch") and (
        getattr(config, "workerinput", None) is not None
        or getattr(config.option, "numprocesses", None)
    ):
        raise pytest.UsageError("--tooltrial-batch runs in one process: drop -n (pytest-xdist)")
    worker_input = getattr(config, "workerinput", None)
    if worker_input is not None:  # an xdist worker: take the controller's identity
        config.stash[_identity] = {k: worker_input[k] for k in _IDENTITY_KEYS}
    else:
        run_id = config.getoption("tooltrial_run_id") or os.environ.get("TOOLTRIAL_RUN_ID")
        try:
            order = new_order(
                config.getoption("tooltrial_order"), config.getoption("tooltrial_order_seed")
            )
        except UsageError as exc:
            raise pytest.UsageError(str(exc)) from None
        config.stash[_identity] = {
            "tooltrial_run_id": run_id or new_run_id(),
            "tooltrial_timestamp": file_timestamp(),
            "tooltrial_order": json.dumps(order.record()),
        }


def _order(config: pytest.Config) -> Order:
    return Order.of({"order": json.loads(config.stash[_identity]["tooltrial_order"])})


def pytest_report_header(config: pytest.Config) -> str:
    order = _order(config)
    repeat = f"; --tooltrial-order-seed {order.seed} repeats it" if order.randomised else ""
    return f"tooltrial: experiment order {order.describe()}{repeat}"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Experiment items rep by rep, each rep in the seeded order; other items stay put.

    An item's place comes from a hash of the seed, its rep and its node id, so every xdist
    worker computes the same order and a ``-k`` selection keeps its relative order."""
    order = _order(config)
    if not order.randomised:
        return
    slots = [i for i, item in enumerate(items) if item.get_closest_marker("experiment")]
    ordered = sorted((items[i] for i in slots), key=lambda item: _order_key(item, order))
    for slot, item in zip(slots, ordered, strict=True):
        items[slot] = item


def _order_key(item: pytest.Item, order: Order) -> tuple[int, bytes]:
    callspec = getattr(item, "callspec", None)
    rep = int(callspec.params.get(_REPEAT_PARAM, 0)) + 1 if callspec else 1
    return rep, order_key(order.seed or 0, rep, [item.nodeid])


def _specs(config: pytest.Config) -> list[str]:
    return model_specs_from(config.getoption("tooltrial_model"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Several models: run each test that takes ``tooltrial_model_spec`` for each."""
    specs = _specs(metafunc.config)
    if "tooltrial_model_spec" in metafunc.fixturenames and len(specs) > 1:
        metafunc.parametrize("tooltrial_model_spec", specs, ids=[model_slug(s) for s in specs])


def _is_worker(config: pytest.Config) -> bool:
    return getattr(config, "workerinput", None) is not None


def _take_lock(config: pytest.Config, front_end: str) -> None:
    """Hold the run's lock for the session (once); stop the session if it is taken."""
    if _lock in config.stash:
        return
    results = Path(config.getoption("tooltrial_results"))
    lock = RunLock(results, config.stash[_identity]["tooltrial_run_id"], front_end)
    try:
        lock.acquire()
    except RunInProgress as exc:
        pytest.exit(str(exc), returncode=2)
    config.stash[_lock] = lock


def pytest_sessionstart(session: pytest.Session) -> None:
    """xdist controller: take the run's lock before any worker starts (its workers share it)."""
    config = session.config
    if not _is_worker(config) and config.pluginmanager.has_plugin("dsession"):
        _take_lock(config, "pytest-xdist session")


def pytest_unconfigure(config: pytest.Config) -> None:
    lock = config.stash.get(_lock, None)
    if lock is not None:
        lock.release()
        del config.stash[_lock]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller → worker: one run id and one file timestamp for the session."""
    node.workerinput.update(node.config.stash[_identity])


@pytest.fixture(scope="session")
def tooltrial_experiment() -> Experiment:
    raise pytest.UsageError(
        "tooltrial needs an experiment: override the session fixture "
        "`tooltrial_experiment` in your conftest.py to return load_experiment(...)"
    )


@pytest.fixture(scope="session")
def tooltrial_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One loop for the session: async HTTP clients keep connections bound to it."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def tooltrial_run(
    request: pytest.FixtureRequest,
    tooltrial_experiment: Experiment,
    tooltrial_loop: asyncio.AbstractEventLoop,
) -> Iterator[Run]:
    """The session's run, built by ``open_run`` like every run: its models (each checked
    once before the first scenario runs), its writer pool, its traces and, outside
    pytest-xdist workers, its lock."""
    config = request.config
    identity = config.stash[_identity]
    order = _order(config)
    options = RunOptions(
        runs=getattr(config.option, "count", None) or 1,
        results=Path(config.getoption("tooltrial_results")),
        run_id=identity["tooltrial_run_id"],
        order=order.kind,
        order_seed=order.seed,
        trace=True,
        langsmith_experiment=config.getoption("tooltrial_langsmith_experiment"),
        otel_endpoint=config.getoption("tooltrial_otel_endpoint"),
        lock=not _is_worker(config),
        front_end="pytest",
        timestamp=identity["tooltrial_timestamp"],
        batch=_batch_options(config),
    )
    warn = lambda message: warnings.warn(tracing.TracingWarning(message), stacklevel=1)  # noqa: E731
    try:
        with open_run(tooltrial_experiment, _specs(config), options, warn=warn) as run:
            failure = tooltrial_loop.run_until_complete(run.preflight())
            if failure is not None:
                spec, why = failure
                pytest.exit(
                    f"{spec} did not answer a first test call ({why.kind}): {why.message}",
                    returncode=1,
                )
            yield run
    except TooltrialError as exc:  # a refused setting (3), a bad key or a held lock (2)
        pytest.exit(str(exc), returncode=exc.exit_code)


@pytest.fixture(scope="session")
def tooltrial_models(tooltrial_run: Run) -> tuple[Model, ...]:
    """The models under test, each checked once before the first scenario runs."""
    return tooltrial_run.models


@pytest.fixture(scope="session")
def tooltrial_model(tooltrial_models: tuple[Model, ...]) -> Model:
    """The model under test, when there is one (with several: ``tooltrial_models``)."""
    if len(tooltrial_models) > 1:
        specs = ", ".join(m.spec for m in tooltrial_models)
        raise pytest.UsageError(
            f"several models ({specs}): take `tooltrial_model_spec` (one per test) "
            "or `tooltrial_models` instead of `tooltrial_model`"
        )
    return tooltrial_models[0]


@pytest.fixture
def tooltrial_model_spec(request: pytest.FixtureRequest) -> str:
    """This test's model spec: the only model, or (several) the one this test runs for."""
    return _specs(request.config)[0]


@pytest.fixture(scope="session")
def writer_pool(tooltrial_run: Run) -> WriterPool:
    """The run's files: ``writer_pool.get(variant, rep, model)`` is the writer a test
    writes its outcome with."""
    return tooltrial_run.pool


@pytest.fixture
def rep_number(request: pytest.FixtureRequest) -> int:
    """1-based repetition from pytest-repeat's ``--count``; 1 when not repeating."""
    callspec = getattr(request.node, "callspec", None)
    step = callspec.params.get(_REPEAT_PARAM, 0) if callspec else 0
    return int(step) + 1


# --- batch mode ---------------------------------------------------------------------------


def _batch_options(config: pytest.Config) -> BatchOptions | None:
    """``--tooltrial-batch``: one process only (the batch journal has one writer)."""
    if not config.getoption("tooltrial_batch"):
        return None  # (with pytest-xdist it was refused in pytest_configure)
    given = {
        "poll_s": config.getoption("tooltrial_batch_poll"),
        "gather_s": config.getoption("tooltrial_batch_gather"),
    }
    chosen = {k: v for k, v in given.items() if v is not None}
    if "poll_s" in chosen:
        chosen["poll_max_s"] = max(chosen["poll_s"] * 20, chosen["poll_s"])
    return BatchOptions(**chosen)


_VARIANT_PARAMS = ("variant_name", "variant")
_SCENARIO_PARAMS = ("scenario_id", "scenario")


def _item_cell(item: pytest.Item, specs: list[str]) -> Cell | None:
    """The cell an experiment item calls, read from its parameters (``variant_name`` or
    ``variant``, ``scenario_id`` or ``scenario``, the rep from pytest-repeat, the model
    from ``tooltrial_model_spec``); None when they do not say."""
    callspec = getattr(item, "callspec", None)
    if callspec is None or not item.get_closest_marker("experiment"):
        return None
    params = callspec.params
    variant = next((params[p] for p in _VARIANT_PARAMS if p in params), None)
    scenario = next((params[p] for p in _SCENARIO_PARAMS if p in params), None)
    if not isinstance(variant, str) or not isinstance(scenario, str):
        return None
    model = params.get("tooltrial_model_spec", specs[0])
    return Cell(model, variant, scenario, int(params.get(_REPEAT_PARAM, 0)) + 1)


def _prefetch(
    session: pytest.Session, run: Run, loop: asyncio.AbstractEventLoop
) -> dict[Cell, Any]:
    """Batch mode: every collected experiment item's cell started at once, so their turns
    share batches; each test then waits for its own (the loop runs them all meanwhile)."""
    planned = set(run.cells)
    cells = {c for item in session.items if (c := _item_cell(item, _specs(session.config)))}
    return {c: loop.create_task(run.call(c)) for c in sorted(cells) if c in planned}


class Caller:
    """Runs one cell through the run's engine (retries included) on the session loop;
    ``model`` (a spec) may be left out when the session has one model. In batch mode a
    cell started at the session's start (``prefetched``) is waited for."""

    def __init__(
        self,
        run: Run,
        loop: asyncio.AbstractEventLoop,
        prefetched: dict[Cell, Any] | None = None,
    ) -> None:
        self.run, self.loop = run, loop
        self.prefetched = prefetched or {}

    def __call__(
        self, variant: str, scenario_id: str, rep: int, model: str | None = None
    ) -> Outcome:
        specs = [m.spec for m in self.run.models]
        if model is None and len(specs) > 1:
            raise pytest.UsageError(
                f"several models ({', '.join(specs)}): pass model=tooltrial_model_spec"
            )
        cell = Cell(model or specs[0], variant, scenario_id, rep)
        started = self.prefetched.pop(cell, None)
        if started is not None:
            outcome: Outcome = self.loop.run_until_complete(started)
            return outcome
        return self.loop.run_until_complete(self.run.call(cell))

    def close(self) -> None:
        """Cancel the prefetched cells no test asked for (deselected, or failed early)."""
        left = list(self.prefetched.values())
        for task in left:
            task.cancel()
        if left:
            self.loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))


@pytest.fixture(scope="session")
def tooltrial_caller(
    request: pytest.FixtureRequest,
    tooltrial_run: Run,
    tooltrial_experiment: Experiment,
    tooltrial_loop: asyncio.AbstractEventLoop,
) -> Iterator[Caller]:
    prefetched = None
    if tooltrial_run.options.batch is not None:
        prefetched = _prefetch(request.session, tooltrial_run, tooltrial_loop)
    with _langsmith_names(tooltrial_run.engine.tracer, tooltrial_experiment):
        caller = Caller(tooltrial_run, tooltrial_loop, prefetched)
        try:
            yield caller
        finally:
            caller.close()


@contextlib.contextmanager
def _langsmith_names(tracer: tracing.Tracer, experiment: Experiment) -> Iterator[None]:
    """Names for LangSmith's pytest integration, which reads them when the first marked
    test runs: our experiment name (it adds a suffix) and one dataset per experiment.
    It records only with tracing on, which the key alone does not do for it."""
    project = tracing.project_name(tracer)
    if not project:
        yield
        return
    from langsmith import run_trees

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LANGSMITH_EXPERIMENT", project)
        suite = os.environ.get("LANGSMITH_TEST_SUITE") or f"tooltrial {experiment.name}"
        patch.setenv("LANGSMITH_TEST_SUITE", suite)
        run_trees.configure(enabled=True)
        try:
            yield
        finally:
            run_trees.configure(enabled=None)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    stats = terminalreporter.stats
    reports = [r for key in ("passed", "failed", "rerun", "error") for r in stats.get(key, [])]
    if not any("experiment" in getattr(r, "keywords", {}) for r in reports):
        return

    def count(key: str) -> int:
        return sum(1 for r in stats.get(key, []) if getattr(r, "when", "call") == "call")

    write = terminalreporter.write_line
    terminalreporter.section("tooltrial experiment")
    write(
        f"collected {terminalreporter._numcollected}  passed {count('passed')}  "
        f"failed {count('failed')}  rerun {len(stats.get('rerun', []))}  "
        f"errors {len(stats.get('error', []))}"
    )
    config = terminalreporter.config
    identity = config.stash[_identity]
    write(f"run id {identity['tooltrial_run_id']}  files *_{identity['tooltrial_timestamp']}.jsonl")
    write(f"order {_order(config).describe()}")
    write(f"check them: tooltrial validate {config.getoption('tooltrial_results')}")
