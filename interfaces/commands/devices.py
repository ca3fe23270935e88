"""`evidence devices …`: recorders, their assignments and health."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from interfaces import output
from interfaces.common import (
    ActorOpt,
    JsonOpt,
    ago,
    catalog,
    changes_out,
    import_registry,
    settings,
)
from pipeline.catalog import media as media_db
from pipeline.catalog import registry as rows
from pipeline.errors import NotFound
from pipeline.models import Device, DeviceKind, DeviceStatus
from pipeline.registry import bulk as registry_io
from pipeline.registry import health
from pipeline.registry import records as registry
from pipeline.settings import Settings

app = typer.Typer(
    help="Recorders (执法记录仪 等): registry, assignments, health.", no_args_is_help=True
)

WhenOpt = Annotated[
    str | None,
    typer.Option(
        "--from",
        help="When it starts: ISO date-time, local time unless it has a zone; default now.",
    ),
]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="devices")
    app.command("add")(devices_add)
    app.command("list")(devices_list)
    app.command("show")(devices_show)
    app.command("set-status")(devices_set_status)
    app.command("assign")(devices_assign)
    app.command("unassign")(devices_unassign)
    app.command("import")(devices_import)
    app.command("export")(devices_export)
    app.command("health")(devices_health)


def _when(s: Settings, text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date-time like 2026-05-01T08:00") from None
    return moment.replace(tzinfo=ZoneInfo(s.devices.timezone)) if moment.tzinfo is None else moment


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
    changes_out([change], json_out)


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
    changes_out(
        [registry.set_status(catalog(s), serial, status, actor or s.actor, reason)], json_out
    )


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
    changes_out([change], json_out)


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


def devices_import(path: Path, actor: ActorOpt = None, json_out: JsonOpt = False) -> None:
    """Import a registry file: YAML (stations, officers, devices, assignments; see
    config/registry.example.yaml) or one CSV table. All or nothing; re-importing changes nothing.

    Example: evidence devices import registry.yaml --as A001
    """
    import_registry(path, actor, json_out)


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
            ago(d.last_docked),
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
            ago(st.last_docked),
            f"{st.files_per_day:.1f}",
            f"{st.bytes_per_day / 1e6:.1f}",
            str(st.quarantined),
            output.text(", ".join(st.unregistered_serials)),
        )
    output.console.print(table)
