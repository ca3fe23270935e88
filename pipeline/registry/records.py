"""Changes to the device registry: devices, officers and who held which device when.

Every change is a custody event with its actor. Assignment history is kept (an assignment is
ended, never deleted), and one device is never held by two officers at once: an overlapping
assignment is refused, since attribution must never have two answers.

Serials, officer numbers and certificate numbers come from recorders, file names and people,
and end up in folder names, file names, search terms and terminals: they are checked here,
where every record is saved, whichever way it came (a command, an import).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from pipeline.catalog import Catalog
from pipeline.catalog import registry as rows
from pipeline.catalog.schema import officers, users
from pipeline.custody import log as custody
from pipeline.errors import NotFound, RegistryError
from pipeline.models import Assignment, Device, DeviceStatus, EventKind, Officer, plain
from pipeline.registry.identifiers import identifier_problem


@dataclass(frozen=True)
class Change:
    entity: str  # device, officer, assignment, station
    key: str
    action: str  # added, changed, unchanged


def _event(conn: Connection, actor: str, change: Change, details: dict[str, Any]) -> None:
    custody.append(
        conn,
        EventKind.REGISTRY_CHANGED,
        actor,
        subject=f"{change.entity}:{change.key}",
        details={"entity": change.entity, "action": change.action, **details},
    )


def _record(conn: Connection, actor: str, entity: str, key: str, before: Any, after: Any) -> Change:
    """The custody event of an add or a change, with the record before and after."""
    change = Change(entity, key, "added" if before is None else "changed")
    details = {"after": plain(after)}
    if before is not None:
        details["before"] = plain(before)
    _event(conn, actor, change, details)
    return change


#: A recorder clock wrong by more than ten years is a typing mistake; an offset of 1e300
#: would overflow every time corrected with it.
MAX_CLOCK_OFFSET_S = 10 * 365.25 * 86400


def _shown(value: str) -> str:
    """An identifier as an error shows it: quoted with escapes, and cut if long."""
    return repr(value if len(value) <= 40 else value[:40] + "…")


def check_device(device: Device) -> None:
    """Refuse a device record that must not be saved; RegistryError names it."""
    problem = identifier_problem(device.serial)
    if problem:
        raise RegistryError(f"device {_shown(device.serial)}: {problem}")
    offset = device.clock_offset_s
    if not math.isfinite(offset) or abs(offset) > MAX_CLOCK_OFFSET_S:
        raise RegistryError(
            f"device {device.serial}: clock_offset_s {offset} is not a number of seconds "
            f"within ten years ({MAX_CLOCK_OFFSET_S:.0f})"
        )


def check_officer(officer: Officer) -> None:
    """Refuse an officer record that must not be saved; RegistryError names it."""
    problem = identifier_problem(officer.id)
    if problem:
        raise RegistryError(f"officer {_shown(officer.id)}: {problem}")
    problem = identifier_problem(officer.cert_no)
    if problem:
        raise RegistryError(
            f"officer {officer.id}: certificate number {_shown(officer.cert_no)}: {problem}"
        )


def save_device(conn: Connection, device: Device, actor: str) -> Change:
    """Add or update a device; unchanged when identical (re-imports change nothing)."""
    check_device(device)
    before = rows.device(conn, device.serial)
    if before == device:
        return Change("device", device.serial, "unchanged")
    rows.save_device(conn, device, datetime.now(UTC))
    return _record(conn, actor, "device", device.serial, before, device)


def save_officer(conn: Connection, officer: Officer, actor: str) -> Change:
    check_officer(officer)
    holder = rows.officer_by_cert(conn, officer.cert_no)
    if holder is not None and holder.id != officer.id:
        raise RegistryError(
            f"officer {officer.id}: certificate number {officer.cert_no} "
            f"belongs to officer {holder.id}"
        )
    before = rows.officer(conn, officer.id)
    if before == officer:
        return Change("officer", officer.id, "unchanged")
    rows.save_officer(conn, officer, datetime.now(UTC))
    return _record(conn, actor, "officer", officer.id, before, officer)


def save_assignment(
    conn: Connection,
    serial: str,
    officer_id: str,
    start: datetime,
    end: datetime | None,
    actor: str,
) -> Change:
    """Record that ``officer_id`` held ``serial`` over [start, end). The same assignment again
    is unchanged; a different end for the same start updates it; any other overlap with the
    device's assignments is refused."""
    if rows.device(conn, serial) is None:
        raise NotFound("device", serial)
    if rows.officer(conn, officer_id) is None:
        raise NotFound("officer", officer_id)
    if end is not None and end <= start:
        raise RegistryError(f"assignment of {serial} to {officer_id}: ends before it starts")
    key = f"{serial}@{start.isoformat()}"
    clashes = rows.overlapping(conn, serial, start, end)
    same = [a for a in clashes if a.officer_id == officer_id and a.start == start]
    others = [a for a in clashes if a not in same]
    if others:
        a = others[0]
        until = a.end.isoformat() if a.end else "open"
        raise RegistryError(
            f"device {serial} is already assigned to officer {a.officer_id} "
            f"from {a.start.isoformat()} to {until}: assignments of one device cannot overlap"
        )
    if same:
        if same[0].end == end:
            return Change("assignment", key, "unchanged")
        rows.set_assignment_end(conn, same[0].id, end)
        change = Change("assignment", key, "changed")
    else:
        rows.add_assignment(conn, serial, officer_id, start, end)
        change = Change("assignment", key, "added")
    details = {
        "device": serial,
        "officer": officer_id,
        "from": start.isoformat(),
        "to": end.isoformat() if end else None,
    }
    _event(conn, actor, change, details)
    return change


def end_assignment(conn: Connection, serial: str, at: datetime, actor: str) -> Assignment:
    """End the device's open assignment at ``at`` (the officer handed the device back)."""
    current = rows.open_assignment(conn, serial)
    if current is None:
        raise RegistryError(f"device {serial} is not assigned to anyone")
    if at <= current.start:
        raise RegistryError(
            f"device {serial}: cannot end the assignment at {at.isoformat()}, "
            f"before it began ({current.start.isoformat()})"
        )
    rows.set_assignment_end(conn, current.id, at)
    change = Change("assignment", f"{serial}@{current.start.isoformat()}", "changed")
    _event(
        conn,
        actor,
        change,
        {
            "device": serial,
            "officer": current.officer_id,
            "from": current.start.isoformat(),
            "to": at.isoformat(),
        },
    )
    return Assignment(current.id, serial, current.officer_id, current.start, at)


def require_registrar(conn: Connection, actor: str) -> None:
    """Registry and station changes are made by a registered officer, or by a user (a
    registered officer with a login: once accounts exist, ``--as`` names one by login):
    a dump folder decides what is archived and released, a device record who is
    attributed. A new instance, with no officer yet, is set up by whoever is named."""
    if not actor or not actor.strip():
        raise RegistryError("a registry change needs a named actor (--as OFFICER-ID)")
    if rows.officer(conn, actor) is not None:
        return
    if conn.execute(select(users.c.login).where(users.c.login == actor)).first() is not None:
        return
    if conn.execute(select(func.count()).select_from(officers)).scalar_one() == 0:
        return
    raise RegistryError(
        f"{_shown(actor)} is not a registered officer: registry and station changes are "
        "made by registered officers (--as OFFICER-ID)"
    )


def set_status(
    catalog: Catalog, serial: str, status: DeviceStatus, actor: str, reason: str = ""
) -> Change:
    with catalog.begin() as conn:
        require_registrar(conn, actor)
        return set_status_in(conn, serial, status, actor, reason)


def set_status_in(
    conn: Connection, serial: str, status: DeviceStatus, actor: str, reason: str = ""
) -> Change:
    """Set a device's status; losing or retiring one is also an alert, with the reason."""
    device = rows.device(conn, serial)
    if device is None:
        raise NotFound("device", serial)
    change = save_device(
        conn,
        Device(
            device.serial,
            device.kind,
            status,
            device.vendor,
            device.model,
            device.clock_offset_s,
        ),
        actor,
    )
    if change.action != "unchanged" and status in (DeviceStatus.LOST, DeviceStatus.RETIRED):
        custody.append(
            conn,
            EventKind.ALERT,
            actor,
            subject=serial,
            details={"code": f"device-{status.value}", "reason": reason},
        )
    return change
