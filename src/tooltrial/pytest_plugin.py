"""pytest front end: fixtures over the same engine and files as ``tooltrial run``.

Provides ``writer_pool`` (session), ``rep_number`` (from pytest-repeat), ``tooltrial_model``
and ``tooltrial_caller``, plus a terminal summary of the experiment. A suite supplies its
experiment by overriding the ``tooltrial_experiment`` fixture (see tests/experiment).

Under pytest-xdist the controller picks the run id and file timestamp once and hands them
to every worker, so all workers append to the same per-(variant, rep) files.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tooltrial import tracing
from tooltrial.definitions import Experiment
from tooltrial.errors import ModelSettingRejected
from tooltrial.log.writer import WriterPool, file_timestamp
from tooltrial.models import Model, get_model
from tooltrial.run.plan import git_commit, metadata_for, new_run_id
from tooltrial.run.runner import Runner
from tooltrial.types import Cell, Outcome

_IDENTITY_KEYS = ("tooltrial_run_id", "tooltrial_timestamp")
_identity = pytest.StashKey[dict[str, str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tooltrial")
    group.addoption("--tooltrial-model", default=None, help="model spec, e.g. local:smollm2")
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


def pytest_configure(config: pytest.Config) -> None:
    worker_input = getattr(config, "workerinput", None)
    if worker_input is not None:  # an xdist worker: take the controller's identity
        config.stash[_identity] = {k: worker_input[k] for k in _IDENTITY_KEYS}
    else:
        run_id = config.getoption("tooltrial_run_id") or os.environ.get("TOOLTRIAL_RUN_ID")
        config.stash[_identity] = {
            "tooltrial_run_id": run_id or new_run_id(),
            "tooltrial_timestamp": file_timestamp(),
        }


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
def tooltrial_model(
    request: pytest.FixtureRequest,
    tooltrial_experiment: Experiment,
    tooltrial_loop: asyncio.AbstractEventLoop,
) -> Model:
    """The model under test, checked once before the first scenario runs."""
    model = get_model(
        request.config.getoption("tooltrial_model"),
        temperature=tooltrial_experiment.temperature,
        max_tokens=tooltrial_experiment.max_tokens,
    )
    try:
        tooltrial_loop.run_until_complete(model.preflight())
    except ModelSettingRejected as exc:
        pytest.exit(str(exc), returncode=3)
    return model


@pytest.fixture(scope="session")
def writer_pool(
    request: pytest.FixtureRequest, tooltrial_experiment: Experiment, tooltrial_model: Model
) -> Iterator[WriterPool]:
    identity = request.config.stash[_identity]
    runs = getattr(request.config.option, "count", None) or 1
    pool = WriterPool(
        run_id=identity["tooltrial_run_id"],
        git_commit=git_commit(request.config.rootpath),
        metadata=metadata_for(tooltrial_experiment, tooltrial_model, runs, front_end="pytest"),
        directory=Path(request.config.getoption("tooltrial_results")),
        timestamp=identity["tooltrial_timestamp"],
    )
    yield pool
    pool.close_all()


@pytest.fixture
def rep_number(request: pytest.FixtureRequest) -> int:
    """1-based repetition from pytest-repeat's ``--count``; 1 when not repeating."""
    callspec = getattr(request.node, "callspec", None)
    step = callspec.params.get("__pytest_repeat_step_number", 0) if callspec else 0
    return int(step) + 1


class Caller:
    """Runs one cell through the shared engine (retries included) on the session loop."""

    def __init__(self, runner: Runner, loop: asyncio.AbstractEventLoop) -> None:
        self.runner, self.loop = runner, loop

    def __call__(self, variant: str, scenario_id: str, rep: int) -> Outcome:
        return self.loop.run_until_complete(self.runner.call(Cell(variant, scenario_id, rep)))


@pytest.fixture(scope="session")
def tooltrial_caller(
    request: pytest.FixtureRequest,
    tooltrial_experiment: Experiment,
    tooltrial_model: Model,
    tooltrial_loop: asyncio.AbstractEventLoop,
) -> Iterator[Caller]:
    tracer = tracing.from_env(
        tooltrial_experiment,
        tooltrial_model,
        request.config.stash[_identity]["tooltrial_run_id"],
        git_commit(request.config.rootpath),
        otel_endpoint=request.config.getoption("tooltrial_otel_endpoint"),
        langsmith_experiment=request.config.getoption("tooltrial_langsmith_experiment"),
        warn=lambda message: warnings.warn(tracing.TracingWarning(message), stacklevel=1),
    )
    try:
        with _langsmith_names(tracer, tooltrial_experiment):
            runner = Runner(tooltrial_experiment, tooltrial_model, tracer=tracer)
            yield Caller(runner, tooltrial_loop)
    finally:
        tracer.close()


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
    write(f"check them: tooltrial validate {config.getoption('tooltrial_results')}")
