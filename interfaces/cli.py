"""The ``evidence`` command. Commands parse, call the library, and turn domain errors into
clean messages and exit codes: 0 done, 1 some file hit a system error, 2 bad usage or state.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from interfaces import common, output
from interfaces.commands import COMMAND_MODULES
from interfaces.common import ActorOpt, JsonOpt
from pipeline.errors import EvidenceError
from pipeline.models import FileReport, MediaStatus, Station, SweepReport
from pipeline.settings import Settings

app = typer.Typer(
    help="Evidence ingestion and archiving for enforcement recording devices (执法全过程记录).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stations_app = typer.Typer(
    help="Docking stations (采集站) and their dump folders.", no_args_is_help=True
)
media_app = typer.Typer(help="Archived media items (音视频及文书).", no_args_is_help=True)
quarantine_app = typer.Typer(help="Files that need a person (隔离区).", no_args_is_help=True)
server_app = typer.Typer(help="The local Prefect server the commands share.", no_args_is_help=True)
app.add_typer(stations_app, name="stations")
app.add_typer(media_app, name="media")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(server_app, name="server")


@app.callback()
def _global(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home", help="Data directory (default: $EVIDENCE_HOME).", show_default=False
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    if home is not None:
        os.environ["EVIDENCE_HOME"] = str(home)
    # Each file's outcome is printed as a line of its own; logs repeat it only when asked.
    handler = logging.StreamHandler()
    handler.setFormatter(output.InertFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.ERROR, handlers=[handler])
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "WARNING")


_settings = common.settings
_catalog = common.catalog


# ---------------------------------------------------------------------------------- init


@app.command()
def init(json_out: JsonOpt = False) -> None:
    """Create the data directory, the catalog, and the instance's signing key.

    Example: evidence --home /srv/evidence init
    """
    from sqlalchemy.engine import make_url

    from pipeline.custody.keys import create_instance_key
    from pipeline.storage.local import open_store

    settings = _settings()
    for folder in (settings.home, settings.log_dir, settings.prefect_home):
        folder.mkdir(parents=True, exist_ok=True)
    _catalog(settings).dispose()
    open_store(settings)  # creates the archive (an S3 bucket with Object Lock: self-tested)
    signing = create_instance_key(settings.home)  # signs custody checkpoints; kept if it exists
    s3 = settings.store.s3
    archive = (
        str(settings.archive_dir)
        if settings.store.kind == "local"
        else f"s3://{s3.bucket} at {s3.endpoint_url or 'AWS ' + s3.region}"
    )
    info = {
        "home": settings.home,
        "catalog": make_url(settings.catalog_url).render_as_string(hide_password=True),
        "archive": archive,
        "key_id": signing.key_id,
        "key": signing.path,
    }
    if json_out:
        output.print_json(info)
    else:
        for key, value in info.items():
            output.console.print(output.line((key, "bold"), ": ", value))


# ------------------------------------------------------------------------------ stations


@stations_app.command("add")
def stations_add(
    station_id: Annotated[str, typer.Argument(metavar="ID", help="Station id, e.g. DOCK-01.")],
    root: Annotated[Path, typer.Option("--root", help="The station's dump folder.")],
    name: Annotated[str, typer.Option(help="A readable name.")] = "",
    location: Annotated[str, typer.Option(help="Where the station stands.")] = "",
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register a docking station and its dump folder.

    Example: evidence stations add DOCK-01 --root /srv/dock01 --name "一中队采集站"
    """
    from pipeline.registry.stations import add_station

    settings = _settings()
    station = add_station(
        _catalog(settings),
        station_id,
        root,
        actor or settings.actor,
        name=name,
        location=location,
        settings=settings,
    )
    if json_out:
        output.print_json(station)
    else:
        output.console.print(output.text(f"station {station.id} added: {station.root}"))


@stations_app.command("list")
def stations_list(json_out: JsonOpt = False) -> None:
    """List registered stations."""
    from pipeline.registry.stations import list_stations

    found = list_stations(_catalog(_settings()))
    if json_out:
        output.print_json(found)
    else:
        output.console.print(output.stations_table(found))


# -------------------------------------------------------------------------------- ingest


@app.command()
def ingest(
    station: Annotated[str, typer.Option("--station", help="The station to sweep.")],
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Only these files (default: the whole folder).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Sweep one station's dump folder once, as one Prefect flow run, and wait for it.

    Every file ends archived, a duplicate, quarantined with a reason, or waiting (still being
    written). Exit 0 when no file hit a system error.

    Example: evidence ingest --station DOCK-01
    """
    settings = _settings()
    from docks.scan import scan_station
    from flows.runtime import use_prefect
    from pipeline.registry.stations import get_station

    found = get_station(_catalog(settings), station)
    total = len(scan_station(found, settings.ingest.ignore, 0.0, only=paths).ready)
    use_prefect(settings)
    report = _run_with_progress(settings, station, paths, total, quiet=json_out)
    if json_out:
        output.print_json(report)
    else:
        output.console.print(output.sweep_table(report))
        output.console.print(output.sweep_summary(report))
    raise typer.Exit(0 if report.ok else 1)


def _run_with_progress(
    settings: Settings, station: str, paths: list[Path] | None, total: int, *, quiet: bool
) -> SweepReport:
    from flows import ingest as ingest_flow

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=output.err_console, disable=quiet, transient=True) as bar:
        task = bar.add_task(f"ingesting {station}", total=total or None)

        def advance(report: FileReport) -> None:
            if not quiet:  # --json: stdout and stderr stay clean for scripts
                bar.console.print(output.file_line(report))
            bar.advance(task)

        ingest_flow.file_listeners.append(advance)
        try:
            return ingest_flow.run_ingest(
                settings, station, None if paths is None else [str(p) for p in paths]
            )
        finally:
            ingest_flow.file_listeners.remove(advance)


# --------------------------------------------------------------------------------- watch


@app.command()
def watch(
    station: Annotated[
        list[str] | None, typer.Option("--station", help="Only these stations (default: all).")
    ] = None,
) -> None:
    """Watch every registered station folder and ingest complete files as they land.

    A file counts as complete once its writer closed it (or renamed it into place) and it
    stayed unchanged for watch.settle_s seconds; a file seen otherwise, after watch.stable_s.
    Each batch is stored and catalogued in one flow run (intake-station); proxies and the
    release from the dock follow in derive-station runs, so a long transcode never holds up
    cataloguing. A reconciliation sweep runs at start and every watch.sweep_interval_s.
    Stop with Ctrl-C.

    Example: evidence watch
    """
    settings = _settings()
    from flows.runtime import use_prefect
    from pipeline.registry.stations import list_stations

    stations = [s for s in list_stations(_catalog(settings)) if not station or s.id in station]
    if not stations:
        raise EvidenceError("no stations to watch: register one with `evidence stations add`")
    server = use_prefect(settings)
    output.console.print(
        output.text(
            f"watching {', '.join(s.id for s in stations)}; Prefect UI: {server.ui_url} "
            "(Ctrl-C stops)"
        )
    )
    if settings.prefect.deployments:
        _watch_submitting(settings, stations)
        return
    if not settings.prefect.api_url and not settings.prefect.database_url:
        output.err_console.print(
            "note: the local Prefect server keeps its runs in SQLite, where the watcher's "
            "intake and derive runs collide and a file can wait 2 s or more to be catalogued; "
            "for production set prefect.database_url to a PostgreSQL database (docs/deploy.md)"
        )
    from flows.ingest import Intake
    from flows.watch import WatchIngest

    def print_files(report: SweepReport) -> None:
        for f in report.files:
            output.console.print(output.line(f"{report.station_id} ", output.file_line(f)))

    def on_intake(intake: Intake) -> None:
        print_files(intake.report)
        if intake.to_derive:
            output.console.print(
                output.text(
                    f"{intake.report.station_id}: {len(intake.to_derive)} file(s) catalogued, "
                    "proxies to follow"
                )
            )

    with WatchIngest(settings, on_intake, print_files) as ingest:
        _run_watcher(settings, stations, ingest.on_batch)


def _watch_submitting(settings: Settings, stations: list[Station]) -> None:
    """Scale-out: a worker on some host runs each batch; this station host only submits."""
    from flows.deploy import submit_ingest

    def on_batch(station_id: str, paths: list[Path] | None) -> None:
        wanted = None if paths is None else [str(p) for p in paths]
        run = submit_ingest(station_id, wanted)
        what = "a sweep" if wanted is None else f"{len(wanted)} file(s)"
        output.console.print(output.text(f"{station_id}: submitted {what} as flow run {run}"))

    _run_watcher(settings, stations, on_batch)


def _run_watcher(
    settings: Settings, stations: list[Station], on_batch: Callable[[str, list[Path] | None], None]
) -> None:
    from docks.watcher import StationWatcher

    stop = threading.Event()
    try:
        StationWatcher(stations, settings.watch, settings.ingest.ignore, on_batch).run_forever(stop)
    except KeyboardInterrupt:
        stop.set()
        output.console.print("stopped")


# --------------------------------------------------------------------------------- media


@media_app.command("list")
def media_list(
    status: Annotated[MediaStatus | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
    json_out: JsonOpt = False,
) -> None:
    """List media items, newest first.

    Example: evidence media list --status quarantined --json
    """
    from pipeline.catalog import media as media_db

    with _catalog(_settings()).read() as conn:
        items = media_db.listing(conn, status=status, limit=limit)
    if json_out:
        output.print_json(items)
    else:
        output.console.print(output.media_table(items))


@media_app.command("show")
def media_show(
    key: Annotated[str, typer.Argument(metavar="ID-OR-SHA256", help="Id or SHA-256 (prefix).")],
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (required; recorded).")
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--as", help="Who views (required; recorded).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show one media item: hashes, metadata, device and officer, proxy, custody history.
    Viewing metadata is supervised (调阅监督): it needs --as and --reason and is recorded.

    Example: evidence media show 3f2a9c --reason "复核 案件 2026-0113" --as A001
    """
    from pipeline.custody import log as custody
    from pipeline.custody.access import View, open_media
    from pipeline.storage.local import open_store

    settings = _settings()
    catalog = _catalog(settings)
    item = open_media(
        catalog, open_store(settings), key, actor=actor, reason=reason, view=View.METADATA
    ).item
    with catalog.begin() as conn:
        history = list(custody.events(conn, media_id=item.id))
    keys = {"proxy": item.proxy_key, "thumbnail": item.thumbnail_key}
    if json_out:
        output.print_json({"item": item, "derived": keys, "custody": history})
        return
    output.console.print(output.media_detail(item, {k: v for k, v in keys.items() if v}))
    for ev in history:
        output.console.print(
            output.text(f"  #{ev.seq} {ev.at:%Y-%m-%d %H:%M:%S} {ev.kind.value} by {ev.actor}")
        )


@quarantine_app.command("list")
def quarantine_list(
    all_entries: Annotated[bool, typer.Option("--all", help="Include resolved entries.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """List quarantined files with their reasons.

    Example: evidence quarantine list --json
    """
    from pipeline.catalog import media as media_db

    with _catalog(_settings()).read() as conn:
        entries = media_db.quarantine_entries(conn, include_resolved=all_entries)
    if json_out:
        output.print_json(entries)
    else:
        output.console.print(output.quarantine_table(entries))


# -------------------------------------------------------------------------------- server


@server_app.command("start")
def server_start(json_out: JsonOpt = False) -> None:
    """Start the local Prefect server (or find the running one); print its UI address."""
    from flows.runtime import use_prefect

    info = use_prefect(_settings())
    if json_out:
        output.print_json({"api_url": info.url, "ui_url": info.ui_url, "pid": info.pid})
    else:
        verb = "started" if info.started else "running"
        output.console.print(
            output.text(f"Prefect server {verb}: UI {info.ui_url}, API {info.url}")
        )


@server_app.command("status")
def server_status(json_out: JsonOpt = False) -> None:
    """Say whether the local Prefect server runs."""
    from flows.runtime import running_server

    info = running_server(_settings())
    if json_out:
        output.print_json(None if info is None else {"api_url": info.url, "pid": info.pid})
    else:
        output.console.print(output.text(f"running: {info.ui_url}" if info else "not running"))
    raise typer.Exit(0 if info else 1)


@server_app.command("stop")
def server_stop() -> None:
    """Stop the local Prefect server started by an earlier command."""
    from flows.runtime import stop_server

    output.console.print("stopped" if stop_server(_settings()) else "not running")


# ---------------------------------------------------------------------------------- demo


@app.command()
def demo(
    home: Annotated[
        Path | None,
        typer.Option(help="Where to put the demo's data (default: a temporary folder)."),
    ] = None,
) -> None:
    """Synthesize recorder dumps from several devices and ingest them through the flow.

    Example: evidence demo
    """
    from interfaces.demo import run_demo

    raise typer.Exit(run_demo(home))


def main() -> None:
    """Entry point: domain errors become one clean line on stderr and exit code 2."""
    try:
        app()
    except EvidenceError as exc:
        # Unwrapped and without markup: the message names files and may hold brackets.
        output.err_console.print(f"[bold red]error[/] ({exc.code}): ", end="")
        output.err_console.print(output.text(exc), highlight=False, soft_wrap=True)
        sys.exit(2)


# Command groups of later capabilities live in their own modules and register here, on the
# root app or on one of its groups.
_GROUPS = {
    "stations": stations_app,
    "media": media_app,
    "quarantine": quarantine_app,
    "server": server_app,
}
for _module in COMMAND_MODULES:
    _module.register(app, _GROUPS)


if __name__ == "__main__":
    main()
