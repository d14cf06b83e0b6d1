"""``tooltrial report``: score results and compare variants."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tooltrial.report.formats import FORMATS, default_output
from tooltrial.run.places import check_report_places


def add_parser(commands: Any) -> None:
    report = commands.add_parser("report", help="score results and compare variants")
    report.add_argument("results", nargs="+", type=Path, help="result folders or .jsonl files")
    report.add_argument("-o", "--output", type=Path, help="file (html: report.html; else stdout)")
    report.add_argument("--format", choices=FORMATS, default="html")
    report.add_argument("--experiment", help="definition to score against (default: from files)")
    report.add_argument("--reference", help="variant the others are compared with (first)")
    report.add_argument(
        "--reference-model", help="model the others are compared with (first in sorted order)"
    )
    report.add_argument("--export", type=Path, help="also write the scored table: .csv/.parquet")
    report.add_argument(
        "--prices",
        type=Path,
        metavar="FILE",
        help="a price table (YAML/TOML, per model: input, output, cache read/write, batch "
        "discount): adds cost per variant, per conversation and per success (default: "
        "tokens only)",
    )
    report.set_defaults(handler=command)


def command(args: argparse.Namespace) -> int:
    from tooltrial.report.render import make_report  # polars and scipy load only here

    check_report_places(args.output or default_output(args.format), args.export)
    return make_report(
        args.results,
        args.output,
        args.format,
        args.experiment,
        args.reference,
        args.export,
        reference_model=args.reference_model,
        prices=args.prices,
    )
