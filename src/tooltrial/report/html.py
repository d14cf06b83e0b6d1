"""The report as one self-contained HTML page, rendered from the payload.

Guarantees: nothing is fetched (inline CSS, inline SVG drawn here, a few lines of inline
JavaScript from ``assets``), so the page opens offline; every headline number carries a
``data-key`` and equals the payload, which the page also embeds as ``#report-data``.
Keys: ``results``; ``variants.<variant>.<metric>``; ``diff|ci|p.<treatment>.<metric>``;
with several models each of these is prefixed ``<model>/`` (and ``<model>/results`` is
that model's count), and the interaction adds ``interaction/<model>/diff|ci|p.<treatment>.
<metric>``.

An agentic report (``"agentic"`` in the payload) keeps the page's shape and keys (its
primary metric is ``success``; the headline also keys ``variants.<variant>.pass_hat``),
shows what a success costs and why conversations failed instead of the single-turn
variant table, and its drill-down is every conversation (``report.conversations``).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any

import polars as pl

from tooltrial.analysis import METRICS, RATE_METRICS, is_rate
from tooltrial.report import conversations
from tooltrial.report.agentic import (
    FAILURE_NOTE,
    PER_SUCCESS_NOTE,
    cost_table,
    failure_table,
    is_agentic,
    pass_k_lines,
    top_k,
)
from tooltrial.report.assets import COLORS, CSS, JS
from tooltrial.report.formatting import (
    comparison_notes,
    fmt_diff,
    fmt_mean,
    holm_text,
    number,
    p_text,
    pct,
    signed_pct,
)
from tooltrial.report.markdown import WORST_CASE
from tooltrial.report.payload import sections

Column = tuple[str | None, str]
"""A column of responses: (model, or None for the only one; variant)."""


def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def render_html(data: dict[str, Any], table: pl.DataFrame) -> str:
    names = [v["variant"] for _, s in sections(data) for v in s["variants"]]
    colors = {n: COLORS[i % len(COLORS)] for i, n in enumerate(dict.fromkeys(names))}
    blob = json.dumps(data).replace("</", "<\\/")
    several = "per_model" in data
    body = [_html_header(data)]
    for model, section in sections(data):
        body += _html_model(
            data, section, _model_table(table, model, several), model, several, colors
        )
    if several:
        body.append(_html_interaction(data))
    agentic = data.get("agentic", False)
    drill = conversations.html_conversations if agentic else _html_drilldown
    body += [drill(data, table, _columns(data, several)), _html_method(data)]
    css = CSS + conversations.CSS if agentic else CSS
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>tooltrial: {escape(data['experiment'])}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{css}</style></head><body><main>{''.join(body)}</main>"
        f'<script type="application/json" id="report-data">{blob}</script>'
        f"<script>{JS}</script></body></html>\n"
    )


def _model_table(table: pl.DataFrame, model: str, several: bool) -> pl.DataFrame:
    return table.filter(pl.col("model") == model) if several else table


def _columns(data: dict[str, Any], several: bool) -> list[Column]:
    return [
        (model if several else None, v["variant"])
        for model, section in sections(data)
        for v in section["variants"]
    ]


def _html_model(
    data: dict[str, Any],
    section: dict[str, Any],
    table: pl.DataFrame,
    model: str,
    several: bool,
    colors: dict[str, str],
) -> list[str]:
    """The sections of one model's results; with several models, titled and keyed by it."""
    prefix = f"{model}/" if several else ""
    names = [v["variant"] for v in section["variants"]]
    parts = (
        _html_agentic(section, names, colors, prefix)
        if is_agentic(section)
        else _html_single_turn(section, table, names, colors, prefix)
    )
    if not several:
        return parts
    # Under the model's own heading, its sections are one level down.
    nested = [x.replace("<h2>", "<h3>").replace("</h2>", "</h3>") for x in parts]
    return [_html_model_title(data, section, model), *nested]


def _html_single_turn(
    section: dict[str, Any],
    table: pl.DataFrame,
    names: list[str],
    colors: dict[str, str],
    prefix: str,
) -> list[str]:
    return [
        _html_headline(section, colors, prefix),
        _html_variants(section, prefix),
        _html_heatmap(section, names),
        _html_categories(section, names, colors),
        _html_consistency(section, names, colors),
        _html_cost(section, colors),
        _html_largest(section, table),
        _html_power(section),
    ]


def _html_agentic(
    section: dict[str, Any], names: list[str], colors: dict[str, str], prefix: str
) -> list[str]:
    """Success and pass^k, what a success costs, why conversations failed, then the
    per-scenario views; the conversations themselves are in the drill-down."""
    return [
        _html_headline(section, colors, prefix),
        _html_table(
            "Steps, tokens and tool errors per success", *cost_table(section), PER_SUCCESS_NOTE
        ),
        _html_table("Why conversations failed", *failure_table(section), FAILURE_NOTE),
        _html_details(section, prefix),
        _html_heatmap(section, names, "success"),
        _html_categories(section, names, colors, "success"),
        _html_consistency(section, names, colors),
        _html_largest_scenarios(section),
        _html_power(section),
    ]


def _html_table(title: str, header: list[str], rows: list[list[str]], note: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    # numbers right-aligned; names (the first column) and lists of words left
    left = {0, *(i for i, h in enumerate(header) if h == "stop reasons")}
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{escape(c)}</td>" if i in left else f'<td class="num">{escape(c)}</td>'
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return (
        f"<h2>{escape(title)}</h2><table><tr>{head}</tr>{body}</table>"
        f'<div class="note">{escape(note)}</div>'
    )


def _html_largest_scenarios(section: dict[str, Any]) -> str:
    """Where the success rates differ most, each a link to its conversations."""
    parts = []
    for comp in section["comparisons"]:
        t, ref = comp["treatment"], comp["reference"]
        parts.append(f"<h2>Where {escape(t)} and {escape(ref)} differ most</h2>")
        items = "".join(
            f'<li><a href="#s-{escape(d["scenario_id"])}">{escape(d["scenario_id"])}</a>: '
            f"{pct(d['reference'])} → {pct(d['treatment'])}</li>"
            for d in comp["largest_differences"]
        )
        parts.append(
            f"<ul>{items}</ul>" if items else "<p>No scenario differs in success rate.</p>"
        )
    return "".join(parts)


def _key(prefix: str, *parts: Any) -> str:
    return escape(prefix + ".".join(str(p) for p in parts))


def _html_header(data: dict[str, Any]) -> str:
    warnings = "".join(f'<div class="warn">{escape(w)}</div>' for w in data["warnings"])
    return (
        f"<h1>{escape(data['experiment'])}</h1>"
        f'<div class="sub">model {escape(", ".join(data["models"]))} · '
        f'<span data-key="results">{data["results"]}</span> results from '
        f"{len(data['files'])} files · {data['error_lines']} error lines (not counted) · "
        f"fixed now {escape(data['fixed_timestamp'])}</div>{warnings}"
    )


def _html_model_title(data: dict[str, Any], section: dict[str, Any], model: str) -> str:
    role = " (reference model)" if model == data["reference_model"] else ""
    return (
        f'<h2 class="model" id="model-{escape(model)}">Model {escape(model)}{role}</h2>'
        f'<div class="sub"><span data-key="{_key(model + "/", "results")}">'
        f"{section['results']}</span> results · {section['error_lines']} error lines "
        "(not counted)</div>"
    )


def _html_headline(section: dict[str, Any], colors: dict[str, str], prefix: str) -> str:
    """The declared primary metric per variant, and each comparison on it."""
    primary = section["comparisons"][0]["metrics"] if section["comparisons"] else []
    agentic = is_agentic(section)
    fallback = ("success", "success") if agentic else ("exact", "exact match")
    metric = next((m["metric"] for m in primary if m["primary"]), fallback[0])
    label = next((m["label"] for m in primary if m["primary"]), fallback[1])
    cards = []
    for v in section["variants"]:
        cards.append(
            f'<div class="card" style="border-top: 4px solid {colors[v["variant"]]}">'
            f'<div class="label">{escape(v["variant"])} · {escape(label)}</div>'
            f'<div class="big" data-key="{_key(prefix, "variants", v["variant"], metric)}">'
            f"{pct(v['rates'][metric])}</div>"
            + (_pass_k_card_line(section, v["variant"], prefix) if agentic else "")
            + f'<div class="sub">{v["results"]} results, {v["scenarios"]} scenarios × '
            f"{v['reps']} reps</div></div>"
        )
    parts = [
        f"<h2>Headline: {escape(label)}</h2>",
        '<div class="note">The experiment\'s declared primary metric; its p-value is the '
        "one not adjusted for multiplicity.</div>",
        f'<div class="cards">{"".join(cards)}',
    ]
    for comp in section["comparisons"]:
        m = next(x for x in comp["metrics"] if x["metric"] == metric)
        diff, ci = fmt_diff(m)
        t = comp["treatment"]
        parts.append(
            f'<div class="card"><div class="label">{escape(t)} − '
            f"{escape(comp['reference'])}</div>"
            f'<div class="big" data-key="{_key(prefix, "diff", t, metric)}">{diff}</div>'
            f'<div>95% CI <span data-key="{_key(prefix, "ci", t, metric)}">{ci}</span></div>'
            f'<div>p = <span data-key="{_key(prefix, "p", t, metric)}">'
            f"{p_text(m['p_value'])}</span> · {m['scenarios']} scenarios</div></div>"
        )
    parts.append("</div>")
    if agentic:  # pass^k beside success; what a success costs comes before the details
        lines = "".join(f"<li>{escape(line)}</li>" for line in pass_k_lines(section))
        parts.append(f"<ul>{lines}</ul>")
    else:
        parts.append(_html_details(section, prefix))
    return "".join(parts)


def _html_details(section: dict[str, Any], prefix: str) -> str:
    """pass^k and pass@k, then every metric of each comparison."""
    comparisons = (_html_comparison(comp, prefix) for comp in section["comparisons"])
    return _html_reliability(section) + "".join(comparisons)


def _pass_k_card_line(section: dict[str, Any], variant: str, prefix: str) -> str:
    """pass^k (k: the reps every variant has) under a variant's success rate."""
    k = top_k(section)
    if k is None:
        return ""
    value = next(r["pass_hat"][str(k)] for r in section["reliability"] if r["variant"] == variant)
    return (
        f'<div>pass^{k} <span data-key="{_key(prefix, "variants", variant, "pass_hat")}">'
        f"{pct(value)}</span></div>"
    )


def _html_reliability(section: dict[str, Any]) -> str:
    """pass^k and pass@k per variant on the primary metric, and their differences."""
    rel = section["reliability"]
    if not rel:
        return ""
    ks = sorted({int(k) for r in rel for k in r["pass_hat"]})
    last = str(ks[-1])
    head = "".join(f"<th>pass^{k}</th>" for k in ks) + f"<th>pass@{last}</th>"
    rows = "".join(
        f"<tr><td>{escape(r['variant'])}</td>"
        + "".join(f'<td class="num">{pct(r["pass_hat"].get(str(k)))}</td>' for k in ks)
        + f'<td class="num">{pct(r["pass_at"][last])}</td></tr>'
        for r in rel
    )
    diffs = "".join(
        f"<li>pass^{d['k']}, {escape(c['treatment'])} − {escape(c['reference'])}: "
        + " ".join(fmt_diff({**d, "metric": "exact"}, "estimate"))
        + f", p = {p_text(d['p_value'])}</li>"
        for c in section["comparisons"]
        for d in c["reliability_differences"]
    )
    return (
        f"<h2>Reliability over repetitions ({escape(rel[0]['metric'])})</h2>"
        f"<table><tr><th>variant</th>{head}</tr>{rows}</table><ul>{diffs}</ul>"
        '<div class="note">pass^k: the chance that k tries of a scenario all succeed; '
        "pass@k: that at least one does (averaged over scenarios).</div>"
    )


def _html_comparison(comp: dict[str, Any], prefix: str) -> str:
    t, ref = comp["treatment"], comp["reference"]
    metrics = {m["metric"] for m in comp["metrics"]}
    rows = []
    for m in comp["metrics"]:
        diff, ci = fmt_diff(m)
        primary = " <b>(primary)</b>" if m["primary"] else ""
        rows.append(
            f"<tr><td>{escape(m['label'])}{primary}</td>"
            f'<td class="num">{fmt_mean(m["metric"], m["reference_mean"])}</td>'
            f'<td class="num">{fmt_mean(m["metric"], m["treatment_mean"])}</td>'
            f'<td class="num" data-key="{_key(prefix, "diff", t, m["metric"])}">{diff}</td>'
            f'<td class="num">{ci}</td><td class="num">{p_text(m["p_value"])}</td>'
            f'<td class="num">{holm_text(m)}</td>'
            f'<td class="num">{p_text(m["p_sign_flip"])}</td>'
            f'<td class="num">{m["scenarios"]}</td></tr>'
        )
    notes = "".join(f"<li>{escape(n)}</li>" for n in comparison_notes(comp))
    return (
        f"<h2>{escape(t)} vs {escape(ref)}: every metric</h2>"
        + _forest([m for m in comp["metrics"] if is_rate(m["metric"])])
        + f"<table><tr><th>metric</th><th>{escape(ref)}</th><th>{escape(t)}</th>"
        "<th>difference</th><th>95% CI</th><th>p (t)</th><th>p Holm</th><th>p (sign-flip)</th>"
        "<th>scenarios</th></tr>"
        + "".join(rows)
        + f"</table><ul>{notes}</ul>"
        + '<div class="note">Differences are treatment − reference, in percentage '
        "points for rates. p Holm: adjusted over the secondary metrics of this comparison; "
        + (_AGENTIC_COMPARISON_NOTE if "success" in metrics else _SINGLE_TURN_COMPARISON_NOTE)
        + "Intervals: the paired t-test's own 95% interval across scenarios. Means here "
        "weigh each scenario the same and use only scenarios both variants have, so they "
        "can differ slightly from the per-variant rates.</div>"
    )


_SINGLE_TURN_COMPARISON_NOTE = (
    "input tokens differ by design and are not tested. "
    "Arguments are judged only where the tool was right. "
)
_AGENTIC_COMPARISON_NOTE = (
    "input tokens are tested (over a conversation they grow with the path taken). "
    "A verdict part is compared only over scenarios that judge it for both variants. "
)


def _forest(metrics: list[dict[str, Any]], key: str = "difference") -> str:
    """Each rate difference (``m[key]``) with its interval, on one axis with zero marked."""
    lo = min([-0.1, *(m["ci_low"] for m in metrics if m["ci_low"] is not None)])
    hi = max([0.1, *(m["ci_high"] for m in metrics if m["ci_high"] is not None)])
    left, width, row = 230, 560, 26
    height = row * len(metrics) + 40

    def x(v: float) -> float:
        return float(left + (v - lo) / (hi - lo) * width)

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
        out.append(f'<circle cx="{x(m[key]):.1f}" cy="{y}" r="5" fill="{color}"/>')
    for tick in (lo, 0.0, hi):
        out.append(
            f'<text x="{x(tick):.1f}" y="{height - 8}" text-anchor="middle" '
            f'fill="#666">{signed_pct(tick)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _html_variants(section: dict[str, Any], prefix: str) -> str:
    rows = []
    for v in section["variants"]:
        r, fp = v["rates"], v["tool_footprint"]
        tokens = f"{fp['tokens']:,} tokens ({escape(fp['counted_by'])}), "
        cells = "".join(
            f'<td class="num" data-key="{_key(prefix, "variants", v["variant"], m)}">'
            f"{pct(r[m])}</td>"
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
        "<div class=\"note\">Tool definitions: the variant's tools as the model's API takes "
        "them, in characters and in tokens, counted when the run started by the model's own "
        "tokenizer where it has one here, else estimated (as said beside each).</div>"
    )


def _heat_color(rate: float | None) -> str:
    if rate is None:
        return "#eee"
    # red (0) → yellow (0.5) → green (1)
    hue = 120 * rate
    return f"hsl({hue:.0f}, 65%, 78%)"


def _html_heatmap(section: dict[str, Any], names: list[str], metric: str = "exact") -> str:
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    rows = []
    for s in section["scenarios"]:
        cells = "".join(
            f'<td class="heat" data-scenario="{escape(s["id"])}" '
            f'style="background: {_heat_color(s[metric][n])}" '
            + (f'title="expect {escape(s["expect"][n])}"' if "expect" in s else "")
            + f">{pct(s[metric][n])}</td>"
            for n in names
        )
        rows.append(f"<tr><td>{escape(s['id'])}</td><td>{escape(s['category'])}</td>{cells}</tr>")
    return (
        f"<h2>Scenario × variant ({_rate_name(metric)} over reps)</h2>"
        f"<table><tr><th>scenario</th><th>category</th>{head}</tr>{''.join(rows)}</table>"
        '<div class="note">Click a cell to open that scenario\'s '
        + ("conversations" if metric == "success" else "responses")
        + ".</div>"
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


def _html_categories(
    section: dict[str, Any], names: list[str], colors: dict[str, str], metric: str = "exact"
) -> str:
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for row in section["categories"]:
        rows.setdefault(row["category"], {})[row["variant"]] = row
    groups = [
        (
            category,
            [
                (n, cells[n][metric], f"{pct(cells[n][metric])} of {cells[n]['results']}")
                for n in names
                if n in cells
            ],
        )
        for category, cells in rows.items()
    ]
    label = "success" if metric == "success" else "exact match"
    return f"<h2>Per category ({label})</h2>" + _legend(colors) + _bars(groups, 1.0, colors)


def _html_consistency(section: dict[str, Any], names: list[str], colors: dict[str, str]) -> str:
    per = {r["variant"]: r for r in section["consistency"]["per_variant"]}
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
    flips = section["consistency"]["flips"]
    agentic = is_agentic(section)
    metric = "success" if agentic else "exact"
    listed = (
        "".join(
            f"<li>{escape(f['scenario_id'])} ({escape(f['variant'])}): right in {pct(f[metric])} "
            f"of reps</li>"
            for f in flips
        )
        or "<li>none: every scenario is right every rep or wrong every rep</li>"
    )
    same = "the same final state of the app" if agentic else "same tools and arguments"
    return (
        "<h2>Consistency across repetitions</h2>"
        '<div class="note">Agreement: share of reps giving the scenario\'s most common answer '
        f"({same}), averaged over scenarios. Flipping: right in some reps, "
        "wrong in others.</div>" + _bars(groups, 1.0, colors) + f"<ul>{listed}</ul>"
    )


def _html_cost(section: dict[str, Any], colors: dict[str, str]) -> str:
    vs = section["variants"]
    panels = []
    panels_spec: list[tuple[str, Callable[[Any], Any], int]] = [
        ("input tokens (mean)", lambda v: v["input_tokens"], 0),
        ("output tokens (mean)", lambda v: v["output_tokens"], 0),
        ("latency s (mean)", lambda v: v["latency_s"]["mean"], 2),
        ("tool definitions (chars)", lambda v: v["tool_footprint"]["chars"], 0),
    ]
    for title, get, digits in panels_spec:
        values = [get(v) or 0 for v in vs]
        groups = [(title, [(v["variant"], get(v), number(get(v), digits)) for v in vs])]
        panels.append(_bars(groups, max(values) or 1, colors))
    return "<h2>Tokens and latency</h2>" + _legend(colors) + "".join(panels)


def _label(column: Column) -> str:
    model, variant = column
    return variant if model is None else f"{model} · {variant}"


def _responses(
    table: pl.DataFrame, scenario_id: str, columns: list[Column], max_reps: int = 20
) -> str:
    rows = table.filter(pl.col("scenario_id") == scenario_id).sort("model", "variant", "rep")
    by_column = [_column_rows(rows, column, max_reps) for column in columns]
    reps = max((len(v) for v in by_column), default=0)
    head = "".join(f"<th>{escape(_label(c))}</th>" for c in columns)
    body = []
    for i in range(reps):
        cells = []
        for items in by_column:
            cells.append(_response_cell(items[i]) if i < len(items) else "<td></td>")
        body.append(f"<tr><td>{i + 1}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>#</th>{head}</tr>{''.join(body)}</table>"


def _column_rows(rows: pl.DataFrame, column: Column, limit: int) -> list[dict[str, Any]]:
    model, variant = column
    picked = rows.filter(pl.col("variant") == variant)
    if model is not None:
        picked = picked.filter(pl.col("model") == model)
    return picked.head(limit).to_dicts()


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


def _html_largest(section: dict[str, Any], table: pl.DataFrame) -> str:
    parts = []
    for comp in section["comparisons"]:
        pair: list[Column] = [(None, comp["reference"]), (None, comp["treatment"])]
        parts.append(
            f"<h2>Where {escape(comp['treatment'])} and {escape(comp['reference'])} "
            "differ most</h2>"
        )
        if not comp["largest_differences"]:
            parts.append("<p>No scenario differs in exact-match rate.</p>")
        for d in comp["largest_differences"]:
            prompt = next(s["prompt"] for s in section["scenarios"] if s["id"] == d["scenario_id"])
            parts.append(
                f"<details><summary><b>{escape(d['scenario_id'])}</b>: "
                f"{pct(d['reference'])} → {pct(d['treatment'])}</summary>"
                f"<p>“{escape(prompt)}”</p>{_responses(table, d['scenario_id'], pair)}</details>"
            )
    return "".join(parts)


def _html_power(section: dict[str, Any]) -> str:
    parts = []
    for comp in section["comparisons"]:
        p = comp["power"]
        rows = "".join(
            f'<tr><td class="num">{signed_pct(x["difference"])}</td><td class="num">'
            f'{x["reps"]}</td><td class="num">{x["scenarios"] or "> 10,000"}</td></tr>'
            for x in p["plans"]
        )
        parts.append(
            f"<h2>Power: {escape(comp['treatment'])} vs {escape(comp['reference'])}</h2>"
            f"<p>Scenarios needed to detect a difference in {_rate_name(p['metric'])} "
            "with 80% power "
            f"(two-sided, α = 0.05), taking these results as a pilot: between-scenario variance "
            f"{p['between_var']:.4f}, rep-to-rep variance {p['within_var']:.4f}."
            f"{escape(' ' + WORST_CASE) if p['worst_case'] else ''}</p>"
            f"<table><tr><th>difference</th><th>reps</th><th>scenarios</th></tr>{rows}</table>"
        )
    return "".join(parts)


def _rate_name(metric: str) -> str:
    return "success rate" if metric == "success" else "exact-match rate"


def _html_drilldown(data: dict[str, Any], table: pl.DataFrame, columns: list[Column]) -> str:
    rates = _drill_rates(data)
    parts = [
        "<h2>Every scenario's responses</h2>"
        '<input id="filter" type="search" placeholder="filter: id, prompt, tool, text…">'
        ' <button id="expand" type="button">expand all</button> '
        '<span id="shown" class="note"></span><div id="drill">'
    ]
    for s in data["scenarios"]:
        shown = " · ".join(f"{escape(_label(c))} {pct(rates.get((s['id'], *c)))}" for c in columns)
        parts.append(
            f'<details id="s-{escape(s["id"])}"><summary><b>{escape(s["id"])}</b> '
            f'<span class="note">{escape(s["category"])} · {shown}</span></summary>'
            f"<p>“{escape(s['prompt'])}”</p>{_responses(table, s['id'], columns)}</details>"
        )
    parts.append("</div>")
    return "".join(parts)


def _html_method(data: dict[str, Any]) -> str:
    items = "".join(f"<li><b>{escape(k)}</b>: {escape(v)}</li>" for k, v in data["method"].items())
    return f"<h2>Method</h2><ul>{items}</ul>"


def _drill_rates(data: dict[str, Any]) -> dict[tuple[str, str | None, str], float | None]:
    """(scenario, model or None, variant) → exact-match rate, from the payload's sections."""
    several = "per_model" in data
    return {
        (s["id"], model if several else None, variant): rate
        for model, section in sections(data)
        for s in section["scenarios"]
        for variant, rate in s["exact"].items()
    }


def _html_interaction(data: dict[str, Any]) -> str:
    first = data["reference_model"]
    parts = [
        "<h2>Interaction: does the difference between variants depend on the model?</h2>"
        f'<div class="note">Per scenario, (treatment − reference in the model) − (the same '
        f"in {escape(first)}), averaged over the scenarios with results in all four cells; "
        "intervals resample scenarios, p (t): paired t-test on these differences.</div>"
    ]
    for block in data["interaction"]:
        parts.append(_html_interaction_block(block))
    return "".join(parts)


def _html_interaction_block(block: dict[str, Any]) -> str:
    model, t, ref = block["model"], block["treatment"], block["reference"]
    first = block["reference_model"]
    prefix = f"interaction/{model}/"
    rows = []
    for m in block["metrics"]:
        diff, ci = fmt_diff(m, "interaction")
        rows.append(
            f"<tr><td>{escape(m['label'])}</td>"
            f'<td class="num">{signed_pct(m["reference_model_difference"])}</td>'
            f'<td class="num">{signed_pct(m["model_difference"])}</td>'
            f'<td class="num" data-key="{_key(prefix, "diff", t, m["metric"])}">{diff}</td>'
            f'<td class="num" data-key="{_key(prefix, "ci", t, m["metric"])}">{ci}</td>'
            f'<td class="num" data-key="{_key(prefix, "p", t, m["metric"])}">'
            f"{p_text(m['p_value'])}</td>"
            f'<td class="num">{p_text(m["p_sign_flip"])}</td>'
            f'<td class="num">{m["scenarios"]}</td></tr>'
        )
    return (
        f"<h3>{escape(t)} − {escape(ref)}: {escape(model)} vs {escape(first)}</h3>"
        + _forest(block["metrics"], "interaction")
        + f"<table><tr><th>metric</th><th>Δ {escape(first)}</th><th>Δ {escape(model)}</th>"
        "<th>interaction</th><th>95% CI</th><th>p (t)</th><th>p (sign-flip)</th>"
        "<th>scenarios</th></tr>" + "".join(rows) + "</table>"
    )
