"""A variant whose tools come from an MCP server: how to reach the server, and what the
variant makes of the tools it lists.

Only shapes are checked here (no server is started, and the ``mcp`` package is not
imported): one transport (``command``, for stdio; ``url``, for streamable HTTP; both,
for an HTTP server tooltrial starts itself), placeholders that are well formed, names
that providers accept. What the server lists is known only once it runs: the tool
names that overrides, ``include``/``exclude``, references and forbidden calls name are
checked against the listing at the preflight (``tooltrial.run.workbench``), before any
model call.

Placeholders (``{name}``, ``{{`` for a literal brace) may appear in ``command``,
``args``, ``env`` values, ``cwd`` and ``url``. Built in: ``{python}`` (the interpreter running
tooltrial), ``{port}`` (a free local port, chosen per server process), ``{now}`` (the
experiment's fixed timestamp, ISO 8601) and ``{here}`` (the folder of the variant's
file). The app provides the others: ``{db}`` (``SQLiteApp``: the cell's own database
file), ``{dir}`` (``FolderApp``: the cell's own folder), so
``mcp-server-sqlite --db-path {db}`` acts on each cell's copy unchanged.
"""

from __future__ import annotations

import re
import string
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tooltrial.definitions.limits import check_value

BUILT_IN_PLACEHOLDERS = ("python", "port", "now", "here")
"""Placeholders tooltrial fills for any server (the app fills the rest)."""

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
"""What the providers accept as a tool name (Anthropic's rule; OpenAI's is the same)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolOverride(_Frozen):
    """What a variant changes of one listed tool (named as the server lists it)."""

    name: str
    """The tool's name as the server lists it."""
    rename: str | None = None
    """The name the model sees and calls it by (calls are sent under ``name``)."""
    description: str | None = None
    """Replaces the server's description."""

    @field_validator("rename")
    @classmethod
    def _provider_name(cls, value: str | None) -> str | None:
        if value is not None and not TOOL_NAME.match(value):
            raise ValueError(
                f"rename {value!r} is refused by providers: use 1 to 64 letters, digits, '_' or '-'"
            )
        return value


class McpServer(_Frozen):
    """Where a variant's tools come from: an MCP server (see the module docstring)."""

    command: str | None = None
    """The program to start (stdio, or an HTTP server when ``url`` is given too)."""
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    """Set for the server, over the SDK's safe default (HOME, PATH, ...): nothing else of
    tooltrial's environment reaches it. Recorded by name only (values may be secrets)."""
    inherit_env: tuple[str, ...] = ()
    """Variables passed on from tooltrial's own environment when set there (an API key,
    a proxy's CA bundle), by name: recorded by name only."""
    cwd: str | None = None
    """The server's working folder (default: ``here``); relative to ``here``."""
    here: str | None = None
    """The folder of the variant's file (set when loaded from one; default: the current
    folder): the ``{here}`` placeholder, and what a relative ``cwd`` is read from."""
    url: str | None = None
    """Streamable HTTP: the server's endpoint (``http://127.0.0.1:{port}/mcp`` for one
    tooltrial starts with ``command``)."""
    stateless: bool = False
    """True: the tools keep no state, so one server process serves every cell of the
    variant. False (the default): a fresh process per cell, started on the cell's own
    copy of the app's state."""
    startup_timeout_s: float = 30.0
    """How long the server may take to start and list its tools."""
    include: tuple[str, ...] | None = None
    """Only these listed tools (by the server's names; default: all of them)."""
    exclude: tuple[str, ...] = ()
    """Listed tools the model is not given."""
    tools: tuple[ToolOverride, ...] = ()
    """Renames and descriptions (in YAML: the variant's ``tools:`` list)."""

    @field_validator("startup_timeout_s", mode="before")
    @classmethod
    def _timeout_in_range(cls, value: Any) -> Any:
        return check_value("startup_timeout_s", value)  # strict: no booleans, text, NaN

    @model_validator(mode="after")
    def _one_transport(self) -> McpServer:
        if self.command is None and self.url is None:
            raise ValueError(
                "give the server's 'command' (stdio) or its 'url' (streamable HTTP), or both "
                "(an HTTP server tooltrial starts: url: http://127.0.0.1:{port}/mcp)"
            )
        if self.command is None and not self.stateless:
            raise ValueError(
                "a server at a fixed url is shared by every cell, so tooltrial cannot give "
                "each cell a fresh one: declare 'stateless: true' if its tools keep no "
                "state, or add 'command' to start one per cell (url: "
                "http://127.0.0.1:{port}/mcp)"
            )
        if self.command is not None and not self.command.strip():
            raise ValueError("'command' is empty: name the program that starts the server")
        for field_name, text in self.templates():
            placeholders(text, field_name)  # raises on a malformed one
        names = [t.name for t in self.tools]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"tools: {', '.join(repeated)} overridden twice; merge the entries")
        return self

    @property
    def transport(self) -> str:
        return "stdio" if self.url is None else "streamable-http"

    def templates(self) -> list[tuple[str, str]]:
        """Every text that may hold placeholders, with where it is (for messages)."""
        texts = [("command", self.command)] if self.command else []
        texts += [(f"args[{i}]", a) for i, a in enumerate(self.args)]
        texts += [(f"env.{k}", v) for k, v in self.env.items()]
        texts += [(name, value) for name in ("cwd", "url") if (value := getattr(self, name))]
        return texts

    def placeholder_names(self) -> set[str]:
        """Every placeholder the server's settings name."""
        return {name for where, text in self.templates() for name in placeholders(text, where)}

    def record(self) -> dict[str, Any]:
        """How the server is started, as recorded (env by name: values may be secrets;
        a URL without its user, password or query)."""
        recorded: dict[str, Any] = {"transport": self.transport}
        if self.command is not None:
            recorded["command"] = [self.command, *self.args]
        if self.env:
            recorded["env"] = sorted(self.env)
        if self.inherit_env:
            recorded["inherit_env"] = sorted(self.inherit_env)
        if self.url is not None:
            recorded["url"] = _bare_url(self.url)
        recorded["stateless"] = self.stateless
        return recorded


def placeholders(text: str, where: str = "value") -> list[str]:
    """The placeholder names in ``text``; ``ValueError`` naming ``where`` if one is
    malformed (``{}``, ``{a.b}``, ``{x!r}``, an unpaired brace)."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(
            f"{where}: {text!r} has an unpaired brace ({exc}); write {{{{ or }}}} for a literal one"
        ) from None
    names = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(
                f"{where}: {text!r} has a placeholder that is not a bare name; write one "
                "such as {db} or {port} (and {{ or }} for a literal brace)"
            )
        names.append(name)
    return names


def fill(text: str, values: dict[str, str]) -> str:
    """``text`` with its placeholders replaced (every name must be in ``values``)."""
    return text.format_map(values)


def _bare_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    host_and_path = rest.rsplit("@", 1)[-1] if sep else url
    return f"{scheme}{sep}{host_and_path.split('?', 1)[0].split('#', 1)[0]}"
