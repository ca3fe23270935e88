"""What ``evidence watch`` does with the watcher's batches, as flow runs in this process.

Each batch of a station (and each reconciliation sweep) is stored, verified and catalogued on
that station's watcher thread at once (``flows.ingest.catalogue_now``), so an archivist finds
its files well within a second of their landing, however busy the Prefect server is. Then
two threads behind it, in turn for each batch:

- the intake thread records what was done as the batch's ``intake-station`` run (the same
  runs, names, tags and tables in the Prefect UI as when the run did the work itself; it
  retries a file that failed on the watcher thread). Batches of a station that queued up
  while a run went on are recorded as one run;
- the derive thread runs what has queued up for a station as one ``derive-station`` run
  (proxies, thumbnails, release from the dock): transcoding an hour of 1080p takes minutes
  and must not hold up the next batch's cataloguing.

Why (benchmark 5, BENCHMARKS.md): with the intake run doing the work on the watcher thread,
one core of hashing beside it on a 2-core host took closed → catalogued to p50 4.5 s, p95
7.9 s: the thread spent its time waiting on the run's calls to a Prefect server that shares
the CPU (creating the run, its states, the task runs' reads), not on the steps themselves.

From the watcher thread to the end of derive the jobs are claimed by this process (one owner
id), so another sweep leaves them alone while it lives. Jobs still queued when it stops stay
catalogued on the dock; the next start's sweep takes them up again (with an intake run).

An idle sweep costs no flow run and little else: it plans with a context kept open, and
asks the Prefect server about crashed runs of the station at its first sweep and then at most
every ``CRASH_CHECK_S`` (a query costs more than the rest of an idle sweep together).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from flows.ingest import Intake, catalogue_now, record_intake, run_derive
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
        self._cond = threading.Condition()  # guards the queues and the flags below
        # station id -> job ids, in order: catalogued, their intake run to come
        self._to_record: dict[str, dict[int, None]] = {}
        self._queue: dict[str, dict[int, None]] = {}  # station id -> job ids to derive
        self._in_flight: set[int] = set()  # from the watcher thread to the end of derive
        self._recording = False
        self._deriving = False
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._record_loop, name="intake-runs", daemon=True),
            threading.Thread(target=self._derive_loop, name="derive", daemon=True),
        ]

    def __enter__(self) -> WatchIngest:
        for thread in self._threads:
            thread.start()
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
        done = catalogue_now(
            self._plan_ctx, station_id, wanted, check_crashed=check, in_flight=in_flight
        )
        with self._cond:
            # A sweep and a batch can both meet a job still waiting here: queue it once.
            new = [job_id for job_id in done.job_ids if job_id not in self._in_flight]
            if new:
                self._in_flight.update(new)
                self._to_record.setdefault(station_id, {}).update(dict.fromkeys(new))
                self._cond.notify_all()
        fresh = set(new)
        self._on_intake(Intake(done.report, tuple(j for j in done.to_derive if j in fresh)))
        if paths is not None:
            return None
        return [Path(f.path) for f in done.report.files if f.outcome is Outcome.WAITING]

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until nothing is queued, recorded or derived; False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not (self._to_record or self._recording or self._queue or self._deriving),
                timeout=timeout_s,
            )

    def close(self) -> None:
        """Record the batches catalogued so far as their intake runs, finish the derive run
        in progress and stop; what is still queued to derive waits for the next start's
        sweep."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            if thread.is_alive():
                thread.join()
        with self._cond:
            left = sum(len(q) for q in self._queue.values())
        self._plan_ctx.catalog.dispose()
        if left:
            log.info("%d catalogued file(s) left to derive at the next start", left)

    def _record_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._to_record or self._stopping)
                if not self._to_record:  # stopping, and every batch recorded
                    self._cond.notify_all()
                    return
                station_id = next(iter(self._to_record))
                job_ids = list(self._to_record.pop(station_id))
                self._recording = True
            to_derive: list[int] = []
            try:
                to_derive = list(
                    record_intake(self.settings, station_id, job_ids, self.owner).to_derive
                )
            except Exception:
                # The jobs stay catalogued and claimed by this process: the station's next
                # sweep (with the same owner) takes them up again.
                log.exception("station %s: recording %d file(s) failed", station_id, len(job_ids))
            finally:
                with self._cond:
                    self._recording = False
                    self._in_flight.difference_update(set(job_ids) - set(to_derive))
                    if to_derive:  # stopping: the derive thread has left them to the next start
                        self._queue.setdefault(station_id, {}).update(dict.fromkeys(to_derive))
                    self._cond.notify_all()

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
