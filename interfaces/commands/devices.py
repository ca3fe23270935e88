"""`evidence devices …`: recorders, their assignments and health."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from interfaces import common, output
from interfaces.common import (
    ActorOpt,
    JsonOpt,
    ago,
    changes_out,
    import_registry,
    local_time,
    officer_label,
    officer_names,
)
from pipeline.ingest.identify import drift_words
from pipeline.models import Device, DeviceKind, DeviceStatus
from pipeline.registry import bulk as registry_io
from pipeline.registry import health
from pipeline.registry import usecases as registry

app = typer.Typer(
    help="Recorders (执法记录仪 等): registry, assignments, health.", no_args_is_help=True
)

WhenOpt = Annotated[
    str | None,
    typer.Option(
        "--from",
        help="When it starts: 2026-11-27T08:00 or a day (local unless zoned); default now.",
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
    device = Device(serial, kind, status, vendor, model, clock_offset)
    changes_out([registry.add_device(common.instance(actor), device)], json_out)


def devices_list(json_out: JsonOpt = False) -> None:
    """List registered devices with their current holder."""
    inst = common.instance()
    found = registry.list_devices(inst)
    if json_out:
        output.print_json(found)
        return
    names = officer_names(inst)
    table = Table(title=f"{output.plural(len(found), 'device')} (设备)")
    for col in ("serial", "kind", "status", "vendor", "model", "clock offset", "held by"):
        table.add_column(col)
    for d in found:
        table.add_row(
            output.text(d.serial),
            f"{d.kind.value} {d.kind.label_zh}",
            f"{d.status.value} {d.status.label_zh}",
            output.text(d.vendor),
            output.text(d.model),
            _offset(d) if d.clock_offset_s else "0 s",
            output.text(officer_label(d.holder, names)),
        )
    output.console.print(table)


def devices_show(serial: str, json_out: JsonOpt = False) -> None:
    """Show a device, its assignment history and its quarantined files."""
    inst = common.instance()
    detail = registry.device_detail(inst, serial)
    if json_out:
        output.print_json(detail)
        return
    device, zone, names = detail.device, inst.settings.zone, officer_names(inst)
    clock = "clock right" if not device.clock_offset_s else f"clock {_offset(device)}"
    output.console.print(
        output.line(
            (device.serial, "bold"),
            f" {device.kind.label_zh} {device.vendor} {device.model} — {device.status.value} "
            f"{device.status.label_zh}, {clock}",
        )
    )
    table = output.titled_table(f"assignments (领用记录), {output.zone_note(zone)}")
    for col in ("officer", "from", "to"):
        table.add_column(col)
    for a in detail.assignments:
        table.add_row(
            output.text(officer_label(a.officer_id, names)),
            output.when(a.start, zone),
            output.when(a.end, zone) if a.end else "(holds it)",
        )
    output.console.print(table)
    if detail.clock_reports:
        seen = output.titled_table(
            f"clock as push stations saw it (校时记录), {output.zone_note(zone)}"
        )
        for col in ("station", "offset", "seen"):
            seen.add_column(col)
        for station_id, offset, at in detail.clock_reports:
            seen.add_row(output.text(station_id), f"{offset:+.1f} s", output.when(at, zone))
        output.console.print(seen)
    if detail.quarantine:
        output.console.print(output.quarantine_table(list(detail.quarantine)))


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
    change = registry.set_device_status(common.instance(actor), serial, status, reason)
    changes_out([change], json_out)


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
    inst = common.instance(actor)
    s = inst.settings
    change = registry.assign_device(inst, serial, officer, local_time(s, start), local_time(s, end))
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
    inst = common.instance(actor)
    ended = registry.unassign_device(inst, serial, local_time(inst.settings, at))
    if json_out:
        output.print_json(ended)
    else:
        end = output.when_zoned(ended.end, inst.settings.zone)
        output.console.print(
            output.text(f"{serial}: officer {ended.officer_id}'s assignment ended {end}")
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
    tables = registry.export_registry(common.instance()).tables()
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
    inst = common.instance()
    report = registry.health_report(inst)
    if json_out:
        output.print_json(report)
        return
    print_health(report, inst.settings.zone, officer_names(inst))


def _offset(device: Device) -> str:
    """The registered offset, in words: ``+120 s (2 min fast)``."""
    return f"{device.clock_offset_s:+g} s ({drift_words(device.clock_offset_s)})"


def print_health(
    report: health.Health, zone: tzinfo = UTC, names: Mapping[str, str] | None = None
) -> None:
    names = names or {}
    table = output.titled_table(f"device health (设备状况), {output.zone_note(zone)}")
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
            output.text(officer_label(d.holder, names)),
            ago(d.last_docked, zone),
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
            ago(st.last_docked, zone),
            f"{st.files_per_day:.1f}",
            f"{st.bytes_per_day / 1e6:.1f}",
            str(st.quarantined),
            output.text(", ".join(st.unregistered_serials)),
        )
    output.console.print(table)
