"""Which files a sweep takes from a dump folder."""

from __future__ import annotations

import os
import time
from pathlib import Path

from docks.scan import scan_station
from pipeline.models import Station

IGNORE = ["*.part", "*.tmp", ".*"]


def _touch(path: Path, age_s: float = 60.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    t = time.time() - age_s
    os.utime(path, (t, t))
    return path


def test_takes_recorder_folders_and_skips_partial_hidden_and_released(tmp_path: Path) -> None:
    st = Station("S1", tmp_path)
    good = _touch(tmp_path / "BWC-1" / "a.mp4")
    chinese = _touch(tmp_path / "BWC-2" / "执法 记录.mp4")
    _touch(tmp_path / "BWC-1" / "b.mp4.part")
    _touch(tmp_path / "BWC-1" / "c.tmp")
    _touch(tmp_path / "BWC-1" / ".hidden.mp4")
    _touch(tmp_path / ".trash" / "d.mp4")
    _touch(tmp_path / ".ingested" / "BWC-1" / "old.mp4")

    scan = scan_station(st, IGNORE, stable_s=2.0)

    assert {s.path for s in scan.ready} == {good, chinese}
    assert scan.waiting == ()


def test_recently_changed_files_wait(tmp_path: Path) -> None:
    st = Station("S1", tmp_path)
    old = _touch(tmp_path / "old.mp4", age_s=10)
    fresh = _touch(tmp_path / "fresh.mp4", age_s=0)
    scan = scan_station(st, IGNORE, stable_s=2.0)
    assert [s.path for s in scan.ready] == [old]
    assert [s.path for s in scan.waiting] == [fresh]


def test_only_given_paths(tmp_path: Path) -> None:
    st = Station("S1", tmp_path)
    a = _touch(tmp_path / "a.mp4")
    _touch(tmp_path / "b.mp4")
    gone = tmp_path / "gone.mp4"
    scan = scan_station(st, IGNORE, stable_s=0, only=[a, gone, tmp_path / "x.part"])
    assert [s.path for s in scan.ready] == [a]


def test_oldest_first(tmp_path: Path) -> None:
    st = Station("S1", tmp_path)
    newer = _touch(tmp_path / "a.mp4", age_s=10)
    older = _touch(tmp_path / "b.mp4", age_s=100)
    assert [s.path for s in scan_station(st, IGNORE, stable_s=0).ready] == [older, newer]
