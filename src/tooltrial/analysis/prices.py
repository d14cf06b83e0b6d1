"""A price table the user supplies (``tooltrial report --prices FILE``): what each model's
tokens cost. tooltrial ships no prices — they change, and a stale figure in a report is
worse than none; without a table the report shows tokens only.

The file is YAML (``.yaml``/``.yml``) or TOML (``.toml``)::

    tooltrial_prices: 1          # the format's version
    currency: USD
    per_tokens: 1000000          # prices are per million tokens (the default)
    models:
      "anthropic:claude-sonnet-4-5":
        input: 3.00
        output: 15.00
        cache_read: 0.30         # optional; default: the input price
        cache_write: 3.75        # optional; default: the input price
        batch_discount: 0.5      # share taken off in batch mode (0.5: half price)

Guarantees: the table is checked when read (unknown keys, negative prices, a discount
outside [0, 1], a newer version: refused with the file named); a model is named by its
spec, exactly as results name it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tooltrial.errors import UsageError

PRICES_VERSION: Literal[1] = 1


class ModelPrice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)
    batch_discount: float = Field(default=0.0, ge=0, le=1)


class PriceTable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tooltrial_prices: Literal[1] = PRICES_VERSION
    currency: str = "USD"
    per_tokens: int = Field(default=1_000_000, gt=0)
    models: Mapping[str, ModelPrice]

    def of(self, model: str) -> ModelPrice | None:
        return self.models.get(model)


def load_prices(path: str | Path) -> PriceTable:
    """Read and check a price table (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--prices {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise UsageError(
            f"--prices {path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}"
        ) from None
    version = data.get("tooltrial_prices") if isinstance(data, dict) else None
    if isinstance(version, int) and version > PRICES_VERSION:
        raise UsageError(
            f"--prices {path}: format {version} is newer than this tooltrial reads "
            f"({PRICES_VERSION}); upgrade tooltrial"
        )
    try:
        return PriceTable.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UsageError(f"--prices {path}: {where}: {first['msg']}") from None
