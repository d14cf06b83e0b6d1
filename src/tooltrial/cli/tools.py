"""``tooltrial tools EXPERIMENT``: each variant's tools as the model will see them, what
they cost in every prompt, and what differs between variants.

The tools are resolved as a run resolves them (``run.workbench.resolved_tools``: an MCP
variant's server is started once and lists its tools; nothing is written and no model is
called), so what is printed is what a run would send. The footprint is
``run.metadata.tool_footprint`` for ``--model`` (default: the run's default model). The
diff is ``tools.diff.diff_tools`` of each variant against the first one shown (with two
``--variant``, the second against the first). ``--json`` prints the same as one JSON
document.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from rich.console import Console
from rich.markup import escape

from tooltrial.definitions import Tool, load_experiment
from tooltrial.errors import UsageError
from tooltrial.models import get_model, model_specs_from
from tooltrial.run.metadata import tool_footprint
from tooltrial.run.workbench import resolved_tools
from tooltrial.tools.diff import ToolDiff, diff_tools


def add_parser(commands: Any) -> None:
    tools = commands.add_parser(
        "tools",
        help="show each variant's tools as the model sees them, and how they differ",
        description="Resolve every variant's tools as a run would (an MCP server is started "
        "once to list its own), print them with their token footprint, and the differences "
        "of each variant from the first.",
    )
    tools.add_argument("experiment", help="folder, experiment.yaml/.toml, file.py or module:attr")
    tools.add_argument(
        "--variant", action="append", help="only this variant (repeatable; the first is the base)"
    )
    tools.add_argument("--model", help="count tokens as this model does (default: the run's)")
    tools.add_argument("--schemas", action="store_true", help="print each input schema in full")
    tools.add_argument("--json", action="store_true", help="print one JSON document")
    tools.set_defaults(handler=command)


def command(args: argparse.Namespace) -> int:
    experiment = load_experiment(args.experiment)
    names = args.variant or [v.name for v in experiment.variants]
    for name in names:
        experiment.variant(name)  # an unknown name says which there are
    chosen = experiment.model_copy(
        update={"variants": tuple(experiment.variant(n) for n in dict.fromkeys(names))}
    )
    if len(chosen.variants) != len(names):
        raise UsageError("--variant: name each variant once")
    resolved = asyncio.run(resolved_tools(chosen))
    (spec,) = model_specs_from([args.model] if args.model else None)
    model = get_model(spec)
    base = names[0]
    diffs = {name: _diff(resolved[base][0], resolved[name][0]) for name in names[1:]}
    report = {
        "experiment": experiment.name,
        "model": model.spec,
        "variants": {
            name: {
                "tools": [t.model_dump() for t in tools],
                "footprint": tool_footprint(model, tools).model_dump(),
                "source": identity,
            }
            for name, (tools, identity) in resolved.items()
        },
        "diffs": [{"from": base, "to": name, **d.as_dict()} for name, d in diffs.items()],
    }
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _print(report, base, diffs, args.schemas)
    return 0


def _diff(before: tuple[Tool, ...], after: tuple[Tool, ...]) -> ToolDiff:
    return diff_tools([t.model_dump() for t in before], [t.model_dump() for t in after])


def _print(report: dict[str, Any], base: str, diffs: dict[str, ToolDiff], schemas: bool) -> None:
    out = Console(highlight=False, soft_wrap=True)
    for name, shown in report["variants"].items():
        footprint = shown["footprint"]
        out.print(
            f"[bold]{escape(name)}[/bold]: {len(shown['tools'])} tools, {footprint['tokens']:,} "
            f"tokens ({escape(footprint['counted_by'])}; {footprint['chars']:,} characters)"
        )
        out.print(f"  from {escape(_source(shown['source']))}")
        for tool in shown["tools"]:
            properties = tool["input_schema"].get("properties") or {}
            out.print(f"  [cyan]{escape(tool['name'])}[/cyan]({escape(', '.join(properties))})")
            if tool["description"]:
                out.print(f"      {escape(' '.join(tool['description'].split()))}")
            if schemas:
                out.print(f"      {escape(json.dumps(tool['input_schema'], ensure_ascii=False))}")
        out.print()
    for name, diff in diffs.items():
        out.print(f"[bold]{escape(base)} -> {escape(name)}[/bold]")
        for line in diff.lines() or ["no difference"]:
            out.print(f"  {escape(line)}")


def _source(identity: dict[str, Any]) -> str:
    kind = identity.get("kind")
    if kind == "mcp":
        server = identity.get("server") or {}
        named = f"{server.get('name', '?')} {server.get('version', '')}".strip()
        how = " ".join(identity.get("command") or []) or identity.get("url", "")
        return f"MCP server {named} ({identity.get('transport')}: {how})"
    if kind == "python":
        return "Python functions (implementation:)"
    return "the variant's own definitions (tools:)"
