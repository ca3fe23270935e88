"""The registry's use cases: one function per action a person takes on devices, officers,
assignments and stations, whichever interface they use (the CLI, the web, the station API).

Each takes the ``Instance`` first, owns its transaction (``read()`` for lookups, so that a
listing never queues behind an ingest for SQLite's write lock; ``begin()`` for changes) and
returns frozen dataclasses that ``plain()`` turns into the JSON of ``--json`` and ``/api/v1``.
Every change is made by the instance's actor, who must be a registered officer
(``records.require_registrar``): a device record decides who is attributed, a dump folder
what is archived.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from pipeline.catalog import media as media_db
from pipeline.catalog import registry as rows
from pipeline.catalog import uploads as upload_rows
from pipeline.errors import NotFound, StationError
from pipeline.instance import Instance
from pipeline.models import (
    Assignment,
    Device,
    DeviceStatus,
    Officer,
    QuarantineEntry,
    Station,
)
from pipeline.registry import bulk, health, records
from pipeline.registry import stations as station_rows
from pipeline.registry.records import Change


@dataclass(frozen=True)
class HeldDevice(Device):
    """A device with the officer who holds it now (None: nobody)."""

    holder: str | None = None


@dataclass(frozen=True)
class DeviceDetail:
    device: Device
    assignments: tuple[Assignment, ...]  # by start, oldest first
    quarantine: tuple[QuarantineEntry, ...]  # its files waiting for a person
    # The clock offsets push stations saw when they set it (newest first): station, offset
    # (positive: fast), when.
    clock_reports: tuple[tuple[str, float, datetime], ...] = ()


@dataclass(frozen=True)
class OfficerDetail:
    officer: Officer
    assignments: tuple[Assignment, ...]  # the devices they held


@dataclass(frozen=True)
class StationDetail:
    station: Station
    health: health.StationHealth


@dataclass(frozen=True)
class RegistryExport:
    """The whole registry in the import format, one table a section."""

    stations: tuple[dict[str, Any], ...]
    officers: tuple[dict[str, Any], ...]
    devices: tuple[dict[str, Any], ...]
    assignments: tuple[dict[str, Any], ...]

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """As ``bulk.to_yaml`` and ``bulk.write_csv`` take it."""
        return {s: list(getattr(self, s)) for s in bulk.SECTIONS}


def _registrar(conn: Connection, instance: Instance) -> str:
    """Who makes this change, once the registry has accepted them."""
    actor = instance.actor or ""
    records.require_registrar(conn, actor)
    return actor


# --------------------------------------------------------------------------------- devices


def add_device(instance: Instance, device: Device) -> Change:
    """Register a device, or update it to ``device`` (unchanged when identical)."""
    with instance.catalog.begin() as conn:
        return records.save_device(conn, device, _registrar(conn, instance))


def list_devices(instance: Instance) -> list[HeldDevice]:
    with instance.catalog.read() as conn:
        return [
            HeldDevice(
                d.serial,
                d.kind,
                d.status,
                d.vendor,
                d.model,
                d.clock_offset_s,
                holder=a.officer_id if (a := rows.open_assignment(conn, d.serial)) else None,
            )
            for d in rows.all_devices(conn)
        ]


def device_detail(instance: Instance, serial: str) -> DeviceDetail:
    """A device, who held it when, and its files in quarantine; NotFound if unregistered."""
    with instance.catalog.read() as conn:
        device = rows.device(conn, serial)
        if device is None:
            raise NotFound("device", serial)
        return DeviceDetail(
            device,
            tuple(rows.device_assignments(conn, serial)),
            tuple(media_db.quarantine_entries(conn, device_serial=serial)),
            tuple(upload_rows.clock_reports_of(conn, serial)),
        )


def set_device_status(
    instance: Instance, serial: str, status: DeviceStatus, reason: str = ""
) -> Change:
    """Files from a lost or retired device are quarantined from then on; the reason is kept
    in the custody log's alert."""
    with instance.catalog.begin() as conn:
        return records.set_status_in(conn, serial, status, _registrar(conn, instance), reason)


def assign_device(
    instance: Instance,
    serial: str,
    officer_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Change:
    """Record that an officer holds a device from ``start`` (default now) until ``end``
    (None: open); an overlap with another assignment of the device is refused."""
    with instance.catalog.begin() as conn:
        actor = _registrar(conn, instance)
        return records.save_assignment(
            conn, serial, officer_id, start or instance.clock(), end, actor
        )


def unassign_device(instance: Instance, serial: str, at: datetime | None = None) -> Assignment:
    """End the device's open assignment at ``at`` (default now): the assignment as ended."""
    with instance.catalog.begin() as conn:
        actor = _registrar(conn, instance)
        return records.end_assignment(conn, serial, at or instance.clock(), actor)


def health_report(instance: Instance) -> health.Health:
    """Every device's and station's docking, volume, drift and quarantine, as of now."""
    with instance.catalog.read() as conn:
        return health.report_in(conn, instance.settings.devices, instance.clock())


# --------------------------------------------------------------------------------- officers


def add_officer(instance: Instance, officer: Officer) -> Change:
    """Register an officer, or update one (a certificate number held by another is refused)."""
    with instance.catalog.begin() as conn:
        return records.save_officer(conn, officer, _registrar(conn, instance))


def list_officers(instance: Instance) -> list[Officer]:
    with instance.catalog.read() as conn:
        return rows.all_officers(conn)


def officer_detail(instance: Instance, officer_id: str) -> OfficerDetail:
    """An officer and the devices they held; NotFound if unregistered."""
    with instance.catalog.read() as conn:
        officer = rows.officer(conn, officer_id)
        if officer is None:
            raise NotFound("officer", officer_id)
        held = [a for a in rows.all_assignments(conn) if a.officer_id == officer_id]
    return OfficerDetail(officer, tuple(held))


# --------------------------------------------------------------------------------- stations


def add_station(
    instance: Instance,
    station_id: str,
    root: Path | None,
    *,
    name: str = "",
    location: str = "",
    preserves_mtimes: bool = False,
    pushes: bool = False,
) -> Station:
    """Register a station and its dump folder (which must exist and overlap neither another
    station's nor EVIDENCE_HOME, the archive or the keys). ``preserves_mtimes``: the station
    copies files with the recorder's mtimes, so the clock-drift check may trust them.
    ``pushes``: it uploads over the station API; its dump folder is then its intake folder
    on this server (made, by default ``intake/<id>`` in EVIDENCE_HOME)."""
    if root is None:
        if not pushes:
            raise StationError(station_id, "a dump folder (--root) is needed, or --push")
        root = instance.settings.intake_dir / station_id
    if pushes:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
    with instance.catalog.begin() as conn:
        return station_rows.add_station_in(
            conn,
            station_id,
            root,
            _registrar(conn, instance),
            name=name,
            location=location,
            preserves_mtimes=preserves_mtimes,
            pushes=pushes,
            settings=instance.settings,
        )


def set_station_mtimes(instance: Instance, station_id: str, preserves_mtimes: bool) -> Change:
    """Say whether a station copies files with the recorder's mtimes (rsync -t, cp -p): only
    then does the clock-drift check compare a recording's end with its file time. A custody
    event when it changes; NotFound for an unregistered station."""
    with instance.catalog.begin() as conn:
        actor = _registrar(conn, instance)
        station = station_rows.station_in(conn, station_id)
        wanted = replace(station, preserves_mtimes=preserves_mtimes)
        return station_rows.save_station(conn, wanted, actor, settings=instance.settings)


def list_stations(instance: Instance) -> list[Station]:
    with instance.catalog.read() as conn:
        return station_rows.list_stations_in(conn)


def station_detail(instance: Instance, station_id: str) -> StationDetail:
    """A station and its health; NotFound if unregistered."""
    with instance.catalog.read() as conn:
        station = station_rows.station_in(conn, station_id)
        report = health.report_in(conn, instance.settings.devices, instance.clock())
    return StationDetail(station, next(s for s in report.stations if s.id == station_id))


# --------------------------------------------------------------------------------- files


def import_registry(instance: Instance, path: Path) -> list[Change]:
    """Import a registry file (YAML, or one CSV table): validated as a whole first, then
    applied in one transaction, all or nothing; re-importing it changes nothing."""
    parsed = bulk.read_file(path, instance.settings.zone)
    with instance.catalog.begin() as conn:
        actor = _registrar(conn, instance)  # as the catalog stood before the file
        return bulk.apply_in(conn, parsed, path, actor, settings=instance.settings)


def export_registry(instance: Instance) -> RegistryExport:
    with instance.catalog.read() as conn:
        tables = bulk.export_tables_in(conn)
    return RegistryExport(
        tuple(tables["stations"]),
        tuple(tables["officers"]),
        tuple(tables["devices"]),
        tuple(tables["assignments"]),
    )
