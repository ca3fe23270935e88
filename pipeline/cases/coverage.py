"""Whole-process recording coverage (全过程音像记录) of a case's action window.

For categories where A/V recording is mandatory (seizure 查封扣押, forced demolition 强制拆除 …)
the union of the linked recordings must cover the action from start to end. Every uncovered
stretch longer than a tolerance is a gap, listed with its times; no recording at all is its
own finding.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Gap:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Coverage:
    window_start: datetime
    window_end: datetime
    covered_s: float
    gaps: tuple[Gap, ...]
    recordings: int  # linked A/V recordings that touch the window

    @property
    def complete(self) -> bool:
        return self.recordings > 0 and not self.gaps

    @property
    def ratio(self) -> float:
        total = (self.window_end - self.window_start).total_seconds()
        return 1.0 if total <= 0 else self.covered_s / total


def coverage(
    window_start: datetime,
    window_end: datetime,
    recordings: Iterable[tuple[datetime, datetime]],
    tolerance_s: float,
) -> Coverage:
    """Merge the recordings (clipped to the window) and list the gaps longer than tolerance."""
    clipped = sorted(
        (max(s, window_start), min(e, window_end))
        for s, e in recordings
        if e > window_start and s < window_end
    )
    merged: list[list[datetime]] = []
    for s, e in clipped:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    tolerance = timedelta(seconds=tolerance_s)
    gaps, cursor = [], window_start
    for s, e in merged:
        if s - cursor > tolerance:
            gaps.append(Gap(cursor, s))
        cursor = max(cursor, e)
    if window_end - cursor > tolerance:
        gaps.append(Gap(cursor, window_end))
    covered = sum((e - s).total_seconds() for s, e in merged)
    return Coverage(window_start, window_end, covered, tuple(gaps), len(clipped))


# ------------------------------------------------------------------ the timeline drawn


#: How wide the timeline is drawn, in the SVG's user units.
TIMELINE_WIDTH = 1000.0


@dataclass(frozen=True)
class Span:
    """A stretch drawn on the timeline: ``x`` and ``width`` in user units of
    :data:`TIMELINE_WIDTH`, clipped to the drawn span."""

    start: datetime
    end: datetime
    x: float
    width: float


@dataclass(frozen=True)
class Bar(Span):
    media_id: int


@dataclass(frozen=True)
class TimelineRow:
    officer: str | None  # None: recordings attributed to nobody
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class Timeline:
    """The action window drawn with a margin either side: a row of recording bars per
    officer (the case's officers first, even without a recording), and the gaps."""

    start: datetime  # of the drawn span: the window less the margin
    end: datetime
    window: Span
    rows: tuple[TimelineRow, ...]
    gaps: tuple[Span, ...]


def timeline(
    window_start: datetime,
    window_end: datetime,
    officers: Iterable[str],
    recordings: Iterable[tuple[str | None, int, datetime, datetime]],
    gaps: Iterable[Gap],
    margin: timedelta,
) -> Timeline:
    """Place the recordings ``(officer, media id, start, end)`` and the gaps on the window
    ± ``margin``; a recording outside the drawn span is left out."""
    start, end = window_start - margin, window_end + margin
    total = max((end - start).total_seconds(), 1.0)

    def place(s: datetime, e: datetime) -> tuple[float, float]:
        left = max((max(s, start) - start).total_seconds(), 0.0)
        right = min((min(e, end) - start).total_seconds(), total)
        x = round(TIMELINE_WIDTH * left / total, 1)
        return x, max(round(TIMELINE_WIDTH * right / total, 1) - x, 1.0)

    rows: dict[str | None, list[Bar]] = {o: [] for o in officers}
    for officer, media_id, s, e in sorted(recordings, key=lambda r: r[2]):
        if e >= start and s <= end:
            rows.setdefault(officer, []).append(Bar(s, e, *place(s, e), media_id))
    return Timeline(
        start,
        end,
        Span(window_start, window_end, *place(window_start, window_end)),
        tuple(TimelineRow(o, tuple(b)) for o, b in rows.items()),
        tuple(Span(g.start, g.end, *place(g.start, g.end)) for g in gaps),
    )
