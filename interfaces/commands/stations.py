"""`evidence stations …`: docking stations (采集站) and their dump folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from interfaces import common, output
from interfaces.common import ActorOpt, JsonOpt, changes_out
from pipeline.models import plain
from pipeline.registry import usecases as registry
from pipeline.uploads import presence

app = typer.Typer(help="Docking stations (采集站) and their dump folders.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="stations")
    app.command("add")(stations_add)
    app.command("list")(stations_list)
    app.command("show")(stations_show)
    app.command("set")(stations_set)
    app.command("token")(stations_token)


def stations_add(
    station_id: Annotated[str, typer.Argument(metavar="ID", help="Station id, e.g. DOCK-01.")],
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            help="The station's dump folder (with --push: its intake folder, by default "
            "intake/ID in EVIDENCE_HOME).",
            show_default=False,
        ),
    ] = None,
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
    push: Annotated[
        bool,
        typer.Option(
            "--push",
            help="It uploads over the network (station API, `evidence dock push`): give it a "
            "token with `evidence stations token ID`.",
        ),
    ] = False,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register a docking station and its dump folder, or (--push) a station that uploads
    over the network into an intake folder of this server.

    Example: evidence stations add DOCK-01 --root /srv/dock01 --name "一中队采集站"
    Example: evidence stations add DOCK-07 --push --name "城关中队采集站"
    """
    station = registry.add_station(
        common.instance(actor),
        station_id,
        root,
        name=name,
        location=location,
        preserves_mtimes=preserves_mtimes,
        pushes=push,
    )
    if json_out:
        output.print_json(station)
    elif station.pushes:
        output.console.print(
            output.text(
                f"push station {station.id} added, intake folder {station.root}; "
                f"next: evidence stations token {station.id}"
            )
        )
    else:
        output.console.print(output.text(f"station {station.id} added: {station.root}"))


def stations_list(json_out: JsonOpt = False) -> None:
    """List registered stations; for a push station whether it is online (a keepalive
    within dock.silent_after_s), when it was last seen (local time), its software, free
    disk, queue, and its uploads still open on this server.

    Example: evidence stations list --json
    """
    inst = common.instance()
    found = presence.station_states(inst)
    if json_out:
        rows = [{**plain(s.station), **plain(s)} for s in found]
        output.print_json([{k: v for k, v in r.items() if k != "station"} for r in rows])
    else:
        output.console.print(output.stations_table(found, inst.settings.zone))


def stations_token(
    station_id: Annotated[str, typer.Argument(metavar="ID")],
    revoke: Annotated[
        bool, typer.Option("--revoke", help="Revoke every token of the station, at once.")
    ] = False,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Issue a bearer token for a push station (printed once: the server keeps only its
    SHA-256), or revoke all of them. Put it in the file `evidence dock push --token-file`
    reads, readable by the agent's user only.

    Example: evidence stations token DOCK-07 --as A001 > dock-07.token
    Example: evidence stations token DOCK-07 --revoke --as A001
    """
    inst = common.instance(actor)
    if revoke:
        done = presence.revoke_tokens(inst, station_id)
        if json_out:
            output.print_json(done)
        else:
            output.console.print(
                output.text(f"station {station_id}: {done.revoked} token(s) revoked")
            )
        return
    issued = presence.issue_token(inst, station_id)
    if json_out:
        output.print_json(issued)
    else:
        print(issued.token)  # alone on stdout, to be redirected into the token file


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
    pushing = [p for p in presence.station_states(inst) if p.station.id == station_id]
    output.console.print(output.stations_table(pushing, zone))
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
