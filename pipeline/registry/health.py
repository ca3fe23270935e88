"""Station and device health: who docks, how much, whose clock drifts, what waits in
quarantine, and which devices have not docked for too long (a recorder not offloaded is
footage at risk: national practice asks for offload within 24 hours of the end of duty)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from pipeline.catalog import Catalog
from pipeline.catalog import registry as rows
from pipeline.catalog.schema import media, quarantine, sightings, stations
from pipeline.settings import DevicesSettings

WINDOW_DAYS = 7  # files and bytes per day are averaged over the last week
DRIFT_WINDOW_DAYS = 30


@dataclass(frozen=True)
class DeviceHealth:
    serial: str
    kind: str
    status: str
    holder: str | None  # officer of the open assignment
    last_docked: datetime | None
    files_per_day: float
    bytes_per_day: float
    drifted_files: int
    quarantined: int
    problems: tuple[str, ...]


@dataclass(frozen=True)
class StationHealth:
    id: str
    last_docked: datetime | None
    files_per_day: float
    bytes_per_day: float
    quarantined: int
    unregistered_serials: tuple[str, ...]


@dataclass(frozen=True)
class Health:
    devices: tuple[DeviceHealth, ...]
    stations: tuple[StationHealth, ...]


def _by(conn: Any, key: Any, *cols: Any, where: Any = None, join: Any = None) -> dict[Any, Any]:
    query = select(key, *cols)
    if join is not None:
        query = query.select_from(join)
    if where is not None:
        query = query.where(where)
    return {r[0]: r[1:] for r in conn.execute(query.group_by(key))}


def report(catalog: Catalog, settings: DevicesSettings, now: datetime) -> Health:
    with catalog.read() as conn:
        return report_in(conn, settings, now)


def report_in(conn: Connection, settings: DevicesSettings, now: datetime) -> Health:
    """The health of every device and station, as the catalog stands in ``conn``."""
    since = now - timedelta(days=WINDOW_DAYS)
    seen = sightings.join(media, media.c.id == sightings.c.media_id)
    held = quarantine.join(media, media.c.id == quarantine.c.media_id)
    open_q = quarantine.c.resolved_at.is_(None)
    devices = rows.all_devices(conn)
    holders = {d.serial: rows.open_assignment(conn, d.serial) for d in devices}
    dev_last = _by(conn, media.c.device_serial, func.max(sightings.c.seen_at), join=seen)
    dev_recent = _by(
        conn,
        media.c.device_serial,
        func.count(sightings.c.id),
        func.sum(media.c.size),
        join=seen,
        where=sightings.c.seen_at >= since,
    )
    dev_quarantined = _by(
        conn, media.c.device_serial, func.count(quarantine.c.id), join=held, where=open_q
    )
    flagged = conn.execute(
        select(media.c.device_serial, media.c.flags).where(
            media.c.device_serial.is_not(None),
            media.c.ingested_at >= now - timedelta(days=DRIFT_WINDOW_DAYS),
        )
    ).all()
    st_ids = [r.id for r in conn.execute(select(stations.c.id).order_by(stations.c.id))]
    st_last = _by(conn, sightings.c.station_id, func.max(sightings.c.seen_at), join=seen)
    st_recent = _by(
        conn,
        sightings.c.station_id,
        func.count(sightings.c.id),
        func.sum(media.c.size),
        join=seen,
        where=sightings.c.seen_at >= since,
    )
    st_quarantined = _by(conn, quarantine.c.station_id, func.count(quarantine.c.id), where=open_q)
    st_serials = conn.execute(
        select(sightings.c.station_id, media.c.device_serial).select_from(seen).distinct()
    ).all()
    registered = {d.serial for d in devices}
    drift: dict[str, int] = {}
    for serial, flags in flagged:
        if any(f.get("code") == "clock-drift" for f in flags or []):
            drift[serial] = drift.get(serial, 0) + 1

    device_rows = []
    for d in devices:
        last = dev_last.get(d.serial, (None,))[0]
        count, size = dev_recent.get(d.serial, (0, 0))
        problems = []
        if last is None or now - last > timedelta(days=settings.not_docked_days):
            problems.append(f"not docked in {settings.not_docked_days} days")
        if drift.get(d.serial, 0) >= settings.drift_repeat:
            problems.append(f"repeated clock drift ({drift[d.serial]} files)")
        quarantined = dev_quarantined.get(d.serial, (0,))[0]
        if quarantined:
            problems.append(f"{quarantined} file(s) in quarantine")
        if (
            d.status.value in ("lost", "retired")
            and last is not None
            and last > now - timedelta(days=WINDOW_DAYS)
        ):
            problems.append(f"docked while {d.status.value}")
        holder = holders[d.serial]
        device_rows.append(
            DeviceHealth(
                d.serial,
                d.kind.value,
                d.status.value,
                holder.officer_id if holder else None,
                last,
                (count or 0) / WINDOW_DAYS,
                float(size or 0) / WINDOW_DAYS,
                drift.get(d.serial, 0),
                quarantined,
                tuple(problems),
            )
        )
    station_rows = []
    for sid in st_ids:
        count, size = st_recent.get(sid, (0, 0))
        unknown = sorted({s for st, s in st_serials if st == sid and s and s not in registered})
        station_rows.append(
            StationHealth(
                sid,
                st_last.get(sid, (None,))[0],
                (count or 0) / WINDOW_DAYS,
                float(size or 0) / WINDOW_DAYS,
                st_quarantined.get(sid, (0,))[0],
                tuple(unknown),
            )
        )
    return Health(tuple(device_rows), tuple(station_rows))
