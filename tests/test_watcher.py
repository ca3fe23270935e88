"""The station watcher on real folders with real inotify events, with short timings."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from docks.watcher import StationWatcher
from pipeline.errors import StationError
from pipeline.models import Station
from pipeline.settings import WatchSettings

# watchdog 7 warns when a folder made just before its files is registered twice (by its own
# created event and by the scan of its parent); the second registration is identical, so harmless.
pytestmark = pytest.mark.filterwarnings("ignore:Callback with id .* already exists:RuntimeWarning")

IGNORE = ["*.part", "*.tmp", "*.crdownload", ".*"]
STABLE_S = 0.2  # quiet time of a file only seen created (or found by a sweep)
SETTLE_S = 0.1  # quiet time of a file its writer closed or renamed into place
TIMEOUT_S = 5.0  # bound on every wait; a pass takes a fraction of it


class Recorder:
    """Thread-safe record of on_batch calls: (station id, {path: size at call time} or None)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[Path, int] | None, float]] = []
        self.fail_batches = 0  # raise on this many next batch calls
        self._cond = threading.Condition()

    def __call__(self, station_id: str, paths: list[Path] | None) -> None:
        sizes = None if paths is None else {p: p.stat().st_size for p in paths}
        with self._cond:
            self.calls.append((station_id, sizes, time.monotonic()))
            self._cond.notify_all()
            if paths is not None and self.fail_batches:
                self.fail_batches -= 1
                raise RuntimeError("ingest blew up")

    def batches(self, station_id: str = "S1") -> list[dict[Path, int]]:
        with self._cond:
            return [s for sid, s, _ in self.calls if sid == station_id and s is not None]

    def delivered(self, station_id: str = "S1") -> list[Path]:
        return [p for batch in self.batches(station_id) for p in batch]

    def sweeps(self, station_id: str = "S1") -> list[float]:
        with self._cond:
            return [t for sid, s, t in self.calls if sid == station_id and s is None]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = TIMEOUT_S) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def wait_delivered(self, *paths: Path, station_id: str = "S1") -> None:
        ok = self.wait_for(lambda: set(paths) <= set(self.delivered(station_id)))
        assert ok, f"not delivered within {TIMEOUT_S} s: {paths}; calls: {self.calls}"


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def station1(tmp_path: Path) -> Station:
    root = tmp_path / "dock1"
    (root / "BWC-17").mkdir(parents=True)
    return Station("S1", root)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


WatcherFactory = Callable[..., StationWatcher]


@pytest.fixture
def watch(recorder: Recorder, station1: Station) -> Iterator[WatcherFactory]:
    """Start a watcher (default: the one station, short timings); stopped after the test."""
    started: list[StationWatcher] = []

    def make(
        stations: list[Station] | None = None,
        stable_s: float = STABLE_S,
        settle_s: float = SETTLE_S,
        batch_window_s: float = 0.1,
        sweep_interval_s: float = 3600.0,
    ) -> StationWatcher:
        settings = WatchSettings(
            stable_s=stable_s,
            settle_s=settle_s,
            batch_window_s=batch_window_s,
            sweep_interval_s=sweep_interval_s,
        )
        watcher = StationWatcher(stations or [station1], settings, IGNORE, recorder)
        watcher.start()
        started.append(watcher)
        return watcher

    yield make
    for watcher in started:
        watcher.stop()


def write(path: Path, size: int = 1000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


def copy_with_cp(src: Path, dst: Path) -> None:
    subprocess.run(["cp", str(src), str(dst)], check=True)


@pytest.mark.parametrize("copy", [shutil.copy, copy_with_cp], ids=["shutil.copy", "cp"])
def test_copy_is_delivered_once_after_it_is_stable(
    copy: Callable[[Path, Path], object],
    watch: WatcherFactory,
    recorder: Recorder,
    station1: Station,
    outside: Path,
) -> None:
    src = write(outside / "a.mp4", 50_000)
    watch()
    dst = station1.root / "BWC-17" / "a.mp4"
    copied_at = time.monotonic()
    copy(src, dst)

    recorder.wait_delivered(dst)
    _, sizes, delivered_at = next(c for c in recorder.calls if c[1])
    assert sizes == {dst: 50_000}
    assert delivered_at - copied_at >= SETTLE_S
    time.sleep(3 * STABLE_S)  # long enough for a wrong second delivery to show up
    assert recorder.delivered() == [dst]


def test_part_file_renamed_delivers_the_final_name_only(
    watch: WatcherFactory, recorder: Recorder, station1: Station
) -> None:
    watch()
    part = write(station1.root / "BWC-17" / "b.mp4.part")
    final = part.with_name("b.mp4")
    part.rename(final)

    recorder.wait_delivered(final)
    assert recorder.delivered() == [final]


def test_move_from_outside_the_station_is_delivered(
    watch: WatcherFactory, recorder: Recorder, station1: Station, outside: Path
) -> None:
    src = write(outside / "c.mp4")
    watch()
    dst = station1.root / "BWC-17" / "c.mp4"
    src.rename(dst)  # same file system: only a created event arrives

    recorder.wait_delivered(dst)
    assert recorder.delivered() == [dst]


def test_a_closed_file_settles_briefly_a_file_only_seen_created_waits_stable_s(
    watch: WatcherFactory, recorder: Recorder, station1: Station, outside: Path
) -> None:
    # The writer's close says "done": settle_s. A file that only appeared (moved in from
    # another folder, or a copy whose close is still to come) gives no such word: stable_s.
    watch(stable_s=1.5, settle_s=0.1, batch_window_s=0)
    moved_src = write(outside / "moved.mp4")
    closed = station1.root / "BWC-17" / "closed.mp4"
    moved = station1.root / "BWC-17" / "moved.mp4"
    start = time.monotonic()
    write(closed)
    moved_src.rename(moved)

    recorder.wait_delivered(closed, moved)
    at = {p: t for _, sizes, t in recorder.calls if sizes for p in sizes}
    assert 0.1 <= at[closed] - start < 1.0
    assert at[moved] - start >= 1.5


def test_a_slow_batch_holds_up_neither_another_station_nor_its_own_next_files(
    watch: WatcherFactory, recorder: Recorder, station1: Station, tmp_path: Path
) -> None:
    other = Station("S2", tmp_path / "dock2")
    other.root.mkdir()
    release = threading.Event()
    slow_calls: list[list[Path]] = []
    record = recorder.__call__

    def slow_first_batch(station_id: str, paths: list[Path] | None) -> None:
        record(station_id, paths)
        if station_id == "S1" and paths is not None and not slow_calls:
            slow_calls.append(paths)
            release.wait(TIMEOUT_S)  # S1's first batch "transcodes" until released

    watcher = StationWatcher(
        [station1, other],
        WatchSettings(stable_s=STABLE_S, settle_s=SETTLE_S, batch_window_s=0),
        IGNORE,
        slow_first_batch,
    )
    with watcher:
        first = write(station1.root / "BWC-17" / "n1.mp4")
        recorder.wait_delivered(first)
        elsewhere = write(other.root / "BWC-30" / "o.mp4")
        recorder.wait_delivered(elsewhere, station_id="S2")  # S1 is still busy
        later = [write(station1.root / "BWC-17" / f"n{i}.mp4") for i in (2, 3, 4)]
        time.sleep(3 * SETTLE_S)  # all three complete while S1's batch still runs
        assert recorder.delivered() == [first]
        release.set()
        recorder.wait_delivered(*later)
    # They gathered while S1 was busy, and went as one batch once it was free.
    assert [sorted(b) for b in recorder.batches()] == [[first], sorted(later)]


def test_hidden_tmp_and_ingested_files_are_never_delivered(
    watch: WatcherFactory, recorder: Recorder, station1: Station
) -> None:
    watch()
    rec = station1.root / "BWC-17"
    write(rec / ".hidden.mp4")
    write(rec / "upload.tmp")
    write(rec / "d.mp4.part")
    write(station1.root / ".ingested" / "BWC-17" / "old.mp4")
    write(rec / ".thumbs" / "e.jpg")  # hidden folder: a sweep never descends there either
    sentinel = write(rec / "sentinel.mp4")  # written last: once it is in, the others had a chance

    recorder.wait_delivered(sentinel)
    assert recorder.delivered() == [sentinel]


def test_growing_file_is_delivered_after_it_stops_with_its_final_size(
    watch: WatcherFactory, recorder: Recorder, station1: Station
) -> None:
    # stable_s a little above the write interval, so a late writer thread cannot fake a pause.
    watch(stable_s=0.3)
    path = station1.root / "BWC-17" / "growing.mp4"
    with path.open("wb") as f:
        for _ in range(7):  # one write every 0.1 s for 0.6 s, the handle kept open
            f.write(os.urandom(10_000))
            f.flush()
            time.sleep(0.1)
        finished_at = time.monotonic()

    recorder.wait_delivered(path)
    [(_, sizes, delivered_at)] = [c for c in recorder.calls if c[1]]
    assert sizes == {path: 70_000}
    assert delivered_at > finished_at


def test_files_copied_together_arrive_in_one_batch(
    watch: WatcherFactory, recorder: Recorder, station1: Station, outside: Path
) -> None:
    sources = [write(outside / f"f{i}.mp4") for i in range(4)]
    watch()
    targets = [station1.root / "BWC-17" / s.name for s in sources]
    for src, dst in zip(sources, targets, strict=True):
        shutil.copy(src, dst)

    recorder.wait_delivered(*targets)
    assert [sorted(b) for b in recorder.batches()] == [sorted(targets)]


def test_files_in_nested_recorder_folders_are_delivered(
    watch: WatcherFactory, recorder: Recorder, station1: Station
) -> None:
    watch()
    # Folders made just before their files: watchdog must watch them in time or simulate events.
    deep = write(station1.root / "unit-3" / "BWC-21" / "2026-05-01" / "g.mp4")
    other = write(station1.root / "BWC-17" / "h.wav")

    recorder.wait_delivered(deep, other)
    assert sorted(recorder.delivered()) == sorted([deep, other])


def test_rewritten_file_is_delivered_again(
    watch: WatcherFactory, recorder: Recorder, station1: Station
) -> None:
    watch()
    path = write(station1.root / "BWC-17" / "i.mp4", 1000)
    recorder.wait_delivered(path)
    write(path, 2000)  # a new close-for-write: new content, so a new delivery

    assert recorder.wait_for(lambda: len(recorder.batches()) == 2)
    assert recorder.batches() == [{path: 1000}, {path: 2000}]


def test_sweep_is_asked_at_start_and_periodically(
    watch: WatcherFactory, recorder: Recorder
) -> None:
    started_at = time.monotonic()
    watch(sweep_interval_s=0.3)

    assert recorder.wait_for(lambda: len(recorder.sweeps()) >= 3)
    first, second, third = recorder.sweeps()[:3]
    assert first - started_at < 0.5
    assert second - first >= 0.3
    assert third - second >= 0.3


def test_failing_callback_is_logged_and_later_files_still_arrive(
    watch: WatcherFactory,
    recorder: Recorder,
    station1: Station,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="docks.watcher")
    recorder.fail_batches = 1
    watch()
    first = write(station1.root / "BWC-17" / "j.mp4")
    recorder.wait_delivered(first)
    second = write(station1.root / "BWC-17" / "k.mp4")

    recorder.wait_delivered(second)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "S1" in errors[0].getMessage()
    assert errors[0].exc_info is not None


def test_two_stations_are_kept_apart(
    watch: WatcherFactory, recorder: Recorder, station1: Station, tmp_path: Path
) -> None:
    other = Station("S2", tmp_path / "dock2")
    other.root.mkdir()
    watch([station1, other])
    one = write(station1.root / "BWC-17" / "l.mp4")
    two = write(other.root / "BWC-30" / "m.mp4")

    recorder.wait_delivered(one, station_id="S1")
    recorder.wait_delivered(two, station_id="S2")
    assert recorder.delivered("S1") == [one]
    assert recorder.delivered("S2") == [two]
    assert recorder.sweeps("S1") and recorder.sweeps("S2")


def test_stop_is_prompt_and_run_forever_returns_on_its_event(
    recorder: Recorder, station1: Station
) -> None:
    settings = WatchSettings(stable_s=STABLE_S, batch_window_s=0.1, sweep_interval_s=3600.0)
    with StationWatcher([station1], settings, IGNORE, recorder):
        assert recorder.wait_for(lambda: len(recorder.sweeps()) == 1)
        began = time.monotonic()
    assert time.monotonic() - began < 1.0

    stop = threading.Event()
    watcher = StationWatcher([station1], settings, IGNORE, recorder)
    runner = threading.Thread(target=watcher.run_forever, args=(stop,))
    runner.start()
    assert recorder.wait_for(lambda: len(recorder.sweeps()) == 2)
    began = time.monotonic()
    stop.set()
    runner.join(timeout=TIMEOUT_S)
    assert not runner.is_alive()
    assert time.monotonic() - began < 1.5  # run_forever checks its event every 0.5 s


def test_missing_dump_folder_is_a_station_error(recorder: Recorder, tmp_path: Path) -> None:
    settings = WatchSettings(stable_s=STABLE_S, batch_window_s=0.1, sweep_interval_s=3600.0)
    watcher = StationWatcher([Station("S9", tmp_path / "nowhere")], settings, IGNORE, recorder)
    with pytest.raises(StationError, match="S9"):
        watcher.start()


def test_a_name_that_is_not_utf8_is_handed_to_a_sweep_not_to_a_batch(
    watch: WatcherFactory, recorder: Recorder, station1: Station
) -> None:
    """A flow run's parameters are JSON, which cannot carry a GBK name: the watcher asks for
    a sweep of the station (which finds the file on the dock) and batches the other files."""
    watch()
    assert recorder.wait_for(lambda: len(recorder.sweeps()) == 1)  # the start sweep
    folder = os.fsencode(station1.root / "BWC-17")
    with open(folder + b"/" + "执法记录.mp4".encode("gbk"), "wb") as f:
        f.write(os.urandom(500))
    plain = write(station1.root / "BWC-17" / "plain.mp4")

    recorder.wait_delivered(plain)
    assert recorder.wait_for(lambda: len(recorder.sweeps()) == 2)
    assert all(os.fsencode(p).decode("utf-8") for p in recorder.delivered())
