"""The report: one payload (what ``--format json`` prints), rendered as HTML or Markdown.

Every number on the HTML page and in the Markdown comes from :func:`payload`, so the
three formats cannot disagree. The HTML is one self-contained file: inline CSS, inline
SVG charts drawn here, and a few lines of inline JavaScript (filtering); nothing is
fetched, so it opens offline.
"""

from __future__ import annotations

import html
import json
import math
import sys
from pathlib import Path
from typing import Any

import polars as pl

from tooltrial.analysis import METRICS, RATE_METRICS, Analysis, analyze, export_table
from tooltrial.errors import UsageError

FORMATS = ("html", "md", "json")
_COLORS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2")
_N_BOOT = 10_000
_WORST_CASE = (
    " These results do not vary at all, so they cannot size a study: the table assumes "
    "the worst case, a 50% rate in both variants."
)


# --- payload --------------------------------------------------------------------------


def payload(analysis: Analysis) -> dict[str, Any]:
    """Everything the report says, as plain JSON-able data."""
    loaded = analysis.loaded
    return {
        "tooltrial_report": 1,
        "experiment": analysis.experiment.name,
        "definition": analysis.experiment.source,
        "fixed_timestamp": analysis.experiment.fixed_timestamp.isoformat(),
        "models": list(loaded.models),
        "files": [str(f) for f in loaded.files],
        "results": analysis.table.height,
        "error_lines": loaded.errors,
        "warnings": analysis.warnings,
        "reference": analysis.reference,
        "variants": [_variant(v) for v in analysis.variants],
        "comparisons": [_comparison(analysis, t) for t in analysis.comparisons],
        "categories": analysis.categories.to_dicts(),
        "consistency": _consistency(analysis),
        "scenarios": _scenarios(analysis),
        "method": {
            "unit": "scenario (reps are averaged within scenario and variant first)",
            "interval": f"95% cluster bootstrap over scenarios, percentile, {_N_BOOT} resamples",
            "test": "paired t-test on per-scenario differences, two-sided; p (sign-flip): "
            "paired sign-flip permutation test, exact under symmetry, conservative when "
            "outcomes are coarse",
            "clarify_rule": "no tool call and the text contains '?'",
        },
    }


def _variant(v: Any) -> dict[str, Any]:
    return {
        "variant": v.variant,
        "results": v.results,
        "scenarios": v.scenarios,
        "reps": v.reps,
        "rates": v.rates,
        "calls_per_answer": v.calls_per_answer,
        "input_tokens": v.input_tokens,
        "output_tokens": v.output_tokens,
        "latency_s": {"mean": v.latency_mean_s, "p50": v.latency_p50_s, "p95": v.latency_p95_s},
        "tool_footprint": {
            "chars": v.footprint.chars,
            "tokens": v.footprint.tokens,
            "tokenizer": v.footprint.tokenizer,
        },
    }


def _comparison(analysis: Analysis, treatment: str) -> dict[str, Any]:
    components, plans = analysis.power[treatment]
    return {
        "reference": analysis.reference,
        "treatment": treatment,
        "metrics": [
            {**d.__dict__, "label": METRICS[d.metric]} for d in analysis.comparisons[treatment]
        ],
        "largest_differences": analysis.largest[treatment]
        .rename({analysis.reference: "reference", treatment: "treatment"})
        .to_dicts(),
        "power": {
            "metric": "exact",
            "between_var": components.between,
            "within_var": components.within,
            "pilot_scenarios": components.pilot_scenarios,
            "pilot_reps": components.pilot_reps,
            "worst_case": components.worst_case,
            "target_power": 0.8,
            "plans": [
                {"difference": delta, "reps": p.reps, "scenarios": p.scenarios}
                for delta, rows in plans.items()
                for p in rows
            ],
        },
    }


def _consistency(analysis: Analysis) -> dict[str, Any]:
    table = analysis.consistency
    per_variant = (
        table.group_by("variant")
        .agg(
            pl.col("agreement").mean().alias("mean_agreement"),
            (pl.col("distinct_answers") == 1).mean().alias("all_reps_agree"),
            pl.col("flips").sum().alias("flipping_scenarios"),
        )
        .sort("variant")
    )
    flips = table.filter(pl.col("flips")).select("scenario_id", "variant", "exact", "agreement")
    return {"per_variant": per_variant.to_dicts(), "flips": flips.to_dicts()}


def _scenarios(analysis: Analysis) -> list[dict[str, Any]]:
    rates = analysis.table.group_by("scenario_id", "variant").agg(
        pl.col("exact").cast(pl.Float64).mean()
    )
    lookup = {(s, v): r for s, v, r in rates.iter_rows()}
    names = [v.variant for v in analysis.variants]
    return [
        {
            "id": s.id,
            "category": s.category,
            "prompt": s.prompt,
            "expect": {v: s.expectation_for(v).kind for v in names},
            "exact": {v: lookup.get((s.id, v)) for v in names},
        }
        for s in analysis.experiment.scenarios
    ]


# --- formatting helpers ---------------------------------------------------------------


def pct(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def signed_pct(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{round(100 * value, 1) + 0.0:+.1f} pp"  # + 0.0: no "-0.0" from rounding noise


def number(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def p_text(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _fmt_diff(m: dict[str, Any]) -> tuple[str, str]:
    """(difference, interval) as text: rates in percentage points, others in units."""
    if m["metric"] in RATE_METRICS:
        show = signed_pct
    else:
        digits = 3 if m["metric"] == "latency_s" else 1

        def show(value: float | None) -> str:
            return "–" if value is None else f"{round(value, digits) + 0.0:+,.{digits}f}"

    return show(m["difference"]), f"[{show(m['ci_low'])}, {show(m['ci_high'])}]"


def _fmt_mean(metric: str, value: float) -> str:
    if metric in RATE_METRICS:
        return pct(value)
    return number(value, 3 if metric == "latency_s" else 1)


# --- Markdown -------------------------------------------------------------------------


def render_markdown(data: dict[str, Any]) -> str:
    lines = [
        f"# tooltrial report: {data['experiment']}",
        "",
        f"{data['results']} results from {len(data['files'])} files; "
        f"model(s): {', '.join(data['models'])}; {data['error_lines']} error lines (not counted).",
        "",
    ]
    lines += [f"> warning: {w}" for w in data["warnings"]]
    lines += ["## Per variant", "", _md_variants(data), ""]
    for comp in data["comparisons"]:
        lines += _md_comparison(comp)
    lines += ["## Per category (exact match)", "", _md_categories(data), ""]
    lines += ["## Consistency across repetitions", ""]
    for row in data["consistency"]["per_variant"]:
        lines.append(
            f"- **{row['variant']}**: reps agree on {pct(row['mean_agreement'])} of answers "
            f"on average; {pct(row['all_reps_agree'])} of scenarios give the same answer "
            f"every rep; {row['flipping_scenarios']} scenario(s) flip between right and wrong."
        )
    flips = data["consistency"]["flips"]
    if flips:
        lines.append(
            "- flipping: " + ", ".join(f"{f['scenario_id']} ({f['variant']})" for f in flips)
        )
    lines += ["", "## Method", ""]
    lines += [f"- {k}: {v}" for k, v in data["method"].items()]
    return "\n".join(lines) + "\n"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _md_variants(data: dict[str, Any]) -> str:
    rows = []
    for v in data["variants"]:
        r, fp = v["rates"], v["tool_footprint"]
        tokens = f"{fp['tokens']} tok / " if fp["tokens"] is not None else ""
        rows.append(
            [
                v["variant"],
                str(v["results"]),
                pct(r["exact"]),
                pct(r["tool_correct"]),
                pct(r["args_correct"]),
                pct(r["abstain_correct"]),
                pct(r["hallucinated"]),
                number(v["calls_per_answer"], 2),
                number(v["input_tokens"], 0),
                number(v["output_tokens"], 0),
                number(v["latency_s"]["mean"], 2),
                f"{tokens}{fp['chars']} chars",
            ]
        )
    header = [
        "variant",
        "results",
        "exact",
        "tool",
        "args",
        "no-call/clarify",
        "halluc.",
        "calls/answer",
        "tokens in",
        "tokens out",
        "latency s",
        "tool definitions",
    ]
    return _md_table(header, rows)


def _md_comparison(comp: dict[str, Any]) -> list[str]:
    ref, trt = comp["reference"], comp["treatment"]
    rows = []
    for m in comp["metrics"]:
        diff, ci = _fmt_diff(m)
        rows.append(
            [
                m["label"],
                _fmt_mean(m["metric"], m["reference_mean"]),
                _fmt_mean(m["metric"], m["treatment_mean"]),
                diff,
                ci,
                p_text(m["p_value"]),
                p_text(m["p_sign_flip"]),
                str(m["scenarios"]),
            ]
        )
    header = ["metric", ref, trt, "difference", "95% CI", "p (t)", "p (sign-flip)", "scenarios"]
    out = [f"## {trt} vs {ref}", "", _md_table(header, rows), ""]
    if comp["largest_differences"]:
        out += ["Scenarios that differ most (exact-match rate):", ""]
        out += [
            f"- {d['scenario_id']}: {pct(d['reference'])} → {pct(d['treatment'])}"
            for d in comp["largest_differences"]
        ]
        out.append("")
    power = comp["power"]
    plans = power["plans"]
    if plans:
        out += ["Scenarios needed for 80% power (exact match, these results as a pilot):", ""]
        out += [f"> {_WORST_CASE.strip()}", ""] if power["worst_case"] else []
        out += [
            _md_table(
                ["difference", "reps", "scenarios"],
                [
                    [signed_pct(p["difference"]), str(p["reps"]), str(p["scenarios"] or "> 10000")]
                    for p in plans
                ],
            ),
            "",
        ]
    return out


def _md_categories(data: dict[str, Any]) -> str:
    names = [v["variant"] for v in data["variants"]]
    table: dict[str, dict[str, str]] = {}
    for row in data["categories"]:
        table.setdefault(row["category"], {})[row["variant"]] = pct(row["exact"])
    rows = [[c, *(cells.get(n, "–") for n in names)] for c, cells in table.items()]
    return _md_table(["category", *names], rows)


# --- output -------------------------------------------------------------------------


def write_report(analysis: Analysis, output: str | Path | None, fmt: str = "html") -> str:
    """Render ``analysis`` as ``fmt``; write it to ``output`` (if given) and return it."""
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    data = _finite(payload(analysis))
    if fmt == "json":
        text = json.dumps(data, indent=2) + "\n"
    elif fmt == "md":
        text = render_markdown(data)
    else:
        text = render_html(data, analysis.table)
    if output is not None:
        Path(output).write_text(text, encoding="utf-8")
    return text


def _finite(value: Any) -> Any:
    """NaN (an undefined rate) becomes null, so the JSON is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# --- HTML -----------------------------------------------------------------------------

_CSS = """
:root { --ok: #2e7d32; --bad: #c62828; --muted: #666; --line: #ddd; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       color: #222; background: #fafafa; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { margin: 0 0 4px; font-size: 24px; } h2 { margin: 32px 0 8px; font-size: 18px; }
.sub, .note { color: var(--muted); } .note { font-size: 12px; }
.warn { background: #fff3cd; border: 1px solid #e0c060; padding: 6px 10px; margin: 8px 0; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px;
        min-width: 190px; }
.card .big { font-size: 28px; font-weight: 600; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; }
table { border-collapse: collapse; background: #fff; margin: 8px 0; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.heat { text-align: center; cursor: pointer; min-width: 70px; }
.ok { color: var(--ok); font-weight: 600; } .bad { color: var(--bad); font-weight: 600; }
pre { margin: 2px 0; white-space: pre-wrap; word-break: break-word; font-size: 12px;
      max-height: 220px; overflow: auto; background: #f6f6f6; padding: 4px; }
details { background: #fff; border: 1px solid var(--line); margin: 4px 0; padding: 4px 8px; }
summary { cursor: pointer; } svg text { font: 12px system-ui, sans-serif; }
#filter { padding: 4px 8px; width: 320px; }
"""

_JS = """
(function () {
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var box = document.getElementById("filter");
  var shown = document.getElementById("shown");
  function apply() {
    var q = box.value.trim().toLowerCase(), n = 0;
    document.querySelectorAll("#drill details").forEach(function (d) {
      var hit = !q || d.textContent.toLowerCase().indexOf(q) >= 0;
      d.style.display = hit ? "" : "none";
      if (hit) { n += 1; }
    });
    shown.textContent = n + " of " + data.scenarios.length + " scenarios";
  }
  box.addEventListener("input", apply);
  document.querySelectorAll("td.heat").forEach(function (td) {
    td.addEventListener("click", function () {
      var target = document.getElementById("s-" + td.dataset.scenario);
      if (target) { target.open = true; target.scrollIntoView(); }
    });
  });
  document.getElementById("expand").addEventListener("click", function () {
    document.querySelectorAll("#drill details").forEach(function (d) { d.open = true; });
  });
  apply();
})();
"""


def render_html(data: dict[str, Any], table: pl.DataFrame) -> str:
    names = [v["variant"] for v in data["variants"]]
    colors = {n: _COLORS[i % len(_COLORS)] for i, n in enumerate(names)}
    blob = json.dumps(data).replace("</", "<\\/")
    sections = [
        _html_header(data),
        _html_headline(data, colors),
        _html_variants(data),
        _html_heatmap(data, names),
        _html_categories(data, names, colors),
        _html_consistency(data, table, names, colors),
        _html_cost(data, colors),
        _html_largest(data, table, names),
        _html_power(data),
        _html_drilldown(data, table, names),
        _html_method(data),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>tooltrial: {escape(data['experiment'])}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style></head><body><main>{''.join(sections)}</main>"
        f'<script type="application/json" id="report-data">{blob}</script>'
        f"<script>{_JS}</script></body></html>\n"
    )


def _key(*parts: Any) -> str:
    return escape(".".join(str(p) for p in parts))


def _html_header(data: dict[str, Any]) -> str:
    warnings = "".join(f'<div class="warn">{escape(w)}</div>' for w in data["warnings"])
    return (
        f"<h1>{escape(data['experiment'])}</h1>"
        f'<div class="sub">model {escape(", ".join(data["models"]))} · '
        f'<span data-key="results">{data["results"]}</span> results from '
        f"{len(data['files'])} files · {data['error_lines']} error lines (not counted) · "
        f"fixed now {escape(data['fixed_timestamp'])}</div>{warnings}"
    )


def _html_headline(data: dict[str, Any], colors: dict[str, str]) -> str:
    cards = []
    for v in data["variants"]:
        cards.append(
            f'<div class="card" style="border-top: 4px solid {colors[v["variant"]]}">'
            f'<div class="label">{escape(v["variant"])} · exact match</div>'
            f'<div class="big" data-key="{_key("variants", v["variant"], "exact")}">'
            f"{pct(v['rates']['exact'])}</div>"
            f'<div class="sub">{v["results"]} results, {v["scenarios"]} scenarios × '
            f"{v['reps']} reps</div></div>"
        )
    parts = ["<h2>Headline</h2>", f'<div class="cards">{"".join(cards)}']
    for comp in data["comparisons"]:
        m = next(x for x in comp["metrics"] if x["metric"] == "exact")
        diff, ci = _fmt_diff(m)
        t = comp["treatment"]
        parts.append(
            f'<div class="card"><div class="label">{escape(t)} − '
            f"{escape(comp['reference'])}</div>"
            f'<div class="big" data-key="{_key("diff", t, "exact")}">{diff}</div>'
            f'<div>95% CI <span data-key="{_key("ci", t, "exact")}">{ci}</span></div>'
            f'<div>p = <span data-key="{_key("p", t, "exact")}">{p_text(m["p_value"])}</span>'
            f" · {m['scenarios']} scenarios</div></div>"
        )
    parts.append("</div>")
    for comp in data["comparisons"]:
        parts.append(_html_comparison(comp))
    return "".join(parts)


def _html_comparison(comp: dict[str, Any]) -> str:
    t, ref = comp["treatment"], comp["reference"]
    rows = []
    for m in comp["metrics"]:
        diff, ci = _fmt_diff(m)
        rows.append(
            f"<tr><td>{escape(m['label'])}</td>"
            f'<td class="num">{_fmt_mean(m["metric"], m["reference_mean"])}</td>'
            f'<td class="num">{_fmt_mean(m["metric"], m["treatment_mean"])}</td>'
            f'<td class="num" data-key="{_key("diff", t, m["metric"])}">{diff}</td>'
            f'<td class="num">{ci}</td><td class="num">{p_text(m["p_value"])}</td>'
            f'<td class="num">{p_text(m["p_sign_flip"])}</td>'
            f'<td class="num">{m["scenarios"]}</td></tr>'
        )
    return (
        f"<h2>{escape(t)} vs {escape(ref)}: every metric</h2>"
        + _forest([m for m in comp["metrics"] if m["metric"] in RATE_METRICS])
        + f"<table><tr><th>metric</th><th>{escape(ref)}</th><th>{escape(t)}</th>"
        "<th>difference</th><th>95% CI</th><th>p (t)</th><th>p (sign-flip)</th>"
        "<th>scenarios</th></tr>"
        + "".join(rows)
        + '</table><div class="note">Differences are treatment − reference, in percentage '
        "points for rates. Arguments are judged only where the tool was right. "
        "Intervals resample scenarios; p (t): paired t-test across scenarios. Means here "
        "weigh each scenario the same and use only scenarios both variants have, so they "
        "can differ slightly from the per-variant rates.</div>"
    )


def _forest(metrics: list[dict[str, Any]]) -> str:
    """Each rate difference with its interval, on one axis with zero marked."""
    lo = min([-0.1, *(m["ci_low"] for m in metrics if m["ci_low"] is not None)])
    hi = max([0.1, *(m["ci_high"] for m in metrics if m["ci_high"] is not None)])
    left, width, row = 230, 560, 26
    height = row * len(metrics) + 40

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * width

    out = [
        f'<svg width="{left + width + 50}" height="{height}" role="img" '
        'aria-label="differences with 95% intervals">'
    ]
    out.append(
        f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="5" y2="{height - 25}" '
        'stroke="#999" stroke-dasharray="4 3"/>'
    )
    for i, m in enumerate(metrics):
        y = 20 + i * row
        out.append(
            f'<text x="{left - 10}" y="{y + 4}" text-anchor="end">{escape(m["label"])}</text>'
        )
        if m["ci_low"] is not None:
            out.append(
                f'<line x1="{x(m["ci_low"]):.1f}" x2="{x(m["ci_high"]):.1f}" '
                f'y1="{y}" y2="{y}" stroke="#333" stroke-width="2"/>'
            )
        color = (
            "#2e7d32"
            if (m["ci_low"] or 0) > 0
            else "#c62828"
            if (m["ci_high"] or 0) < 0
            else "#555"
        )
        out.append(f'<circle cx="{x(m["difference"]):.1f}" cy="{y}" r="5" fill="{color}"/>')
    for tick in (lo, 0.0, hi):
        out.append(
            f'<text x="{x(tick):.1f}" y="{height - 8}" text-anchor="middle" '
            f'fill="#666">{signed_pct(tick)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _html_variants(data: dict[str, Any]) -> str:
    rows = []
    for v in data["variants"]:
        r, fp = v["rates"], v["tool_footprint"]
        tokens = f"{fp['tokens']:,} tokens ({escape(fp['tokenizer'])}), " if fp["tokens"] else ""
        cells = "".join(
            f'<td class="num" data-key="{_key("variants", v["variant"], m)}">{pct(r[m])}</td>'
            for m in RATE_METRICS
        )
        rows.append(
            f'<tr><td>{escape(v["variant"])}</td><td class="num">{v["results"]}</td>{cells}'
            f'<td class="num">{number(v["calls_per_answer"], 2)}</td>'
            f'<td class="num">{number(v["input_tokens"], 0)}</td>'
            f'<td class="num">{number(v["output_tokens"], 0)}</td>'
            f'<td class="num">{number(v["latency_s"]["mean"], 2)} / '
            f"{number(v['latency_s']['p95'], 2)}</td>"
            f"<td>{tokens}{fp['chars']:,} chars</td></tr>"
        )
    header = "".join(f"<th>{escape(METRICS[m])}</th>" for m in RATE_METRICS)
    return (
        "<h2>Per variant</h2><table><tr><th>variant</th><th>results</th>"
        f"{header}<th>tool calls per answer</th><th>tokens in</th><th>tokens out</th>"
        "<th>latency s (mean / p95)</th>"
        "<th>tool definitions</th></tr>" + "".join(rows) + "</table>"
        '<div class="note">Tool definitions: the variant\'s tools as sent (OpenAI function '
        "JSON), counted in characters and in tokens of the embedded model's tokenizer "
        "(SmolLM2); other models' tokenizers differ.</div>"
    )


def _heat_color(rate: float | None) -> str:
    if rate is None:
        return "#eee"
    # red (0) → yellow (0.5) → green (1)
    hue = 120 * rate
    return f"hsl({hue:.0f}, 65%, 78%)"


def _html_heatmap(data: dict[str, Any], names: list[str]) -> str:
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    rows = []
    for s in data["scenarios"]:
        cells = "".join(
            f'<td class="heat" data-scenario="{escape(s["id"])}" '
            f'style="background: {_heat_color(s["exact"][n])}" '
            f'title="expect {escape(s["expect"][n])}">{pct(s["exact"][n])}</td>'
            for n in names
        )
        rows.append(f"<tr><td>{escape(s['id'])}</td><td>{escape(s['category'])}</td>{cells}</tr>")
    return (
        "<h2>Scenario × variant (exact-match rate over reps)</h2>"
        f"<table><tr><th>scenario</th><th>category</th>{head}</tr>{''.join(rows)}</table>"
        '<div class="note">Click a cell to open that scenario\'s responses.</div>'
    )


def _bars(
    groups: list[tuple[str, list[tuple[str, float | None, str]]]],
    vmax: float,
    colors: dict[str, str],
) -> str:
    """Horizontal grouped bars: (group label, [(variant, value, text)])."""
    left, width, bar = 150, 480, 16
    per_group = max((len(items) for _, items in groups), default=1) * bar + 10
    height = per_group * len(groups) + 10
    out = [f'<svg width="{left + width + 330}" height="{height}" role="img">']
    for g, (label, items) in enumerate(groups):
        y0 = 5 + g * per_group
        out.append(
            f'<text x="{left - 8}" y="{y0 + len(items) * bar / 2 + 4}" '
            f'text-anchor="end">{escape(label)}</text>'
        )
        for i, (variant, value, text) in enumerate(items):
            w = 0 if value is None or vmax <= 0 else width * value / vmax
            y = y0 + i * bar
            out.append(
                f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar - 3}" '
                f'fill="{colors[variant]}"><title>{escape(variant)}: {escape(text)}</title></rect>'
            )
            out.append(f'<text x="{left + w + 4:.1f}" y="{y + bar - 5}">{escape(text)}</text>')
    out.append("</svg>")
    return "".join(out)


def _legend(colors: dict[str, str]) -> str:
    return (
        "<div>"
        + " ".join(
            f'<span style="display:inline-block;width:10px;height:10px;background:{c}"></span> '
            f"{escape(n)}&nbsp;&nbsp;"
            for n, c in colors.items()
        )
        + "</div>"
    )


def _html_categories(data: dict[str, Any], names: list[str], colors: dict[str, str]) -> str:
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for row in data["categories"]:
        rows.setdefault(row["category"], {})[row["variant"]] = row
    groups = [
        (
            category,
            [
                (n, cells[n]["exact"], f"{pct(cells[n]['exact'])} of {cells[n]['results']}")
                for n in names
                if n in cells
            ],
        )
        for category, cells in rows.items()
    ]
    return "<h2>Per category (exact match)</h2>" + _legend(colors) + _bars(groups, 1.0, colors)


def _html_consistency(
    data: dict[str, Any], table: pl.DataFrame, names: list[str], colors: dict[str, str]
) -> str:
    per = {r["variant"]: r for r in data["consistency"]["per_variant"]}
    groups = [
        (
            n,
            [
                (
                    n,
                    per[n]["mean_agreement"],
                    f"{pct(per[n]['mean_agreement'])} mean agreement, "
                    f"{per[n]['flipping_scenarios']} flipping",
                )
            ],
        )
        for n in names
        if n in per
    ]
    flips = data["consistency"]["flips"]
    listed = (
        "".join(
            f"<li>{escape(f['scenario_id'])} ({escape(f['variant'])}): right in {pct(f['exact'])} "
            f"of reps</li>"
            for f in flips
        )
        or "<li>none: every scenario is right every rep or wrong every rep</li>"
    )
    return (
        "<h2>Consistency across repetitions</h2>"
        '<div class="note">Agreement: share of reps giving the scenario\'s most common answer '
        "(same tools and arguments), averaged over scenarios. Flipping: right in some reps, "
        "wrong in others.</div>" + _bars(groups, 1.0, colors) + f"<ul>{listed}</ul>"
    )


def _html_cost(data: dict[str, Any], colors: dict[str, str]) -> str:
    vs = data["variants"]
    panels = []
    for title, get, fmt in (
        ("input tokens (mean)", lambda v: v["input_tokens"], lambda x: number(x, 0)),
        ("output tokens (mean)", lambda v: v["output_tokens"], lambda x: number(x, 0)),
        ("latency s (mean)", lambda v: v["latency_s"]["mean"], lambda x: number(x, 2)),
        (
            "tool definitions (chars)",
            lambda v: v["tool_footprint"]["chars"],
            lambda x: number(x, 0),
        ),
    ):
        values = [get(v) or 0 for v in vs]
        groups = [(title, [(v["variant"], get(v), fmt(get(v))) for v in vs])]
        panels.append(_bars(groups, max(values) or 1, colors))
    return "<h2>Tokens and latency</h2>" + _legend(colors) + "".join(panels)


def _responses(table: pl.DataFrame, scenario_id: str, names: list[str], max_reps: int = 20) -> str:
    rows = table.filter(pl.col("scenario_id") == scenario_id).sort("variant", "rep")
    by_variant = {n: rows.filter(pl.col("variant") == n).head(max_reps).to_dicts() for n in names}
    reps = max((len(v) for v in by_variant.values()), default=0)
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    body = []
    for i in range(reps):
        cells = []
        for n in names:
            items = by_variant[n]
            cells.append(_response_cell(items[i]) if i < len(items) else "<td></td>")
        body.append(f"<tr><td>{i + 1}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>#</th>{head}</tr>{''.join(body)}</table>"


def _response_cell(row: dict[str, Any]) -> str:
    mark = '<span class="ok">✓ exact</span>' if row["exact"] else '<span class="bad">✗</span>'
    calls = json.loads(row["tool_calls"])
    shown = [{"name": c["name"], "arguments": c.get("arguments")} for c in calls]
    text = row["response_text"]
    return (
        f'<td>{mark} <span class="note">rep {row["rep"]}</span>'
        + (f'<div class="note">{escape(row["reason"])}</div>' if row["reason"] else "")
        + (f"<pre>{escape(json.dumps(shown, indent=1))}</pre>" if calls else "")
        + (f"<pre>{escape(text[:1500])}</pre>" if text.strip() else "")
        + "</td>"
    )


def _html_largest(data: dict[str, Any], table: pl.DataFrame, names: list[str]) -> str:
    parts = []
    for comp in data["comparisons"]:
        pair = [comp["reference"], comp["treatment"]]
        parts.append(
            f"<h2>Where {escape(comp['treatment'])} and {escape(comp['reference'])} "
            "differ most</h2>"
        )
        if not comp["largest_differences"]:
            parts.append("<p>No scenario differs in exact-match rate.</p>")
        for d in comp["largest_differences"]:
            prompt = next(s["prompt"] for s in data["scenarios"] if s["id"] == d["scenario_id"])
            parts.append(
                f"<details><summary><b>{escape(d['scenario_id'])}</b>: "
                f"{pct(d['reference'])} → {pct(d['treatment'])}</summary>"
                f"<p>“{escape(prompt)}”</p>{_responses(table, d['scenario_id'], pair)}</details>"
            )
    return "".join(parts)


def _html_power(data: dict[str, Any]) -> str:
    parts = []
    for comp in data["comparisons"]:
        p = comp["power"]
        rows = "".join(
            f'<tr><td class="num">{signed_pct(x["difference"])}</td><td class="num">'
            f'{x["reps"]}</td><td class="num">{x["scenarios"] or "> 10,000"}</td></tr>'
            for x in p["plans"]
        )
        parts.append(
            f"<h2>Power: {escape(comp['treatment'])} vs {escape(comp['reference'])}</h2>"
            f"<p>Scenarios needed to detect a difference in exact-match rate with 80% power "
            f"(two-sided, α = 0.05), taking these results as a pilot: between-scenario variance "
            f"{p['between_var']:.4f}, rep-to-rep variance {p['within_var']:.4f}."
            f"{escape(_WORST_CASE) if p['worst_case'] else ''}</p>"
            f"<table><tr><th>difference</th><th>reps</th><th>scenarios</th></tr>{rows}</table>"
        )
    return "".join(parts)


def _html_drilldown(data: dict[str, Any], table: pl.DataFrame, names: list[str]) -> str:
    parts = [
        "<h2>Every scenario's responses</h2>"
        '<input id="filter" type="search" placeholder="filter: id, prompt, tool, text…">'
        ' <button id="expand" type="button">expand all</button> '
        '<span id="shown" class="note"></span><div id="drill">'
    ]
    for s in data["scenarios"]:
        rates = " · ".join(f"{escape(n)} {pct(s['exact'][n])}" for n in names)
        parts.append(
            f'<details id="s-{escape(s["id"])}"><summary><b>{escape(s["id"])}</b> '
            f'<span class="note">{escape(s["category"])} · {rates}</span></summary>'
            f"<p>“{escape(s['prompt'])}”</p>{_responses(table, s['id'], names)}</details>"
        )
    parts.append("</div>")
    return "".join(parts)


def _html_method(data: dict[str, Any]) -> str:
    items = "".join(f"<li><b>{escape(k)}</b>: {escape(v)}</li>" for k, v in data["method"].items())
    return f"<h2>Method</h2><ul>{items}</ul>"


def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def make_report(
    results: list[Path],
    output: Path | None,
    fmt: str = "html",
    experiment: str | None = None,
    reference: str | None = None,
    export: Path | None = None,
) -> int:
    """The ``tooltrial report`` command: analyse, optionally export the table, render."""
    if export is not None and export.suffix not in (".csv", ".parquet"):
        raise UsageError(f"--export {export}: name a .csv or .parquet file")
    analysis = analyze(results, experiment, reference, n_boot=_N_BOOT)
    if export is not None:
        export_table(analysis.table, export)
        print(f"scored table ({analysis.table.height} rows) → {export}", file=sys.stderr)
    if output is None and fmt == "html":
        output = Path("report.html")
    text = write_report(analysis, output, fmt)
    if output is None:
        sys.stdout.write(text)
    else:
        print(f"{fmt} report → {output}", file=sys.stderr)
    return 0
