"""Charts as inline SVG rendered on the server: no JavaScript, no CDN, no build step.

The charts are fluid: horizontal positions are percentages of the SVG's width, so text
keeps its real size on a phone and on a wide screen; the plot areas of the vertical
charts are nested SVGs stretched to the width (``preserveAspectRatio="none"``) with
non-scaling strokes. Every mark carries a ``<title>`` (a tooltip and a screen-reader label).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

PALETTE = ["#3358d4", "#1c7a4a", "#d98a00", "#c0352b", "#6941c6", "#1f8f8f", "#8b8fa3",
           "#b4548f"]
Fmt = Callable[[float], str]
PLOT_HEIGHT = 160
TOP = 18  # room for the top grid label
BOTTOM = 24  # room for the category labels


def plain(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def empty(label: str) -> SafeString:
    return format_html('<p class="chart-empty muted" role="note">{}: no data yet.</p>', label)


def bar_chart(items: Sequence[tuple[str, float]], *, label: str, fmt: Fmt = plain,
              colors: dict[str, str] | None = None) -> SafeString:
    """Horizontal bars, one row per item: its label above, its value at the right."""
    if not items or not any(v for _, v in items):
        return empty(label)
    top = max(v for _, v in items) or 1
    row = 34
    parts = [f'<svg class="chart chart-bars" width="100%" height="{len(items) * row}" '
             f'role="img" aria-label="{escape(label)}">']
    for i, (name, value) in enumerate(items):
        y = i * row
        pct = max(0.4, value / top * 100) if value else 0
        fill = (colors or {}).get(name, color(0))
        parts.append(
            f'<g><title>{escape(name)}: {escape(fmt(value))}</title>'
            f'<text x="0" y="{y + 13}" class="chart-label">{escape(name)}</text>'
            f'<text x="100%" y="{y + 13}" text-anchor="end" class="chart-value">'
            f'{escape(fmt(value))}</text>'
            f'<rect x="0" y="{y + 18}" width="100%" height="9" rx="4.5" class="chart-track"/>'
            f'<rect x="0" y="{y + 18}" width="{pct:.2f}%" height="9" rx="4.5" '
            f'fill="{fill}"/></g>'
        )
    parts.append("</svg>")
    # every text is escape()d; numbers are formatted here and colours are our own constants
    return mark_safe(  # nosec B308 B703
        "".join(parts))


def stacked_bars(categories: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *,
                 label: str, fmt: Fmt = plain, ticks: Sequence[str] | None = None
                 ) -> SafeString:
    """Vertical bars per category, each split by series (e.g. model steps per day by tier)."""
    totals = [sum(values[i] for _, values in series) for i in range(len(categories))]
    if not categories or not any(totals):
        return empty(label)
    top = nice_max(max(totals))
    n = len(categories)
    plot = []
    for i, category in enumerate(categories):
        base = 0.0
        for s, (name, values) in enumerate(series):
            value = values[i]
            if not value:
                continue
            h = value / top * PLOT_HEIGHT
            y = PLOT_HEIGHT - base - h
            plot.append(f'<rect x="{i * 10 + 1.5}" y="{y:.2f}" width="7" height="{h:.2f}" '
                        f'fill="{color(s)}"><title>{escape(category)} · {escape(name)}: '
                        f'{escape(fmt(value))}</title></rect>')
            base += h
    return _frame(ticks or categories, plot, viewbox_width=n * 10, top=top, label=label,
                  fmt=fmt)


def line_chart(points: Sequence[tuple[str, float]], *, label: str, fmt: Fmt = plain,
               ticks: Sequence[str] | None = None) -> SafeString:
    """One series over categories (e.g. cost per day): a line with its area and markers."""
    if not points or not any(v for _, v in points):
        return empty(label)
    top = nice_max(max(v for _, v in points))
    n = len(points)
    xs = [(i + 0.5) / n for i in range(n)]
    ys = [PLOT_HEIGHT - v / top * PLOT_HEIGHT for _, v in points]
    line = " ".join(f"{x * 1000:.1f},{y:.2f}" for x, y in zip(xs, ys, strict=True))
    area = f"{xs[0] * 1000:.1f},{PLOT_HEIGHT} {line} {xs[-1] * 1000:.1f},{PLOT_HEIGHT}"
    plot = [
        f'<polygon points="{area}" class="chart-area"/>',
        f'<polyline points="{line}" class="chart-line" vector-effect="non-scaling-stroke"/>',
    ]
    markers = [
        f'<circle cx="{x * 100:.2f}%" cy="{TOP + y:.2f}" r="3.2" class="chart-dot">'
        f"<title>{escape(name)}: {escape(fmt(value))}</title></circle>"
        for x, y, (name, value) in zip(xs, ys, points, strict=True)
    ]
    return _frame(ticks or [p[0] for p in points], plot, viewbox_width=1000, top=top,
                  label=label, fmt=fmt, overlay=markers)


def day_ticks(days: Sequence) -> list[str]:
    """Short axis labels for consecutive days: ``Nov 12``, ``14``, …, ``Dec 1``."""
    ticks = []
    for i, day in enumerate(days):
        new_month = i == 0 or day.month != days[i - 1].month
        ticks.append(f"{day:%b} {day.day}" if new_month else str(day.day))
    return ticks


def legend(names: Sequence[str]) -> SafeString:
    items = "".join(
        f'<li><span class="swatch" style="background:{color(i)}"></span>{escape(name)}</li>'
        for i, name in enumerate(names)
    )
    # names are escape()d; colours are our own constants
    return mark_safe(f'<ul class="chart-legend">{items}</ul>')  # nosec B308 B703


def nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5, 5 × 10^k)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _grid(plot_height: float, label: Callable[[float], str]) -> list[str]:
    """Horizontal grid lines at 100 %, 50 % and 0 % of the plot, the upper two labelled."""
    grid = []
    for frac in (1.0, 0.5, 0.0):
        y = TOP + plot_height * (1 - frac)
        grid.append(f'<line x1="0" x2="100%" y1="{y}" y2="{y}" class="chart-grid"/>')
        if frac:
            grid.append(f'<text x="0" y="{y - 4}" class="chart-axis">{label(frac)}</text>')
    return grid


def _frame(categories: Sequence[str], plot: list[str], *, viewbox_width: float, top: float,
           label: str, fmt: Fmt, overlay: Sequence[str] = ()) -> SafeString:
    n = len(categories)
    height = TOP + PLOT_HEIGHT + BOTTOM
    grid = _grid(PLOT_HEIGHT, lambda frac: escape(fmt(top * frac)))
    every = max(1, math.ceil(n / 7))
    ticks = []
    for i, name in enumerate(categories):
        if i % every and not (i == n - 1 and n <= 7):
            continue
        # the outermost labels hug the edges instead of being cut off by them
        x, anchor = (0.0, "start") if i == 0 and n > 3 else ((i + 0.5) / n * 100, "middle")
        ticks.append(f'<text x="{x:.2f}%" y="{height - 6}" text-anchor="{anchor}" '
                     f'class="chart-axis">{escape(name)}</text>')
    # every text is escape()d (here and in the callers' plot and overlay), the rest is numbers
    return mark_safe(  # nosec B308 B703
        f'<svg class="chart chart-columns" width="100%" height="{height}" role="img" '
        f'aria-label="{escape(label)}">{"".join(grid)}'
        f'<svg x="0" y="{TOP}" width="100%" height="{PLOT_HEIGHT}" '
        f'viewBox="0 0 {viewbox_width} {PLOT_HEIGHT}" preserveAspectRatio="none">'
        f'{"".join(plot)}</svg>{"".join(overlay)}{"".join(ticks)}</svg>'
    )


RELIABILITY_HEIGHT = 200


def reliability_diagram(bins: Sequence, *, label: str, suggested: float | None = None,
                        current: float | None = None) -> SafeString:
    """Accuracy per confidence bin against the diagonal of perfect calibration.

    ``bins`` are ``agentdesk.runtime.calibration.Bin`` (lower, upper, count,
    mean_confidence, accuracy). Each bin with labels is a bar as high as its accuracy, with
    its shortfall below the bin's mean confidence shaded (over-confidence, the side that
    lets wrong actions through). Vertical lines mark the suggested and current threshold."""
    filled = [b for b in bins if b.count]
    if not filled:
        return empty(label)
    h = RELIABILITY_HEIGHT
    height = TOP + h + BOTTOM + 14
    plot = [f'<line x1="0" y1="{h}" x2="1000" y2="0" class="chart-diagonal" '
            f'vector-effect="non-scaling-stroke"><title>perfect calibration</title></line>']
    for b in filled:
        acc = float(b.accuracy or 0.0)
        conf = float(b.mean_confidence)
        x, w = b.lower * 1000 + 4, max(1.0, (b.upper - b.lower) * 1000 - 8)
        tip = (f"{b.lower:.1f}–{b.upper:.1f}: {b.count} label{'s' if b.count != 1 else ''}, "
               f"mean confidence {conf:.2f}, accuracy {acc * 100:.0f}%")
        plot.append(f'<rect x="{x:.1f}" y="{(1 - acc) * h:.2f}" width="{w:.1f}" '
                    f'height="{acc * h:.2f}" class="chart-accuracy"><title>{escape(tip)}'
                    f'</title></rect>')
        if conf - acc > 0.005:  # over-confident: the side that lets wrong actions through
            plot.append(f'<rect x="{x:.1f}" y="{(1 - conf) * h:.2f}" width="{w:.1f}" '
                        f'height="{(conf - acc) * h:.2f}" class="chart-gap"><title>'
                        f'over-confident by {(conf - acc) * 100:.0f} points: {escape(tip)}'
                        f'</title></rect>')
    overlay = []
    for value, css, name in ((current, "chart-current", "current"),
                             (suggested, "chart-suggested", "suggested")):
        if value is None:
            continue
        plot.append(f'<line x1="{value * 1000:.1f}" x2="{value * 1000:.1f}" y1="0" y2="{h}" '
                    f'class="{css}" vector-effect="non-scaling-stroke"/>')
        anchor = "end" if value > 0.5 else "start"
        dx = -4 if value > 0.5 else 4
        y = TOP - 5 if name == "suggested" else TOP + 12
        overlay.append(f'<text x="{value * 100:.2f}%" dx="{dx}" y="{y}" text-anchor="{anchor}" '
                       f'class="chart-axis {css}-label">{name} {value:.2f}</text>')
    grid = _grid(h, lambda frac: f"accuracy {frac * 100:.0f}%")
    base = TOP + h + 16
    ticks = [f'<text x="{x * 100:.0f}%" y="{base}" text-anchor="{anchor}" class="chart-axis">'
             f"{x:.1f}</text>"
             for x, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end"))]
    ticks.append(f'<text x="50%" y="{base + 16}" text-anchor="middle" class="chart-axis">'
                 "confidence</text>")
    # the label and tooltips are escape()d; everything else is numbers formatted here
    return mark_safe(  # nosec B308 B703
        f'<svg class="chart chart-reliability" width="100%" height="{height}" role="img" '
        f'aria-label="{escape(label)}">{"".join(grid)}'
        f'<svg x="0" y="{TOP}" width="100%" height="{h}" viewBox="0 0 1000 {h}" '
        f'preserveAspectRatio="none">{"".join(plot)}</svg>{"".join(overlay)}'
        f'{"".join(ticks)}</svg>'
    )
