"""Docking stations (采集站): registered dump folders, one per station."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, update

from pipeline.catalog import Catalog
from pipeline.catalog.schema import stations
from pipeline.custody import log as custody
from pipeline.errors import NotFound, StationError
from pipeline.models import EventKind, Station
from pipeline.registry.records import Change, require_registrar
from pipeline.settings import Settings

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _station(row: Any) -> Station:
    return Station(
        id=row.id,
        root=Path(row.root),
        name=row.name,
        location=row.location,
        preserves_mtimes=bool(row.preserves_mtimes),
        pushes=bool(row.pushes),
    )


def protected_roots(settings: Settings) -> list[tuple[str, Path]]:
    """Folders no dump folder may overlap: what a sweep reads there it may archive, and what
    it releases it moves or deletes."""
    home = settings.home
    places = [
        ("the archive", settings.archive_dir),
        ("the signing keys", home / "keys"),
        ("the S3 work folder", settings.s3_work_dir),
        ("the uploads in progress", settings.uploads_dir),
        ("the Prefect home", settings.prefect_home),
        ("the logs", settings.log_dir),
        ("the work folder", home / "work"),
    ]
    return [(what, path.expanduser().resolve()) for what, path in places]


def _overlap(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def root_problem(
    settings: Settings | None, station_id: str, root: Path, others: Sequence[Station]
) -> str | None:
    """Why ``root`` cannot be this station's dump folder, or None. A dock may live in a
    folder of its own inside EVIDENCE_HOME (the demo's do), never on it or above it: that
    would take in the catalog, the archive and the keys."""
    if settings is not None:
        home = settings.home.expanduser().resolve()
        if root == home or root in home.parents:
            return f"dump folder {root} overlaps EVIDENCE_HOME ({home})"
        for what, protected in protected_roots(settings):
            if _overlap(root, protected):
                return f"dump folder {root} overlaps {what} ({protected})"
    for other in others:
        if other.id != station_id and _overlap(root, other.root.expanduser().resolve()):
            return f"dump folder {root} overlaps station {other.id} ({other.root})"
    return None


def check_station_root(settings: Settings, station: Station, others: Sequence[Station]) -> None:
    """At every sweep: the dump folder exists, is a folder, and overlaps nothing protected
    (the settings or another station may have changed since it was registered)."""
    root = station.root
    if not root.is_dir() or root.is_symlink():
        raise StationError(station.id, f"dump folder {root} is missing or not a folder")
    problem = root_problem(settings, station.id, root.resolve(), others)
    if problem is not None:
        raise StationError(station.id, f"{problem}: not swept (evidence stations add/import)")


def add_station(
    catalog: Catalog,
    station_id: str,
    root: Path,
    actor: str,
    *,
    name: str = "",
    location: str = "",
    preserves_mtimes: bool = False,
    settings: Settings | None = None,
) -> Station:
    """Register a new station. Its dump folder must exist and must overlap neither another
    station's nor (given the settings) EVIDENCE_HOME, the archive or the keys."""
    with catalog.begin() as conn:
        require_registrar(conn, actor)
        return add_station_in(
            conn,
            station_id,
            root,
            actor,
            name=name,
            location=location,
            preserves_mtimes=preserves_mtimes,
            settings=settings,
        )


def add_station_in(
    conn: Connection,
    station_id: str,
    root: Path,
    actor: str,
    *,
    name: str = "",
    location: str = "",
    preserves_mtimes: bool = False,
    pushes: bool = False,
    settings: Settings | None = None,
) -> Station:
    """``add_station`` within a transaction (the registrar already checked)."""
    if conn.execute(select(stations.c.id).where(stations.c.id == station_id)).first():
        raise StationError(station_id, "already registered")
    station = Station(station_id, root, name, location, preserves_mtimes, pushes)
    save_station(conn, station, actor, settings=settings)
    return replace(station, root=root.expanduser().resolve())


def save_station(
    conn: Connection, station: Station, actor: str, *, settings: Settings | None = None
) -> Change:
    """Add or update a station (imports); unchanged when identical."""
    if not _ID.match(station.id):
        raise StationError(station.id, "id must be 1-64 letters, digits, '.', '_' or '-'")
    root = station.root.expanduser().resolve()
    if not root.is_dir():
        raise StationError(station.id, f"dump folder {root} does not exist or is not a folder")
    problem = root_problem(settings, station.id, root, list_stations_in(conn))
    if problem is not None:
        raise StationError(station.id, problem)
    wanted = replace(station, root=root)
    row = conn.execute(select(stations).where(stations.c.id == station.id)).one_or_none()
    if row is not None and _station(row) == wanted:
        return Change("station", station.id, "unchanged")
    values = {
        "root": str(root),
        "name": station.name,
        "location": station.location,
        "preserves_mtimes": station.preserves_mtimes,
        "pushes": station.pushes,
    }
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
        details={
            "entity": "station",
            "name": station.name,
            "location": station.location,
            "preserves_mtimes": station.preserves_mtimes,
            "pushes": station.pushes,
        },
    )
    return Change("station", station.id, "added" if row is None else "changed")


def list_stations_in(conn: Connection) -> list[Station]:
    return [_station(r) for r in conn.execute(select(stations).order_by(stations.c.id))]


def list_stations(catalog: Catalog) -> list[Station]:
    with catalog.read() as conn:
        return list_stations_in(conn)


def get_station(catalog: Catalog, station_id: str) -> Station:
    with catalog.read() as conn:
        return station_in(conn, station_id)


def station_in(conn: Connection, station_id: str) -> Station:
    row = conn.execute(select(stations).where(stations.c.id == station_id)).one_or_none()
    if row is None:
        raise NotFound("station", station_id)
    return _station(row)
