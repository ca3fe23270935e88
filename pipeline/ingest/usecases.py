"""The ingest use cases an operator calls: what is queued at the docks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import uploads as uploads_db
from pipeline.ingest import queue
from pipeline.instance import Instance
from pipeline.models import SourceFile
from pipeline.registry.stations import list_stations_in


def queue_status(
    instance: Instance, settling: Mapping[str, list[SourceFile]] | None = None
) -> queue.QueueView:
    """Per station: files settling on the dock (``settling``, found by the caller, which can
    read the docks), jobs by state, failed jobs with their reasons, the derive backlog, the
    file waiting longest, and the last sweeps."""
    with instance.catalog.read() as conn:
        station_ids = [s.id for s in list_stations_in(conn)]
        counts = jobs_db.unfinished_by_state(conn)
        failing = jobs_db.failing(conn)
        backlog = jobs_db.derive_backlog(conn)
        oldest = jobs_db.oldest_unfinished(conn)
        pushing = {s.id for s in list_stations_in(conn) if s.pushes}
        seen = uploads_db.all_presence(conn)
        uploads = uploads_db.open_counts(conn)
    home = instance.settings.home
    beats = {sid: queue.read_heartbeat(home, sid) for sid in station_ids}
    now = instance.clock()
    view = queue.assemble(now, station_ids, counts, failing, backlog, oldest, settling or {}, beats)
    silent = timedelta(seconds=instance.settings.dock.silent_after_s)
    return replace(
        view,
        stations=tuple(
            _with_push(s, seen.get(s.station_id), uploads.get(s.station_id, {}), now, silent)
            if s.station_id in pushing
            else s
            for s in view.stations
        ),
    )


def _with_push(
    station: queue.StationQueue,
    seen: uploads_db.PresenceRow | None,
    uploads: Mapping[str, int],
    now: datetime,
    silent: timedelta,
) -> queue.StationQueue:
    return replace(
        station,
        pushes=True,
        online=seen is not None and now - seen.last_seen <= silent,
        last_seen=seen.last_seen if seen else None,
        uploading=uploads.get("receiving", 0),
        uploaded=uploads.get("received", 0),
    )
