"""A run: typed ``options``, ``session.open_run`` (the one place a run is built) and
``run_experiment``, the ``plan`` and order, the ``metadata``, the engine (``runner``),
the agent loop (``conversation``), the ``workbench`` of an agentic experiment, ``resume``
and the run ``lock``. Import from the modules: ``tooltrial.run_experiment`` is the
library's entry point."""
