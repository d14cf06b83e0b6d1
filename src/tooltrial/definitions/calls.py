"""An expected tool call and the shape of an acceptable value: what single-turn
expectations and agentic forbidden actions are both written with."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


MATCHER_KEYS = frozenset({"contains", "datetime", "date", "any"})


def check_matcher(value: Any, where: str) -> None:
    """Raise ``ValueError`` unless ``value`` has the shape of an acceptable value."""
    if isinstance(value, list):
        if not value:
            raise ValueError(f"{where}: an empty list accepts nothing; list acceptable values")
        for item in value:
            check_matcher(item, where)
    elif isinstance(value, dict) and (len(value) != 1 or next(iter(value)) not in MATCHER_KEYS):
        raise ValueError(
            f"{where}: a matcher is one of {{contains: ...}}, {{datetime: ...}}, "
            f"{{date: ...}}, {{any: true}}; got {value!r}"
        )


class ExpectedCall(_Frozen):
    """One tool call a correct answer makes."""

    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    """Required arguments: dotted path -> acceptable value(s)."""
    optional: dict[str, Any] = Field(default_factory=dict)
    """Arguments that may be left out, but must match when given."""
    selects: tuple[str, ...] = ()
    """Arguments (under ``args`` or ``optional``) that are part of *choosing the action*,
    not of carrying it out: ``resource_type`` of a generic ``create_record`` picks task vs
    event as ``add_task`` vs ``create_event`` does by name. Action selection counts them
    with the tool, so it means the same in every variant."""

    @model_validator(mode="after")
    def _matchers_are_valid(self) -> ExpectedCall:
        for path, value in {**self.args, **self.optional}.items():
            check_matcher(value, f"argument {path!r} of {self.tool!r}")
        unknown = [p for p in self.selects if p not in self.args and p not in self.optional]
        if unknown:
            raise ValueError(
                f"selects {', '.join(unknown)} of {self.tool!r}: list only arguments "
                "that are under 'args' or 'optional'"
            )
        return self
