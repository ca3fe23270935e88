"""Docking stations (采集站): registered dump folders, one per station."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, update

from devices.registry import Change
from pipeline import custody
from pipeline.catalog import Catalog
from pipeline.catalog.schema import stations
from pipeline.errors import NotFound, StationError
from pipeline.models import EventKind, Station

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _station(row: Any) -> Station:
    return Station(id=row.id, root=Path(row.root), name=row.name, location=row.location)


def add_station(
    catalog: Catalog, station_id: str, root: Path, actor: str, *, name: str = "", location: str = ""
) -> Station:
    """Register a new station. Its dump folder must exist and must not overlap another's."""
    with catalog.begin() as conn:
        if conn.execute(select(stations.c.id).where(stations.c.id == station_id)).first():
            raise StationError(station_id, "already registered")
        save_station(conn, Station(station_id, root, name, location), actor)
    return Station(station_id, root.expanduser().resolve(), name, location)


def save_station(conn: Connection, station: Station, actor: str) -> Change:
    """Add or update a station (imports); unchanged when identical."""
    if not _ID.match(station.id):
        raise StationError(station.id, "id must be 1-64 letters, digits, '.', '_' or '-'")
    root = station.root.expanduser().resolve()
    if not root.is_dir():
        raise StationError(station.id, f"dump folder {root} does not exist or is not a folder")
    for other in list_stations_in(conn):
        if other.id != station.id and (
            root == other.root or root in other.root.parents or other.root in root.parents
        ):
            raise StationError(
                station.id, f"dump folder {root} overlaps station {other.id} ({other.root})"
            )
    wanted = Station(station.id, root, station.name, station.location)
    row = conn.execute(select(stations).where(stations.c.id == station.id)).one_or_none()
    if row is not None and _station(row) == wanted:
        return Change("station", station.id, "unchanged")
    values = {"root": str(root), "name": station.name, "location": station.location}
    if row is None:
        conn.execute(
            stations.insert().values(id=station.id, created_at=datetime.now(UTC), **values)
        )
    else:
        conn.execute(update(stations).where(stations.c.id == station.id).values(**values))
    custody.append(
        conn,
        EventKind.STATION_ADDED if row is None else EventKind.REGISTRY_CHANGED,
        actor,
        station_id=station.id,
        subject=str(root),
        details={"entity": "station", "name": station.name, "location": station.location},
    )
    return Change("station", station.id, "added" if row is None else "changed")


def list_stations_in(conn: Connection) -> list[Station]:
    return [_station(r) for r in conn.execute(select(stations).order_by(stations.c.id))]


def list_stations(catalog: Catalog) -> list[Station]:
    with catalog.begin() as conn:
        return list_stations_in(conn)


def get_station(catalog: Catalog, station_id: str) -> Station:
    with catalog.begin() as conn:
        row = conn.execute(select(stations).where(stations.c.id == station_id)).one_or_none()
    if row is None:
        raise NotFound("station", station_id)
    return _station(row)
