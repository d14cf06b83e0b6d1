"""The wheel, installed as a user installs it: with pip, into a fresh virtual
environment outside the repository, with the core and one provider extra.

From there: ``tooltrial init`` + ``check`` + ``run`` (against the project's Messages API
server, started from the installed package) + ``report`` work; the core pulls no
llama-cpp-python; a model whose extra is missing gets one message naming the ``pip
install`` that fixes it (exit 2, nothing called, nothing written). Slow: it builds the
wheel and installs its dependencies from the package index (cached by pip after the
first time).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def outer_python() -> str:
    """A Python with pip and venv (the project's own environment may have neither)."""
    for candidate in (os.environ.get("TOOLTRIAL_WHEEL_PYTHON"), "python3", sys.executable):
        if candidate and shutil.which(candidate):
            probe = subprocess.run([candidate, "-m", "pip", "--version"], capture_output=True)
            if probe.returncode == 0:
                return candidate
    pytest.fail("no Python with pip found to build and install the wheel (python3 -m pip)")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv, outside the repository, holding tooltrial[anthropic] from its wheel."""
    place = tmp_path_factory.mktemp("user")
    python = outer_python()
    subprocess.run([python, "-m", "venv", str(place / "venv")], check=True)
    bin_ = place / "venv" / "bin"
    pip = [str(bin_ / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    dist = place / "dist"
    subprocess.run([*pip, "wheel", str(ROOT), "--no-deps", "-w", str(dist)], check=True)
    (wheel,) = dist.glob("tooltrial-*.whl")
    subprocess.run([*pip, "install", f"{wheel}[anthropic]"], check=True, timeout=1200)
    return place


def tooltrial(
    place: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    clean |= {"LANGSMITH_TRACING": "false", **(env or {})}
    clean.pop("TOOLTRIAL_MODEL", None)
    return subprocess.run(
        [str(place / "venv" / "bin" / "tooltrial"), *args],
        cwd=place,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
    )


@contextmanager
def messages_server(place: Path) -> Iterator[str]:
    """The Messages API test server, from the installed package."""
    python = str(place / "venv" / "bin" / "python")
    command = [python, "-m", "tooltrial.testing.messages_server", "--max-seconds", "120"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=place)
    try:
        assert proc.stdout is not None
        match = re.search(r"http://127\.0\.0\.1:\d+", proc.stdout.readline())
        assert match, "the installed test server did not start"
        yield match.group(0)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_wheel_works_outside_the_repository(installed: Path):
    place = installed
    assert tooltrial(place, "init", "exp").returncode == 0
    checked = tooltrial(place, "check", "exp", "--model", "anthropic:claude-test")
    assert checked.returncode == 0 and "every check passed" in checked.stdout, checked.stderr
    with messages_server(place) as url:
        env = {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "sk-test-wheel-0000"}
        ran = tooltrial(place, "run", "exp", "--model", "anthropic:claude-test", env=env)
    assert ran.returncode == 0, ran.stderr
    assert tooltrial(place, "validate", "results").returncode == 0
    reported = tooltrial(place, "report", "results", "--format", "md")
    assert reported.returncode == 0 and "Headline" in reported.stdout, reported.stderr


def test_the_core_pulls_no_embedded_model(installed: Path):
    python = str(installed / "venv" / "bin" / "python")
    shown = subprocess.run([python, "-m", "pip", "show", "llama-cpp-python"], capture_output=True)
    assert shown.returncode != 0  # not installed
    for module in ("llama_cpp", "langchain_openai", "opentelemetry.sdk"):
        probe = subprocess.run([python, "-c", f"import {module}"], capture_output=True)
        assert probe.returncode != 0, f"{module} came with tooltrial[anthropic]"


@pytest.mark.parametrize(
    ("model", "extra"), [(None, "local"), ("openai:gpt-x", "openai")], ids=["local", "openai"]
)
def test_a_missing_extra_names_its_install(installed: Path, model: str | None, extra: str):
    if not (installed / "exp").exists():
        assert tooltrial(installed, "init", "exp").returncode == 0
    flags = ["--model", model] if model else []
    done = tooltrial(installed, "run", "exp", *flags, "--results", f"r-{extra}")
    assert done.returncode == 2
    said = " ".join(done.stderr.split())
    assert f"pip install 'tooltrial[{extra}]'" in said and "Traceback" not in said
    assert not (installed / f"r-{extra}").exists()
