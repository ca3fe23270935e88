"""Bulk import and export of the registry: YAML (the whole registry) and CSV (one table a file).

Files are validated as a whole before anything changes: every problem is collected with its
file and line, then reported together; re-importing the same file changes nothing.
``config/registry.example.yaml`` shows the format.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import Connection

from pipeline.catalog import Catalog
from pipeline.catalog import registry as rows
from pipeline.errors import EvidenceError, RegistryError, RegistryFileError, record_problem
from pipeline.models import Device, DeviceKind, DeviceStatus, Officer, Role, Station
from pipeline.registry import records as registry
from pipeline.registry.stations import list_stations_in, save_station
from pipeline.settings import Settings
from pipeline.tabular import read_records, text_value, time_value

SECTIONS = ("stations", "officers", "devices", "assignments")
CSV_COLUMNS = {
    "stations": ("id", "name", "root", "location", "preserves_mtimes", "pushes"),
    "officers": ("id", "name", "cert_no", "department", "roles"),
    "devices": ("serial", "kind", "vendor", "model", "status", "clock_offset_s"),
    "assignments": ("device", "officer", "from", "to"),
}
_REQUIRED = {
    "stations": ("id", "root"),
    "officers": ("id", "name", "cert_no"),
    "devices": ("serial", "kind"),
    "assignments": ("device", "officer", "from"),
}


@dataclass(frozen=True)
class AssignmentRecord:
    device: str
    officer: str
    start: datetime
    end: datetime | None


@dataclass
class RegistryFile:
    """What one file says, validated; ``lines`` remembers where each record came from."""

    stations: list[Station] = field(default_factory=list)
    officers: list[Officer] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    assignments: list[AssignmentRecord] = field(default_factory=list)
    lines: dict[int, int] = field(default_factory=dict)  # id(record) -> line

    def add(self, section: str, record: Any, line: int) -> None:
        getattr(self, section).append(record)
        self.lines[id(record)] = line


# --------------------------------------------------------------------------------- reading


def read_file(path: Path, tz: ZoneInfo) -> RegistryFile:
    """Parse and validate a YAML or CSV registry file; RegistryError lists every problem. A
    record given twice is refused: which of the two should win is the writer's to say."""
    result, problems = RegistryFile(), []
    first: dict[tuple[str, str], int] = {}
    for section, line, data in read_records(path, _REQUIRED, RegistryError):
        try:
            record = _record(section, data, tz)
            if isinstance(record, Device):
                registry.check_device(record)
            elif isinstance(record, Officer):
                registry.check_officer(record)
        except (ValueError, KeyError, TypeError, RegistryError) as exc:
            problems.append(record_problem(path, line, section, CSV_COLUMNS[section], str(exc)))
            continue
        key = _key(record)
        if (section, key) in first:
            message = f"{key} is already given at line {first[section, key]}"
            problems.append(record_problem(path, line, section, CSV_COLUMNS[section], message))
            continue
        first[section, key] = line
        result.add(section, record, line)
    if problems:
        raise RegistryFileError(path, problems)
    return result


_YES = {"true", "yes", "y", "1", "是"}
_NO = {"false", "no", "n", "0", "否", ""}


def _yes_no(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return bool(value)
    word = str(value).strip().lower()
    if word not in _YES | _NO:
        raise ValueError(f"{key} must be yes or no, not {str(value)[:40]!r}")
    return word in _YES


def _record(section: str, data: Mapping[str, Any], tz: ZoneInfo) -> Any:
    missing = [k for k in _REQUIRED[section] if data.get(k) in (None, "")]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    unknown = set(data) - set(CSV_COLUMNS[section])
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
    if section == "stations":
        return Station(
            text_value(data, "id"),
            Path(text_value(data, "root")),
            text_value(data, "name"),
            text_value(data, "location"),
            _yes_no(data, "preserves_mtimes"),
            _yes_no(data, "pushes"),
        )
    if section == "officers":
        return Officer(
            text_value(data, "id"),
            text_value(data, "name"),
            text_value(data, "cert_no"),
            text_value(data, "department"),
            _roles(data.get("roles")),
        )
    if section == "devices":
        return Device(
            text_value(data, "serial"),
            DeviceKind(text_value(data, "kind")),
            DeviceStatus(text_value(data, "status", "active")),
            text_value(data, "vendor"),
            text_value(data, "model"),
            _seconds(data.get("clock_offset_s"), "clock_offset_s"),
        )
    end = data.get("to")
    return AssignmentRecord(
        text_value(data, "device"),
        text_value(data, "officer"),
        time_value(data["from"], "from", tz),
        None if end in (None, "") else time_value(end, "to", tz),
    )


def _roles(value: Any) -> tuple[Role, ...]:
    """A list of role names, or one text of them separated by ',' or ';' (a CSV cell)."""
    if value in (None, "", []):
        return (Role.ENFORCEMENT,)
    names = value.replace(";", ",").split(",") if isinstance(value, str) else value
    known = ", ".join(Role)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"roles must be a list of role names ({known})")
    roles = []
    for name in (n.strip() for n in names if n.strip()):
        if name not in Role.__members__.values():
            raise ValueError(f"roles: unknown role {name[:40]!r} ({known})")
        roles.append(Role(name))
    return tuple(roles)


def _seconds(value: Any, key: str) -> float:
    if value in (None, ""):
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{key} must be a number of seconds")
    try:
        return float(value)
    except (ValueError, OverflowError):
        raise ValueError(f"{key} {str(value)[:40]!r} is not a number of seconds") from None


def _key(record: Any) -> str:
    """What identifies a record within its section."""
    if isinstance(record, Device):
        return f"serial {record.serial}"
    if isinstance(record, AssignmentRecord):
        return f"device {record.device} from {record.start.isoformat()}"
    return f"id {record.id}"


# --------------------------------------------------------------------------------- applying


def apply(
    catalog: Catalog,
    parsed: RegistryFile,
    source: Path,
    actor: str,
    *,
    settings: Settings | None = None,
) -> list[registry.Change]:
    """Apply a validated file in one transaction: all of it, or (on a refusal) none of it.
    With ``settings``, a station whose dump folder overlaps EVIDENCE_HOME is refused."""
    with catalog.begin() as conn:
        registry.require_registrar(conn, actor)  # as the catalog stood before the file
        return apply_in(conn, parsed, source, actor, settings=settings)


def apply_in(
    conn: Connection,
    parsed: RegistryFile,
    source: Path,
    actor: str,
    *,
    settings: Settings | None = None,
) -> list[registry.Change]:
    """``apply`` within a transaction (the registrar already checked); a refusal names the
    file and line, and raises so that the caller's transaction changes nothing."""
    changes: list[registry.Change] = []
    for section in SECTIONS:
        for record in getattr(parsed, section):
            try:
                changes.append(_apply_one(conn, section, record, actor, settings))
            except EvidenceError as exc:
                line = parsed.lines[id(record)]
                raise RegistryError(f"{source}:{line}: {section}: {exc}") from exc
    return changes


def _apply_one(
    conn: Any, section: str, record: Any, actor: str, settings: Settings | None
) -> registry.Change:
    if section == "stations":
        return save_station(conn, record, actor, settings=settings)
    if section == "officers":
        return registry.save_officer(conn, record, actor)
    if section == "devices":
        return registry.save_device(conn, record, actor)
    return registry.save_assignment(
        conn, record.device, record.officer, record.start, record.end, actor
    )


# --------------------------------------------------------------------------------- writing


def export_tables(catalog: Catalog) -> dict[str, list[dict[str, Any]]]:
    """The whole registry as plain tables (the import format)."""
    with catalog.read() as conn:
        return export_tables_in(conn)


def export_tables_in(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    stations = list_stations_in(conn)
    officers, devices_, held = (
        rows.all_officers(conn),
        rows.all_devices(conn),
        rows.all_assignments(conn),
    )
    return {
        "stations": [
            {
                "id": s.id,
                "name": s.name,
                "root": str(s.root),
                "location": s.location,
                "preserves_mtimes": s.preserves_mtimes,
                "pushes": s.pushes,
            }
            for s in stations
        ],
        "officers": [
            {
                "id": o.id,
                "name": o.name,
                "cert_no": o.cert_no,
                "department": o.department,
                "roles": [r.value for r in o.roles],
            }
            for o in officers
        ],
        "devices": [
            {
                "serial": d.serial,
                "kind": d.kind.value,
                "vendor": d.vendor,
                "model": d.model,
                "status": d.status.value,
                "clock_offset_s": d.clock_offset_s,
            }
            for d in devices_
        ],
        "assignments": [
            {
                "device": a.device_serial,
                "officer": a.officer_id,
                "from": a.start.isoformat(),
                "to": a.end.isoformat() if a.end else None,
            }
            for a in held
        ],
    }


def to_yaml(tables: dict[str, list[dict[str, Any]]]) -> str:
    return yaml.safe_dump(tables, allow_unicode=True, sort_keys=False)


def write_csv(tables: dict[str, list[dict[str, Any]]], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for section, records in tables.items():
        path = folder / f"{section}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS[section])
            writer.writeheader()
            for r in records:
                writer.writerow(
                    {k: (";".join(v) if isinstance(v, list) else v) for k, v in r.items()}
                )
        written.append(path)
    return written
