"""Identification and attribution rules, as pure functions over tables of cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.ingest.identify import (
    attribute,
    choose_serial,
    drift_flags,
    match_filename,
    recorded_interval,
    serial_sources,
)
from pipeline.models import (
    Assignment,
    Device,
    DeviceKind,
    IdSource,
    MediaKind,
    ProbeResult,
    SourceFile,
)
from pipeline.settings import load_settings

SH = ZoneInfo("Asia/Shanghai")
PATTERNS = load_settings().devices.filename_patterns
T0 = datetime(2026, 11, 27, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai


@pytest.mark.parametrize(
    ("name", "pattern", "device", "officer", "started"),
    [
        ("BWC0017_1023_20261127093000_0001.mp4", "ga-t-947", "BWC0017", "1023", T0),
        ("DSJ_BWC-22_20261127_093000.MP4", "vendor-dsj", "BWC-22", None, T0),
        ("DSJ_BWC-22_20261127_093000_3.mp4", "vendor-dsj", "BWC-22", None, T0),
        ("20261127093000_CAM0001_ch01.mp4", "vendor-nvr", "CAM0001", None, T0),
        ("BWC0017_1023_20261399999999_0001.mp4", "ga-t-947", "BWC0017", "1023", None),
    ],
)
def test_filename_patterns(
    name: str, pattern: str, device: str, officer: str | None, started: datetime | None
) -> None:
    m = match_filename(name, PATTERNS, SH)
    assert m is not None
    assert (m.pattern, m.device, m.officer, m.started) == (pattern, device, officer, started)


@pytest.mark.parametrize("name", ["IMG_0001.jpg", "现场 执法 记录.mp4", "BWC0017-1023.mp4", ""])
def test_names_that_match_no_pattern(name: str) -> None:
    assert match_filename(name, PATTERNS, SH) is None


def test_each_source_of_the_serial() -> None:
    name = match_filename("BWC0017_1023_20261127093000_0001.mp4", PATTERNS, SH)
    probe = ProbeResult(MediaKind.VIDEO, serial="BWC0017")
    found = serial_sources(Path("BWC-0017/BWC0017_1023_20261127093000_0001.mp4"), probe, name)
    assert found == {
        IdSource.METADATA: "BWC0017",
        IdSource.FILENAME: "BWC0017",
        IdSource.LAYOUT: "BWC-0017",
    }
    serial, flags = choose_serial(found, ["metadata", "filename", "layout"])
    assert serial == "BWC0017" and flags == [], "BWC-0017 and BWC0017 are the same serial"
    assert serial_sources(Path("loose.mp4"), ProbeResult(MediaKind.VIDEO), None) == {}


def test_disagreeing_sources_are_flagged_and_precedence_decides() -> None:
    found = {IdSource.METADATA: "BWC0099", IdSource.LAYOUT: "BWC0017"}
    serial, flags = choose_serial(found, ["metadata", "filename", "layout"])
    assert serial == "BWC0099"
    assert [f.code for f in flags] == ["device-disagreement"]
    assert "metadata says BWC0099" in flags[0].message and "layout says BWC0017" in flags[0].message
    serial, _ = choose_serial(found, ["layout", "metadata"])
    assert serial == "BWC0017"


def _source(mtime: datetime) -> SourceFile:
    return SourceFile("S", Path("x.mp4"), 1, int(mtime.timestamp() * 1e9))


def test_recorded_time_precedence_and_clock_offset() -> None:
    fast = Device("BWC0022", DeviceKind.BODY_WORN, clock_offset_s=30.0)
    name = match_filename("BWC0022_1088_20261127093000_0001.mp4", PATTERNS, SH)
    meta = ProbeResult(MediaKind.VIDEO, duration_s=60.0, recorded_at=T0 + timedelta(minutes=5))
    bare = ProbeResult(MediaKind.VIDEO, duration_s=60.0)
    mtime = T0 + timedelta(hours=3)

    assert recorded_interval(meta, name, _source(mtime), fast) == (
        T0 + timedelta(minutes=5, seconds=-30),
        T0 + timedelta(minutes=5, seconds=30),
        IdSource.METADATA,
    )
    assert recorded_interval(bare, name, _source(mtime), fast)[2] is IdSource.FILENAME
    assert recorded_interval(bare, name, _source(mtime), fast)[0] == T0 - timedelta(seconds=30)
    # No metadata, no pattern: the dock's file time marks the end; no device offset applies.
    assert recorded_interval(bare, None, _source(mtime), fast) == (
        mtime - timedelta(seconds=60),
        mtime,
        IdSource.MTIME,
    )


def test_clock_drift() -> None:
    now = T0 + timedelta(hours=5)
    end = T0 + timedelta(minutes=1)
    ok = drift_flags(T0, end, IdSource.METADATA, _source(end + timedelta(seconds=10)), now, 300)
    assert ok == []
    late = drift_flags(
        T0,
        end,
        IdSource.METADATA,
        _source(end + timedelta(hours=1)),
        now,
        300,
        preserves_mtimes=True,
    )
    assert [f.code for f in late] == ["clock-drift"] and "1 h slow" in late[0].message
    future = drift_flags(
        now + timedelta(days=1), now + timedelta(days=1), IdSource.FILENAME, _source(now), now, 300
    )
    assert "in the future" in future[0].message
    assert drift_flags(T0, end, IdSource.MTIME, _source(end + timedelta(hours=9)), now, 300) == []


H = timedelta(hours=1)
A1 = Assignment(1, "BWC0017", "1023", T0, T0 + 4 * H)
A2 = Assignment(2, "BWC0017", "1088", T0 + 4 * H, None)


@pytest.mark.parametrize(
    ("start", "end", "officer", "flag"),
    [
        (T0 + H, T0 + 2 * H, "1023", None),
        (T0, T0 + 4 * H, "1023", None),  # exactly the whole assignment: [start, end)
        (T0 + 4 * H, T0 + 5 * H, "1088", None),  # starts at the hand-over instant
        (T0 + 3 * H, T0 + 5 * H, None, "spans-assignments"),  # starts in one, ends in the next
        (T0 - 2 * H, T0 - H, None, "unattributed"),  # before anyone held it
        (T0 - H, T0 + H, None, "unattributed"),  # runs into the first assignment
        (None, None, None, "unattributed"),
    ],
)
def test_attribution_at_assignment_boundaries(
    start: datetime | None, end: datetime | None, officer: str | None, flag: str | None
) -> None:
    got, flags = attribute([A1, A2], start, end)
    assert got == officer
    assert [f.code for f in flags] == ([flag] if flag else [])
