"""An optional on-disk cache of model responses, so re-running costs no calls.

The key is everything that shapes the request: model, temperature, max_tokens, system
prompt, user prompt, tools, the conversation so far (agentic cells: each model turn is
keyed on every message before it), and the repetition number (so the 3 runs of a cell stay 3
separate samples rather than one answer copied three times). Only successful responses
are stored. One JSON file per key, written to a temporary name and renamed into place,
so concurrent runs sharing a cache never read half an entry. An entry is stored as
``tooltrial.text.json_text`` writes it (any text, losslessly) with every known key value
redacted (``tooltrial.redact``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tooltrial.definitions.variants import Tool
from tooltrial.models import Model
from tooltrial.redact import redact
from tooltrial.text import json_text
from tooltrial.types import AssistantTurn, Message, ModelResponse, ToolTurn


def cache_key(
    model: Model,
    system: str,
    prompt: str,
    tools: Sequence[Tool],
    rep: int,
    history: Sequence[Message] = (),
) -> str:
    """``history``: an agentic conversation after its first user message (the model's
    turns, the tool results, scripted user turns), so each model turn has its own key."""
    fields: dict[str, Any] = {
        "model": model.spec,
        "temperature": model.temperature,
        "max_tokens": model.max_tokens,
        "system": system,
        "prompt": prompt,
        "tools": [t.model_dump() for t in tools],
        "rep": rep,
    }
    if history:
        fields["history"] = [_sent(m) for m in history]
    blob = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _sent(message: Message) -> Any:
    """What of a message the model sees (not how long it took or whether it was cached)."""
    if isinstance(message, AssistantTurn):
        return {"assistant": message.response.model_dump()}
    if isinstance(message, ToolTurn):
        return {"tool": [[r.call_id, r.name, r.content, r.is_error] for r in message.results]}
    return {"user": message.text}


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
            # json.loads, not pydantic's parser: it reads a lone surrogate's escape back
            response = ModelResponse.model_validate(json.loads(self._path(key).read_bytes()))
        except (OSError, ValueError):  # pydantic's ValidationError is a ValueError
            return None  # absent or unreadable: just call the model
        self.hits += 1
        return response

    def put(self, key: str, response: ModelResponse) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(redact(json_text(response)))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
