"""What ``evidence watch`` does with the watcher's batches, as flow runs in this process.

Each batch of a station (and each reconciliation sweep) is one ``intake-station`` run on that
station's watcher thread: its files are stored, verified and catalogued, so an archivist finds
them about a second after they land. The jobs left to derive go to one derive thread, which
runs what has queued up for a station as one ``derive-station`` run (proxies, thumbnails,
release from the dock): transcoding an hour of 1080p takes minutes and must not hold up the
next batch's cataloguing.

Between intake and derive the jobs are claimed by this process (one owner id for both), so
another sweep leaves them alone while it lives. Jobs still queued when it stops stay
catalogued on the dock; the next start's sweep takes them up again.

An idle sweep costs no flow run and little else: it plans with a context kept open, and
asks the Prefect server about crashed runs of the station at its first sweep and then at most
every ``CRASH_CHECK_S`` (a query costs more than the rest of an idle sweep together).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from flows.ingest import Intake, run_derive, run_intake
from pipeline.catalog.jobs import new_owner
from pipeline.ingest.steps import open_context
from pipeline.models import Outcome, SweepReport
from pipeline.settings import Settings

log = logging.getLogger(__name__)

#: At most this often (seconds) a sweep asks the server for the station's crashed runs.
CRASH_CHECK_S = 600.0


def _ignore(_report: object) -> None:
    pass


class WatchIngest:
    """The ``on_batch`` of a StationWatcher, and the derive thread behind it.

    Example::

        with WatchIngest(settings) as ingest:
            StationWatcher(stations, settings.watch, settings.ingest.ignore, ingest.on_batch)...
    """

    def __init__(
        self,
        settings: Settings,
        on_intake: Callable[[Intake], None] = _ignore,
        on_derived: Callable[[SweepReport], None] = _ignore,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.owner = new_owner()
        self._clock = clock
        self._checked: dict[str, float] = {}  # station id -> when its crashed runs were
        self._plan_ctx = open_context(settings, self.owner)

        self._on_intake = on_intake
        self._on_derived = on_derived
        self._cond = threading.Condition()  # guards the queue and the flags below
        self._queue: dict[str, dict[int, None]] = {}  # station id -> job ids, in order
        self._in_flight: set[int] = set()  # queued or being derived
        self._deriving = False
        self._stopping = False
        self._thread = threading.Thread(target=self._derive_loop, name="derive", daemon=True)

    def __enter__(self) -> WatchIngest:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def on_batch(self, station_id: str, paths: list[Path] | None) -> list[Path] | None:
        """Store and catalogue a batch (or sweep the station) now; queue the rest. A sweep
        returns the files it found still being written, for the watcher to watch settle."""
        wanted = None if paths is None else [str(p) for p in paths]
        now = self._clock()
        check = wanted is None and now - self._checked.get(station_id, -CRASH_CHECK_S) >= (
            CRASH_CHECK_S
        )
        if check:
            self._checked[station_id] = now
        with self._cond:
            in_flight = set(self._in_flight)
        intake = run_intake(
            self.settings,
            station_id,
            wanted,
            self.owner,
            check_crashed=check,
            ctx=self._plan_ctx,
            in_flight=in_flight,
        )
        with self._cond:
            # A sweep and a batch can both meet a job still waiting here: queue it once.
            new = [job_id for job_id in intake.to_derive if job_id not in self._in_flight]
            if new:
                self._in_flight.update(new)
                self._queue.setdefault(station_id, {}).update(dict.fromkeys(new))
                self._cond.notify_all()
        self._on_intake(replace(intake, to_derive=tuple(new)))
        if paths is not None:
            return None
        return [Path(f.path) for f in intake.report.files if f.outcome is Outcome.WAITING]

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until nothing is queued or being derived; False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._queue and not self._deriving, timeout=timeout_s
            )

    def close(self) -> None:
        """Finish the derive run in progress and stop; what is still queued waits for the
        next start's sweep."""
        with self._cond:
            self._stopping = True
            left = sum(len(q) for q in self._queue.values())
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join()
        self._plan_ctx.catalog.dispose()
        if left:
            log.info("%d catalogued file(s) left to derive at the next start", left)

    def _derive_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._stopping)
                if self._stopping:
                    return
                station_id = next(iter(self._queue))
                job_ids = list(self._queue.pop(station_id))
                self._deriving = True
            try:
                self._on_derived(run_derive(self.settings, station_id, job_ids, self.owner))
            except Exception:
                # The jobs stay catalogued and claimed by this process: the station's next
                # sweep (an intake run with the same owner) queues them again.
                log.exception("station %s: deriving %d file(s) failed", station_id, len(job_ids))
            finally:
                with self._cond:
                    self._deriving = False
                    self._in_flight.difference_update(job_ids)
                    self._cond.notify_all()
