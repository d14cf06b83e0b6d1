"""The report as one self-contained HTML page, rendered from the payload.

Guarantees: nothing is fetched (inline CSS, inline SVG from ``charts``, a few lines of
inline JavaScript from ``assets``), so the page opens offline; every headline number
carries a ``data-key`` and is the payload's, formatted by ``formatting`` as the Markdown
formats it; the page embeds the payload's JSON (exactly ``--format json``'s) as
``#report-data``. Keys:

- ``results``;
- ``variants.<variant>.<primary metric>``: the headline rate (``ModelSection.headline``);
- ``diff|ci|p.<treatment>.<metric>``: a comparison (the headline card on the primary
  metric; ``diff`` also for every metric of the comparison table);
- ``rates.<variant>.<metric>``: single-turn, the per-variant table's shares of results;
- agentic, ``variants.<variant>.pass_hat``: the headline's pass^k;
- with several models each of these is prefixed ``<model>/`` (and ``<model>/results`` is
  that model's count), and the interaction adds ``interaction/<model>/diff|ci|p.
  <treatment>.<metric>``.

An agentic report (``kind`` "agentic") keeps the page's shape and keys, shows what a
success costs and why conversations failed instead of the single-turn variant table, and
its drill-down is every conversation (``report.conversations``; single-turn:
``report.responses``).
"""

from __future__ import annotations

import polars as pl

from tooltrial.analysis import METRICS, RATE_METRICS, is_rate
from tooltrial.report import charts, conversations, responses
from tooltrial.report.agentic import (
    FAILURE_NOTE,
    PER_SUCCESS_NOTE,
    cost_table,
    failure_table,
    pass_k_lines,
    top_k,
)
from tooltrial.report.assets import COLORS, CSS, JS
from tooltrial.report.costs import html_cost
from tooltrial.report.document import (
    Comparison,
    Interaction,
    Kind,
    ModelSection,
    ReportPayload,
    Scenario,
    Variant,
)
from tooltrial.report.formatting import (
    comparison_notes,
    detectable_text,
    excluded_lines,
    fmt_diff,
    fmt_difference,
    fmt_mean,
    holm_text,
    number,
    p_text,
    pass_k_difference_line,
    pct,
    plan_text,
    signed_pct,
    tool_change_lines,
    verdict_lines,
)
from tooltrial.report.markdown import POWER_NOTE, SHARES_NOTE
from tooltrial.report.markup import Column, escape


def render_html(data: ReportPayload, table: pl.DataFrame) -> str:
    names = [v.variant for s in data.per_model for v in s.variants]
    colors = {n: COLORS[i % len(COLORS)] for i, n in enumerate(dict.fromkeys(names))}
    blob = data.to_json(indent=None).replace("</", "<\\/")
    body = [_html_header(data)]
    for section in data.per_model:
        rows = table.filter(pl.col("model") == section.model) if data.several_models else table
        body += _html_model(data, section, rows, colors)
    if data.several_models:
        body.append(_html_interaction(data))
    agentic = data.kind == "agentic"
    drill = conversations.html_conversations if agentic else responses.html_responses
    body += [html_cost(data), drill(data, table), _html_method(data)]  # cost: with prices
    css = CSS + conversations.CSS if agentic else CSS
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>tooltrial: {escape(data.experiment)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{css}</style></head><body><main>{''.join(body)}</main>"
        f'<script type="application/json" id="report-data">{blob}</script>'
        f"<script>{JS}</script></body></html>\n"
    )


def _html_model(
    data: ReportPayload, section: ModelSection, table: pl.DataFrame, colors: dict[str, str]
) -> list[str]:
    """The sections of one model's results; with several models, titled and keyed by it."""
    prefix = f"{section.model}/" if data.several_models else ""
    parts = (
        _html_agentic(data, section, colors, prefix)
        if data.kind == "agentic"
        else _html_single_turn(data, section, table, colors, prefix)
    )
    if not data.several_models:
        return parts
    # Under the model's own heading, its sections are one level down.
    nested = [x.replace("<h2>", "<h3>").replace("</h2>", "</h3>") for x in parts]
    return [_html_model_title(data, section), *nested]


def _html_single_turn(
    data: ReportPayload,
    section: ModelSection,
    table: pl.DataFrame,
    colors: dict[str, str],
    prefix: str,
) -> list[str]:
    return [
        _html_headline(data, section, colors, prefix),
        _html_details(data.kind, section, prefix),
        _html_variants(section, prefix),
        _html_heatmap(data, section),
        _html_categories(data.kind, section, colors),
        _html_consistency(data.kind, section, colors),
        _html_cost(section, colors),
        _html_largest(data.scenarios, section, table),
        _html_power(data, section),
    ]


def _html_agentic(
    data: ReportPayload, section: ModelSection, colors: dict[str, str], prefix: str
) -> list[str]:
    """Success and pass^k, what a success costs, why conversations failed, then the
    per-scenario views; the conversations themselves are in the drill-down."""
    return [
        _html_headline(data, section, colors, prefix),
        _html_table(
            "Steps, tokens and tool errors per success", *cost_table(section), PER_SUCCESS_NOTE
        ),
        _html_table("Why conversations failed", *failure_table(section), FAILURE_NOTE),
        _html_details(data.kind, section, prefix),
        _html_heatmap(data, section),
        _html_categories(data.kind, section, colors),
        _html_consistency(data.kind, section, colors),
        _html_largest_scenarios(section),
        _html_power(data, section),
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


def _html_largest_scenarios(section: ModelSection) -> str:
    """Where the success rates differ most, each a link to its conversations."""
    parts = []
    for comp in section.comparisons:
        t, ref = comp.treatment, comp.reference
        parts.append(f"<h2>Where {escape(t)} and {escape(ref)} differ most</h2>")
        items = "".join(
            f'<li><a href="#s-{escape(d.scenario_id)}">{escape(d.scenario_id)}</a>: '
            f"{pct(d.reference)} → {pct(d.treatment)}</li>"
            for d in comp.largest_differences
        )
        parts.append(
            f"<ul>{items}</ul>" if items else "<p>No scenario differs in success rate.</p>"
        )
    return "".join(parts)


def _key(prefix: str, *parts: object) -> str:
    return escape(prefix + ".".join(str(p) for p in parts))


def _html_header(data: ReportPayload) -> str:
    warnings = "".join(f'<div class="warn">{escape(w)}</div>' for w in data.warnings)
    verdicts = "".join(f"<li>{escape(v)}</li>" for v in verdict_lines(data))
    return (
        f"<h1>{escape(data.experiment)}</h1>"
        f'<div class="sub">model {escape(", ".join(data.models))} · '
        f'<span data-key="results">{data.results}</span> results from '
        f"{len(data.files)} files · {data.error_lines} error lines (not counted) · "
        f"fixed now {escape(data.fixed_timestamp)}</div>{warnings}"
        + (f'<h2>Verdict</h2><ul class="verdict">{verdicts}</ul>' if verdicts else "")
    )


def _html_model_title(data: ReportPayload, section: ModelSection) -> str:
    model = section.model
    role = " (reference model)" if model == data.reference_model else ""
    return (
        f'<h2 class="model" id="model-{escape(model)}">Model {escape(model)}{role}</h2>'
        f'<div class="sub"><span data-key="{_key(model + "/", "results")}">'
        f"{section.results}</span> results · {section.error_lines} error lines "
        "(not counted)</div>"
    )


def _html_headline(
    data: ReportPayload, section: ModelSection, colors: dict[str, str], prefix: str
) -> str:
    """The declared primary metric per variant (the headline rates), and each comparison
    on it."""
    headline, label = section.headline, data.primary_label
    agentic = data.kind == "agentic"
    cards = [
        f'<div class="card" style="border-top: 4px solid {colors[v.variant]}">'
        f'<div class="label">{escape(v.variant)} · {escape(label)}</div>'
        f'<div class="big" data-key="{_key(prefix, "variants", v.variant, headline.metric)}">'
        f"{fmt_mean(headline.metric, headline.rates[v.variant])}</div>"
        + (_pass_k_card_line(section, v.variant, prefix) if agentic else "")
        + f'<div class="sub">{_counts(v)}</div></div>'
        for v in section.variants
    ]
    for comp in section.comparisons:
        m, t = comp.primary, comp.treatment
        if m is None:
            continue
        diff, ci = fmt_difference(m)
        cards.append(
            f'<div class="card"><div class="label">{escape(t)} − '
            f"{escape(comp.reference)}</div>"
            f'<div class="big" data-key="{_key(prefix, "diff", t, m.metric)}">{diff}</div>'
            f'<div>95% CI <span data-key="{_key(prefix, "ci", t, m.metric)}">{ci}</span></div>'
            f'<div>p = <span data-key="{_key(prefix, "p", t, m.metric)}">'
            f"{p_text(m.p_value)}</span> · {m.scenarios} scenarios</div></div>"
        )
    parts = [
        f"<h2>Headline: {escape(label)}</h2>",
        '<div class="note">The experiment\'s declared primary metric; its p-value is the '
        "one not adjusted for multiplicity. Each variant's rate is per scenario (reps "
        f"averaged first), then the mean over the {headline.scenarios} scenarios every "
        "variant has: the numbers the paired test compares.</div>",
        f'<div class="cards">{"".join(cards)}</div>',
    ]
    if agentic:  # pass^k beside success; what a success costs comes before the details
        lines = "".join(f"<li>{escape(line)}</li>" for line in pass_k_lines(section))
        parts.append(f"<ul>{lines}</ul>")
    return "".join(parts)


def _counts(v: Variant) -> str:
    reps = "1 rep" if v.reps == 1 else f"up to {v.reps} reps"
    return f"{v.results} results, {v.scenarios} scenarios, {reps}"


def _html_details(kind: Kind, section: ModelSection, prefix: str) -> str:
    """pass^k and pass@k, then every metric of each comparison."""
    comparisons = (_html_comparison(kind, comp, prefix) for comp in section.comparisons)
    return _html_reliability(section) + "".join(comparisons)


def _pass_k_card_line(section: ModelSection, variant: str, prefix: str) -> str:
    """pass^k (k: the reps every variant has) under a variant's success rate."""
    k = top_k(section)
    if k is None:
        return ""
    value = next(r.pass_hat[k] for r in section.reliability if r.variant == variant)
    return (
        f'<div>pass^{k} <span data-key="{_key(prefix, "variants", variant, "pass_hat")}">'
        f"{pct(value)}</span></div>"
    )


def _html_reliability(section: ModelSection) -> str:
    """pass^k and pass@k per variant on the primary metric, and their differences."""
    rel = section.reliability
    if not rel:
        return ""
    ks = sorted({k for r in rel for k in r.pass_hat})
    last = ks[-1]
    head = "".join(f"<th>pass^{k}</th>" for k in ks) + f"<th>pass@{last}</th>"
    rows = "".join(
        f"<tr><td>{escape(r.variant)}</td>"
        + "".join(f'<td class="num">{pct(r.pass_hat.get(k))}</td>' for k in ks)
        + f'<td class="num">{pct(r.pass_at[last])}</td></tr>'
        for r in rel
    )
    diffs = "".join(
        f"<li>{escape(pass_k_difference_line(d, c.treatment, c.reference))}</li>"
        for c in section.comparisons
        for d in c.reliability_differences
    )
    left = "".join(f'<div class="note">{escape(line)}</div>' for line in excluded_lines(section))
    return (
        f"<h2>Reliability over repetitions ({escape(rel[0].metric)})</h2>"
        f"<table><tr><th>variant</th>{head}</tr>{rows}</table>{left}<ul>{diffs}</ul>"
        '<div class="note">pass^k: the chance that k tries of a scenario all succeed; '
        "pass@k: that at least one does (averaged over the scenarios every variant has k "
        "results for). The differences are descriptive: an interval, no p-value.</div>"
    )


def _html_comparison(kind: Kind, comp: Comparison, prefix: str) -> str:
    t, ref = comp.treatment, comp.reference
    rows = []
    for m in comp.metrics:
        diff, ci = fmt_difference(m)
        primary = " <b>(primary)</b>" if m.primary else ""
        rows.append(
            f"<tr><td>{escape(m.label)}{primary}</td>"
            f'<td class="num">{fmt_mean(m.metric, m.reference_mean)}</td>'
            f'<td class="num">{fmt_mean(m.metric, m.treatment_mean)}</td>'
            f'<td class="num" data-key="{_key(prefix, "diff", t, m.metric)}">{diff}</td>'
            f'<td class="num">{ci}</td><td class="num">{p_text(m.p_value)}</td>'
            f'<td class="num">{holm_text(m)}</td>'
            f'<td class="num">{p_text(m.p_sign_flip)}</td>'
            f'<td class="num">{m.scenarios}</td></tr>'
        )
    notes = "".join(f"<li>{escape(n)}</li>" for n in comparison_notes(comp))
    said = (
        f'<p class="verdict"><b>Verdict</b>: {escape(comp.verdict.text)}</p>'
        if comp.verdict is not None
        else ""
    )
    changes = "".join(f"<li>{escape(line)}</li>" for line in tool_change_lines(comp))
    if changes:
        said += f"<p>What changed in the tools, {escape(ref)} → {escape(t)}:</p><ul>{changes}</ul>"

    rates = [
        (m.label, m.difference, m.ci_low, m.ci_high) for m in comp.metrics if is_rate(m.metric)
    ]
    return (
        f"<h2>{escape(t)} vs {escape(ref)}: every metric</h2>"
        + said
        + charts.forest(rates)
        + f"<table><tr><th>metric</th><th>{escape(ref)}</th><th>{escape(t)}</th>"
        "<th>difference</th><th>95% CI</th><th>p (t)</th><th>p Holm</th><th>p (sign-flip)</th>"
        "<th>scenarios</th></tr>"
        + "".join(rows)
        + f"</table><ul>{notes}</ul>"
        + '<div class="note">Differences are treatment − reference, in percentage '
        "points for rates. p Holm: adjusted over the secondary metrics of this comparison; "
        + (_AGENTIC_COMPARISON_NOTE if kind == "agentic" else _SINGLE_TURN_COMPARISON_NOTE)
        + "Intervals: 95% across scenarios, allowing for stuck scenarios (see Method); p (t) "
        "is the interval's own test. Means here "
        "weigh each scenario the same and use only scenarios both variants have (for the "
        "primary metric with two variants: the headline rates).</div>"
    )


_SINGLE_TURN_COMPARISON_NOTE = (
    "input tokens differ by design and are not tested. "
    "Arguments are judged only where the tool was right. "
)
_AGENTIC_COMPARISON_NOTE = (
    "input tokens are tested (over a conversation they grow with the path taken). "
    "A verdict part is compared only over scenarios that judge it for both variants. "
)


def _html_variants(section: ModelSection, prefix: str) -> str:
    rows = []
    for v in section.variants:
        fp = v.tool_footprint
        tokens = f"{fp.tokens:,} tokens ({escape(fp.counted_by)}), "
        cells = "".join(
            f'<td class="num" data-key="{_key(prefix, "rates", v.variant, m)}">'
            f"{pct(v.rates[m])}</td>"
            for m in RATE_METRICS
        )
        rows.append(
            f'<tr><td>{escape(v.variant)}</td><td class="num">{v.results}</td>{cells}'
            f'<td class="num">{number(v.calls_per_answer, 2)}</td>'
            f'<td class="num">{number(v.input_tokens, 0)}</td>'
            f'<td class="num">{number(v.output_tokens, 0)}</td>'
            f'<td class="num">{number(v.latency_s.mean, 2)} / '
            f"{number(v.latency_s.p95, 2)}</td>"
            f"<td>{tokens}{fp.chars:,} chars</td></tr>"
        )
    header = "".join(f"<th>{escape(METRICS[m])}</th>" for m in RATE_METRICS)
    return (
        "<h2>Per variant</h2><table><tr><th>variant</th><th>results</th>"
        f"{header}<th>tool calls per answer</th><th>tokens in</th><th>tokens out</th>"
        "<th>latency s (mean / p95)</th>"
        "<th>tool definitions</th></tr>" + "".join(rows) + "</table>"
        f'<div class="note">{escape(SHARES_NOTE)} Tool definitions: the variant\'s tools as '
        "the model's API takes them, in characters and in tokens, counted when the run "
        "started by the model's own tokenizer where it has one here, else estimated (as "
        "said beside each).</div>"
    )


def _rate_name(kind: Kind) -> str:
    return "success rate" if kind == "agentic" else "exact-match rate"


def _html_heatmap(data: ReportPayload, section: ModelSection) -> str:
    names = section.variant_names()
    expect = {s.id: s.expect for s in data.scenarios}
    category = {s.id: s.category for s in data.scenarios}
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    rows = []
    for s in section.scenarios:
        expected = expect.get(s.id)
        cells = "".join(
            f'<td class="heat" data-scenario="{escape(s.id)}" '
            f'style="background: {charts.heat_color(s.rates[n])}" '
            + (f'title="expect {escape(expected[n])}"' if expected is not None else "")
            + f">{pct(s.rates[n])}</td>"
            for n in names
        )
        rows.append(f"<tr><td>{escape(s.id)}</td><td>{escape(category[s.id])}</td>{cells}</tr>")
    drill = "conversations" if data.kind == "agentic" else "responses"
    return (
        f"<h2>Scenario × variant ({_rate_name(data.kind)} over reps)</h2>"
        f"<table><tr><th>scenario</th><th>category</th>{head}</tr>{''.join(rows)}</table>"
        f'<div class="note">Click a cell to open that scenario\'s {drill}.</div>'
    )


def _html_categories(kind: Kind, section: ModelSection, colors: dict[str, str]) -> str:
    rows: dict[str, dict[str, tuple[float | None, int]]] = {}
    for row in section.categories:
        rows.setdefault(row.category, {})[row.variant] = (row.rate, row.results)
    groups = [
        (
            category,
            [
                (n, cells[n][0], f"{pct(cells[n][0])} of {cells[n][1]}")
                for n in section.variant_names()
                if n in cells
            ],
        )
        for category, cells in rows.items()
    ]
    label = "success" if kind == "agentic" else "exact match"
    return (
        f"<h2>Per category ({label})</h2>"
        + charts.legend(colors)
        + charts.bars(groups, 1.0, colors)
    )


def _html_consistency(kind: Kind, section: ModelSection, colors: dict[str, str]) -> str:
    per = {r.variant: r for r in section.consistency.per_variant}
    groups = [
        (
            n,
            [
                (
                    n,
                    per[n].mean_agreement,
                    f"{pct(per[n].mean_agreement)} mean agreement, "
                    f"{per[n].flipping_scenarios} flipping",
                )
            ],
        )
        for n in section.variant_names()
        if n in per
    ]
    listed = (
        "".join(
            f"<li>{escape(f.scenario_id)} ({escape(f.variant)}): right in {pct(f.rate)} "
            f"of reps</li>"
            for f in section.consistency.flips
        )
        or "<li>none: every scenario is right every rep or wrong every rep</li>"
    )
    same = "the same final state of the app" if kind == "agentic" else "same tools and arguments"
    return (
        "<h2>Consistency across repetitions</h2>"
        '<div class="note">Agreement: share of reps giving the scenario\'s most common answer '
        f"({same}), averaged over scenarios. Flipping: right in some reps, "
        "wrong in others.</div>" + charts.bars(groups, 1.0, colors) + f"<ul>{listed}</ul>"
    )


def _html_cost(section: ModelSection, colors: dict[str, str]) -> str:
    vs = section.variants
    panels_spec: list[tuple[str, list[float | None], int]] = [
        ("input tokens (mean)", [v.input_tokens for v in vs], 0),
        ("output tokens (mean)", [v.output_tokens for v in vs], 0),
        ("latency s (mean)", [v.latency_s.mean for v in vs], 2),
        ("tool definitions (chars)", [float(v.tool_footprint.chars) for v in vs], 0),
    ]
    panels = []
    for title, values, digits in panels_spec:
        bars = [
            (v.variant, value, number(value, digits)) for v, value in zip(vs, values, strict=True)
        ]
        panels.append(charts.bars([(title, bars)], max(x or 0 for x in values) or 1, colors))
    return "<h2>Tokens and latency</h2>" + charts.legend(colors) + "".join(panels)


def _html_largest(
    scenarios: tuple[Scenario, ...], section: ModelSection, table: pl.DataFrame
) -> str:
    prompts = {s.id: s.prompt for s in scenarios}
    parts = []
    for comp in section.comparisons:
        pair: list[Column] = [(None, comp.reference), (None, comp.treatment)]
        parts.append(
            f"<h2>Where {escape(comp.treatment)} and {escape(comp.reference)} differ most</h2>"
        )
        if not comp.largest_differences:
            parts.append("<p>No scenario differs in exact-match rate.</p>")
        for d in comp.largest_differences:
            parts.append(
                f"<details><summary><b>{escape(d.scenario_id)}</b>: "
                f"{pct(d.reference)} → {pct(d.treatment)}</summary>"
                f"<p>“{escape(prompts[d.scenario_id])}”</p>"
                f"{responses.responses_table(table, d.scenario_id, pair)}</details>"
            )
    return "".join(parts)


def _html_power(data: ReportPayload, section: ModelSection) -> str:
    parts = []
    for comp in section.comparisons:
        p = comp.power
        rows = "".join(
            f'<tr><td class="num">±{100 * x.difference:.0f} pp</td><td class="num">'
            f'{x.reps}</td><td class="num">{escape(plan_text(x))}</td></tr>'
            for x in p.plans
        )
        label = data.primary_label if p.metric == data.primary_metric else p.metric
        notes = "".join(f'<div class="note">{escape(n)}</div>' for n in p.notes)
        parts.append(
            f"<h2>Power: {escape(comp.treatment)} vs {escape(comp.reference)}</h2>"
            f"<p>Scenarios needed to detect a difference in {escape(label)} "
            "(either way) with 80% power. "
            f"{escape(POWER_NOTE)} {escape(detectable_text(p))}</p>{notes}"
            f"<table><tr><th>difference</th><th>reps</th><th>scenarios</th></tr>{rows}</table>"
        )
    return "".join(parts)


def _html_method(data: ReportPayload) -> str:
    items = "".join(f"<li><b>{escape(k)}</b>: {escape(v)}</li>" for k, v in data.method.items())
    return f"<h2>Method</h2><ul>{items}</ul>"


def _html_interaction(data: ReportPayload) -> str:
    first = data.reference_model
    parts = [
        "<h2>Interaction: does the difference between variants depend on the model?</h2>"
        f'<div class="note">Per scenario, (treatment − reference in the model) − (the same '
        f"in {escape(first)}), averaged over the scenarios with results in all four cells; "
        "interval and p (t) by the same rule as every comparison, on these differences.</div>"
    ]
    parts += [_html_interaction_block(block) for block in data.interaction]
    return "".join(parts)


def _html_interaction_block(block: Interaction) -> str:
    model, t, ref, first = block.model, block.treatment, block.reference, block.reference_model
    prefix = f"interaction/{model}/"
    rows = []
    for m in block.metrics:
        diff, ci = fmt_diff(m.metric, m.interaction, m.ci_low, m.ci_high)
        rows.append(
            f"<tr><td>{escape(m.label)}</td>"
            f'<td class="num">{signed_pct(m.reference_model_difference)}</td>'
            f'<td class="num">{signed_pct(m.model_difference)}</td>'
            f'<td class="num" data-key="{_key(prefix, "diff", t, m.metric)}">{diff}</td>'
            f'<td class="num" data-key="{_key(prefix, "ci", t, m.metric)}">{ci}</td>'
            f'<td class="num" data-key="{_key(prefix, "p", t, m.metric)}">'
            f"{p_text(m.p_value)}</td>"
            f'<td class="num">{p_text(m.p_sign_flip)}</td>'
            f'<td class="num">{m.scenarios}</td></tr>'
        )
    estimates = [(m.label, m.interaction, m.ci_low, m.ci_high) for m in block.metrics]
    return (
        f"<h3>{escape(t)} − {escape(ref)}: {escape(model)} vs {escape(first)}</h3>"
        + charts.forest(estimates)
        + f"<table><tr><th>metric</th><th>Δ {escape(first)}</th><th>Δ {escape(model)}</th>"
        "<th>interaction</th><th>95% CI</th><th>p (t)</th><th>p (sign-flip)</th>"
        "<th>scenarios</th></tr>" + "".join(rows) + "</table>"
    )
