"""The report as Markdown, rendered from the payload alone (no analysis objects).

Guarantee: every number is one of the payload's, formatted by ``formatting``; the
headline rates are the payload's ``headline`` (per-scenario), the same numbers the HTML
cards show. With one model the document is the one-model report; with several, a section
per model (variant table, comparisons, categories, consistency) and an interaction
section. An agentic experiment's sections lead with success and pass^k, then what a
success costs and why conversations failed (``report.agentic``), instead of the
single-turn variant table.
"""

from __future__ import annotations

from tooltrial.report.agentic import (
    FAILURE_NOTE,
    PER_SUCCESS_NOTE,
    cost_table,
    failure_table,
    pass_k_lines,
)
from tooltrial.report.costs import md_cost
from tooltrial.report.document import (
    Comparison,
    Interaction,
    ModelSection,
    Power,
    ReportPayload,
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

POWER_NOTE = (
    "Simulated from these results as a pilot, with this report's own test: studies drawn "
    "from these scenarios (all-or-nothing ones stay so), the difference added to every "
    "scenario's rate. It assumes new scenarios are like these."
)
SHARES_NOTE = (
    "Rates here are shares of all results, so a scenario with more reps weighs more; the "
    "headline and the comparisons weigh each scenario the same."
)


def render_markdown(data: ReportPayload) -> str:
    lines = [
        f"# tooltrial report: {data.experiment}",
        "",
        f"{data.results} results from {len(data.files)} files; "
        f"model(s): {', '.join(data.models)}; {data.error_lines} error lines (not counted).",
        "",
    ]
    lines += [f"> warning: {w}" for w in data.warnings]
    verdicts = verdict_lines(data)
    if verdicts:
        lines += ["## Verdict", "", *(f"- {v}" for v in verdicts), ""]
    if not data.several_models:
        lines += _md_model(data, data.per_model[0], "##")
    else:
        for section in data.per_model:
            lines += _md_model_header(data, section)
            lines += _md_model(data, section, "###")
        lines += _md_interaction(data)
    lines += md_cost(data)  # with a price table only
    lines += ["", "## Method", ""]
    lines += [f"- {k}: {v}" for k, v in data.method.items()]
    return "\n".join(lines) + "\n"


def _md_model_header(data: ReportPayload, section: ModelSection) -> list[str]:
    role = " (reference model)" if section.model == data.reference_model else ""
    return [
        f"## Model {section.model}{role}",
        "",
        f"{section.results} results; {section.error_lines} error lines (not counted).",
        "",
    ]


def _md_model(data: ReportPayload, section: ModelSection, h: str) -> list[str]:
    agentic = data.kind == "agentic"
    rate = "success rate" if agentic else "exact-match rate"
    lines = _md_headline(data, section, h)
    lines += (
        _md_agentic(section, h)
        if agentic
        else [f"{h} Per variant", "", _md_variants(section), "", f"> {SHARES_NOTE}", ""]
    )
    lines += _md_reliability(section, h)
    for comp in section.comparisons:
        lines += _md_comparison(comp, h, rate)
    label = "success" if agentic else "exact match"
    lines += [f"{h} Per category ({label})", "", _md_categories(section), ""]
    lines += [f"{h} Consistency across repetitions", ""]
    answers = "final states" if agentic else "answers"
    outcome = "success and failure" if agentic else "right and wrong"
    for row in section.consistency.per_variant:
        lines.append(
            f"- **{row.variant}**: reps agree on {pct(row.mean_agreement)} of {answers} "
            f"on average; {pct(row.all_reps_agree)} of scenarios give the same answer "
            f"every rep; {row.flipping_scenarios} scenario(s) flip between {outcome}."
        )
    flips = section.consistency.flips
    if flips:
        lines.append("- flipping: " + ", ".join(f"{f.scenario_id} ({f.variant})" for f in flips))
    return lines


def _md_headline(data: ReportPayload, section: ModelSection, h: str) -> list[str]:
    """The declared primary metric, one line per comparison: the headline rates and the
    paired difference."""
    out = [f"{h} Headline", ""]
    rates, metric = section.headline.rates, section.headline.metric
    for comp in section.comparisons:
        m = comp.primary
        if m is None:
            continue
        diff, ci = fmt_difference(m)
        out.append(
            f"**{m.label}** (the declared primary metric): {comp.treatment} "
            f"{fmt_mean(metric, rates[comp.treatment])} vs {comp.reference} "
            f"{fmt_mean(metric, rates[comp.reference])}, {diff} {ci}, "
            f"p = {p_text(m.p_value)} (paired t over {m.scenarios} scenarios)."
        )
    if data.kind == "agentic":
        out += ["", *(f"- {line}" for line in pass_k_lines(section))]
    return [*out, ""]


def _md_agentic(section: ModelSection, h: str) -> list[str]:
    """What a success costs, and why conversations failed."""
    return [
        f"{h} Steps, tokens and tool errors per success",
        "",
        md_table(*cost_table(section)),
        "",
        f"> {PER_SUCCESS_NOTE}",
        "",
        f"{h} Why conversations failed",
        "",
        md_table(*failure_table(section)),
        "",
        f"> {FAILURE_NOTE}",
        "",
    ]


def _md_reliability(section: ModelSection, h: str) -> list[str]:
    """pass^k and pass@k per variant, and their paired differences."""
    rel = section.reliability
    if not rel:
        return []
    ks = sorted({k for r in rel for k in r.pass_hat})
    header = ["variant", *(f"pass^{k}" for k in ks), f"pass@{ks[-1]}"]
    rows = [[r.variant, *(pct(r.pass_hat.get(k)) for k in ks), pct(r.pass_at[ks[-1]])] for r in rel]
    out = [f"{h} Reliability over repetitions ({rel[0].metric})", "", md_table(header, rows)]
    out += ["", *(f"> {line}" for line in excluded_lines(section))]
    out += [""] if excluded_lines(section) else []
    for comp in section.comparisons:
        for d in comp.reliability_differences:
            out.append("- " + pass_k_difference_line(d, comp.treatment, comp.reference))
    return [*out, ""]


def md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _md_variants(section: ModelSection) -> str:
    rows = []
    for v in section.variants:
        r, fp = v.rates, v.tool_footprint
        tokens = f"{fp.tokens} tok / "
        rows.append(
            [
                v.variant,
                str(v.results),
                pct(r["exact"]),
                pct(r["tool_correct"]),
                pct(r["args_correct"]),
                pct(r["abstain_correct"]),
                pct(r["hallucinated"]),
                number(v.calls_per_answer, 2),
                number(v.input_tokens, 0),
                number(v.output_tokens, 0),
                number(v.latency_s.mean, 2),
                f"{tokens}{fp.chars} chars",
            ]
        )
    header = [
        "variant",
        "results",
        "exact",
        "action",
        "args",
        "no-call/clarify",
        "halluc.",
        "calls/answer",
        "tokens in",
        "tokens out",
        "latency s",
        "tool definitions",
    ]
    return md_table(header, rows)


def _md_comparison(comp: Comparison, h: str, rate: str) -> list[str]:
    ref, trt = comp.reference, comp.treatment
    rows = []
    for m in comp.metrics:
        diff, ci = fmt_difference(m)
        rows.append(
            [
                m.label + (" (primary)" if m.primary else ""),
                fmt_mean(m.metric, m.reference_mean),
                fmt_mean(m.metric, m.treatment_mean),
                diff,
                ci,
                p_text(m.p_value),
                holm_text(m),
                p_text(m.p_sign_flip),
                str(m.scenarios),
            ]
        )
    header = [
        "metric",
        ref,
        trt,
        "difference",
        "95% CI",
        "p (t)",
        "p Holm",
        "p (sign-flip)",
        "scenarios",
    ]
    out = [f"{h} {trt} vs {ref}", ""]
    if comp.verdict is not None:
        out += [f"**Verdict**: {comp.verdict.text}", ""]
    changes = tool_change_lines(comp)
    if changes:
        out += [f"What changed in the tools, {ref} → {trt}:", ""]
        out += [f"- {line}" for line in changes] + [""]
    out += [md_table(header, rows), ""]
    notes = comparison_notes(comp)
    out += [f"> {note}" for note in notes]
    out += [""] if notes else []
    if comp.largest_differences:
        out += [f"Scenarios that differ most ({rate}):", ""]
        out += [
            f"- {d.scenario_id}: {pct(d.reference)} → {pct(d.treatment)}"
            for d in comp.largest_differences
        ]
        out.append("")
    return out + _md_power(comp.power)


def _md_power(power: Power) -> list[str]:
    if not power.plans:
        return []
    out = [f"Scenarios needed for 80% power ({power.metric}, these results as a pilot):", ""]
    out += [f"> {POWER_NOTE} {detectable_text(power)}"]
    out += [f"> {note}" for note in power.notes]
    rows = [[f"±{100 * p.difference:.0f} pp", str(p.reps), plan_text(p)] for p in power.plans]
    return [*out, "", md_table(["difference", "reps", "scenarios"], rows), ""]


def _md_categories(section: ModelSection) -> str:
    names = section.variant_names()
    table: dict[str, dict[str, str]] = {}
    for row in section.categories:
        table.setdefault(row.category, {})[row.variant] = pct(row.rate)
    rows = [[c, *(cells.get(n, "–") for n in names)] for c, cells in table.items()]
    return md_table(["category", *names], rows)


def _md_interaction(data: ReportPayload) -> list[str]:
    first = data.reference_model
    out = [
        "## Interaction: does the difference between variants depend on the model?",
        "",
        f"Per scenario, (treatment − reference in the model) − (the same in {first}); "
        "mean over the scenarios with results in all four cells.",
        "",
    ]
    for block in data.interaction:
        out += _md_interaction_block(block)
    return out


def _md_interaction_block(block: Interaction) -> list[str]:
    first = block.reference_model
    rows = []
    for m in block.metrics:
        diff, ci = fmt_diff(m.metric, m.interaction, m.ci_low, m.ci_high)
        rows.append(
            [
                m.label,
                signed_pct(m.reference_model_difference),
                signed_pct(m.model_difference),
                diff,
                ci,
                p_text(m.p_value),
                p_text(m.p_sign_flip),
                str(m.scenarios),
            ]
        )
    header = ["metric", f"Δ {first}", f"Δ {block.model}", "interaction", "95% CI"]
    header += ["p (t)", "p (sign-flip)", "scenarios"]
    title = f"### {block.treatment} − {block.reference}: {block.model} vs {first}"
    return [title, "", md_table(header, rows), ""]
