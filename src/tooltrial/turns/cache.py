"""An optional on-disk cache of model responses, so re-running costs no calls.

The key is everything that shapes the request: model, temperature, max_tokens, system
prompt, user prompt, tools, the conversation so far (agentic cells: each model turn is
keyed on every message before it), and the repetition number (so the 3 runs of a cell stay 3
separate samples rather than one answer copied three times). Only successful responses
are stored. One JSON file per key, written to a temporary name and renamed into place,
so concurrent runs sharing a cache never read half an entry. An entry is stored as
``tooltrial.text.json_text`` writes it (any text, losslessly) with every known key value
redacted (``tooltrial.redact``).

Nothing planted in the cache folder redirects a write or blocks a read: an entry is
written by ``files.replace_whole`` (a new file renamed over the name: a link there is
replaced, never written through), only into a shard folder (``<cache>/ab/``) that is a
real folder — a link in its place is refused, so no entry lands where it points — and
read only from a regular file that is not a link (``files.open_regular``): a FIFO, a
device or a link at an entry's name is a miss, never waited on or followed. Storing is
best-effort (``turns.live`` warns once and goes on): a failed write is a
``files.WriteFailed``, a shard that is not a folder an ``OSError`` saying what is there.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tooltrial.definitions.variants import Tool
from tooltrial.files import UnreadableFile, kind, open_regular, replace_whole
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
        """An entry is there: a regular file, not a link (what ``get`` would read)."""
        try:
            return stat.S_ISREG(os.lstat(self._path(key)).st_mode)
        except OSError:
            return False

    def get(self, key: str) -> ModelResponse | None:
        try:
            with open_regular(self._path(key), follow=False) as handle:
                data = handle.read()
            # json.loads, not pydantic's parser: it reads a lone surrogate's escape back
            response = ModelResponse.model_validate(json.loads(data))
        except (OSError, ValueError, UnreadableFile):  # ValidationError is a ValueError
            return None  # absent, unreadable or not a plain file: just call the model
        self.hits += 1
        return response

    def put(self, key: str, response: ModelResponse) -> None:
        path = self._path(key)
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(path.parent)
        except FileExistsError:
            shard = os.lstat(path.parent)
            if not stat.S_ISDIR(shard.st_mode):  # a link (or a file) where a shard goes
                what = "a file" if stat.S_ISREG(shard.st_mode) else kind(shard)
                raise OSError(
                    errno.ENOTDIR,
                    f"{path.parent} is {what}, not a folder tooltrial made; "
                    "move it out of the cache folder",
                ) from None
        replace_whole(path, redact(json_text(response)).encode("utf-8"))  # or WriteFailed
