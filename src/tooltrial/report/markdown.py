"""The report as Markdown, rendered from the payload alone (no analysis objects).

Guarantee: every number is one of the payload's, formatted by ``formatting``. With one
model the document is the one-model report; with several, a section per model (variant
table, comparisons, categories, consistency) and an interaction section. An agentic
experiment's sections lead with success and pass^k, then what a success costs and why
conversations failed (``report.agentic``), instead of the single-turn variant table.
"""

from __future__ import annotations

from typing import Any

from tooltrial.report.agentic import (
    FAILURE_NOTE,
    PER_SUCCESS_NOTE,
    cost_table,
    failure_table,
    is_agentic,
    pass_k_lines,
)
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
from tooltrial.report.payload import sections

WORST_CASE = (
    "These results do not vary at all, so they cannot size a study: the table assumes "
    "the worst case, a 50% rate in both variants."
)


def render_markdown(data: dict[str, Any]) -> str:
    lines = [
        f"# tooltrial report: {data['experiment']}",
        "",
        f"{data['results']} results from {len(data['files'])} files; "
        f"model(s): {', '.join(data['models'])}; {data['error_lines']} error lines (not counted).",
        "",
    ]
    lines += [f"> warning: {w}" for w in data["warnings"]]
    if "per_model" not in data:
        lines += _md_model(data, "##")
    else:
        for model, section in sections(data):
            lines += _md_model_header(data, model, section)
            lines += _md_model(section, "###")
        lines += _md_interaction(data)
    lines += ["", "## Method", ""]
    lines += [f"- {k}: {v}" for k, v in data["method"].items()]
    return "\n".join(lines) + "\n"


def _md_model_header(data: dict[str, Any], model: str, section: dict[str, Any]) -> list[str]:
    role = " (reference model)" if model == data["reference_model"] else ""
    return [
        f"## Model {model}{role}",
        "",
        f"{section['results']} results; {section['error_lines']} error lines (not counted).",
        "",
    ]


def _md_model(section: dict[str, Any], h: str) -> list[str]:
    agentic = is_agentic(section)
    metric, rate = ("success", "success rate") if agentic else ("exact", "exact-match rate")
    lines = _md_headline(section, h)
    lines += (
        _md_agentic(section, h) if agentic else [f"{h} Per variant", "", _md_variants(section), ""]
    )
    lines += _md_reliability(section, h)
    for comp in section["comparisons"]:
        lines += _md_comparison(comp, h, rate)
    label = "success" if agentic else "exact match"
    lines += [f"{h} Per category ({label})", "", _md_categories(section, metric), ""]
    lines += [f"{h} Consistency across repetitions", ""]
    answers = "final states" if agentic else "answers"
    outcome = "success and failure" if agentic else "right and wrong"
    for row in section["consistency"]["per_variant"]:
        lines.append(
            f"- **{row['variant']}**: reps agree on {pct(row['mean_agreement'])} of {answers} "
            f"on average; {pct(row['all_reps_agree'])} of scenarios give the same answer "
            f"every rep; {row['flipping_scenarios']} scenario(s) flip between {outcome}."
        )
    flips = section["consistency"]["flips"]
    if flips:
        lines.append(
            "- flipping: " + ", ".join(f"{f['scenario_id']} ({f['variant']})" for f in flips)
        )
    return lines


def _md_headline(section: dict[str, Any], h: str) -> list[str]:
    """The declared primary metric, one line per comparison."""
    out = [f"{h} Headline", ""]
    for comp in section["comparisons"]:
        m = next(x for x in comp["metrics"] if x["primary"])
        diff, ci = fmt_diff(m)
        out.append(
            f"**{m['label']}** (the declared primary metric): {comp['treatment']} "
            f"{fmt_mean(m['metric'], m['treatment_mean'])} vs {comp['reference']} "
            f"{fmt_mean(m['metric'], m['reference_mean'])}, {diff} {ci}, "
            f"p = {p_text(m['p_value'])} (paired t over {m['scenarios']} scenarios)."
        )
    if is_agentic(section):
        out += ["", *(f"- {line}" for line in pass_k_lines(section))]
    return [*out, ""]


def _md_agentic(section: dict[str, Any], h: str) -> list[str]:
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


def _md_reliability(section: dict[str, Any], h: str) -> list[str]:
    """pass^k and pass@k per variant, and their paired differences."""
    rel = section["reliability"]
    if not rel:
        return []
    ks = sorted({int(k) for r in rel for k in r["pass_hat"]})
    header = ["variant", *(f"pass^{k}" for k in ks), f"pass@{ks[-1]}"]
    rows = [
        [
            r["variant"],
            *(pct(r["pass_hat"].get(str(k))) for k in ks),
            pct(r["pass_at"][str(ks[-1])]),
        ]
        for r in rel
    ]
    out = [f"{h} Reliability over repetitions ({rel[0]['metric']})", "", md_table(header, rows)]
    for comp in section["comparisons"]:
        for d in comp["reliability_differences"]:
            diff, ci = fmt_diff({**d, "metric": "exact"}, "estimate")
            out.append(
                f"- pass^{d['k']}, {comp['treatment']} − {comp['reference']}: {diff} {ci}, "
                f"p = {p_text(d['p_value'])}"
            )
    return [*out, ""]


def md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _md_variants(section: dict[str, Any]) -> str:
    rows = []
    for v in section["variants"]:
        r, fp = v["rates"], v["tool_footprint"]
        tokens = f"{fp['tokens']} tok / "
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


def _md_comparison(comp: dict[str, Any], h: str, rate: str = "exact-match rate") -> list[str]:
    ref, trt = comp["reference"], comp["treatment"]
    rows = []
    for m in comp["metrics"]:
        diff, ci = fmt_diff(m)
        rows.append(
            [
                m["label"] + (" (primary)" if m["primary"] else ""),
                fmt_mean(m["metric"], m["reference_mean"]),
                fmt_mean(m["metric"], m["treatment_mean"]),
                diff,
                ci,
                p_text(m["p_value"]),
                holm_text(m),
                p_text(m["p_sign_flip"]),
                str(m["scenarios"]),
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
    out = [f"{h} {trt} vs {ref}", "", md_table(header, rows), ""]
    out += [f"> {note}" for note in comparison_notes(comp)]
    out += [""] if comparison_notes(comp) else []
    if comp["largest_differences"]:
        out += [f"Scenarios that differ most ({rate}):", ""]
        out += [
            f"- {d['scenario_id']}: {pct(d['reference'])} → {pct(d['treatment'])}"
            for d in comp["largest_differences"]
        ]
        out.append("")
    return out + _md_power(comp["power"])


def _md_power(power: dict[str, Any]) -> list[str]:
    plans = power["plans"]
    if not plans:
        return []
    out = [f"Scenarios needed for 80% power ({power['metric']}, these results as a pilot):", ""]
    out += [f"> {WORST_CASE}", ""] if power["worst_case"] else []
    rows = [
        [signed_pct(p["difference"]), str(p["reps"]), str(p["scenarios"] or "> 10000")]
        for p in plans
    ]
    return [*out, md_table(["difference", "reps", "scenarios"], rows), ""]


def _md_categories(section: dict[str, Any], metric: str = "exact") -> str:
    names = [v["variant"] for v in section["variants"]]
    table: dict[str, dict[str, str]] = {}
    for row in section["categories"]:
        table.setdefault(row["category"], {})[row["variant"]] = pct(row[metric])
    rows = [[c, *(cells.get(n, "–") for n in names)] for c, cells in table.items()]
    return md_table(["category", *names], rows)


def _md_interaction(data: dict[str, Any]) -> list[str]:
    first = data["reference_model"]
    out = [
        "## Interaction: does the difference between variants depend on the model?",
        "",
        f"Per scenario, (treatment − reference in the model) − (the same in {first}); "
        "mean over the scenarios with results in all four cells.",
        "",
    ]
    for block in data["interaction"]:
        model, trt, ref = block["model"], block["treatment"], block["reference"]
        rows = []
        for m in block["metrics"]:
            diff, ci = fmt_diff(m, "interaction")
            rows.append(
                [
                    m["label"],
                    signed_pct(m["reference_model_difference"]),
                    signed_pct(m["model_difference"]),
                    diff,
                    ci,
                    p_text(m["p_value"]),
                    p_text(m["p_sign_flip"]),
                    str(m["scenarios"]),
                ]
            )
        header = ["metric", f"Δ {first}", f"Δ {model}", "interaction", "95% CI"]
        header += ["p (t)", "p (sign-flip)", "scenarios"]
        out += [f"### {trt} − {ref}: {model} vs {first}", "", md_table(header, rows), ""]
    return out
