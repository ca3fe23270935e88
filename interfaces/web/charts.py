"""The dashboard's charts as geometry: bars, segments and lines in an SVG's user units, for
templates to draw as inline SVG with presentation attributes only (the CSP allows no script
and no ``style`` attribute; no chart library, no CDN). Each shape carries its words for a
``<title>`` (hover) and, where it leads somewhere, its link."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: How wide the charts are drawn, and the room the labels take on the left.
WIDTH = 1000.0
LABEL_W = 220.0
PLOT_W = WIDTH - LABEL_W - 80.0

#: The colours of the series, as the legend shows them.
GOOD, LATE, BAD, SOON, IDLE = "#2f9e44", "#f08c00", "#d62728", "#f2c94c", "#adb5bd"
SERIES = ("#1d4ed8", "#2f9e44", "#f08c00", "#7048e8")


@dataclass(frozen=True)
class Segment:
    """A stretch of a stacked bar."""

    label: str
    value: int
    x: float
    width: float
    colour: str


def stacked(parts: Sequence[tuple[str, int, str]], width: float = WIDTH) -> tuple[Segment, ...]:
    """``(label, count, colour)`` side by side, each as wide as its share of the total."""
    total = sum(v for _, v, _ in parts)
    found, x = [], 0.0
    for label, value, colour in parts:
        if value <= 0 or total <= 0:
            continue
        w = round(width * value / total, 1)
        found.append(Segment(label, value, round(x, 1), w, colour))
        x += w
    return tuple(found)


@dataclass(frozen=True)
class Bar:
    """One horizontal bar of a row; ``value`` None draws nothing (no rate to show)."""

    value: float | None
    shown: str  # the value in words
    width: float
    colour: str
    series: str


@dataclass(frozen=True)
class Row:
    label: str
    href: str | None
    y: float
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class BarChart:
    rows: tuple[Row, ...]
    height: float
    bar_h: float
    series: tuple[tuple[str, str], ...]  # (name, colour), the legend
    top: float | None  # the 100 % mark's x, for rates


def bars(
    rows: Sequence[tuple[str, str | None, Sequence[float | None]]],
    series: Sequence[str],
    *,
    rates: bool,
    bar_h: float = 12.0,
) -> BarChart:
    """Rows of ``(label, link, values)``, a bar per series in each; rates are drawn against
    100 %, counts against the largest value of their own series (hours and numbers of
    recordings share no scale)."""
    tops = [1.0 if rates else _largest(v[k] for _, _, v in rows) for k in range(len(series))]
    row_h = bar_h * len(series) + 10
    found = []
    for i, (label, href, values) in enumerate(rows):
        drawn = []
        for k, value in enumerate(values):
            shown = "—" if value is None else (f"{value * 100:.1f}%" if rates else _count(value))
            width = 0.0 if value is None else round(PLOT_W * value / tops[k], 1)
            drawn.append(Bar(value, shown, width, SERIES[k % len(SERIES)], series[k]))
        found.append(Row(label, href, round(8 + i * row_h, 1), tuple(drawn)))
    legend = tuple((s, SERIES[k % len(SERIES)]) for k, s in enumerate(series))
    mark = LABEL_W + PLOT_W if rates else None
    return BarChart(tuple(found), 8 + len(rows) * row_h + 4, bar_h, legend, mark)


def _largest(values: Iterable[float | None]) -> float:
    return max([v for v in values if v is not None], default=0.0) or 1.0


def _count(value: float) -> str:
    return f"{value:.1f}" if value != int(value) else str(int(value))


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    shown: str  # the period and value in words


@dataclass(frozen=True)
class Line:
    series: str
    colour: str
    points: tuple[Point, ...]  # where there is a value

    @property
    def path(self) -> str:
        """The points for ``<polyline points=…>``."""
        return " ".join(f"{p.x},{p.y}" for p in self.points)


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class LineChart:
    lines: tuple[Line, ...]
    ticks: tuple[Tick, ...]
    grid: tuple[tuple[float, str], ...]  # (y, label) of 0, 25, 50, 75, 100 %
    height: float
    left: float
    right: float


def lines(
    periods: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    height: float = 220.0,
) -> LineChart:
    """Rates (0–1) per period, a line per series; a period without a rate is skipped."""
    left, right, top, bottom = 60.0, WIDTH - 60.0, 12.0, height - 30.0
    step = (right - left) / max(len(periods) - 1, 1)

    def y(value: float) -> float:
        return round(bottom - (bottom - top) * value, 1)

    drawn = []
    for k, (name, values) in enumerate(series):
        points = tuple(
            Point(round(left + i * step, 1), y(v), f"{name} {periods[i]}: {v * 100:.1f}%")
            for i, v in enumerate(values)
            if v is not None
        )
        drawn.append(Line(name, SERIES[k % len(SERIES)], points))
    ticks = tuple(Tick(round(left + i * step, 1), p) for i, p in enumerate(periods))
    grid = tuple((y(g / 4), f"{g * 25}%") for g in range(5))
    return LineChart(tuple(drawn), ticks, grid, height, left, right)
