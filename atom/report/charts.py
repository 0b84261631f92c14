"""Line charts as inline SVG, drawn from numbers alone: the run browser needs no plotting library
in the page and no network. Pure functions: series in, SVG text out."""

from __future__ import annotations

from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def _ticks(lo: float, hi: float) -> list[float]:
    return [lo + (hi - lo) * i / 4 for i in range(5)]


def line_chart(title: str, xs: list[float], series: dict[str, list[float]], width: int = 560, height: int = 240) -> str:
    """One chart: a polyline per named series over the shared x values, with axes, five ticks on
    each, and a legend. Series of different lengths than xs are cut to the shorter."""
    if not xs or not series:
        return (
            f'<svg class="chart" role="img" aria-label="{escape(title)}: no data" width="{width}" height="40">'
            f'<text x="4" y="24">{escape(title)}: no data</text></svg>'
        )
    left, right, top, bottom = 56, 12, 28, 28
    values = [v for ys in series.values() for v in ys[: len(xs)]]
    y_lo, y_hi = min(values), max(values)
    if y_hi == y_lo:
        y_lo, y_hi = y_lo - 1.0, y_hi + 1.0
    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:
        x_hi = x_lo + 1.0

    def px(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * (width - left - right)

    def py(y: float) -> float:
        return top + (y_hi - y) / (y_hi - y_lo) * (height - top - bottom)

    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" fill="none" stroke="#bbb"/>',
    ]
    for y in _ticks(y_lo, y_hi):
        parts.append(f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end" class="tick">{y:.3g}</text>')
    for x in _ticks(x_lo, x_hi):
        parts.append(f'<text x="{px(x):.1f}" y="{height - 10}" text-anchor="middle" class="tick">{x:.0f}</text>')
    for i, (name, ys) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys))
        parts.append(f'<polyline data-series="{escape(name)}" fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>')
        parts.append(
            f'<text x="{width - right - 4}" y="{top + 14 + 14 * i}" text-anchor="end" fill="{colour}" class="legend">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)
