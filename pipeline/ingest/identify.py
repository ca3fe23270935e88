"""Which device made a file, when it was recorded, and which officer held the device then.

The rule of attribution (full-process recording holds officers to account for what they
record): the officer is the one whose assignment of the device covers the whole recording.
No assignment, or a recording that runs into a second one, leaves the file *unattributed*
and flagged for review — never guessed. Likewise, sources that name different devices are
flagged, not silently reconciled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from pipeline.catalog import registry
from pipeline.catalog import uploads as upload_rows
from pipeline.errors import DeviceError, DeviceLost, DeviceRetired, UnknownDevice
from pipeline.models import (
    Assignment,
    Device,
    DeviceStatus,
    Flag,
    Identification,
    IdSource,
    ProbeResult,
    SourceFile,
    Station,
)
from pipeline.names import readable
from pipeline.registry.identifiers import identifier_problem
from pipeline.settings import DevicesSettings


class NamePattern(Protocol):
    """A file-name convention: a configured :class:`FilenamePattern` or a built-in one."""

    @property
    def name(self) -> str: ...
    @property
    def regex(self) -> str: ...
    @property
    def time_format(self) -> str: ...


@dataclass(frozen=True)
class BuiltinPattern:
    name: str
    regex: str
    time_format: str = "%Y%m%d%H%M%S"


#: Names every instance reads, after the configured patterns (devices.filename_patterns):
#: phones and cameras name a photo or clip by its start (``IMG_20261130_093500.jpg``), and
#: body-worn recorders after GA/T 947 (设备编号_警号_时间_序号). Without them such a file is
#: timed by its docking, which misses the case it belongs to.
BUILTIN_PATTERNS: tuple[BuiltinPattern, ...] = (
    BuiltinPattern(
        "ga-t-947",
        r"^(?P<device>[A-Za-z0-9-]+)_(?P<officer>[0-9]+)_(?P<ts>[0-9]{14})_(?P<seq>[0-9]+)"
        r"\.[A-Za-z0-9]+$",
    ),
    BuiltinPattern(
        "img-datetime",
        r"^IMG_(?P<ts>[0-9]{8}_[0-9]{6})(?:_[0-9]+)?(?:\([0-9]+\))?\.[A-Za-z0-9]+$",
        "%Y%m%d_%H%M%S",
    ),
    BuiltinPattern(
        "vid-datetime",
        r"^VID_(?P<ts>[0-9]{8}_[0-9]{6})(?:_[0-9]+)?(?:\([0-9]+\))?\.[A-Za-z0-9]+$",
        "%Y%m%d_%H%M%S",
    ),
    BuiltinPattern(
        "datetime",
        r"^(?P<ts>[0-9]{8}_[0-9]{6})(?:_[0-9]+)?(?:\([0-9]+\))?\.[A-Za-z0-9]+$",
        "%Y%m%d_%H%M%S",
    ),
)


def name_patterns(settings: DevicesSettings) -> list[NamePattern]:
    """The configured file-name patterns, then the built-in ones."""
    return [*settings.filename_patterns, *BUILTIN_PATTERNS]


@dataclass(frozen=True)
class NameMatch:
    pattern: str
    device: str | None  # None: the name says when, not which device (IMG_…, VID_…)
    officer: str | None
    started: datetime | None  # as the device's clock wrote it, in UTC


def match_filename(name: str, patterns: Sequence[NamePattern], tz: ZoneInfo) -> NameMatch | None:
    """The first pattern that matches the file name."""
    for p in patterns:
        m = re.match(p.regex, name)
        if m is None:
            continue
        groups = m.groupdict()
        started = None
        if groups.get("ts"):
            try:
                started = datetime.strptime(groups["ts"], p.time_format).replace(tzinfo=tz)
            except ValueError:
                started = None  # a name shaped like a timestamp that is not a date
        return NameMatch(
            p.name,
            groups.get("device"),
            groups.get("officer"),
            started.astimezone(UTC) if started else None,
        )
    return None


def normalize_serial(serial: str) -> str:
    """Serials are written BWC-0017, bwc0017, BWC_0017…: compare them without case or marks."""
    return re.sub(r"[^0-9A-Za-z]", "", serial).upper()


def dock_relative(station_root: Path, source: SourceFile) -> Path:
    """The source's readable path below the station root; a file that grew in
    ``.ingested/`` after its release counts as where it was first found."""
    root = readable(station_root)
    shown = source.shown
    relative = Path(shown[len(root) + 1 :] if shown.startswith(root + "/") else source.name)
    if relative.parts and relative.parts[0] == ".ingested":
        relative = Path(*relative.parts[1:])
    return relative


def station_claim(conn: Connection, station: Station, sha256: str | None) -> dict[str, str]:
    """What a pushing station read from the recorder of these bytes over USB (serial,
    officer number, unit number), as its upload declared it; empty for a folder station."""
    if not station.pushes or sha256 is None:
        return {}
    found = upload_rows.claim_for(conn, station.id, sha256)
    return {} if found is None else dict(found.claim)


def serial_sources(
    relative: Path,
    probe: ProbeResult,
    name: NameMatch | None,
    claim: Mapping[str, str] | None = None,
) -> dict[IdSource, str]:
    found: dict[IdSource, str] = {}
    if probe.serial:
        found[IdSource.METADATA] = probe.serial.strip()
    if claim and claim.get("serial"):
        found[IdSource.STATION] = claim["serial"].strip()
    if name is not None and name.device:
        found[IdSource.FILENAME] = name.device
    if len(relative.parts) > 1:
        found[IdSource.LAYOUT] = relative.parts[0]
    return found


def choose_serial(
    found: dict[IdSource, str], precedence: Sequence[str]
) -> tuple[str | None, list[Flag]]:
    if not found:
        return None, []
    ordered = [IdSource(p) for p in precedence if IdSource(p) in found]
    chosen = found[ordered[0]] if ordered else next(iter(found.values()))
    distinct = {normalize_serial(s) for s in found.values()}
    flags = []
    if len(distinct) > 1:
        said = ", ".join(f"{src.value} says {serial}" for src, serial in found.items())
        flags.append(Flag("device-disagreement", f"sources disagree ({said}); took {chosen}"))
    return chosen, flags


def recorded_interval(
    probe: ProbeResult, name: NameMatch | None, source: SourceFile, device: Device | None
) -> tuple[datetime | None, datetime | None, IdSource | None]:
    """Start and end of the recording on the true clock, and where the time came from:
    embedded metadata, else the file name, else the file's mtime (the end of writing)."""
    duration = timedelta(seconds=probe.duration_s or 0.0)
    offset = timedelta(seconds=device.clock_offset_s if device else 0.0)
    if probe.recorded_at is not None:
        start, src = probe.recorded_at - offset, IdSource.METADATA
    elif name is not None and name.started is not None:
        start, src = name.started - offset, IdSource.FILENAME
    else:
        # The dock's own clock: no device offset applies, and mtime marks the end.
        end = datetime.fromtimestamp(source.mtime_ns / 1e9, UTC)
        return end - duration, end, IdSource.MTIME
    return start, start + duration, src


def local_text(moment: datetime, tz: tzinfo) -> str:
    """A time in a flag's message: local, with its offset (``2026-11-30 09:35:00 +08:00``)."""
    local = moment.astimezone(tz)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]}"


def drift_words(seconds: float) -> str:
    """How far a clock is off, in words: ``31 h 38 min slow``, ``2 d 4 h fast``, ``40 s slow``
    (the two largest units; positive is fast)."""
    rest = round(abs(seconds))
    units: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if unit == "d" and rest < 2 * 86400:
            continue  # 31 h reads better than 1 d 7 h
        count, rest = divmod(rest, size)
        if count or (units and len(units) < 2):
            units.append(f"{count} {unit}")
        if len(units) == 2:
            break
    while len(units) > 1 and units[-1].startswith("0 "):
        units.pop()
    shown = " ".join(units) or "0 s"
    return shown if shown == "0 s" else f"{shown} {'fast' if seconds > 0 else 'slow'}"


def drift_flags(
    start: datetime | None,
    end: datetime | None,
    time_source: IdSource | None,
    source: SourceFile,
    now: datetime,
    tolerance_s: float,
    *,
    preserves_mtimes: bool = False,
    tz: tzinfo = UTC,
) -> list[Flag]:
    """Clock drift, judged only against clocks that can be trusted: the pipeline's own (a
    recording cannot start after it was ingested) and, when the station keeps the
    recorder's mtimes (``Station.preserves_mtimes``), the file's mtime as the end of writing.
    A dock that copies without them stamps the copy's own time, so a recording docked a day
    later is no drift at all."""
    if start is None or end is None or time_source is IdSource.MTIME:
        return []
    tolerance = timedelta(seconds=tolerance_s)
    if start > now + tolerance:
        ahead = drift_words((start - now).total_seconds())
        return [
            Flag(
                "clock-drift",
                f"recorded {local_text(start, tz)}, in the future: the "
                f"device clock is at least {ahead}",
            )
        ]
    if not preserves_mtimes:
        return []
    written = datetime.fromtimestamp(source.mtime_ns / 1e9, UTC)
    off = (end - written).total_seconds()
    if abs(off) > tolerance_s:
        return [
            Flag(
                "clock-drift",
                f"device clock {drift_words(off)} against the file's time on the dock "
                f"({off:+.0f} s)",
            )
        ]
    return []


def attribute(
    held: Sequence[Assignment],
    start: datetime | None,
    end: datetime | None,
    tz: tzinfo = UTC,
) -> tuple[str | None, list[Flag]]:
    """The officer whose assignment covers the whole recording, or None with a flag."""
    if start is None or end is None:
        return None, [Flag("unattributed", "no recorded time to attribute by")]
    meeting = [
        a
        for a in held
        if a.start < max(end, start + timedelta(microseconds=1))
        and (a.end is None or a.end > start)
    ]
    if not meeting:
        return None, [
            Flag(
                "unattributed",
                f"no officer held the device at {local_text(start, tz)}",
            )
        ]
    if len(meeting) > 1:
        who = ", ".join(a.officer_id for a in meeting)
        return None, [
            Flag("spans-assignments", f"the recording spans assignments of officers {who}")
        ]
    (a,) = meeting
    if a.start > start or (a.end is not None and a.end < end):
        return None, [
            Flag("unattributed", f"the recording runs outside officer {a.officer_id}'s assignment")
        ]
    return a.officer_id, []


def find_device(conn: Connection, serial: str | None) -> Device | None:
    if serial is None:
        return None
    exact = registry.device(conn, serial)
    if exact is not None:
        return exact
    wanted = normalize_serial(serial)
    return next(
        (d for d in registry.all_devices(conn) if normalize_serial(d.serial) == wanted), None
    )


def identify(
    conn: Connection,
    settings: DevicesSettings,
    station_root: Path,
    source: SourceFile,
    probe: ProbeResult,
    now: datetime,
    *,
    preserves_mtimes: bool = False,
    claim: Mapping[str, str] | None = None,
) -> tuple[Identification, Device | None]:
    """Everything the registry can say about one file; the device, if registered.
    ``preserves_mtimes``: the station keeps the recorder's mtimes (see :func:`drift_flags`);
    ``claim``: what a pushing station read from the recorder (see :func:`station_claim`)."""
    tz = ZoneInfo(settings.timezone)
    name = match_filename(source.name, name_patterns(settings), tz)
    found = serial_sources(dock_relative(station_root, source), probe, name, claim)
    unusable = {k: v for k, v in found.items() if identifier_problem(v) is not None}
    for where in unusable:
        del found[where]
    serial, flags = choose_serial(found, settings.precedence)
    flags += [
        Flag("serial-unusable", f"{where.value}: {value[:40]!r} is not a serial ({problem})")
        for where, value in unusable.items()
        if (problem := identifier_problem(value))
    ]
    device = find_device(conn, serial)
    start, end, time_source = recorded_interval(probe, name, source, device)
    flags += drift_flags(
        start,
        end,
        time_source,
        source,
        now,
        settings.drift_tolerance_s,
        preserves_mtimes=preserves_mtimes,
        tz=tz,
    )
    officer_id = None
    if device is not None:
        held = registry.device_assignments(conn, device.serial)
        officer_id, more = attribute(held, start, end, tz)
        flags += more
        if officer_id and name and name.officer and name.officer != officer_id:
            flags.append(
                Flag(
                    "officer-disagreement",
                    f"file name names officer {name.officer}, the assignment {officer_id}",
                )
            )
        said = (claim or {}).get("officer")
        if officer_id and said and normalize_serial(said) != normalize_serial(officer_id):
            flags.append(
                Flag(
                    "officer-disagreement",
                    f"the station read officer {said} from the recorder, the assignment "
                    f"says {officer_id}",
                )
            )
    ident = Identification(
        device_serial=device.serial if device else serial,
        serials={k.value: v for k, v in found.items()},
        recorded_start=start,
        recorded_end=end,
        time_source=time_source,
        officer_id=officer_id,
        flags=tuple(flags),
    )
    return ident, device


def device_verdict(
    ident: Identification, device: Device | None, unknown: str
) -> tuple[DeviceError | None, list[Flag]]:
    """Whether the registry lets this file through: an error to quarantine it with, and
    flags for what a person should still see. Unknown devices are accepted (flagged) only
    when ``devices.unknown = "accept"``; lost and retired devices are always quarantined."""
    serial = ident.device_serial
    if device is None:
        what = (
            f"device {serial} is not registered"
            if serial
            else "no device serial in the dump folder, the file name or the metadata"
        )
        if unknown == "accept":
            return None, [Flag("unregistered-device", what)]
        return UnknownDevice(serial, what), []
    if device.status is DeviceStatus.LOST:
        return DeviceLost(serial, f"device {serial} is reported lost"), []
    if device.status is DeviceStatus.RETIRED:
        return DeviceRetired(serial, f"device {serial} is retired"), []
    if device.status is DeviceStatus.REPAIR:
        return None, [Flag("device-in-repair", f"device {serial} is registered as in repair")]
    return None, []
