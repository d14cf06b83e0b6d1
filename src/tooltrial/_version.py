"""The version, single-sourced: the package metadata (hatch) and the log read it here."""

__version__ = "0.2.0"
