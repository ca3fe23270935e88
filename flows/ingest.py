"""The ``ingest-station`` flow: one sweep of one station's dump folder.

One flow run per sweep, never one per file (a flow run costs ~1.2–1.6 s on the local server);
files go to tasks in chunks, ``ingest.workers`` at a time in threads (hashing releases the GIL
and ffmpeg is a subprocess): ``store-files`` copies, hashes and verifies (tag ``hashing``), then
``ingest-files`` probes, identifies, transcodes and releases (tag ``transcode``). The tags let a
Prefect server cap each kind of work with tag concurrency limits (``evidence deploy``).
Retries sit on these I/O tasks only: every step is idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from devices.stations import get_station
from devices.sweep import SweepPlan, finish_sweep, plan_sweep
from pipeline.checkpoints import checkpointer
from pipeline.errors import InstanceKeyError
from pipeline.ingest import IngestContext, ingest_job, open_context, store_job
from pipeline.models import FileReport, SweepReport
from pipeline.settings import Settings, load_settings


@task(name="plan-sweep", cache_policy=NO_CACHE)
def plan_task(ctx: IngestContext, station_id: str, paths: list[str] | None) -> SweepPlan:
    station = get_station(ctx.catalog, station_id)
    return plan_sweep(ctx, station, None if paths is None else [Path(p) for p in paths])


#: Called with each file's report as it ends, in this process (the CLI's progress bar).
file_listeners: list[Callable[[FileReport], None]] = []


HASHING_TAG, TRANSCODE_TAG = "hashing", "transcode"
#: Files are handed to tasks in chunks, a few chunks per worker thread: a task run costs the
#: orchestration a few milliseconds, as much as ingesting a small document.
CHUNKS_PER_WORKER = 4


@task(
    name="store-files", tags=[HASHING_TAG], cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5
)
def store_files_task(
    ctx: IngestContext, plan: SweepPlan, job_ids: list[int]
) -> list[FileReport | None]:
    return [store_job(ctx, plan.station, job_id) for job_id in job_ids]


@task(
    name="ingest-files",
    tags=[TRANSCODE_TAG],
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=5,
)
def ingest_files_task(
    ctx: IngestContext, plan: SweepPlan, job_ids: list[int], stored: list[FileReport | None]
) -> list[FileReport]:
    reports = []
    for job_id, done in zip(job_ids, stored, strict=True):
        report = done if done is not None else ingest_job(ctx, plan.station, job_id)
        for listener in file_listeners:
            listener(report)
        reports.append(report)
    return reports


def chunks(job_ids: list[int], workers: int) -> list[list[int]]:
    """Split the jobs into about ``workers * CHUNKS_PER_WORKER`` chunks, in order."""
    count = max(1, min(len(job_ids), workers * CHUNKS_PER_WORKER))
    return [job_ids[i::count] for i in range(count) if job_ids[i::count]]


@task(name="sign-checkpoints", cache_policy=NO_CACHE)
def sign_task(ctx: IngestContext) -> int:
    """Sign the custody checkpoints the sweep made due (every N-th event), right away rather
    than at the next scheduled checkpoint run. A host without the instance key (a station
    host in scale-out) leaves them to the host that has it, and says so."""
    try:
        return len(checkpointer(ctx.settings).sign_due(ctx.catalog))
    except InstanceKeyError as exc:
        get_run_logger().warning("checkpoints not signed here: %s", exc)
        return 0


# Prefect's TaskRunner generics do not line up for mypy: the runner is typed Any on purpose.
_DEFAULT_RUNNER: Any = ThreadPoolTaskRunner(max_workers=2)


@flow(name="ingest-station", task_runner=_DEFAULT_RUNNER)
def ingest_station(station_id: str, paths: list[str] | None = None) -> SweepReport:
    """Ingest the complete files of one station (all of them, or just ``paths``)."""
    ctx = open_context(load_settings())
    try:
        plan = plan_task(ctx, station_id, paths)
        parts = chunks(list(plan.job_ids), ctx.settings.ingest.workers)
        stored = store_files_task.map(unmapped(ctx), unmapped(plan), parts)
        futures = ingest_files_task.map(unmapped(ctx), unmapped(plan), parts, stored)
        report = finish_sweep(plan, [r for f in futures for r in f.result()])
        sign_task(ctx)
    finally:
        ctx.catalog.dispose()
    create_table_artifact(
        key=f"sweep-{station_id.lower().replace('_', '-').replace('.', '-')}",
        table=[
            {
                "file": f.path,
                "outcome": f.outcome.value,
                "sha256": f.sha256 or "",
                "reason": f.reason or "",
            }
            for f in report.files
        ],
        description=f"Sweep of {station_id}: {len(report.files)} files, {report.seconds:.1f} s",
    )
    return report


def run_ingest(settings: Settings, station_id: str, paths: list[str] | None = None) -> SweepReport:
    """Run one sweep as a flow run in this process, with the configured parallelism."""
    runner: Any = ThreadPoolTaskRunner(max_workers=settings.ingest.workers)
    return ingest_station.with_options(task_runner=runner)(station_id, paths)
