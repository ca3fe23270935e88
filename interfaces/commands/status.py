"""`evidence status`: what is queued at the docks, station by station."""

from __future__ import annotations

from datetime import datetime, tzinfo

import typer
from rich.table import Table

from interfaces import common, output
from interfaces.common import JsonOpt
from pipeline.ingest import usecases
from pipeline.ingest.queue import QueueView, StationQueue
from pipeline.models import JobState


def register(root: typer.Typer) -> None:
    root.command("status")(status)


def status(json_out: JsonOpt = False) -> None:
    """Show the ingest queue: per station the files still settling on the dock, unfinished
    jobs by state, failed jobs with their reasons, the proxy (derive) backlog in files and
    hours of footage, the file waiting longest, and the last (successful) sweep. Exit 1 when
    a job is failing.

    Example: evidence status
    """
    from docks.sweep import settling
    from pipeline.registry.stations import list_stations

    instance = common.instance()
    settled = {s.id: settling(instance.settings, s) for s in list_stations(instance.catalog)}
    view = usecases.queue_status(instance, settled)
    if json_out:
        output.print_json(view)
    else:
        zone = instance.settings.zone
        output.console.print(queue_table(view, zone))
        failed = failed_table(view)
        if failed.row_count:
            output.console.print(failed)
    raise typer.Exit(1 if any(s.failed for s in view.stations) else 0)


def _at(moment: datetime | None, zone: tzinfo) -> str:
    return "—" if moment is None else f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"


_STATES = (JobState.PENDING, JobState.STORED, JobState.CATALOGUED, JobState.DERIVED)


def queue_table(view: QueueView, zone: tzinfo) -> Table:
    """One row per station; times in ``zone``, named once in the title."""
    table = Table(
        title=output.text(f"Ingest queue (采集队列) at {_at(view.at, zone)}, times in {zone}")
    )
    for col in ("station", "settling", *(s.value for s in _STATES), "failed", "derive backlog",
                "waiting longest", "last sweep", "last ok sweep", "idle sweeps",
                "uploads (push)"):  # fmt: skip
        table.add_column(col, overflow="fold")
    for s in view.stations:
        oldest = "—" if s.oldest_waiting is None else f"{s.oldest_waiting} (since "
        if s.oldest_waiting is not None:
            oldest += f"{_at(s.oldest_since, zone)})"
        table.add_row(
            output.text(s.station_id),
            f"{s.settling} ({s.settling_bytes:,} B)" if s.settling else "0",
            *(str(s.jobs.get(state.value, 0)) for state in _STATES),
            f"[bold red]{len(s.failed)}[/]" if s.failed else "0",
            f"{s.derive_backlog} ({s.derive_hours:.1f} h)",
            output.text(oldest),
            _at(s.last_sweep, zone),
            _at(s.last_ok_sweep, zone),
            str(s.idle_sweeps),
            output.text(_push(s, zone)),
        )
    return table


def _push(s: StationQueue, zone: tzinfo) -> str:
    """A push station: online or not, its uploads receiving and those awaiting ingest."""
    if not s.pushes:
        return ""
    state = "在线 online" if s.online else f"离线 offline (last seen {_at(s.last_seen, zone)})"
    return f"{state}; {s.uploading} uploading, {s.uploaded} awaiting ingest"


def failed_table(view: QueueView) -> Table:
    table = Table(title="Failing jobs (失败), retried at the next sweep")
    for col in ("station", "job", "file", "state", "attempts", "reason"):
        table.add_column(col, overflow="fold")
    for s in view.stations:
        for f in s.failed:
            table.add_row(
                output.text(s.station_id),
                str(f.job_id),
                output.text(f.path),
                f.state.value,
                str(f.attempts),
                output.text(f.reason),
            )
    return table
