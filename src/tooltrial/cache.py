"""An optional on-disk cache of model responses, so re-running costs no calls.

The key is everything that shapes the request: model, temperature, max_tokens, system
prompt, user prompt, tools, and the repetition number (so the 3 runs of a cell stay 3
separate samples rather than one answer copied three times). Only successful responses
are stored. One JSON file per key, written to a temporary name and renamed into place,
so concurrent runs sharing a cache never read half an entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tooltrial.capture import ToolCall, Usage
from tooltrial.models import Model, ModelResponse
from tooltrial.variants import Tool


def cache_key(model: Model, system: str, prompt: str, tools: Sequence[Tool], rep: int) -> str:
    blob = json.dumps(
        {
            "model": model.spec,
            "temperature": model.temperature,
            "max_tokens": model.max_tokens,
            "system": system,
            "prompt": prompt,
            "tools": [t.model_dump() for t in tools],
            "rep": rep,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """``get``/``put`` responses by key under ``directory``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.hits = 0

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def has(self, key: str) -> bool:
        return self._path(key).exists()

    def get(self, key: str) -> ModelResponse | None:
        try:
            response = _response_from(json.loads(self._path(key).read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent or unreadable: just call the model
        self.hits += 1
        return response

    def put(self, key: str, response: ModelResponse) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(_response_to(response), handle)
        os.replace(tmp, path)


def _response_to(response: ModelResponse) -> dict[str, Any]:
    return {
        "text": response.text,
        "tool_calls": [c.model_dump() for c in response.tool_calls],
        "stop_reason": response.stop_reason,
        "usage": response.usage.model_dump(),
        "response_model": response.response_model,
        "content": list(response.content),
    }


def _response_from(data: dict[str, Any]) -> ModelResponse:
    return ModelResponse(
        text=data["text"],
        tool_calls=tuple(ToolCall(**c) for c in data["tool_calls"]),
        stop_reason=data["stop_reason"],
        usage=Usage(**data["usage"]),
        response_model=data.get("response_model"),
        content=tuple(data.get("content") or ()),
    )
