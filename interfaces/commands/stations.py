"""`evidence stations …`: docking stations (采集站) and their dump folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from interfaces import common, output
from interfaces.common import ActorOpt, JsonOpt, changes_out
from pipeline.registry import usecases as registry

app = typer.Typer(help="Docking stations (采集站) and their dump folders.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="stations")
    app.command("add")(stations_add)
    app.command("list")(stations_list)
    app.command("show")(stations_show)
    app.command("set")(stations_set)


def stations_add(
    station_id: Annotated[str, typer.Argument(metavar="ID", help="Station id, e.g. DOCK-01.")],
    root: Annotated[Path, typer.Option("--root", help="The station's dump folder.")],
    name: Annotated[str, typer.Option(help="A readable name.")] = "",
    location: Annotated[str, typer.Option(help="Where the station stands.")] = "",
    preserves_mtimes: Annotated[
        bool,
        typer.Option(
            "--preserves-mtimes",
            help="It copies files with the recorder's mtimes (rsync -t, cp -p): the clock-drift "
            "check may then compare a recording's end with its file time.",
        ),
    ] = False,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register a docking station and its dump folder.

    Example: evidence stations add DOCK-01 --root /srv/dock01 --name "一中队采集站"
    """
    station = registry.add_station(
        common.instance(actor),
        station_id,
        root,
        name=name,
        location=location,
        preserves_mtimes=preserves_mtimes,
    )
    if json_out:
        output.print_json(station)
    else:
        output.console.print(output.text(f"station {station.id} added: {station.root}"))


def stations_list(json_out: JsonOpt = False) -> None:
    """List registered stations."""
    found = registry.list_stations(common.instance())
    if json_out:
        output.print_json(found)
    else:
        output.console.print(output.stations_table(found))


def stations_show(
    station_id: Annotated[str, typer.Argument(metavar="ID")], json_out: JsonOpt = False
) -> None:
    """Show a station and its health.

    Example: evidence stations show DOCK-01
    """
    inst = common.instance()
    detail = registry.station_detail(inst, station_id)
    if json_out:
        output.print_json(detail)
        return
    state, zone = detail.health, inst.settings.zone
    output.console.print(output.stations_table([detail.station]))
    last = output.when_zoned(state.last_docked, zone) or "never"
    output.console.print(
        output.text(
            f"last docked {last}; {state.files_per_day:.1f} files/day; "
            f"{state.quarantined} in quarantine; unregistered devices: "
            f"{', '.join(state.unregistered_serials) or 'none'}"
        )
    )


def stations_set(
    station_id: Annotated[str, typer.Argument(metavar="ID")],
    preserves_mtimes: Annotated[
        bool,
        typer.Option(
            "--preserves-mtimes/--no-preserves-mtimes",
            help="Whether it copies files with the recorder's mtimes (rsync -t, cp -p).",
        ),
    ],
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Change a station's settings: whether it keeps the recorder's mtimes, which the
    clock-drift check then trusts as the end of each recording (recorded as a custody event).

    Example: evidence stations set DOCK-01 --preserves-mtimes --as A001
    """
    change = registry.set_station_mtimes(common.instance(actor), station_id, preserves_mtimes)
    changes_out([change], json_out)
