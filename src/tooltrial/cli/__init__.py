"""Command line: ``tooltrial run / validate / report`` (``main``)."""

from tooltrial.cli.main import main

__all__ = ["main"]
