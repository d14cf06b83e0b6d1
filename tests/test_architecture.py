"""The layout's rules, checked: layers import only downward, nothing imports in a circle,
and the light entry points stay light.

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

# Lowest first. A module may import its own layer's modules and any lower layer's.
LAYERS: list[set[str]] = [
    {"_version", "types", "errors"},
    {"definitions"},
    {"apps"},
    {"models"},
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
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
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


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(done.stdout.split())


HEAVY = {"polars", "scipy", "numpy", "llama_cpp", "langchain_core", "opentelemetry"}


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
    unneeded = {"polars", "scipy", "numpy", "llama_cpp", "langchain_openai"}
    assert not unneeded & loaded
    assert "tooltrial.tracing.otel" not in loaded and "tooltrial.analysis" not in loaded
