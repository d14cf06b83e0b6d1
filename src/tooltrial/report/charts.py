"""The page's inline SVG charts: a forest plot of differences with their intervals,
grouped horizontal bars, and the heatmap's cell colour.

Guarantee: an undefined value (None) draws nothing (no bar, no point, no interval) and
never raises; every label is escaped.
"""

from __future__ import annotations

from tooltrial.report.formatting import signed_pct
from tooltrial.report.markup import escape

Estimate = tuple[str, float | None, float | None, float | None]
"""(label, estimate, interval low, interval high) of one row of a forest plot."""
Bar = tuple[str, float | None, str]
"""(variant, value, text shown beside the bar)."""


def forest(rows: list[Estimate]) -> str:
    """Each rate difference with its interval, on one axis with zero marked."""
    lo = min([-0.1, *(low for _, _, low, _ in rows if low is not None)])
    hi = max([0.1, *(high for _, _, _, high in rows if high is not None)])
    left, width, row = 230, 560, 26
    height = row * len(rows) + 40

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
    for i, (label, estimate, low, high) in enumerate(rows):
        y = 20 + i * row
        out.append(f'<text x="{left - 10}" y="{y + 4}" text-anchor="end">{escape(label)}</text>')
        if low is not None and high is not None:
            out.append(
                f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" '
                f'y1="{y}" y2="{y}" stroke="#333" stroke-width="2"/>'
            )
        color = "#2e7d32" if (low or 0) > 0 else "#c62828" if (high or 0) < 0 else "#555"
        if estimate is not None:
            out.append(f'<circle cx="{x(estimate):.1f}" cy="{y}" r="5" fill="{color}"/>')
    for tick in (lo, 0.0, hi):
        out.append(
            f'<text x="{x(tick):.1f}" y="{height - 8}" text-anchor="middle" '
            f'fill="#666">{signed_pct(tick)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def bars(groups: list[tuple[str, list[Bar]]], vmax: float, colors: dict[str, str]) -> str:
    """Horizontal grouped bars: (group label, its bars)."""
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


def legend(colors: dict[str, str]) -> str:
    return (
        "<div>"
        + " ".join(
            f'<span style="display:inline-block;width:10px;height:10px;background:{c}"></span> '
            f"{escape(n)}&nbsp;&nbsp;"
            for n, c in colors.items()
        )
        + "</div>"
    )


def heat_color(rate: float | None) -> str:
    """Red (0) → yellow (0.5) → green (1); grey when undefined."""
    if rate is None:
        return "#eee"
    return f"hsl({120 * rate:.0f}, 65%, 78%)"
