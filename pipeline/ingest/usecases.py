"""The ingest use cases an operator calls: what is queued at the docks."""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.catalog import jobs as jobs_db
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
    home = instance.settings.home
    beats = {sid: queue.read_heartbeat(home, sid) for sid in station_ids}
    return queue.assemble(
        instance.clock(), station_ids, counts, failing, backlog, oldest, settling or {}, beats
    )
