"""The ingest flows: a sweep of one station's dump folder, whole or in two halves.

One flow run per sweep, never one per file; files go to tasks in chunks, ``ingest.workers`` at
a time in threads (hashing releases the GIL and ffmpeg is a subprocess), in three stages:
``store-files`` copies, hashes and verifies (tag ``hashing``), ``catalogue-files`` probes,
identifies and records the media item, ``derive-files`` makes proxies and thumbnails and
releases the sources (tag ``transcode``). The tags let a Prefect server cap each kind of work
with tag concurrency limits (``evidence deploy``). Retries sit on these I/O tasks only: every
step is idempotent.

- ``ingest-station`` runs all three stages: a sweep (``evidence ingest``, a deployment).
- ``intake-station`` runs the first two for files the watcher saw closed, and
  ``derive-station`` the third, later: a file is in the catalog within a second or so of
  landing, while proxies, which can take minutes for an hour of 1080p, follow behind.

A process killed mid-run never reports its run's end, so the run would say RUNNING for ever.
Each run has an ``owner`` parameter, the job owner id of the process running it (host:pid:
token, ``pipeline.catalog.jobs``), and each sweep of a station marks that station's runs
whose owner is gone as crashed, as the sweep takes over their jobs. Runs of a deployment
(no owner given) are a worker's subprocess: the worker reports those as crashed itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from time import monotonic
from typing import Any

import httpx
from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas import OrchestrationResult
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.context import FlowRunContext, SettingsContext, get_settings_context
from prefect.exceptions import PrefectException
from prefect.futures import PrefectFuture
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY
from prefect.settings import Settings as PrefectSettings
from prefect.states import Crashed
from prefect.task_runners import ThreadPoolTaskRunner

from docks.sweep import SweepPlan, finish_sweep, plan_sweep
from pipeline.catalog.jobs import new_owner, owner_alive
from pipeline.custody.checkpoints import checkpointer
from pipeline.errors import InstanceKeyError
from pipeline.ingest.steps import IngestContext, catalogue_job, ingest_job, open_context, store_job
from pipeline.models import FileReport, Station, SweepReport
from pipeline.registry.stations import get_station
from pipeline.settings import Settings, load_settings


@task(name="plan-sweep", cache_policy=NO_CACHE)
def plan_task(ctx: IngestContext, station_id: str, paths: list[str] | None) -> SweepPlan:
    station = get_station(ctx.catalog, station_id)
    return plan_sweep(ctx, station, None if paths is None else [Path(p) for p in paths])


#: The ``on_file`` callback of each run started by :func:`run_ingest` in this process, by
#: the run's job owner: a run calls only its own (two runs in one process, a web server and
#: its sweeps, never see each other's files). A callable cannot be a flow parameter (they go
#: to the Prefect server as JSON), hence this table rather than an argument of the flow.
_on_file: dict[str, Callable[[FileReport], None]] = {}


def _ended(ctx: IngestContext, report: FileReport) -> FileReport:
    callback = _on_file.get(ctx.owner)
    if callback is not None:
        callback(report)
    return report


HASHING_TAG, TRANSCODE_TAG = "hashing", "transcode"
#: Files are handed to tasks in chunks, a few chunks per worker thread: a task run costs the
#: orchestration a few milliseconds, as much as ingesting a small document.
CHUNKS_PER_WORKER = 4

#: Per file of a chunk: how it ended, or None while it goes on to the next stage.
Partial = list[FileReport | None]


@task(
    name="store-files", tags=[HASHING_TAG], cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5
)
def store_files_task(ctx: IngestContext, station: Station, job_ids: list[int]) -> Partial:
    return [store_job(ctx, station, job_id) for job_id in job_ids]


@task(name="catalogue-files", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def catalogue_files_task(
    ctx: IngestContext, station: Station, job_ids: list[int], stored: Partial
) -> Partial:
    return [
        done if done is not None else catalogue_job(ctx, station, job_id)
        for job_id, done in zip(job_ids, stored, strict=True)
    ]


@task(
    name="derive-files",
    tags=[TRANSCODE_TAG],
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=5,
)
def derive_files_task(
    ctx: IngestContext, station: Station, job_ids: list[int], catalogued: Partial
) -> list[FileReport]:
    return [
        _ended(ctx, done if done is not None else ingest_job(ctx, station, job_id))
        for job_id, done in zip(job_ids, catalogued, strict=True)
    ]


def chunks(job_ids: Sequence[int], workers: int) -> list[list[int]]:
    """Split the jobs into about ``workers * CHUNKS_PER_WORKER`` chunks, in order."""
    count = max(1, min(len(job_ids), workers * CHUNKS_PER_WORKER))
    return [list(job_ids[i::count]) for i in range(count) if job_ids[i::count]]


def _intake(
    ctx: IngestContext, station: Station, parts: list[list[int]]
) -> list[PrefectFuture[Partial]]:
    stored = store_files_task.map(unmapped(ctx), unmapped(station), parts)
    return catalogue_files_task.map(unmapped(ctx), unmapped(station), parts, stored)


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
def ingest_station(
    station_id: str, paths: list[str] | None = None, owner: str | None = None
) -> SweepReport:
    """Ingest the complete files of one station (all of them, or just ``paths``); ``owner``:
    the job owner id of the process running it (a fresh one unless given)."""
    mark_crashed_runs(station_id)
    ctx = open_context(load_settings(), owner)
    try:
        plan = plan_task(ctx, station_id, paths)
        parts = chunks(plan.job_ids, ctx.settings.ingest.workers)
        report = _derive(ctx, plan, parts, _intake(ctx, plan.station, parts))
    finally:
        ctx.catalog.dispose()
    _publish(report, "sweep")
    return report


@dataclass(frozen=True)
class Intake:
    """What ``intake-station`` did: files that ended, and jobs left for ``derive-station``."""

    report: SweepReport
    to_derive: tuple[int, ...]


@flow(name="intake-station", task_runner=_DEFAULT_RUNNER)
def intake_station(station_id: str, paths: list[str] | None, owner: str) -> Intake:
    """Store and catalogue the files the watcher saw closed (or, ``paths`` None, sweep the
    whole folder and resume unfinished jobs); the jobs left to derive stay claimed by
    ``owner`` (the watcher) until it derives them."""
    if paths is None:  # a sweep, not a batch: a batch must not wait on the server for this
        mark_crashed_runs(station_id)
    ctx = open_context(load_settings(), owner)
    try:
        plan = plan_task(ctx, station_id, paths)
        parts = chunks(plan.job_ids, ctx.settings.ingest.workers)
        ended: list[FileReport] = []
        to_derive: list[int] = []
        for part, future in zip(parts, _intake(ctx, plan.station, parts), strict=True):
            for job_id, done in zip(part, future.result(), strict=True):
                if done is None:
                    to_derive.append(job_id)
                else:
                    ended.append(_ended(ctx, done))
        report = finish_sweep(plan, ended)
    finally:
        ctx.catalog.dispose()
    # No artifact and no checkpoint signing here: each costs a call to the Prefect server,
    # on the path from a file landing to its catalogue entry; derive-station does both.
    return Intake(report, tuple(to_derive))


@flow(name="derive-station", task_runner=_DEFAULT_RUNNER)
def derive_station(station_id: str, job_ids: list[int], owner: str) -> SweepReport:
    """Proxies, thumbnails and release for jobs ``intake-station`` catalogued."""
    ctx = open_context(load_settings(), owner)
    try:
        plan = SweepPlan(get_station(ctx.catalog, station_id), tuple(job_ids), (), monotonic())
        parts = chunks(plan.job_ids, ctx.settings.ingest.workers)
        report = _derive(ctx, plan, parts, [[None] * len(part) for part in parts])
    finally:
        ctx.catalog.dispose()
    _publish(report, "derive")
    return report


def _derive(
    ctx: IngestContext,
    plan: SweepPlan,
    parts: list[list[int]],
    catalogued: Sequence[PrefectFuture[Partial] | Partial],
) -> SweepReport:
    """The last stage over every chunk, then the custody checkpoints it made due."""
    derived = derive_files_task.map(unmapped(ctx), unmapped(plan.station), parts, catalogued)
    report = finish_sweep(plan, [r for f in derived for r in f.result()])
    sign_task(ctx)
    return report


INGEST_FLOWS = ("ingest-station", "intake-station", "derive-station")


def _gone(owner: object) -> bool:
    """The run's owner process is known to be gone (not merely on another host)."""
    if not isinstance(owner, str):
        return False  # a deployment's run: its worker reports its end
    try:
        return not owner_alive(owner)
    except ValueError:  # not an owner id of ours: leave that run alone
        return False


def mark_crashed_runs(station_id: str) -> int:
    """Mark as crashed the station's ingest flow runs that still say PENDING or RUNNING but
    whose process is gone; how many were marked. Housekeeping only: when the server does
    not answer, the sweep goes on and a later one tries again."""
    current = FlowRunContext.get()
    current_id = current.flow_run.id if current and current.flow_run else None
    marked = 0
    try:
        with get_client(sync_client=True) as client:
            # The server filters on state, not on parameters: the station is picked here, out
            # of the few runs that are going on (or seem to be).
            runs = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=list(INGEST_FLOWS))),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.PENDING, StateType.RUNNING])
                    ),
                ),
            )
            for run in runs:
                owner = run.parameters.get("owner")
                mine = run.id != current_id and run.parameters.get("station_id") == station_id
                if not mine or not _gone(owner):
                    continue
                message = f"its process ({owner}) is gone; marked by a later sweep of {station_id}"
                result: OrchestrationResult[Any] = client.set_flow_run_state(
                    run.id, Crashed(message=message)
                )
                marked += int(result.status is SetStateStatus.ACCEPT)
    except (httpx.HTTPError, PrefectException) as exc:
        get_run_logger().warning("earlier runs of %s not checked: %s", station_id, exc)
    if marked:
        get_run_logger().warning("%d run(s) of %s marked crashed", marked, station_id)
    return marked


def _publish(report: SweepReport, what: str) -> None:
    """The run's files as a table artifact in the Prefect UI."""
    station = report.station_id.lower().replace("_", "-").replace(".", "-")
    create_table_artifact(
        key=f"{what}-{station}",
        table=[
            {
                "file": f.path,
                "outcome": f.outcome.value,
                "sha256": f.sha256 or "",
                "reason": f.reason or "",
            }
            for f in report.files
        ],
        description=f"{what.capitalize()} of {report.station_id}: {len(report.files)} files, "
        f"{report.seconds:.1f} s",
    )


@contextmanager
def _in_process(settings: Settings) -> Iterator[Any]:
    """A task runner with the configured parallelism, for a flow run in this process.

    Flow-run heartbeats are off: Prefect 3.9 joins its heartbeat thread, which sleeps in
    1 s steps, when a run ends, and that cost 0.85 s of every 1.1 s run here (0.13 s
    without). They serve only zombie-run automations, which this project does not set up;
    a crashed process's jobs are resumed by the next sweep (pipeline.catalog.jobs).
    """
    current = get_settings_context()
    with SettingsContext(profile=current.profile, settings=_without_heartbeats(current.settings)):
        yield ThreadPoolTaskRunner(max_workers=settings.ingest.workers)


_NO_HEARTBEATS: dict[int, tuple[PrefectSettings, PrefectSettings]] = {}


def _without_heartbeats(settings: PrefectSettings) -> PrefectSettings:
    # Copying Prefect's settings costs ~0.15 s: once per settings object, not once per run.
    key = id(settings)
    if key not in _NO_HEARTBEATS:
        changed = settings.copy_with_update(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})
        _NO_HEARTBEATS[key] = (settings, changed)  # holding ``settings`` keeps its id unique
    return _NO_HEARTBEATS[key][1]


def run_ingest(
    settings: Settings,
    station_id: str,
    paths: list[str] | None = None,
    *,
    on_file: Callable[[FileReport], None] | None = None,
) -> SweepReport:
    """Run one sweep as a flow run in this process; ``on_file`` is called with each file's
    report as it ends (a progress bar)."""
    owner = new_owner()
    if on_file is not None:
        _on_file[owner] = on_file
    try:
        with _in_process(settings) as runner:
            return ingest_station.with_options(task_runner=runner)(station_id, paths, owner)
    finally:
        _on_file.pop(owner, None)


def run_intake(settings: Settings, station_id: str, paths: list[str] | None, owner: str) -> Intake:
    with _in_process(settings) as runner:
        return intake_station.with_options(task_runner=runner)(station_id, paths, owner)


def run_derive(settings: Settings, station_id: str, job_ids: list[int], owner: str) -> SweepReport:
    with _in_process(settings) as runner:
        return derive_station.with_options(task_runner=runner)(station_id, job_ids, owner)
