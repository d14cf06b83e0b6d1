"""The layout's rules, checked: layers import only downward, nothing imports in a circle,
and the light entry points stay light; and the tests' own layout: no test module imports
another (nor a conftest), and each sits in the folder of what it tests.

Every ``import`` statement counts, including the ones inside functions (lazy imports are
still dependencies), read from the source with ``ast``.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "tooltrial"
TEMPLATES = PACKAGE / "templates"
"""What ``tooltrial init`` writes: user code shipped as data, not modules of tooltrial."""


def package_modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if TEMPLATES not in p.parents]


# Lowest first. A module may import its own layer's modules and any lower layer's.
LAYERS: list[set[str]] = [
    {"_version", "types", "errors", "extras", "files", "text", "redact"},
    {"definitions"},
    {"apps"},
    {"tools"},
    {"users"},
    {"models"},
    {"turns"},
    {"log"},
    {"tracing"},
    {"run"},
    {"analysis"},
    {"report"},
    {"testing"},
    {"cli", "pytest_plugin", "__init__", "__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "tooltrial" or name.startswith("tooltrial.")}


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in package_modules()}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {t for t in imports_of(path) if t in modules and t != name}
        edges[name] = targets
    return edges


def layer(module: str) -> int:
    parts = module.split(".")
    return RANK["__init__"] if len(parts) == 1 else RANK[parts[1]]


def test_every_module_has_a_layer():
    unknown = {m.split(".")[1] for m in graph() if "." in m} - RANK.keys()
    assert not unknown, f"give these a layer in LAYERS: {sorted(unknown)}"


def test_nothing_imports_upward():
    upward = [
        f"{source} -> {target}"
        for source, targets in graph().items()
        for target in targets
        if layer(target) > layer(source)
    ]
    assert not upward


def test_nothing_imports_in_a_circle():
    edges = graph()
    # A package's __init__ re-exports its modules; that is not a dependency of theirs.
    edges = {s: {t for t in ts if not s.startswith(t + ".")} for s, ts in edges.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert not cycles


RUN_PARTS = {"WriterPool", "Runner", "LiveTurns", "BatchTurns", "RunLock"}
"""What a run is wired from; only ``tooltrial.run.session`` puts them together (the lock
also guards the pytest-xdist controller, which runs no cell)."""
BUILDERS = {"tooltrial.run.session"}
LOCK_HOLDERS = {"tooltrial.run.session", "tooltrial.pytest_plugin"}


def constructed(path: Path) -> set[str]:
    """The names of RUN_PARTS that a module calls (``Name(...)``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in RUN_PARTS:
                found.add(name)
    return found


def test_a_run_is_built_in_one_place():
    modules = {module_name(p): p for p in package_modules()}
    wiring = {
        name: sorted(parts)
        for name, path in modules.items()
        if (parts := constructed(path) - {"RunLock"}) and name not in BUILDERS
    }
    locks = {n for n, p in modules.items() if "RunLock" in constructed(p)} - LOCK_HOLDERS
    assert not wiring, f"only {BUILDERS} builds a run; these wire one too: {wiring}"
    assert not locks, f"a run's lock is taken by open_run alone; also in: {sorted(locks)}"


def _reexports_only(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import | ast.ImportFrom):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return isinstance(node.value.value, str)  # the docstring
    if isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return all(isinstance(t, ast.Name) and t.id in ("__all__", "_LAZY") for t in targets)
    if isinstance(node, ast.If):  # if TYPE_CHECKING: imports
        return all(_reexports_only(child) for child in node.body)
    # PEP 562: heavy names re-exported on first use
    return isinstance(node, ast.FunctionDef) and node.name == "__getattr__"


def test_every_package_init_only_reexports():
    logic = {
        module_name(path): [
            n.lineno for n in ast.parse(path.read_text()).body if not _reexports_only(n)
        ]
        for path in package_modules()
        if path.name == "__init__.py"
    }
    assert not {name: lines for name, lines in logic.items() if lines}


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(done.stdout.split())


HEAVY = {"polars", "scipy", "numpy", "llama_cpp", "langchain_core", "opentelemetry", "mcp"}


@pytest.mark.parametrize(
    "code",
    [
        "import tooltrial",
        "import tooltrial.cli",
        "from tooltrial import load_experiment, validate, read_results, run_experiment",
    ],
)
def test_light_entry_points_load_no_heavy_library(code):
    assert not HEAVY & loaded_after(code)


def test_analysis_is_loaded_on_first_use():
    assert {"polars", "scipy"} <= loaded_after("import tooltrial; tooltrial.analyze")


RUN_ONE_CELL = """
import sys
from tooltrial.cli import main
code = main(["run", {experiment!r}, "--model", "anthropic:lean", "--variant", "baseline",
             "--scenario", "create-task-tomorrow-at-3", "--runs", "1", "--results", {results!r}])
print("LOADED", " ".join(sorted(sys.modules)))
sys.exit(code)
"""


def test_an_anthropic_run_imports_only_what_its_model_needs(tmp_path):
    from tooltrial.testing.messages_server import MessagesServer

    experiment = str(PACKAGE.parent.parent / "tests" / "experiment")
    code = RUN_ONE_CELL.format(experiment=experiment, results=str(tmp_path / "r"))
    with MessagesServer(max_seconds=60) as server:
        env = {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "sk-test-lean-0000"}
        env |= {"LANGSMITH_TRACING": "false"}
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **env},
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert len(server.requests) == 2  # the preflight, then the one cell
    loaded = set(done.stdout.rsplit("LOADED", 1)[1].split())
    assert "langchain_anthropic" in loaded  # what the model needs
    unneeded = {"polars", "scipy", "numpy", "llama_cpp", "langchain_openai", "mcp"}
    assert not unneeded & loaded
    assert "tooltrial.tracing.otel" not in loaded and "tooltrial.analysis" not in loaded


# --- the tests' own layout ---------------------------------------------------------------

TESTS = Path(__file__).resolve().parent
WHOLE_PROJECT = {"test_architecture.py", "test_public_api.py", "test_secrets.py", "test_wheel.py"}
"""The test modules kept at ``tests/`` root: they check the project as a whole (layering,
the public API as the README shows it, no key in any output). Every other one sits in the
folder of what it tests."""
NOT_A_PACKAGE = {
    "worked": "the worked experiments, checked end to end without model calls",
    "experiment": "the worked single-turn experiment (its pytest suite)",
    "agentic": "the agentic worked experiment (its pytest suite)",
}
"""Test folders that mirror no module of ``src/tooltrial/``."""


def imported_test_modules(path: Path) -> list[str]:
    """Each import of a test module or a conftest in ``path``, as ``line: statement``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module.split(".") if node.module else []
            names = [[*base, alias.name] for alias in node.names]
            names_text = ", ".join(alias.name for alias in node.names)
            dotted = f"from {'.' * node.level}{node.module or ''} import {names_text}"
        elif isinstance(node, ast.Import):
            names = [alias.name.split(".") for alias in node.names]
            dotted = "import " + ", ".join(alias.name for alias in node.names)
        else:
            continue
        if any(p.startswith("test_") or p == "conftest" for parts in names for p in parts):
            found.append(f"{node.lineno}: {dotted}")
    return found


def test_no_test_file_imports_a_test_module_or_a_conftest():
    """Shared helpers live in ``tests/support/`` (fixtures in a conftest.py), so every test
    module stands alone and the suite runs under ``--import-mode=importlib``."""
    imports = {
        str(path.relative_to(TESTS)): found
        for path in sorted(TESTS.rglob("*.py"))
        if (found := imported_test_modules(path))
    }
    assert not imports, f"move what these import into tests/support/: {imports}"


def test_test_modules_sit_in_the_folder_of_what_they_test():
    modules = sorted(TESTS.rglob("test_*.py"))
    at_root = {p.name for p in modules if p.parent == TESTS} - WHOLE_PROJECT
    assert not at_root, f"put these in the folder of the package they test: {sorted(at_root)}"
    mirrored = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    folders = {p.relative_to(TESTS).parts[0] for p in modules if p.parent != TESTS}
    unknown = folders - mirrored - NOT_A_PACKAGE.keys()
    assert not unknown, f"test folders named after no part of src/tooltrial/: {sorted(unknown)}"
