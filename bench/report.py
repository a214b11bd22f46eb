"""Markdown for the results: sections, tables, targets, and small plots (text and SVG).

Plots are inline SVG (rendered by GitHub and most Markdown viewers) with a text version
next to them, so the report reads the same in a terminal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape


@dataclass(frozen=True)
class Target:
    op: str  # "<=" or ">="
    value: float
    unit: str = ""

    def met(self, actual: float) -> bool:
        return actual <= self.value if self.op == "<=" else actual >= self.value

    def __str__(self) -> str:
        return f"{self.op} {fmt(self.value)}{(' ' + self.unit) if self.unit else ''}"


@dataclass
class Section:
    """One benchmark's part of ``latest.md``."""

    title: str
    lines: list[str] = field(default_factory=list)

    def add(self, *text: str) -> None:
        self.lines.extend(text)
        self.lines.append("")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        self.lines.append("| " + " | ".join(headers) + " |")
        self.lines.append("|" + "|".join("---" for _ in headers) + "|")
        for row in rows:
            self.lines.append("| " + " | ".join(fmt(c) for c in row) + " |")
        self.lines.append("")

    def verdicts(self, metrics: dict[str, float], targets: dict[str, Target],
                 why: dict[str, str] | None = None) -> None:
        rows = []
        for name, target in targets.items():
            if name not in metrics:
                continue
            ok = target.met(metrics[name])
            rows.append([f"`{name}`", metrics[name], str(target), "met" if ok else "**missed**",
                         (why or {}).get(name, "")])
        self.table(["metric", "value", "target", "", "why"], rows)

    def render(self) -> str:
        return f"## {self.title}\n\n" + "\n".join(self.lines).rstrip() + "\n"


def fmt(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, float | int):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.4g}"


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (``pct`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def bins_for(values: Sequence[float], count: int = 20, cap_pct: float = 99.0) -> list[float]:
    """Bin edges from 0 to the ``cap_pct`` percentile (the last bin takes the tail)."""
    top = max(percentile(values, cap_pct), 1e-9)
    return [top * i / count for i in range(count + 1)]


def histogram(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    counts = [0] * (len(edges) - 1)
    for v in values:
        i = next((k for k in range(len(counts)) if v < edges[k + 1]), len(counts) - 1)
        counts[i] += 1
    return counts


def text_histogram(values: Sequence[float], unit: str, count: int = 16, width: int = 50) -> str:
    edges = bins_for(values, count)
    counts = histogram(values, edges)
    peak = max(counts) or 1
    lines = []
    for i, n in enumerate(counts):
        label = f"{edges[i]:7.2f}–{edges[i + 1]:7.2f}" if i < len(counts) - 1 \
            else f"{edges[i]:7.2f}+       "
        lines.append(f"{label} {unit} | {'█' * round(n / peak * width):<{width}} {n}")
    return "```text\n" + "\n".join(lines) + "\n```"


def svg_histogram(values: Sequence[float], unit: str, marks: dict[str, float],
                  count: int = 30) -> str:
    """Bars of a histogram with vertical marks (e.g. p50, p95, target)."""
    edges = bins_for(values, count)
    counts = histogram(values, edges)
    w, h, pad = 640, 200, 30
    peak = max(counts) or 1
    bar_w = (w - 2 * pad) / len(counts)
    top = edges[-1]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 40}" '
             f'font-family="sans-serif" font-size="11">']
    for i, n in enumerate(counts):
        bh = (h - pad) * n / peak
        parts.append(f'<rect x="{pad + i * bar_w:.1f}" y="{h - bh:.1f}" width="{bar_w - 1:.1f}" '
                     f'height="{bh:.1f}" fill="#4a78c2"/>')
    palette = ["#d9534f", "#e08e0b", "#2a9d4b", "#7a3fb0"]
    for k, (label, x) in enumerate(marks.items()):
        if x > top:
            continue
        px = pad + (w - 2 * pad) * x / top
        color = palette[k % len(palette)]
        parts.append(f'<line x1="{px:.1f}" y1="{pad - 10}" x2="{px:.1f}" y2="{h}" '
                     f'stroke="{color}" stroke-dasharray="4 2"/>')
        parts.append(f'<text x="{px + 3:.1f}" y="{pad - 12 + 12 * k}" fill="{color}">'
                     f'{escape(label)} {x:.2f}</text>')
    parts.append(f'<line x1="{pad}" y1="{h}" x2="{w - pad}" y2="{h}" stroke="#333"/>')
    for i in range(0, count + 1, max(1, count // 6)):
        px = pad + i * bar_w
        parts.append(f'<text x="{px:.1f}" y="{h + 15}" text-anchor="middle">{edges[i]:.1f}</text>')
    parts.append(f'<text x="{w / 2}" y="{h + 32}" text-anchor="middle">{escape(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_series(series: dict[str, Sequence[tuple[float, float]]], x_label: str,
               y_label: str, band: tuple[float, float] | None = None) -> str:
    """Line chart of one or more (x, y) series; ``band`` shades an x interval."""
    w, h, pad = 640, 220, 40
    xs = [x for pts in series.values() for x, _ in pts] or [0, 1]
    ys = [y for pts in series.values() for _, y in pts] or [0, 1]
    x0, x1 = min(xs), max(xs) or 1
    y1 = max(ys) * 1.1 or 1

    def px(x: float) -> float:
        return pad + (w - 2 * pad) * (x - x0) / ((x1 - x0) or 1)

    def py(y: float) -> float:
        return h - (h - pad) * y / y1

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 40}" '
             f'font-family="sans-serif" font-size="11">']
    if band is not None:
        left, right = px(band[0]), px(band[1])
        parts.append(f'<rect x="{left:.1f}" y="{pad}" width="{right - left:.1f}" '
                     f'height="{h - pad}" fill="#e8f2e8"/>')
    palette = ["#4a78c2", "#d9534f", "#2a9d4b"]
    for k, (name, pts) in enumerate(series.items()):
        color = palette[k % len(palette)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" '
                     f'points="{path}"/>')
        parts.append(f'<text x="{w - pad - 150}" y="{pad + 14 * k}" fill="{color}">'
                     f'{escape(name)}</text>')
    parts.append(f'<line x1="{pad}" y1="{h}" x2="{w - pad}" y2="{h}" stroke="#333"/>')
    parts.append(f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h}" stroke="#333"/>')
    y_format = ".1f" if y1 < 10 else ".0f"  # small values (a few %) keep a decimal
    for i in range(6):
        y = y1 * i / 5
        parts.append(f'<text x="{pad - 4}" y="{py(y) + 4:.1f}" text-anchor="end">'
                     f'{y:{y_format}}</text>')
        x = x0 + (x1 - x0) * i / 5
        parts.append(f'<text x="{px(x):.1f}" y="{h + 15}" text-anchor="middle">{x:.0f}</text>')
    parts.append(f'<text x="{w / 2}" y="{h + 32}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text x="{pad}" y="{pad - 8}">{escape(y_label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_bars(groups: Sequence[str], series: dict[str, Sequence[float]], unit: str) -> str:
    """Grouped horizontal bars: one group per label, one bar per series."""
    row_h, bar_h, label_w, w = 34, 13, 190, 640
    peak = max((v for vals in series.values() for v in vals), default=1) or 1
    h = row_h * len(groups) + 30
    palette = ["#4a78c2", "#d9534f", "#2a9d4b"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             f'font-family="sans-serif" font-size="11">']
    for k, name in enumerate(series):
        parts.append(f'<rect x="{label_w + 120 * k}" y="4" width="10" height="10" '
                     f'fill="{palette[k % 3]}"/><text x="{label_w + 14 + 120 * k}" y="13">'
                     f'{escape(name)}</text>')
    for i, group in enumerate(groups):
        y = 24 + i * row_h
        parts.append(f'<text x="{label_w - 6}" y="{y + bar_h + 2}" text-anchor="end">'
                     f'{escape(group)}</text>')
        for k, (_, vals) in enumerate(series.items()):
            bw = (w - label_w - 80) * vals[i] / peak
            parts.append(f'<rect x="{label_w}" y="{y + k * bar_h}" width="{bw:.1f}" '
                         f'height="{bar_h - 2}" fill="{palette[k % 3]}"/>')
            parts.append(f'<text x="{label_w + bw + 4:.1f}" y="{y + k * bar_h + 10}">'
                         f'{fmt(vals[i])}{escape(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_reliability(bins: Sequence[tuple[float, float, int, float, float]],
                    mark: float | None = None) -> str:
    """A reliability diagram: per confidence bin (lower, upper, count, mean confidence,
    accuracy), a bar up to the accuracy, a dot at the mean confidence, the diagonal of
    perfect calibration, and an optional vertical mark (the chosen threshold)."""
    w, h, pad = 360, 300, 40
    side = min(w, h) - 2 * pad

    def px(x: float) -> float:
        return pad + side * x

    def py(y: float) -> float:
        return pad + side * (1 - y)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 10}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect x="{pad}" y="{pad}" width="{side}" height="{side}" fill="none" '
             f'stroke="#333"/>',
             f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(1)}" y2="{py(1)}" stroke="#999" '
             f'stroke-dasharray="4 2"/>']
    for lower, upper, count, confidence, accuracy in bins:
        parts.append(f'<rect x="{px(lower) + 1:.1f}" y="{py(accuracy):.1f}" '
                     f'width="{side * (upper - lower) - 2:.1f}" '
                     f'height="{side * accuracy:.1f}" fill="#4a78c2" fill-opacity="0.7"/>')
        parts.append(f'<circle cx="{px(confidence):.1f}" cy="{py(accuracy):.1f}" r="3" '
                     f'fill="#d9534f"/>')
        parts.append(f'<text x="{px((lower + upper) / 2):.1f}" y="{py(accuracy) - 4:.1f}" '
                     f'text-anchor="middle" font-size="9">{count}</text>')
    if mark is not None:
        parts.append(f'<line x1="{px(mark):.1f}" y1="{pad}" x2="{px(mark):.1f}" '
                     f'y2="{py(0)}" stroke="#2a9d4b" stroke-dasharray="4 2"/>')
        parts.append(f'<text x="{px(mark) - 3:.1f}" y="{pad - 4}" text-anchor="end" '
                     f'fill="#2a9d4b">threshold {mark:.2f}</text>')
    for i in range(0, 11, 2):
        v = i / 10
        parts.append(f'<text x="{px(v):.1f}" y="{py(0) + 14}" text-anchor="middle">{v:.1f}</text>')
        parts.append(f'<text x="{pad - 4}" y="{py(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    parts.append(f'<text x="{px(0.5)}" y="{h + 2}" text-anchor="middle">confidence '
                 '(bar: accuracy, dot: mean confidence, number: labels)</text>')
    parts.append(f'<text x="{pad}" y="{pad - 4}">accuracy</text>')
    parts.append("</svg>")
    return "".join(parts)
