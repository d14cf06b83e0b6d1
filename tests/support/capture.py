"""Result fields for the capture tests, and a writer process's work: in a module of its
own so a ``spawn`` child can import it (a test module cannot be imported by name under
``--import-mode=importlib``; ``tests/`` is on ``sys.path``, which children inherit)."""

from __future__ import annotations

from pathlib import Path

from tooltrial.log.writer import JSONLWriter
from tooltrial.types import ToolCall, Usage


def result_fields(scenario_id: str = "a", text: str = "hi", **over: object) -> dict:
    fields = {
        "scenario_id": scenario_id,
        "variant": "v",
        "rep": 1,
        "response_text": text,
        "tool_calls": [ToolCall(id="t1", name="add_task", arguments={"title": "x"})],
        "stop_reason": "tool_use",
        "usage": Usage(input_tokens=10, output_tokens=3),
        "latency_s": 0.5,
        "model": "local:smollm2",
        "temperature": 0.2,
    }
    return fields | over


def append_many(path: str, worker: int, count: int) -> None:
    """One process's share: ``count`` long results appended to ``path``."""
    writer = JSONLWriter("r", Path(path).parent, filename=Path(path).name)
    for i in range(count):
        writer.write_result(**result_fields(f"w{worker}-{i}", text="x" * 5000))
    writer.close()
