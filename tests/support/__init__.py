"""Helpers shared by the test modules (a test module never imports another; shared
fixtures go in a ``conftest.py``). Imported as ``support.<module>``: pytest's
``pythonpath`` puts ``tests/`` on ``sys.path``.

- ``paths``: ``tests/`` and the checkout.
- ``runs``: running cells through the one public run path (``open_run``).
- ``processes``: real ``tooltrial run`` processes and the results they leave.
- ``agents``: scripted agents for ``tests/mini_agentic``, in-process and on test servers.
- ``sample_results``, ``single_turn_results``, ``agentic_results``: result files with
  known answers, written with the real writer, and the experiments they belong to.
- ``bad_input``: the bad-input harness (break one thing, run, compare the results folder).
- ``tracing``: the LangSmith stand-in's environment and a real OTLP receiver.
- ``pages``: a report page's references, and what it shows in a headless Chromium.
"""
