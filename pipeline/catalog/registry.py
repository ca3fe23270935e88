"""Registry rows: officers, devices, assignments. Rules about them live in devices/registry.py
(changes) and pipeline/identify.py (attribution); this module only reads and writes rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from pipeline.catalog.schema import assignments, devices, officers
from pipeline.models import Assignment, Device, DeviceKind, DeviceStatus, Officer, Role


def _device(row: Any) -> Device:
    return Device(
        row.serial,
        DeviceKind(row.kind),
        DeviceStatus(row.status),
        row.vendor,
        row.model,
        row.clock_offset_s,
    )


def _officer(row: Any) -> Officer:
    return Officer(row.id, row.name, row.cert_no, row.department, tuple(Role(r) for r in row.roles))


def _assignment(row: Any) -> Assignment:
    return Assignment(row.id, row.device_serial, row.officer_id, row.start, row.end)


def device(conn: Connection, serial: str) -> Device | None:
    row = conn.execute(select(devices).where(devices.c.serial == serial)).one_or_none()
    return None if row is None else _device(row)


def all_devices(conn: Connection) -> list[Device]:
    return [_device(r) for r in conn.execute(select(devices).order_by(devices.c.serial))]


def officer(conn: Connection, officer_id: str) -> Officer | None:
    row = conn.execute(select(officers).where(officers.c.id == officer_id)).one_or_none()
    return None if row is None else _officer(row)


def officer_by_cert(conn: Connection, cert_no: str) -> Officer | None:
    row = conn.execute(select(officers).where(officers.c.cert_no == cert_no)).one_or_none()
    return None if row is None else _officer(row)


def all_officers(conn: Connection) -> list[Officer]:
    return [_officer(r) for r in conn.execute(select(officers).order_by(officers.c.id))]


def save_device(conn: Connection, d: Device, now: datetime) -> None:
    values = {
        "kind": d.kind.value,
        "status": d.status.value,
        "vendor": d.vendor,
        "model": d.model,
        "clock_offset_s": d.clock_offset_s,
        "updated_at": now,
    }
    if device(conn, d.serial) is None:
        conn.execute(devices.insert().values(serial=d.serial, **values))
    else:
        conn.execute(update(devices).where(devices.c.serial == d.serial).values(**values))


def save_officer(conn: Connection, o: Officer, now: datetime) -> None:
    values = {
        "name": o.name,
        "cert_no": o.cert_no,
        "department": o.department,
        "roles": [r.value for r in o.roles],
        "updated_at": now,
    }
    if officer(conn, o.id) is None:
        conn.execute(officers.insert().values(id=o.id, **values))
    else:
        conn.execute(update(officers).where(officers.c.id == o.id).values(**values))


def device_assignments(conn: Connection, serial: str) -> list[Assignment]:
    query = select(assignments).where(assignments.c.device_serial == serial)
    return [_assignment(r) for r in conn.execute(query.order_by(assignments.c.start))]


def all_assignments(conn: Connection) -> list[Assignment]:
    query = select(assignments).order_by(assignments.c.device_serial, assignments.c.start)
    return [_assignment(r) for r in conn.execute(query)]


def overlapping(
    conn: Connection, serial: str, start: datetime, end: datetime | None
) -> list[Assignment]:
    """Assignments of the device whose [start, end) meets [start, end)."""
    query = select(assignments).where(
        assignments.c.device_serial == serial,
        or_(assignments.c.end.is_(None), assignments.c.end > start),
    )
    if end is not None:
        query = query.where(assignments.c.start < end)
    return [_assignment(r) for r in conn.execute(query.order_by(assignments.c.start))]


def add_assignment(
    conn: Connection, serial: str, officer_id: str, start: datetime, end: datetime | None
) -> int:
    result = conn.execute(
        assignments.insert().values(
            device_serial=serial, officer_id=officer_id, start=start, end=end
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def set_assignment_end(conn: Connection, assignment_id: int, end: datetime | None) -> None:
    conn.execute(update(assignments).where(assignments.c.id == assignment_id).values(end=end))


def open_assignment(conn: Connection, serial: str) -> Assignment | None:
    query = select(assignments).where(
        and_(assignments.c.device_serial == serial, assignments.c.end.is_(None))
    )
    row = conn.execute(query).one_or_none()
    return None if row is None else _assignment(row)
