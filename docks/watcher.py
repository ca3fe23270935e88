"""Watch docking-station dump folders and hand batches of complete files to a callback.

The watcher only decides *when* a file is complete; ingesting it is the callback's job. What
inotify (watchdog 7) tells us, measured on a station host:

- ``cp`` gives created, opened, modified (once or many times), closed.
- an upload to ``name.part`` renamed to ``name`` gives a moved event, and no closed on ``name``.
- ``mv`` from a folder outside the watched tree gives only created.
- counting modified events tells nothing about completeness.
- the kernel queue can overflow, and events are then lost without a trace.

So closed, moved-to and created events make a file a *candidate*. A file its writer closed
after writing, or renamed into place, is *complete* once its size and mtime have stayed the
same for ``settle_s`` (the writer said it is done; the check catches one that goes on). A file
seen only created (moved in from another folder, or a copy just begun) is complete after
``stable_s``. Complete files of one station are gathered for ``batch_window_s`` and delivered
together (one flow run per batch). Because events can be lost, the callback is also asked, at
start and every ``sweep_interval_s``, for a full reconciliation sweep of each station
(``paths=None``).

Each station has its own delivery thread: a slow batch of one station never holds up another,
and files that become complete while their station's batch runs gather into its next batch.

The stations can change while it runs (``set_stations``: `evidence watch` re-reads the
registry at every reconciliation round): a new station is watched and swept at once, a
removed one is no longer watched, its undelivered files left to whoever sweeps it next.

Time comes from a ``Clock`` (``now`` and waiting on the watcher's condition), so a test runs
a day of sweeps in seconds with a simulated one.
"""

from __future__ import annotations

import logging
import math
import os
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from docks.scan import INGESTED_DIR, is_ignored
from pipeline.errors import StationError
from pipeline.models import Station
from pipeline.names import raw_name
from pipeline.settings import WatchSettings

logger = logging.getLogger(__name__)

#: ``on_batch(station_id, paths)``: paths judged complete, or ``None`` for "sweep the station".
#: A sweep may return the files it found still being written: the watcher then watches them
#: settle, as it does a file it saw created (one that landed before the watch existed has no
#: event, and would otherwise wait for the next sweep).
OnBatch = Callable[[str, list[Path] | None], "list[Path] | None"]

# Only these reach us; opened/closed-without-write (our own ingest reading a file) are never
# even subscribed to, so reading the dump folder does not wake the watcher.
_EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileClosedEvent,
    FileCreatedEvent,
    FileMovedEvent,
    FileModifiedEvent,
    FileDeletedEvent,
]

_Signature = tuple[int, int]  # (size, mtime_ns)


class Clock:
    """Real time: ``time.monotonic`` and waits of the given length."""

    def now(self) -> float:
        return time.monotonic()

    def wait(self, cond: threading.Condition, timeout: float | None) -> None:
        """Wait on ``cond`` (held by the caller) until notified or ``timeout`` passed."""
        cond.wait(timeout)


@dataclass
class _Candidate:
    """A file seen closed, moved in or created, not yet judged complete."""

    station_id: str
    changed_at: float  # monotonic time of the last event or observed change
    quiet_s: float  # how long it must stay unchanged: settle_s or stable_s
    signature: _Signature | None = None  # None until first polled: poll at once

    @property
    def due(self) -> float:
        return self.changed_at if self.signature is None else self.changed_at + self.quiet_s


@dataclass(frozen=True)
class _Delivery:
    paths: list[Path] | None  # None: a reconciliation sweep


class StationWatcher:
    """Watch the dump folders of ``stations`` and call ``on_batch`` with complete files.

    ``on_batch`` runs on the station's own thread, never on the watchdog thread, so events keep
    being collected while a slow ingest runs; one call at a time per station (never two batches
    of one station at once), stations in parallel. An exception from ``on_batch`` is logged and
    the watcher goes on; files of a failed batch are picked up again by the next reconciliation
    sweep.

    Example::

        with StationWatcher(stations, settings.watch, settings.ingest.ignore, submit):
            ...
    """

    def __init__(
        self,
        stations: Sequence[Station],
        settings: WatchSettings,
        ignore: Sequence[str],
        on_batch: OnBatch,
        *,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or Clock()
        self._stations: dict[str, Station] = {}
        for station in stations:
            if station.id in self._stations:
                raise StationError(station.id, "given twice to the watcher")
            self._stations[station.id] = station
        self._settings = settings
        self._ignore = tuple(ignore)
        self._on_batch = on_batch

        self._cond = threading.Condition()  # guards everything below; notified on news
        self._pending: dict[Path, _Candidate] = {}
        self._ready: dict[str, dict[Path, None]] = {}  # station id -> complete, undelivered paths
        self._batch_due: dict[str, float] = {}
        self._sweep_due: dict[str, float] = {}
        self._stopping = False
        self._started = False
        self._observer: BaseObserver | None = None
        self._watches: dict[str, ObservedWatch] = {}
        self._workers: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start watching. Raise StationError if a dump folder is missing."""
        if self._started:
            raise RuntimeError("a StationWatcher can be started only once")
        for station in self._stations.values():
            if not station.root.is_dir():
                raise StationError(station.id, f"dump folder is not a directory: {station.root}")
        self._started = True
        observer = Observer()
        observer.start()
        self._observer = observer
        # One thread judges completeness for all stations, even while every station is busy
        # ingesting; each station has its own thread for its sweeps and batches.
        judge = threading.Thread(target=self._judge, name="watch-judge", daemon=True)
        self._workers = [judge]
        judge.start()
        for station in self._stations.values():
            self._watch(station)
        logger.info("watching %d station(s): %s", len(self._stations), ", ".join(self._stations))

    def _watch(self, station: Station) -> None:
        """Watch one station's folder and start its thread, its first sweep due now."""
        assert self._observer is not None
        self._watches[station.id] = self._observer.schedule(
            _StationHandler(self, station),
            str(station.root),
            recursive=True,
            event_filter=_EVENT_FILTER,
        )
        # The first sweep is due now, after the watch exists: a file that lands in between is
        # then seen by the sweep, by an event, or by both (ingest is idempotent), never by neither.
        with self._cond:
            self._sweep_due[station.id] = self._clock.now()
            self._cond.notify_all()
        worker = threading.Thread(
            target=self._run, args=(station.id,), name=f"watch-{station.id}", daemon=True
        )
        self._workers.append(worker)
        worker.start()

    def set_stations(self, stations: Sequence[Station]) -> tuple[list[str], list[str]]:
        """Watch these stations from now on: new ones (or ones whose folder moved) are
        watched and swept at once, removed ones are no longer watched (a batch of theirs
        running now ends first). A new station whose folder is missing is left out, logged,
        and tried again at the next call. Returns (added, removed) station ids."""
        wanted = {s.id: s for s in stations}
        with self._cond:
            if self._stopping or not self._started:
                return [], []
            gone = [
                sid for sid, s in self._stations.items() if wanted.get(sid, s).root != s.root
            ] + [sid for sid in self._stations if sid not in wanted]
            for sid in gone:
                del self._stations[sid]
                self._sweep_due.pop(sid, None)
                self._batch_due.pop(sid, None)
                self._ready.pop(sid, None)
                for path in [p for p, c in self._pending.items() if c.station_id == sid]:
                    del self._pending[path]
            self._cond.notify_all()  # their threads see they are gone and end
        for sid in gone:
            watch = self._watches.pop(sid, None)
            if watch is not None and self._observer is not None:
                self._observer.unschedule(watch)
        added = []
        for sid, station in wanted.items():
            if sid in self._stations:
                continue
            if not station.root.is_dir():
                logger.error("station %s: dump folder is not a directory: %s", sid, station.root)
                continue
            with self._cond:
                self._stations[sid] = station
            self._watch(station)
            added.append(sid)
        removed = [sid for sid in gone if sid not in added]
        if added or removed:
            logger.info("stations added: %s; removed: %s", added or "none", removed or "none")
        return added, removed

    def stop(self) -> None:
        """Stop watching and join the threads. A callback already running is waited for;
        files not yet delivered are left to the next start's sweep."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join()
        workers, self._workers = self._workers, []
        for worker in workers:
            if worker is not threading.current_thread():
                worker.join()
        if observer is not None:
            logger.info("stopped watching")

    def run_forever(
        self,
        stop_event: threading.Event | None = None,
        *,
        stations: Callable[[], Sequence[Station]] | None = None,
        every_s: float = 5.0,
        on_change: Callable[[list[str], list[str]], None] | None = None,
    ) -> None:
        """Watch until ``stop_event`` is set (or Ctrl-C), then stop. For the CLI.
        ``stations``: asked every ``every_s`` seconds which stations to watch; ``on_change``
        told the station ids added and removed."""
        if stop_event is None:
            stop_event = threading.Event()
        self.start()
        try:
            # A short wait keeps Ctrl-C responsive on the main thread.
            last = time.monotonic()
            while not stop_event.wait(0.5):
                if stations is not None and time.monotonic() - last >= every_s:
                    last = time.monotonic()
                    try:
                        added, removed = self.set_stations(stations())
                        if on_change is not None and (added or removed):
                            on_change(added, removed)
                    except Exception:  # a registry that does not answer: try again later
                        logger.exception("the station registry could not be read")
        except KeyboardInterrupt:
            logger.info("interrupted")
        finally:
            self.stop()

    def __enter__(self) -> StationWatcher:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- events (watchdog observer thread) ------------------------------------------------------

    def _wanted(self, station: Station, path: Path) -> bool:
        # The same exclusions as a sweep (devices.scan): ignored names, ignored or hidden
        # folders, and .ingested/ where released sources go.
        if self._stations.get(station.id) is not station:
            return False  # an event of a station removed meanwhile
        try:
            parts = path.relative_to(station.root).parts
        except ValueError:
            return False
        return bool(parts) and not any(
            part == INGESTED_DIR or is_ignored(part, self._ignore) for part in parts
        )

    def _candidate(self, station: Station, path: Path, *, writer_done: bool) -> None:
        """``writer_done``: closed after writing, or renamed into place."""
        if not self._wanted(station, path):
            return
        quiet_s = self._settings.settle_s if writer_done else self._settings.stable_s
        with self._cond:
            # A new close/move/create means new content: poll afresh, deliver again.
            self._ready.get(station.id, {}).pop(path, None)
            self._pending[path] = _Candidate(station.id, self._clock.now(), quiet_s)
            self._cond.notify_all()

    def _touch(self, station: Station, path: Path) -> None:
        with self._cond:
            # Modified means "still changing": restart the clock of a file not yet delivered.
            batch = self._ready.get(station.id, {})
            if path in batch:
                # Written again after it was judged complete: it is done when closed again.
                del batch[path]
                self._pending[path] = _Candidate(
                    station.id, self._clock.now(), self._settings.stable_s
                )
                self._cond.notify_all()
            elif path in self._pending:
                self._pending[path].changed_at = self._clock.now()

    def _forget(self, station: Station, path: Path) -> None:
        with self._cond:
            self._pending.pop(path, None)
            self._ready.get(station.id, {}).pop(path, None)

    # -- station threads -------------------------------------------------------------------------

    def _judge(self) -> None:
        """Poll due candidates and move the complete ones to their station's next batch."""
        while True:
            self._poll_candidates()
            with self._cond:
                if self._stopping:
                    return
                now = self._clock.now()
                nearest = min((c.due for c in self._pending.values()), default=math.inf)
                if nearest > now:
                    # Computed under the lock, so an event after the poll shortens the wait.
                    self._clock.wait(self._cond, None if nearest == math.inf else nearest - now)

    def _run(self, station_id: str) -> None:
        station = self._stations[station_id]
        while True:
            with self._cond:
                if self._stopping or self._stations.get(station_id) is not station:
                    return
                job = self._take_job(station_id, self._clock.now())
                if job is None:
                    self._clock.wait(self._cond, self._seconds_to_next(station_id))
                    continue
            self._deliver(station_id, job.paths)

    def _poll_candidates(self) -> None:
        with self._cond:
            now = self._clock.now()
            due = [(p, c) for p, c in self._pending.items() if c.due <= now]
        # stat outside the lock: a slow disk must not hold up the event thread.
        seen = [(path, cand, _signature(path)) for path, cand in due]
        now = self._clock.now()
        with self._cond:
            for path, cand, sig in seen:
                if self._pending.get(path) is not cand:
                    continue  # a newer event replaced it meanwhile: its own poll decides
                if sig is None:
                    del self._pending[path]
                    logger.debug("station %s: %s vanished or is not a file", cand.station_id, path)
                elif sig != cand.signature:
                    cand.signature, cand.changed_at = sig, now  # still growing: look again later
                elif now - cand.changed_at >= cand.quiet_s:
                    del self._pending[path]
                    batch = self._ready.setdefault(cand.station_id, {})
                    if not batch:
                        self._batch_due[cand.station_id] = now + self._settings.batch_window_s
                    batch[path] = None
                    self._cond.notify_all()

    def _take_job(self, station_id: str, now: float) -> _Delivery | None:
        """The station's sweep or batch if one is due (a sweep first), else None."""
        if self._sweep_due.get(station_id, math.inf) <= now:
            self._sweep_due[station_id] = math.inf  # rescheduled when the sweep ends
            return _Delivery(None)
        if self._batch_due.get(station_id, math.inf) <= now:
            del self._batch_due[station_id]
            paths = list(self._ready.pop(station_id, {}))
            if paths:
                return _Delivery(paths)
        return None

    def _seconds_to_next(self, station_id: str) -> float | None:
        nearest = min(
            self._batch_due.get(station_id, math.inf), self._sweep_due.get(station_id, math.inf)
        )
        return None if nearest == math.inf else max(0.0, nearest - self._clock.now())

    def _deliver(self, station_id: str, paths: list[Path] | None) -> None:
        if paths is not None and any(raw_name(p) is not None for p in paths):
            # A name that is not UTF-8 cannot travel as a flow run's parameter (JSON): a
            # sweep of the station, which finds it on the dock, takes it instead, now.
            paths = [p for p in paths if raw_name(p) is None]
            with self._cond:
                self._sweep_due[station_id] = self._clock.now()
                self._cond.notify_all()
            if not paths:
                return
        what = "sweep" if paths is None else f"batch of {len(paths)} file(s)"
        logger.info("station %s: %s", station_id, what)
        try:
            settling = self._on_batch(station_id, paths)
        except Exception:
            logger.exception("station %s: %s failed", station_id, what)
        else:
            station = self._stations.get(station_id)
            if paths is None and settling and station is not None:
                for path in settling:
                    self._candidate(station, path, writer_done=False)
        finally:
            if paths is None:
                with self._cond:
                    self._sweep_due[station_id] = (
                        self._clock.now() + self._settings.sweep_interval_s
                    )


class _StationHandler(FileSystemEventHandler):
    """Routes one station's watchdog events to the watcher."""

    def __init__(self, watcher: StationWatcher, station: Station) -> None:
        self._watcher = watcher
        self._station = station

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return  # a moved or new folder comes with events for the files inside it
        src = Path(os.fsdecode(event.src_path))
        kind = event.event_type
        if kind == EVENT_TYPE_MOVED:
            # .part -> final name: a moved event and no closed on the final name.
            self._watcher._forget(self._station, src)
            dest = Path(os.fsdecode(event.dest_path))
            self._watcher._candidate(self._station, dest, writer_done=True)
        elif kind == EVENT_TYPE_CLOSED:
            self._watcher._candidate(self._station, src, writer_done=True)
        elif kind == EVENT_TYPE_CREATED:
            # mv from another folder gives nothing else; a copy just begun gives closed later.
            self._watcher._candidate(self._station, src, writer_done=False)
        elif kind == EVENT_TYPE_MODIFIED:
            self._watcher._touch(self._station, src)
        elif kind == EVENT_TYPE_DELETED:
            self._watcher._forget(self._station, src)


def _signature(path: Path) -> _Signature | None:
    """(size, mtime_ns) of a regular file, or None if it is gone or not a regular file."""
    try:
        st = os.lstat(path)  # lstat: symlinks are never taken, as in a sweep
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None
