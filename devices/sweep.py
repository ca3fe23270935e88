"""One sweep of one station: which files to take, then each file through the pipeline.

``plan_sweep`` and ``finish_sweep`` are shared by the Prefect flow (flows/ingest.py) and by
``sweep_station``, the same work as a plain loop for tests, benchmarks and tools.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from devices.scan import scan_station
from pipeline.catalog import jobs as jobs_db
from pipeline.errors import StationError
from pipeline.ingest import IngestContext, ingest_job, prepare
from pipeline.models import FileReport, Outcome, Station, SweepReport


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
    unfinished jobs a crash left behind; a sweep of named files takes just those, which the
    caller (the watcher) saw closed: they need only be ``watch.settle_s`` old."""
    started = time.monotonic()
    if not station.root.is_dir():
        raise StationError(station.id, f"dump folder {station.root} is missing")
    watch = ctx.settings.watch
    min_age = watch.stable_s if paths is None else min(watch.settle_s, watch.stable_s)
    scan = scan_station(station, ctx.settings.ingest.ignore, min_age, only=paths)
    job_ids = prepare(ctx, list(scan.ready))
    leftovers: list[int] = []
    if paths is None:
        with ctx.catalog.begin() as conn:
            leftovers = [j.id for j in jobs_db.unfinished(conn, station.id) if j.id not in job_ids]
    waiting = tuple(
        FileReport(
            str(s.path),
            Outcome.WAITING,
            reason=f"still being written (changed within {min_age:g} s)",
        )
        for s in scan.waiting
    )
    return SweepPlan(station, (*job_ids, *leftovers), waiting, started)


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
