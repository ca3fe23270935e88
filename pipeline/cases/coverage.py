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
