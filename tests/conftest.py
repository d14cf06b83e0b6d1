"""Suite-wide rules."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The worked experiment makes real model calls: it runs only when ``-m`` names it.

    (A ``-m`` in addopts would be replaced by any ``-m`` on the command line, so
    ``pytest -m "not slow"`` would quietly run all 120 calls.)
    """
    if "experiment" in (config.getoption("markexpr") or ""):
        return
    skipped = [item for item in items if item.get_closest_marker("experiment")]
    if skipped:
        config.hook.pytest_deselected(items=skipped)
        items[:] = [item for item in items if not item.get_closest_marker("experiment")]
