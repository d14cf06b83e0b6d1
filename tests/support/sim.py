"""``bench/sim_stats.py`` as a module for the tests (bench/ is not a package): its
generators, the audit's grid and the power check are what the README's tables come from,
so the tests assert on the same code."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def sim_stats() -> ModuleType:
    """The bench module, loaded once per process."""
    if "sim_stats" in sys.modules:
        return sys.modules["sim_stats"]
    path = Path(__file__).resolve().parents[2] / "bench" / "sim_stats.py"
    spec = importlib.util.spec_from_file_location("sim_stats", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sim_stats"] = module
    spec.loader.exec_module(module)
    return module
