"""5. Watcher latency: from a file closed on the dock to its media row in the catalog.

The real StationWatcher watches a real dump folder; files are written into it one after
another at a steady pace, as a docking station copies them. A poller reads the catalog
(read-only, so it never takes the writers' lock) and notes when each file's media row
appears. That is "catalogued": the proxy and thumbnail are made after it and are not counted.

Three ways:
- flow, default settings: ``evidence watch`` as shipped (flows.watch.WatchIngest: each batch
  one intake-station flow run, proxies in derive-station runs behind it), with the default
  watch settings (a closed file settles for settle_s, ready files gather for batch_window_s);
- flow, no waits: the same with every wait 0: what our code adds;
- direct, no waits: each batch a plain sweep_station call in the watcher's process (store,
  catalogue and proxy, file after file).

The first and the last again under load (issue 20): one core of SHA-256 in the background
(benchmarks.load) from the end of the warm-up to the last file's catalogue entry, as on a
station host that is also hashing another ingest.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from benchmarks.load import Load, hashing
from benchmarks.report import Figure, Result, Target
from benchmarks.workbench import (
    add_dock,
    make_home,
    percentile,
    scratch,
    unique_copy,
    wait_for_quiet,
)
from docks.sweep import sweep_station
from docks.watcher import StationWatcher
from interfaces import synth
from pipeline.ingest.steps import open_context
from pipeline.models import Station
from pipeline.settings import Settings, WatchSettings

NUMBER, NAME = 5, "watcher latency: closed → catalogued"

_POLL_S = 0.02
_DRAIN_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Sizes:
    files: int
    interval_s: float  # between one file's close and the next one's start
    # Files ingested before the timed ones, not timed: a watcher runs for hours, and its
    # first runs pay once for imports and first flow and task registrations.
    warm_up: int


FULL = Sizes(files=100, interval_s=0.5, warm_up=10)
QUICK = Sizes(files=3, interval_s=0.1, warm_up=0)

NO_WAITS: dict[str, dict[str, object]] = {
    "watch": {"stable_s": 0.0, "settle_s": 0.0, "batch_window_s": 0.0}
}
_SHIPPED = WatchSettings()
DEFAULT_WAITS: dict[str, dict[str, object]] = {
    "watch": {
        "stable_s": _SHIPPED.stable_s,
        "settle_s": _SHIPPED.settle_s,
        "batch_window_s": _SHIPPED.batch_window_s,
    }
}
OnBatch = Callable[[str, list[Path] | None], list[Path] | None]


@dataclass(frozen=True)
class Way:
    key: str
    label: str
    config: dict[str, dict[str, object]]
    loaded: bool = False  # one core of hashing in the background while the files land


_DEFAULT_LABEL = (
    f"flow, default waits ({_SHIPPED.settle_s:g} s settle + {_SHIPPED.batch_window_s:g} s batch)"
)
WAYS = (
    Way("flow_default", _DEFAULT_LABEL, DEFAULT_WAITS),
    Way("flow_no_waits", "flow, no waits", NO_WAITS),
    Way("direct_no_waits", "direct sweep, no waits", NO_WAITS),
    Way("flow_default_loaded", f"{_DEFAULT_LABEL}, under load", DEFAULT_WAITS, loaded=True),
    Way("direct_no_waits_loaded", "direct sweep, no waits, under load", NO_WAITS, loaded=True),
)
#: The target is the product as shipped: `evidence watch` with its default settings, on a
#: quiet machine and on a busy one.
TARGETED = {"flow_default", "flow_default_loaded"}


def run(work: Path, quick: bool) -> Result:
    sizes = QUICK if quick else FULL
    latencies: dict[str, list[float]] = {}
    loads: dict[str, Load] = {}
    with scratch(work / "watch") as root:
        clip = synth.make_video(root / "clip.mp4", seconds=1.0)
        # Distinct bytes per file, made beforehand: each lands on the dock in one write.
        count = sizes.warm_up + sizes.files
        staged = [unique_copy(clip, root / "staged" / f"{i}.mp4", i) for i in range(count)]
        for way in WAYS:
            settings = make_home(root / way.key, way.config)
            station = add_dock(settings, root / f"{way.key}-dock")
            with _ingest(way.key, settings, station) as (on_batch, wait_idle):
                latencies[way.key] = _measure(
                    settings, station, on_batch, wait_idle, staged, sizes, way, loads
                )
    figures: list[Figure] = []
    for way in WAYS:
        key, label = way.key, way.label
        target = Target("<=", 2.0) if key in TARGETED else None
        figures += [
            Figure(f"watch.{key}.p50", f"{label}: p50", percentile(latencies[key], 50), "s"),
            Figure(
                f"watch.{key}.p95", f"{label}: p95", percentile(latencies[key], 95), "s", target
            ),
        ]
    notes = (
        f"{sizes.files} 1 s 320x240 clips per way, one every {sizes.interval_s:g} s, proxies on, "
        f"after {sizes.warm_up} untimed ones and a quiet machine; "
        "the target applies to the product as shipped (the default-waits rows)",
        *(f"{way}: {load.describe()}" for way, load in loads.items()),
    )
    samples = {
        "seconds": latencies,
        "load": {
            way: {"share": load.share, "loadavg": load.loadavg} for way, load in loads.items()
        },
    }
    return Result(NUMBER, NAME, tuple(figures), notes, samples=samples)


WaitIdle = Callable[[], None]


@contextmanager
def _ingest(key: str, settings: Settings, station: Station) -> Iterator[tuple[OnBatch, WaitIdle]]:
    """What the watcher calls with each batch: flow runs, as `evidence watch` does, or a
    plain sweep with a context opened once, as a long-running process would; and a wait
    until proxies queued behind the catalogue are made too."""
    if key.startswith("flow"):
        from flows.watch import WatchIngest  # Prefect: only once the runner set up a server

        with WatchIngest(settings) as ingest:

            def wait_idle() -> None:
                ingest.wait_idle(_DRAIN_TIMEOUT_S)

            yield ingest.on_batch, wait_idle
            wait_idle()  # proxies are not timed, but made before the next way starts
        return
    ctx = open_context(settings)

    def direct(_station_id: str, paths: list[Path] | None) -> None:
        sweep_station(ctx, station, paths)

    try:
        yield direct, lambda: None
    finally:
        ctx.catalog.dispose()


def _measure(
    settings: Settings,
    station: Station,
    on_batch: OnBatch,
    wait_idle: WaitIdle,
    staged: list[Path],
    sizes: Sizes,
    way: Way,
    loads: dict[str, Load],
) -> list[float]:
    first_sweep_done = threading.Event()

    def deliver(station_id: str, paths: list[Path] | None) -> None:
        on_batch(station_id, paths)
        first_sweep_done.set()

    closed: dict[str, float] = {}
    poller = _CatalogPoller(Path(str(make_url(settings.catalog_url).database)))
    watcher = StationWatcher([station], settings.watch, settings.ingest.ignore, deliver)
    with watcher, poller, contextlib.ExitStack() as loaded:
        # The watcher's start-up sweep of the empty dock must not count against the files.
        first_sweep_done.wait(60)
        # The recorders' folders exist before their files, as on a dock that has them from
        # earlier offloads. A file written into a folder made a moment before gets no closed
        # event (inotify watches the folder only once it exists), only a created one, so it
        # waits watch.stable_s (2 s): BENCHMARKS.md says so.
        for folder in {_folder(i) for i in range(len(staged))}:
            (station.root / folder).mkdir(exist_ok=True)
        warm_up: set[str] = set()
        for i, source in enumerate(staged):
            if i == sizes.warm_up:
                if warm_up:
                    poller.wait_for(warm_up, _DRAIN_TIMEOUT_S)
                    wait_idle()
                    wait_for_quiet()
                if way.loaded:
                    loads[way.key] = loaded.enter_context(hashing(1))
            path = station.root / _folder(i) / f"clip-{i:04d}.mp4"
            shutil.copyfile(source, path)  # one open, write, close: as `cp` does
            if i < sizes.warm_up:
                warm_up.add(str(path))
            else:
                closed[str(path)] = time.monotonic()
            time.sleep(sizes.interval_s)
        catalogued = poller.wait_for(set(closed), _DRAIN_TIMEOUT_S)
        loaded.close()  # before the proxies behind are drained: those are not timed
    missing = set(closed) - set(catalogued)
    if missing:
        raise RuntimeError(f"{len(missing)} file(s) not catalogued within {_DRAIN_TIMEOUT_S:g} s")
    return [catalogued[path] - closed[path] for path in closed]


def _folder(i: int) -> str:
    """25 recorders, files from each in turn."""
    return f"BWC-{i % 25 + 1:02d}"


class _CatalogPoller:
    """Notes the monotonic time at which each source path first has a media row."""

    def __init__(self, database: Path) -> None:
        self._database = database
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="catalog-poller", daemon=True)

    def __enter__(self) -> _CatalogPoller:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def wait_for(self, paths: set[str], timeout_s: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout_s
        while not paths <= self.seen.keys() and time.monotonic() < deadline:
            time.sleep(_POLL_S)
        return dict(self.seen)

    def _run(self) -> None:
        conn = sqlite3.connect(f"file:{self._database}?mode=ro", uri=True, timeout=60)
        try:
            while not self._stop.wait(_POLL_S):
                now = time.monotonic()
                try:
                    rows = conn.execute("SELECT source_path FROM media").fetchall()
                except sqlite3.OperationalError:
                    continue  # a writer is checkpointing the WAL: look again next time
                for (path,) in rows:
                    self.seen.setdefault(path, now)
        finally:
            conn.close()
