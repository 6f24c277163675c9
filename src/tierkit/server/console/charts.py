"""Usage over time as an inline SVG bar chart (no script, no library: drawn by the server)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tierkit.server.services.usage import Point

WIDTH, HEIGHT, BOTTOM = 300, 90, 14


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True, slots=True)
class BarChart:
    width: int
    height: int
    baseline: int
    bars: list[Bar]
    peak: float
    first: str
    last: str
    total: float


def bar_chart(points: Sequence[Point]) -> BarChart:
    """Bars scaled to the highest point; each carries its day and value as a tooltip."""
    peak = max((point.value for point in points), default=0.0)
    baseline = HEIGHT - BOTTOM
    step = WIDTH / max(len(points), 1)
    bars = []
    for index, point in enumerate(points):
        height = (point.value / peak) * (baseline - 4) if peak > 0 else 0.0
        bars.append(
            Bar(
                x=round(index * step + 1, 2),
                y=round(baseline - height, 2),
                width=round(max(step - 2, 1), 2),
                height=round(height, 2),
                label=f"{point.start:%Y-%m-%d}: {point.value:g}",
            )
        )
    first = f"{points[0].start:%b %d}" if points else ""
    last = f"{points[-1].start:%b %d}" if points else ""
    return BarChart(WIDTH, HEIGHT, baseline, bars, peak, first, last, sum(p.value for p in points))
