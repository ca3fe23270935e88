"""`evidence devices …`, `evidence officers …`, `evidence stations show`,
`evidence quarantine release`: the device registry at the command line."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from interfaces import output
from interfaces.common import ActorOpt, JsonOpt, catalog, settings
from pipeline.catalog import media as media_db
from pipeline.catalog import registry as rows
from pipeline.errors import NotFound
from pipeline.models import Device, DeviceKind, DeviceStatus, Officer, Role
from pipeline.registry import bulk as registry_io
from pipeline.registry import health
from pipeline.registry import records as registry
from pipeline.registry.stations import get_station
from pipeline.settings import Settings

devices_app = typer.Typer(
    help="Recorders (执法记录仪 等): registry, assignments, health.", no_args_is_help=True
)
officers_app = typer.Typer(help="Enforcement officers (执法人员).", no_args_is_help=True)

WhenOpt = Annotated[
    str | None,
    typer.Option(
        "--from",
        help="When it starts: ISO date-time, local time unless it has a zone; default now.",
    ),
]


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    app.add_typer(devices_app, name="devices")
    app.add_typer(officers_app, name="officers")
    groups["stations"].command("show")(stations_show)
    groups["quarantine"].command("release")(quarantine_release)


def _when(s: Settings, text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date-time like 2026-05-01T08:00") from None
    return moment.replace(tzinfo=ZoneInfo(s.devices.timezone)) if moment.tzinfo is None else moment


def _changes_out(changes: list[registry.Change], json_out: bool) -> None:
    if json_out:
        output.print_json(changes)
        return
    counts: dict[str, int] = {}
    for c in changes:
        counts[c.action] = counts.get(c.action, 0) + 1
        if c.action != "unchanged":
            output.console.print(output.text(f"{c.action:<9} {c.entity} {c.key}"))
    output.console.print(
        ", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "nothing to do"
    )


# ------------------------------------------------------------------------------- devices


@devices_app.command("add")
def devices_add(
    serial: Annotated[str, typer.Argument(help="Device serial, as in its dump folder.")],
    kind: Annotated[DeviceKind, typer.Option(help="What it is.")] = DeviceKind.BODY_WORN,
    vendor: Annotated[str, typer.Option(help="Maker.")] = "",
    model: Annotated[str, typer.Option(help="Model.")] = "",
    status: Annotated[DeviceStatus, typer.Option(help="Status.")] = DeviceStatus.ACTIVE,
    clock_offset: Annotated[
        float, typer.Option(help="Seconds its clock runs ahead (negative: behind).")
    ] = 0.0,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register a recorder (or update it).

    Example: evidence devices add BWC0017 --kind body-worn --vendor ZFJLY --model DSJ-A9 --as A001
    """
    s = settings()
    with catalog(s).begin() as conn:
        registry.require_registrar(conn, actor or s.actor)
        change = registry.save_device(
            conn, Device(serial, kind, status, vendor, model, clock_offset), actor or s.actor
        )
    _changes_out([change], json_out)


@devices_app.command("list")
def devices_list(json_out: JsonOpt = False) -> None:
    """List registered devices with their current holder."""
    with catalog(settings()).read() as conn:
        found = [(d, rows.open_assignment(conn, d.serial)) for d in rows.all_devices(conn)]
    if json_out:
        output.print_json(
            [{**output.to_jsonable(d), "holder": a.officer_id if a else None} for d, a in found]
        )
        return
    table = Table(title=f"{len(found)} devices (设备)")
    for col in ("serial", "kind", "status", "vendor", "model", "clock offset", "held by"):
        table.add_column(col)
    for d, a in found:
        table.add_row(
            output.text(d.serial),
            f"{d.kind.value} {d.kind.label_zh}",
            f"{d.status.value} {d.status.label_zh}",
            output.text(d.vendor),
            output.text(d.model),
            f"{d.clock_offset_s:+g} s",
            output.text(a.officer_id if a else ""),
        )
    output.console.print(table)


@devices_app.command("show")
def devices_show(serial: str, json_out: JsonOpt = False) -> None:
    """Show a device, its assignment history and its quarantined files."""
    with catalog(settings()).begin() as conn:
        device = rows.device(conn, serial)
        if device is None:
            raise NotFound("device", serial)
        history = rows.device_assignments(conn, serial)
        held = media_db.quarantine_entries(conn, device_serial=serial)
    if json_out:
        output.print_json({"device": device, "assignments": history, "quarantine": held})
        return
    output.console.print(
        output.line(
            (device.serial, "bold"),
            f" {device.kind.label_zh} {device.vendor} {device.model} — {device.status.value} "
            f"{device.status.label_zh}, clock offset {device.clock_offset_s:+g} s",
        )
    )
    table = Table(title="assignments (领用记录)")
    for col in ("officer", "from", "to"):
        table.add_column(col)
    for a in history:
        table.add_row(
            output.text(a.officer_id),
            a.start.isoformat(),
            a.end.isoformat() if a.end else "(holds it)",
        )
    output.console.print(table)
    if held:
        output.console.print(output.quarantine_table(held))


@devices_app.command("set-status")
def devices_set_status(
    serial: str,
    status: DeviceStatus,
    reason: Annotated[str, typer.Option(help="Why (kept in the custody log).")] = "",
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Set a device's status: active, repair, lost, retired. Files from lost or retired
    devices are quarantined from then on.

    Example: evidence devices set-status BWC0017 lost --reason "reported 2026-11-02" --as A001
    """
    s = settings()
    _changes_out(
        [registry.set_status(catalog(s), serial, status, actor or s.actor, reason)], json_out
    )


@devices_app.command("assign")
def devices_assign(
    serial: str,
    officer: str,
    start: WhenOpt = None,
    end: Annotated[str | None, typer.Option("--to", help="When it ends (default: open).")] = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Record that an officer holds a device from a time (and until a time).

    Example: evidence devices assign BWC0017 1023 --from 2026-11-27T08:00 --as A001
    """
    s = settings()
    with catalog(s).begin() as conn:
        registry.require_registrar(conn, actor or s.actor)
        change = registry.save_assignment(
            conn, serial, officer, _when(s, start), _when(s, end) if end else None, actor or s.actor
        )
    _changes_out([change], json_out)


@devices_app.command("unassign")
def devices_unassign(
    serial: str,
    at: Annotated[
        str | None, typer.Option("--at", help="When it was handed back (default now).")
    ] = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """End a device's current assignment (the officer handed it back).

    Example: evidence devices unassign BWC0017 --at 2026-11-27T18:00
    """
    s = settings()
    with catalog(s).begin() as conn:
        registry.require_registrar(conn, actor or s.actor)
        ended = registry.end_assignment(conn, serial, _when(s, at), actor or s.actor)
    if json_out:
        output.print_json(ended)
    else:
        output.console.print(
            output.text(f"{serial}: officer {ended.officer_id}'s assignment ended {ended.end}")
        )


def _import(path: Path, actor: str | None, json_out: bool) -> None:
    s = settings()
    parsed = registry_io.read_file(path, ZoneInfo(s.devices.timezone))
    _changes_out(
        registry_io.apply(catalog(s), parsed, path, actor or s.actor, settings=s), json_out
    )


@devices_app.command("import")
def devices_import(path: Path, actor: ActorOpt = None, json_out: JsonOpt = False) -> None:
    """Import a registry file: YAML (stations, officers, devices, assignments; see
    config/registry.example.yaml) or one CSV table. All or nothing; re-importing changes nothing.

    Example: evidence devices import registry.yaml --as A001
    """
    _import(path, actor, json_out)


@devices_app.command("export")
def devices_export(
    fmt: Annotated[str, typer.Option("--format", help="yaml or csv.")] = "yaml",
    out: Annotated[
        Path | None, typer.Option(help="File (yaml) or folder (csv); default stdout.")
    ] = None,
) -> None:
    """Export the whole registry in the import format.

    Example: evidence devices export --format csv --out registry/
    """
    tables = registry_io.export_tables(catalog(settings()))
    if fmt == "yaml":
        text = registry_io.to_yaml(tables)
        if out is None:
            sys.stdout.write(text)
        else:
            out.write_text(text, encoding="utf-8")
    elif fmt == "csv":
        if out is None:
            raise typer.BadParameter("--format csv writes one file per table: give --out FOLDER")
        for path in registry_io.write_csv(tables, out):
            output.console.print(output.text(f"wrote {path}"))
    else:
        raise typer.BadParameter("--format is yaml or csv")


@devices_app.command("health")
def devices_health(json_out: JsonOpt = False) -> None:
    """Per device and station: last docked, files and bytes a day (last 7 days), clock drift,
    quarantines, and devices not docked for devices.not_docked_days.

    Example: evidence devices health --json
    """
    s = settings()
    report = health.report(catalog(s), s.devices, datetime.now(UTC))
    if json_out:
        output.print_json(report)
        return
    print_health(report)


def print_health(report: health.Health) -> None:
    table = Table(title="device health (设备状况)")
    for col in (
        "serial",
        "status",
        "held by",
        "last docked",
        "files/day",
        "MB/day",
        "drift",
        "quarantined",
        "problems",
    ):
        table.add_column(col, overflow="fold")
    for d in report.devices:
        table.add_row(
            output.text(d.serial),
            output.text(d.status),
            output.text(d.holder or ""),
            _ago(d.last_docked),
            f"{d.files_per_day:.1f}",
            f"{d.bytes_per_day / 1e6:.1f}",
            str(d.drifted_files),
            str(d.quarantined),
            output.text("; ".join(d.problems), style="yellow"),
        )
    output.console.print(table)
    table = Table(title="station health (采集站状况)")
    for col in (
        "station",
        "last docked",
        "files/day",
        "MB/day",
        "quarantined",
        "unregistered devices",
    ):
        table.add_column(col, overflow="fold")
    for st in report.stations:
        table.add_row(
            output.text(st.id),
            _ago(st.last_docked),
            f"{st.files_per_day:.1f}",
            f"{st.bytes_per_day / 1e6:.1f}",
            str(st.quarantined),
            output.text(", ".join(st.unregistered_serials)),
        )
    output.console.print(table)


def _ago(moment: datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


# ------------------------------------------------------------------------------ officers


@officers_app.command("add")
def officers_add(
    officer_id: Annotated[str, typer.Argument(metavar="ID", help="Officer number.")],
    name: Annotated[str, typer.Option(help="Full name.")],
    cert: Annotated[str, typer.Option(help="Enforcement certificate number (执法证号).")],
    department: Annotated[str, typer.Option(help="Department or unit.")] = "",
    role: Annotated[list[Role] | None, typer.Option(help="Role (repeatable).")] = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register an officer (or update one).

    Example: evidence officers add 1023 --name 张伟 --cert 11010012345 --department 市场监管大队
    """
    s = settings()
    officer = Officer(officer_id, name, cert, department, tuple(role or [Role.ENFORCEMENT]))
    with catalog(s).begin() as conn:
        registry.require_registrar(conn, actor or s.actor)
        change = registry.save_officer(conn, officer, actor or s.actor)
    _changes_out([change], json_out)


@officers_app.command("list")
def officers_list(json_out: JsonOpt = False) -> None:
    """List officers."""
    with catalog(settings()).read() as conn:
        found = rows.all_officers(conn)
    if json_out:
        output.print_json(found)
        return
    table = Table(title=f"{len(found)} officers (执法人员)")
    for col in ("id", "name", "certificate 执法证号", "department", "roles"):
        table.add_column(col)
    for o in found:
        table.add_row(
            *map(output.text, (o.id, o.name, o.cert_no, o.department)),
            ", ".join(r.value for r in o.roles),
        )
    output.console.print(table)


@officers_app.command("show")
def officers_show(
    officer_id: Annotated[str, typer.Argument(metavar="ID")], json_out: JsonOpt = False
) -> None:
    """Show an officer and the devices they held."""
    with catalog(settings()).begin() as conn:
        officer = rows.officer(conn, officer_id)
        if officer is None:
            raise NotFound("officer", officer_id)
        held = [a for a in rows.all_assignments(conn) if a.officer_id == officer_id]
    if json_out:
        output.print_json({"officer": officer, "assignments": held})
        return
    output.console.print(
        output.line(
            (officer.id, "bold"),
            f" {officer.name} — 执法证号 {officer.cert_no}, {officer.department}",
        )
    )
    for a in held:
        end = a.end.isoformat() if a.end else "now"
        output.console.print(output.text(f"  {a.device_serial}: {a.start.isoformat()} → {end}"))


@officers_app.command("import")
def officers_import(path: Path, actor: ActorOpt = None, json_out: JsonOpt = False) -> None:
    """Import officers from a CSV (id,name,cert_no,department,roles) or a registry YAML.

    Example: evidence officers import officers.csv --as A001
    """
    _import(path, actor, json_out)


# ---------------------------------------------------------------- stations, quarantine


def stations_show(
    station_id: Annotated[str, typer.Argument(metavar="ID")], json_out: JsonOpt = False
) -> None:
    """Show a station and its health.

    Example: evidence stations show DOCK-01
    """
    s = settings()
    cat = catalog(s)
    station = get_station(cat, station_id)
    state = next(
        x for x in health.report(cat, s.devices, datetime.now(UTC)).stations if x.id == station_id
    )
    if json_out:
        output.print_json({"station": station, "health": state})
        return
    output.console.print(output.stations_table([station]))
    output.console.print(
        output.text(
            f"last docked {_ago(state.last_docked)}; {state.files_per_day:.1f} files/day; "
            f"{state.quarantined} in quarantine; unregistered devices: "
            f"{', '.join(state.unregistered_serials) or 'none'}"
        )
    )


def quarantine_release(
    entries: Annotated[
        list[int] | None, typer.Argument(metavar="ID", help="Quarantine entry ids.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="Release every entry of this device.")] = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Release quarantined files once the reason is gone: a device registered (or its status
    corrected), or a failed transcode that works with the current settings. They are
    identified again, given proxies and archived. Goes on past an entry that cannot be
    released and reports it; exit 1 if any could not.

    Example: evidence quarantine release --device BWC0099 --as A001
    """
    from pipeline.ingest.quarantine import device_entries, release_many
    from pipeline.ingest.steps import open_context

    s = settings()
    ctx = open_context(s)
    ids = list(entries or [])
    if device is not None:
        ids += device_entries(ctx, device)
    if not ids:
        raise typer.BadParameter("give quarantine entry ids or --device SERIAL")
    results = []
    for r in release_many(ctx, ids, actor or s.actor):
        if r.item is not None:
            results.append(
                {
                    "entry": r.entry_id,
                    "released": True,
                    "media": r.item.id,
                    "status": r.item.status.value,
                    "device": r.item.device_serial,
                    "officer": r.item.officer_id,
                }
            )
        else:
            assert r.error is not None
            results.append(
                {
                    "entry": r.entry_id,
                    "released": False,
                    "code": r.error.code,
                    "error": str(r.error),
                }
            )
    if json_out:
        output.print_json(results)
    else:
        for row in results:
            if row["released"]:
                output.console.print(
                    output.line(
                        ("released", "green"),
                        f" {row['entry']}: media {row['media']} {row['status']}, "
                        f"device {row['device']}, officer {row['officer'] or '(unattributed)'}",
                    )
                )
            else:
                output.console.print(
                    output.line(("kept", "red"), f" {row['entry']}: {row['error']}")
                )
    raise typer.Exit(0 if all(row["released"] for row in results) else 1)
