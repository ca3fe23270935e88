"""`evidence watch` as operators rely on it: stations added or removed while it runs are
picked up, and a day of idle watching, simulated, leaves no empty flow run behind."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from docks.watcher import Clock, StationWatcher
from pipeline.models import Station
from pipeline.settings import Settings, WatchSettings
from tests.test_watcher import Recorder

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id .* already exists:RuntimeWarning")

DAY_S = 86_400.0
#: Five minutes between sweeps: 288 a day (the default, a minute, makes 1,440; each idle one
#: costs ~8 ms of real time here, which the suite's time budget does not allow five times).
SWEEP_S = 300.0


class SimulatedClock(Clock):
    """Time that passes only when the watcher waits: a wait for ``t`` seconds advances the
    clock by ``t`` at once. A wait without a bound (nothing due) is a real wait for news."""

    def __init__(self) -> None:
        self._now = 1_000.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def wait(self, cond: threading.Condition, timeout: float | None) -> None:
        if timeout is None:
            cond.wait()
            return
        with self._lock:
            self._now += max(timeout, 0.0)


def test_stations_added_and_removed_while_watching(tmp_path: Path) -> None:
    recorder = Recorder()
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    s1, s2 = Station("S1", one), Station("S2", two)
    settings = WatchSettings(stable_s=0.2, settle_s=0.1, sweep_interval_s=3600)
    with StationWatcher([s1], settings, [], recorder) as watcher:
        assert recorder.wait_for(lambda: len(recorder.sweeps("S1")) == 1)

        assert watcher.set_stations([s1, s2]) == (["S2"], [])
        assert recorder.wait_for(lambda: len(recorder.sweeps("S2")) == 1), "swept at once"
        (two / "a.jpg").write_bytes(b"photo")  # written and closed: a closed event
        recorder.wait_delivered(two / "a.jpg", station_id="S2")

        assert watcher.set_stations([s2]) == ([], ["S1"])
        (one / "late.jpg").write_bytes(b"photo")
        (two / "b.jpg").write_bytes(b"photo")
        recorder.wait_delivered(two / "b.jpg", station_id="S2")
        # A missing folder is logged and left out, not the watcher's end.
        assert watcher.set_stations([s2, Station("S3", tmp_path / "missing")]) == ([], [])
    assert one / "late.jpg" not in recorder.delivered("S1"), "no longer watched"


def test_a_file_a_sweep_found_still_being_written_is_taken_once_it_settles(
    tmp_path: Path,
) -> None:
    """It landed before the watch existed, so no event will come: without this it would
    wait for the next sweep (a minute, by default)."""
    dock = tmp_path / "dock"
    dock.mkdir()
    early = dock / "early.mp4"
    early.write_bytes(b"recording")
    recorder = Recorder()

    def on_batch(station_id: str, paths: list[Path] | None) -> list[Path] | None:
        recorder(station_id, paths)
        return [early] if paths is None else None  # what a sweep reports as waiting

    settings = WatchSettings(stable_s=0.2, settle_s=0.1, sweep_interval_s=3600)
    with StationWatcher([Station("S1", dock)], settings, [], on_batch):
        recorder.wait_delivered(early)
    assert len(recorder.sweeps()) == 1


def test_a_day_of_idle_watching_makes_no_flow_run(
    prefect_api: str,
    settings: Settings,
    catalog,
    station: Station,  # type: ignore[no-untyped-def]
) -> None:
    from prefect.client.orchestration import get_client

    from flows.watch import WatchIngest
    from pipeline.ingest.queue import read_heartbeat

    started = datetime.now(UTC)
    clock = SimulatedClock()
    start = clock.now()
    day_over = threading.Event()
    sweeps: list[float] = []
    watch = settings.watch.model_copy(update={"sweep_interval_s": SWEEP_S})

    with WatchIngest(settings, clock=clock.now) as ingest:

        def on_batch(station_id: str, paths: list[Path] | None) -> None:
            ingest.on_batch(station_id, paths)
            sweeps.append(clock.now())
            if clock.now() - start >= DAY_S:
                day_over.set()

        with StationWatcher([station], watch, settings.ingest.ignore, on_batch, clock=clock):
            assert day_over.wait(120), "a simulated day of sweeps did not pass"

    assert len(sweeps) >= DAY_S / SWEEP_S, "a sweep every five minutes of the day"
    beat = read_heartbeat(settings.home, station.id)
    assert beat.idle_sweeps == len(sweeps) and beat.last_files is None
    assert beat.last_sweep is not None and beat.last_sweep >= started
    with get_client(sync_client=True) as client:
        runs = [
            r.name
            for r in client.read_flow_runs(limit=200)
            if r.parameters.get("station_id") == station.id and r.created and r.created >= started
        ]
    assert runs == [], "no run for a sweep that found nothing"
