"""Where things are: ``tests/`` and the checkout around it.

Test modules sit in folders of their own (``tests/<package>/``), so they find the
experiments (``TESTS / "experiment"``, ``TESTS / "mini_agentic"``, ``TESTS / "agentic"``)
and the checkout from here rather than from their own ``__file__``.
"""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
"""``tests/``."""
ROOT = TESTS.parent
"""The checkout (``pyproject.toml``, ``src/``, ``bench/``): where subprocesses run."""
