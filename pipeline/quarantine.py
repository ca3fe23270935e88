"""Letting a quarantined file through once the reason is gone.

Only quarantines for the *device* can be released (unknown, lost or retired recorder): once a
person has registered the device or corrected its status, the file is identified again,
attributed, given its proxy and archived, and the release is a custody event naming who did
it. A file that is itself unusable (truncated, undecodable) stays quarantined: its bytes are
kept, there is nothing to release it into.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sqlalchemy import select

from pipeline import custody
from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import media as media_db
from pipeline.catalog.schema import stations
from pipeline.derive import make_derivatives
from pipeline.errors import DeviceLost, DeviceRetired, QuarantineError, UnknownDevice
from pipeline.identify import device_verdict, identify
from pipeline.ingest import IngestContext, record_derivatives, record_quarantine
from pipeline.models import EventKind, MediaItem, SourceFile

RELEASABLE = frozenset({UnknownDevice.code, DeviceLost.code, DeviceRetired.code})


def release(ctx: IngestContext, entry_id: int, actor: str) -> MediaItem:
    """Release one quarantine entry; raises QuarantineError saying why it cannot be."""
    now = ctx.clock()
    with ctx.catalog.begin() as conn:
        entry = media_db.quarantine_entry(conn, entry_id)
        if entry.resolved_at is not None:
            raise QuarantineError(
                f"quarantine {entry_id} was already released by {entry.resolved_by} "
                f"at {entry.resolved_at:%Y-%m-%d %H:%M:%S} UTC"
            )
        if entry.code not in RELEASABLE or entry.media_id is None or entry.job_id is None:
            raise QuarantineError(
                f"quarantine {entry_id} ({entry.code}: {entry.reason}) is about the file itself; "
                "only quarantines for an unknown, lost or retired device can be released"
            )
        item = media_db.get(conn, entry.media_id)
        job = jobs_db.get(conn, entry.job_id)
        root = conn.execute(
            select(stations.c.root).where(stations.c.id == job.station_id)
        ).scalar_one()
        source = SourceFile(job.station_id, Path(job.source_path), job.size, job.mtime_ns)
        ident, device = identify(conn, ctx.settings.devices, Path(root), source, item.probe, now)
    problem, flags = device_verdict(ident, device, ctx.settings.devices.unknown)
    if problem is not None:
        raise QuarantineError(
            f"quarantine {entry_id}: {problem.reason}; register the device or correct its "
            "status first (evidence devices add / set-status)"
        )
    ident = replace(ident, flags=(*ident.flags, *flags))
    derived = make_derivatives(ctx.store, ctx.settings, item)
    with ctx.catalog.begin() as conn:
        media_db.resolve_quarantine(conn, entry_id, actor, now)
        media_db.set_identification(conn, item.id, ident)
        media_db.set_archived(conn, item.id)
        custody.append(
            conn,
            EventKind.QUARANTINE_RELEASED,
            actor,
            media_id=item.id,
            station_id=job.station_id,
            subject=str(entry_id),
            details={
                "quarantine": entry_id,
                "code": entry.code,
                "device": ident.device_serial,
                "officer": ident.officer_id,
                "flags": [f.code for f in ident.flags],
            },
        )
        record_derivatives(ctx, conn, item.id, job.station_id, derived, now)
        if derived.failure is not None:
            failure = derived.failure
            record_quarantine(ctx, conn, item.id, job, source, failure.code, failure.reason, now)
        return media_db.get(conn, item.id)
