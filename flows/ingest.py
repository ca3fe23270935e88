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
  ``evidence watch`` does the first two on its own thread first (``catalogue_now``) and the
  intake run then records them (``record_intake``), so a busy Prefect server never delays
  a catalogue entry (flows.watch).

What the run list shows (the Prefect UI is the operators' screen): a sweep is planned before
any flow run is made, and one that finds nothing to take makes none; it is logged and counted
in the station's heartbeat (``pipeline.ingest.queue``) and the Prefect event
``evidence.station.swept``. A run is named for what it does, ``intake DOCK-01 3 files 09:21``
(local time, ``devices.timezone``), and tagged ``station:DOCK-01``, ``kind:intake`` and
``evidence``. A file that hit a system error ends its run in the Failed state ``FilesFailed``,
with a log line naming the file and the reason; quarantined files are log lines (warnings) and
rows of the run's table artifact, never tracebacks: they are outcomes, not faults.

A process killed mid-run never reports its run's end, so the run would say RUNNING for ever.
Each run has an ``owner`` parameter, the job owner id of the process running it (host:pid:
token, ``pipeline.catalog.jobs``), and each sweep of a station marks that station's runs
whose owner is gone as crashed, as the sweep takes over their jobs. Runs of a deployment
(no owner given) are a worker's subprocess: the worker reports those as crashed itself.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from time import monotonic
from typing import Any

from prefect import flow, get_run_logger, tags, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.context import SettingsContext, get_settings_context
from prefect.futures import PrefectFuture
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY
from prefect.settings import Settings as PrefectSettings
from prefect.states import Failed, State
from prefect.task_runners import ThreadPoolTaskRunner

from docks.sweep import SweepPlan, finish_sweep, plan_sweep
from flows.runs import (
    FILES_FAILED,
    conclude,
    default_name,
    heartbeat,
    mark_crashed_runs,
    publish_queue,
    publish_report,
    run_name,
    run_tags,
)
from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import open_catalog
from pipeline.catalog.jobs import new_owner
from pipeline.custody.checkpoints import checkpointer
from pipeline.errors import InstanceKeyError
from pipeline.ingest.steps import IngestContext, catalogue_job, ingest_job, open_context, store_job
from pipeline.media import transcode
from pipeline.models import FileReport, Outcome, Station, SweepReport
from pipeline.registry.stations import get_station
from pipeline.settings import Settings, load_settings


@task(name="plan-sweep", cache_policy=NO_CACHE)
def plan_task(ctx: IngestContext, station_id: str, paths: list[str] | None) -> SweepPlan:
    station = get_station(ctx.catalog, station_id)
    return plan_sweep(ctx, station, None if paths is None else [Path(p) for p in paths])


def _nothing(*_args: object) -> None:
    pass


@dataclass(frozen=True)
class IngestProgress:
    """What a sweep run in this process tells its caller as it goes (a progress bar)."""

    planned: Callable[[int, int], None] = _nothing  # files and bytes to take
    stored: Callable[[int], None] = _nothing  # bytes of one more file copied and verified
    transcoding: Callable[[str, float], None] = _nothing  # a file's proxy: fraction done
    ended: Callable[[FileReport], None] = _nothing  # one file's outcome


#: The progress of each run started by :func:`run_ingest` in this process, by the run's job
#: owner: a run calls only its own (two runs in one process, a web server and its sweeps,
#: never see each other's files). A callable cannot be a flow parameter (they go to the
#: Prefect server as JSON), hence this table rather than an argument of the flow.
_progress: dict[str, IngestProgress] = {}


def _ended(ctx: IngestContext, report: FileReport) -> FileReport:
    progress = _progress.get(ctx.owner)
    if progress is not None:
        progress.ended(report)
    return report


def _store(ctx: IngestContext, station: Station, job_id: int) -> FileReport | None:
    done = store_job(ctx, station, job_id)
    progress = _progress.get(ctx.owner)
    if progress is not None and done is None:
        with ctx.catalog.read() as conn:
            progress.stored(jobs_db.sizes(conn, [job_id]).get(job_id, 0))
    return done


def _finish(ctx: IngestContext, station: Station, job_id: int) -> FileReport:
    """The job's remaining steps; its proxy's progress (ffmpeg's ``-progress``) to the bar."""
    progress = _progress.get(ctx.owner)
    if progress is None:
        return ingest_job(ctx, station, job_id)
    with ctx.catalog.read() as conn:
        path = jobs_db.get(conn, job_id).source_path
    token = transcode.proxy_progress.set(lambda fraction: progress.transcoding(path, fraction))
    try:
        return ingest_job(ctx, station, job_id)
    finally:
        transcode.proxy_progress.reset(token)


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
    return [_store(ctx, station, job_id) for job_id in job_ids]


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
        _ended(ctx, done if done is not None else _finish(ctx, station, job_id))
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


@flow(name="ingest-station", task_runner=_DEFAULT_RUNNER, flow_run_name=default_name("sweep"))
def ingest_station(
    station_id: str,
    paths: list[str] | None = None,
    owner: str | None = None,
    job_ids: list[int] | None = None,
) -> Any:
    """Ingest the complete files of one station (all of them, or just ``paths``, or the jobs
    ``job_ids`` a sweep planned before the run); ``owner``: the job owner id of the process
    running it (a fresh one unless given)."""
    settings = load_settings()
    if job_ids is None and paths is None:
        mark_crashed_runs(station_id)
    ctx = open_context(settings, owner)
    try:
        if job_ids is None:
            plan = plan_task(ctx, station_id, paths)
        else:
            plan = SweepPlan(get_station(ctx.catalog, station_id), tuple(job_ids), (), monotonic())
        parts = chunks(plan.job_ids, ctx.settings.ingest.workers)
        report = _derive(ctx, plan, parts, _intake(ctx, plan.station, parts))
        publish_queue(ctx)
    finally:
        ctx.catalog.dispose()
    if job_ids is None and paths is None:
        heartbeat(settings, report, files=len(plan.job_ids))
    publish_report(report, "sweep")
    return conclude(report, "sweep")


@dataclass(frozen=True)
class Intake:
    """What ``intake-station`` did: files that ended, and jobs left for ``derive-station``."""

    report: SweepReport
    to_derive: tuple[int, ...]


@flow(name="intake-station", task_runner=_DEFAULT_RUNNER, flow_run_name=default_name("intake"))
def intake_station(
    station_id: str, paths: list[str] | None, owner: str, job_ids: list[int] | None = None
) -> Any:
    """Store and catalogue the files the watcher saw closed (or, ``paths`` None, sweep the
    whole folder and resume unfinished jobs; or the jobs ``job_ids`` a sweep planned); the
    jobs left to derive stay claimed by ``owner`` (the watcher) until it derives them."""
    ctx = open_context(load_settings(), owner)
    try:
        if job_ids is None:
            plan = plan_task(ctx, station_id, paths)
        else:
            plan = SweepPlan(get_station(ctx.catalog, station_id), tuple(job_ids), (), monotonic())
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
    # on the path from a file landing to its catalogue entry; derive-station does both. A
    # run with problems is the exception: its table is what an operator opens.
    if any(f.outcome is not Outcome.ARCHIVED for f in report.files):
        publish_report(report, "intake")
    concluded = conclude(report, "intake")
    intake = Intake(report, tuple(to_derive))
    if isinstance(concluded, State):
        return Failed(name=FILES_FAILED, message=concluded.message, data=intake)
    return intake


@flow(name="derive-station", task_runner=_DEFAULT_RUNNER, flow_run_name=default_name("derive"))
def derive_station(station_id: str, job_ids: list[int], owner: str) -> Any:
    """Proxies, thumbnails and release for jobs ``intake-station`` catalogued."""
    ctx = open_context(load_settings(), owner)
    try:
        plan = SweepPlan(get_station(ctx.catalog, station_id), tuple(job_ids), (), monotonic())
        parts = chunks(plan.job_ids, ctx.settings.ingest.workers)
        report = _derive(ctx, plan, parts, [[None] * len(part) for part in parts])
        publish_queue(ctx)
    finally:
        ctx.catalog.dispose()
    publish_report(report, "derive")
    return conclude(report, "derive")


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


def _plan(
    settings: Settings,
    station_id: str,
    paths: list[str] | None,
    owner: str,
    ctx: IngestContext | None = None,
) -> SweepPlan:
    """Plan a sweep before any flow run: one with nothing to take makes none. ``ctx``: a
    context the caller keeps open (a watcher sweeps every minute), else one opened here."""
    own = ctx or open_context(settings, owner)
    try:
        station = get_station(own.catalog, station_id)
        return plan_sweep(own, station, None if paths is None else [Path(p) for p in paths])
    finally:
        if ctx is None:
            own.catalog.dispose()


def _named_run(settings: Settings, fn: Any, kind: str, station_id: str, files: int) -> Any:
    """The flow with its run's name; called under :func:`run_tags` tags."""
    name = run_name(kind, station_id, files, datetime.now(settings.zone))
    return fn.with_options(flow_run_name=name)


def _result(state: State[Any]) -> Any:
    """What the run returned, Failed (``FilesFailed``) or not; a crash raises."""
    if state.is_failed() and state.name == FILES_FAILED:
        return state.result(raise_on_failure=False)
    return state.result()


def run_ingest(
    settings: Settings,
    station_id: str,
    paths: list[str] | None = None,
    *,
    on_file: Callable[[FileReport], None] | None = None,
    progress: IngestProgress | None = None,
) -> SweepReport:
    """Run one sweep as a flow run in this process (none when it finds nothing to take);
    ``on_file`` is called with each file's report as it ends, ``progress`` with the bytes
    planned and stored and each proxy's progress (a progress bar)."""
    owner = new_owner()
    if paths is None:
        mark_crashed_runs(station_id)
    plan = _plan(settings, station_id, paths, owner)
    if progress is None and on_file is not None:
        progress = IngestProgress(ended=on_file)
    if progress is not None:
        progress.planned(len(plan.job_ids), _bytes(settings, plan.job_ids))
    if not plan.job_ids:
        report = finish_sweep(plan, [])
    else:
        if progress is not None:
            _progress[owner] = progress
        try:
            with _in_process(settings) as runner, tags(*run_tags("sweep", station_id)):
                fn = _named_run(settings, ingest_station, "sweep", station_id, len(plan.job_ids))
                state = fn.with_options(task_runner=runner)(
                    station_id, None, owner, list(plan.job_ids), return_state=True
                )
        finally:
            _progress.pop(owner, None)
        report = _with_waiting(_result(state), plan)
    if paths is None:
        heartbeat(settings, report, files=len(plan.job_ids))
    return report


def plan_ahead(settings: Settings, station_id: str) -> list[int]:
    """A sweep planned by a host that submits it to the workers (``prefect.deployments``):
    its jobs, an empty list when there is nothing to take and so no run to submit. Either
    way the sweep is noted in the station's heartbeat."""
    plan = _plan(settings, station_id, None, new_owner())
    heartbeat(settings, finish_sweep(plan, []), files=len(plan.job_ids))
    return list(plan.job_ids)


def _bytes(settings: Settings, job_ids: Sequence[int]) -> int:
    if not job_ids:
        return 0
    catalog = open_catalog(settings.catalog_url, migrate=False)
    try:
        with catalog.read() as conn:
            return sum(jobs_db.sizes(conn, list(job_ids)).values())
    finally:
        catalog.dispose()


def _with_waiting(report: SweepReport, plan: SweepPlan) -> SweepReport:
    """The run's report with the files its plan left (still being written, refused)."""
    return replace(report, files=(*report.files, *plan.waiting))


def run_intake(
    settings: Settings,
    station_id: str,
    paths: list[str] | None,
    owner: str,
    *,
    check_crashed: bool = True,
    ctx: IngestContext | None = None,
    in_flight: Collection[int] = (),
) -> Intake:
    """Store and catalogue a batch (or sweep the station, ``paths`` None) as one
    ``intake-station`` run; a sweep that finds nothing makes no run. ``check_crashed``: a
    sweep marks the station's runs whose process is gone; ``ctx``: the caller's context to
    plan with (the run opens its own); ``in_flight``: jobs the caller already holds (the
    watcher's derive queue), left out."""
    if paths is None and check_crashed:
        mark_crashed_runs(station_id)
    plan = _plan(settings, station_id, paths, owner, ctx)
    if in_flight:
        plan = replace(plan, job_ids=tuple(j for j in plan.job_ids if j not in in_flight))
    if not plan.job_ids:
        intake = Intake(finish_sweep(plan, []), ())
    else:
        done = record_intake(settings, station_id, list(plan.job_ids), owner)
        intake = replace(done, report=_with_waiting(done.report, plan))
    if paths is None:
        heartbeat(settings, intake.report, files=len(plan.job_ids))
    return intake


def record_intake(settings: Settings, station_id: str, job_ids: list[int], owner: str) -> Intake:
    """The ``intake-station`` run of jobs planned (and perhaps already catalogued, by
    :func:`catalogue_now`) by ``owner``: the steps left, and what became of each file."""
    with _in_process(settings) as runner, tags(*run_tags("intake", station_id)):
        fn = _named_run(settings, intake_station, "intake", station_id, len(job_ids))
        state = fn.with_options(task_runner=runner)(
            station_id, None, owner, job_ids, return_state=True
        )
    done: Intake = _result(state)
    return done


@dataclass(frozen=True)
class Catalogued:
    """What :func:`catalogue_now` did: the files that ended (and those still being
    written), and every job it planned, for the intake run that records them."""

    report: SweepReport
    job_ids: tuple[int, ...]
    to_derive: tuple[int, ...]  # catalogued: proxies and release to come


def catalogue_now(
    ctx: IngestContext,
    station_id: str,
    paths: list[str] | None,
    *,
    check_crashed: bool = True,
    in_flight: Collection[int] = (),
) -> Catalogued:
    """Store and catalogue a batch (or sweep the station, ``paths`` None) in this process,
    ``ingest.workers`` files at a time, before any flow run: the watcher's way from a file
    landing to its catalogue entry then waits on no Prefect server. (With the intake run
    doing this work, a host with one core busy hashing had the watcher wait seconds per batch
    on the run's calls to a server sharing the CPU: benchmark 5.) The batch's
    ``intake-station`` run (:func:`record_intake`) follows with the same jobs and owner: it
    finds them catalogued, retries a file that failed here, and shows the batch in the UI as
    before. ``ctx`` is the caller's (its owner holds the jobs until they are derived);
    ``check_crashed`` and ``in_flight`` as for :func:`run_intake`."""
    settings = ctx.settings
    if paths is None and check_crashed:
        mark_crashed_runs(station_id)
    plan = _plan(settings, station_id, paths, ctx.owner, ctx)
    if in_flight:
        plan = replace(plan, job_ids=tuple(j for j in plan.job_ids if j not in in_flight))

    def one(job_id: int) -> FileReport | None:
        ended = store_job(ctx, plan.station, job_id)
        return ended if ended is not None else catalogue_job(ctx, plan.station, job_id)

    with ThreadPoolExecutor(max_workers=settings.ingest.workers) as pool:
        done = list(pool.map(one, plan.job_ids))
    ended = [r for r in done if r is not None]
    report = _with_waiting(finish_sweep(plan, ended), plan)
    if paths is None:
        heartbeat(settings, report, files=len(plan.job_ids))
    to_derive = tuple(j for j, r in zip(plan.job_ids, done, strict=True) if r is None)
    return Catalogued(report, plan.job_ids, to_derive)


def run_derive(settings: Settings, station_id: str, job_ids: list[int], owner: str) -> SweepReport:
    with _in_process(settings) as runner, tags(*run_tags("derive", station_id)):
        fn = _named_run(settings, derive_station, "derive", station_id, len(job_ids))
        state = fn.with_options(task_runner=runner)(station_id, job_ids, owner, return_state=True)
    report: SweepReport = _result(state)
    return report
