"""The agentic worked experiment; a package so that its test module does not clash with
tests/experiment/test_experiment.py (pytest imports both as ``test_experiment`` otherwise)."""
