"""A run's settings, typed once: what ``tooltrial run``'s flags, ``run_experiment``'s
arguments and the pytest plugin's options all become before a run is built.

``RunOptions`` is frozen and checked when made (every number against the one table of
ranges, ``definitions.limits``), so a front end turns its input into options once and no
later step rewrites them; a resumed run's own settings make new options
(``run.resume.resumed_options``), never edits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tooltrial.definitions.limits import check_flags, flag_temperature
from tooltrial.errors import ResumeError, UsageError
from tooltrial.files import run_id_problem
from tooltrial.turns import RetryPolicy
from tooltrial.turns.batch.options import BatchOptions

TemperatureOption = float | Literal["default"] | None
"""None: the experiment's; ``"default"``: send none (the provider's default); a number."""


@dataclass(frozen=True)
class RunOptions:
    """Everything that shapes a run besides its experiment and models."""

    runs: int | None = None
    """Repetitions of every cell; None: 3 (resuming: the run's own)."""
    variants: tuple[str, ...] = ()
    """Only these variants (none: all)."""
    scenarios: tuple[str, ...] = ()
    """Only these scenario ids (none: all)."""
    results: Path = Path("results")
    run_id: str | None = None
    """A new run's id (None: a fresh one); it names files, so it must be a plain name
    (``files.run_id_problem``)."""
    resume: str | None = None
    """Run only the cells of this run (in ``results``) that have no result yet."""
    order: Literal["random", "blocked"] | None = None
    """None: random (resuming: the run's own)."""
    order_seed: int | None = None
    concurrency: int = 1
    rpm: float | None = None
    tpm: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    """Attempts per model turn, their backoff, and each call's timeout."""
    cache: Path | None = None
    temperature: TemperatureOption = None
    base_url: str | None = None
    trace: bool = False
    """Send traces where the environment says (LangSmith, OpenTelemetry)."""
    langsmith_experiment: str | None = None
    otel_endpoint: str | None = None
    lock: bool = True
    """Hold the run's lock while it runs (False only for a process that is part of a run
    whose lock another holds: a pytest-xdist worker)."""
    front_end: str = "library"
    """Recorded in the metadata: cli, pytest or library."""
    timestamp: str | None = field(default=None, repr=False)
    """The files' timestamp (pytest-xdist workers share their controller's)."""
    batch: BatchOptions | None = None
    """Batch mode: model turns through the providers' batch APIs (``turns.batch``);
    None: online. Resuming a run that ran in batch mode keeps it."""
    keep_outcomes: bool = True
    """Keep every cell's outcome for ``RunResult.outcomes``. The command line does not:
    each outcome is on disk once written, and keeping them all would grow memory with
    the run (about 7 KB a cell)."""

    def __post_init__(self) -> None:
        if isinstance(self.temperature, str) and self.temperature != "default":
            raise UsageError(
                f"temperature {self.temperature!r}: give a number, or 'default' to send none"
            )
        check_flags(
            {
                "runs": self.runs,
                "concurrency": self.concurrency,
                "rpm": self.rpm,
                "tpm": self.tpm,
                "timeout": self.retry.timeout_s,
                "max_attempts": self.retry.max_attempts,
            }
        )
        if isinstance(self.temperature, float | int) and not isinstance(self.temperature, bool):
            flag_temperature(str(self.temperature))
        if self.order == "blocked" and self.order_seed is not None:
            raise UsageError("--order-seed only applies to the random order: drop one of them")
        if self.resume is not None and (self.variants or self.scenarios):
            raise ResumeError(
                "--resume runs exactly the cells the run planned: drop --variant/--scenario"
            )
        for flag, run_id in (("--run-id", self.run_id), ("--resume", self.resume)):
            problem = run_id_problem(run_id) if run_id is not None else None
            if problem is not None:
                raise UsageError(f"{flag}: {problem}")
        if self.resume is not None and self.run_id not in (None, self.resume):
            raise ResumeError(f"--run-id {self.run_id} differs from --resume {self.resume}")
