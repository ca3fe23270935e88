"""What operators see of the ingest runs: their names, tags and end states, their log lines
and artifacts, the sweep heartbeat, and the runs of killed processes marked crashed.

A run is named for what it does, ``intake DOCK-01 3 files 09:21`` (local time,
``devices.timezone``), and tagged ``station:DOCK-01``, ``kind:intake`` and ``evidence``. A file
that hit a system error ends its run in the Failed state ``FilesFailed``, with a log line naming
the file and the reason; quarantined files are log lines (warnings) and rows of the run's table
artifact, never tracebacks: they are outcomes, not faults.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prefect import get_run_logger
from prefect.artifacts import create_table_artifact
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
from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.exceptions import MissingContextError, PrefectException
from prefect.states import Crashed, Failed

from docks.sweep import settling
from pipeline.catalog.jobs import owner_alive
from pipeline.errors import EvidenceError
from pipeline.ingest.queue import record_sweep
from pipeline.ingest.steps import IngestContext
from pipeline.ingest.usecases import queue_status
from pipeline.instance import Instance
from pipeline.models import Outcome, SweepReport
from pipeline.registry.stations import list_stations
from pipeline.settings import Settings, load_settings

RUN_TAG = "evidence"
#: The custom Failed state of a run in which some file hit a system error.
FILES_FAILED = "FilesFailed"

log = logging.getLogger(__name__)


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run's logger inside a flow run (its lines go to the UI), else this module's."""
    try:
        return get_run_logger()
    except MissingContextError:
        return log


def run_tags(kind: str, station_id: str) -> list[str]:
    return [RUN_TAG, f"kind:{kind}", f"station:{station_id}"]


def run_name(kind: str, station_id: str, files: int | None, at: datetime) -> str:
    """``intake DOCK-01 3 files 09:21``: what ran, where, on how many files, when (local)."""
    count = "" if files is None else f" {files} file{'' if files == 1 else 's'}"
    return f"{kind} {station_id}{count} {at:%H:%M}"


def default_name(kind: str) -> Callable[[], str]:
    """The name of a run started without one (a deployment's, by a worker)."""

    def name() -> str:
        from prefect.runtime import flow_run

        parameters = flow_run.parameters
        wanted = parameters.get("job_ids") or parameters.get("paths")
        at = datetime.now(load_settings().zone)
        return run_name(kind, str(parameters.get("station_id")), wanted and len(wanted), at)

    return name


def conclude(report: SweepReport, kind: str) -> Any:
    """The report, or the Failed state ``FilesFailed`` carrying it when a file hit a system
    error; every problem a clean log line naming the file and the reason."""
    logger = _logger()
    for f in report.files:
        if f.outcome is Outcome.FAILED:
            logger.error("%s: %s failed: %s", report.station_id, f.path, f.reason)
        elif f.outcome in (Outcome.QUARANTINED, Outcome.VANISHED, Outcome.REFUSED):
            logger.warning("%s: %s %s: %s", report.station_id, f.path, f.outcome.value, f.reason)
    failed = [f for f in report.files if f.outcome is Outcome.FAILED]
    if not failed:
        return report
    first = failed[0]
    message = (
        f"{len(failed)} of {len(report.files)} files of {report.station_id} failed; "
        f"{Path(first.path).name}: {first.reason}"
    )
    return Failed(name=FILES_FAILED, message=message, data=report)


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
        _logger().warning("earlier runs of %s not checked: %s", station_id, exc)
    if marked:
        _logger().warning("%d run(s) of %s marked crashed", marked, station_id)
    return marked


def publish_queue(ctx: IngestContext) -> None:
    """The queue view of ``evidence status`` as the ``ingest-queue`` table artifact, one row
    per station: refreshed by every derive and sweep run, the runs that change it most (an
    artifact outside a run is deprecated in Prefect 3). Never the run's failure."""
    try:
        instance = Instance(settings=ctx.settings, catalog=ctx.catalog)
        stations = list_stations(ctx.catalog)
        view = queue_status(instance, {s.id: settling(ctx.settings, s) for s in stations})
    except EvidenceError as exc:
        _logger().warning("the ingest-queue artifact was not refreshed: %s", exc)
        return
    zone = ctx.settings.zone

    def at(moment: datetime | None) -> str:
        return "" if moment is None else f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"

    create_table_artifact(
        key="ingest-queue",
        table=[
            {
                "station": q.station_id,
                "settling": q.settling,
                **{state: q.jobs.get(state, 0) for state in ("pending", "stored", "catalogued")},
                "failed": len(q.failed),
                "failed reasons": "; ".join(f"{f.path}: {f.reason}" for f in q.failed[:3]),
                "derive backlog": q.derive_backlog,
                "footage h": round(q.derive_hours, 2),
                "waiting longest": q.oldest_waiting or "",
                "since": at(q.oldest_since),
                "last sweep": at(q.last_sweep),
                "last ok sweep": at(q.last_ok_sweep),
                "idle sweeps": q.idle_sweeps,
            }
            for q in view.stations
        ],
        description=f"Ingest queue at {at(view.at)} ({zone}): {view.total_waiting} files waiting",
    )


def publish_report(report: SweepReport, what: str) -> None:
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


def heartbeat(settings: Settings, report: SweepReport, *, files: int) -> None:
    """Note a sweep of the station: in its heartbeat file, and as the Prefect event
    ``evidence.station.swept`` (which the "station silent" automation expects)."""
    waiting = report.count(Outcome.WAITING)
    now = datetime.now(UTC)
    beat = record_sweep(
        settings.home, report.station_id, now, files=files, waiting=waiting, ok=report.ok
    )
    if not files:
        _logger().info(
            "%s: sweep found nothing to take (%d still being written; idle sweep %d)",
            report.station_id, waiting, beat.idle_sweeps,
        )  # fmt: skip
    try:
        emit_event(
            event="evidence.station.swept",
            resource={"prefect.resource.id": f"evidence.station.{report.station_id}"},
            payload={"files": files, "waiting": waiting, "idle_sweeps": beat.idle_sweeps},
        )
    except Exception as exc:  # housekeeping: never the sweep's failure
        log.debug("event not emitted: %s", exc)
