"""One sweep of one station: which files to take, then each file through the pipeline.

``plan_sweep`` and ``finish_sweep`` are shared by the Prefect flow (flows/ingest.py) and by
``sweep_station``, the same work as a plain loop for tests, benchmarks and tools.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from docks.scan import scan_station
from pipeline import names
from pipeline.catalog import jobs as jobs_db
from pipeline.errors import EvidenceError
from pipeline.ingest import dockfs
from pipeline.ingest.steps import IngestContext, ingest_job, prepare
from pipeline.ingest.writers import is_network_mount
from pipeline.models import FileReport, Outcome, SourceFile, Station, SweepReport
from pipeline.registry.stations import check_station_root, list_stations
from pipeline.settings import Settings

#: How long after its release a file in ``.ingested/`` is watched for a late writer.
GROWTH_WATCH = timedelta(days=2)


@dataclass(frozen=True)
class SweepPlan:
    station: Station
    job_ids: tuple[int, ...]
    waiting: tuple[FileReport, ...]  # still being written: the next sweep takes them
    started: float


def plan_sweep(
    ctx: IngestContext, station: Station, paths: Sequence[Path] | None = None
) -> SweepPlan:
    """Jobs for the station's complete files. A full sweep (``paths`` None) also takes the
    unfinished jobs a crash left behind and files that grew in ``.ingested/`` after their
    release; a sweep of named files takes just those, which the caller (the watcher) saw
    closed: they need only be ``watch.settle_s`` old.

    Raises StationError only for the station as a whole (its dump folder is missing, or
    overlaps the archive): any problem of one entry is a line of the report."""
    started = time.monotonic()
    settings = ctx.settings
    check_station_root(settings, station, list_stations(ctx.catalog))
    watch = settings.watch
    min_age = watch.stable_s if paths is None else min(watch.settle_s, watch.stable_s)
    if is_network_mount(station.root):
        # A writer on another machine is invisible in /proc: only patience tells.
        min_age = max(min_age, watch.network_stable_s)
    scan = scan_station(
        station,
        settings.ingest.ignore,
        min_age,
        only=paths,
        encodings=settings.ingest.legacy_encodings,
        writer_check=watch.writer_check,
    )
    sources = list(scan.ready)
    leftovers: list[int] = []
    if paths is None:
        sources += grown_after_release(ctx, station)
        with ctx.catalog.read() as conn:
            leftovers = [j.id for j in jobs_db.unfinished(conn, station.id)]
    job_ids, unplanned = prepare(ctx, sources)
    leftovers = [j for j in leftovers if j not in job_ids]
    waiting = tuple(
        FileReport(s.shown, Outcome.WAITING, reason=scan.waiting_reason(s, min_age))
        for s in scan.waiting
    )
    return SweepPlan(
        station, (*job_ids, *leftovers), (*waiting, *scan.refused, *unplanned), started
    )


def grown_after_release(ctx: IngestContext, station: Station) -> list[SourceFile]:
    """Released files in ``.ingested/`` that are no longer what was released: a writer that
    went on after the release (a network dock, a writer /proc cannot see). Their bytes are
    ingested again, as a new item flagged as the continuation of the first."""
    since = ctx.clock() - GROWTH_WATCH
    encodings = ctx.settings.ingest.legacy_encodings
    with ctx.catalog.read() as conn:
        released = jobs_db.recently_released(conn, station.id, since)
    grown: list[SourceFile] = []
    for job in released:
        assert job.released_to is not None
        # The readable form is the real name for UTF-8 names (all but legacy-encoded cards,
        # whose late writers are then left to the writer check).
        path = Path(job.released_to)
        try:
            st = dockfs.lstat_in_dock(station.root, path)
        except (OSError, EvidenceError):
            continue  # taken away by an operator: nothing left to notice
        if stat.S_ISREG(st.st_mode) and (st.st_size, st.st_mtime_ns) != (job.size, job.mtime_ns):
            grown.append(SourceFile.seen(station.id, path, st, names.readable(path, encodings)))
    return grown


def finish_sweep(plan: SweepPlan, reports: Sequence[FileReport]) -> SweepReport:
    return SweepReport(plan.station.id, (*reports, *plan.waiting), time.monotonic() - plan.started)


def sweep_station(
    ctx: IngestContext,
    station: Station,
    paths: Sequence[Path] | None = None,
    *,
    on_file: Callable[[FileReport], None] | None = None,
) -> SweepReport:
    """The whole sweep without Prefect: ``ingest.workers`` files at a time."""
    plan = plan_sweep(ctx, station, paths)

    def one(job_id: int) -> FileReport:
        report = ingest_job(ctx, station, job_id)
        if on_file is not None:
            on_file(report)
        return report

    with ThreadPoolExecutor(max_workers=ctx.settings.ingest.workers) as pool:
        reports = list(pool.map(one, plan.job_ids))
    return finish_sweep(plan, reports)


def settling(settings: Settings, station: Station) -> list[SourceFile]:
    """The station's files still being written (or not yet settled): what the next sweeps
    will take, for the queue view. A dump folder that cannot be read settles nothing."""
    watch = settings.watch
    try:
        scan = scan_station(
            station,
            settings.ingest.ignore,
            watch.stable_s,
            encodings=settings.ingest.legacy_encodings,
            writer_check=watch.writer_check,
        )
    except (OSError, EvidenceError):
        return []
    return list(scan.waiting)
