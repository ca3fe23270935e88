"""`evidence ingest` and `evidence watch`: taking files from the docks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from interfaces import common, output
from interfaces.common import JsonOpt
from pipeline.errors import EvidenceError
from pipeline.models import FileReport, Station, SweepReport
from pipeline.settings import Settings

_settings = common.settings

_catalog = common.catalog

#: How often `evidence watch` re-reads the registry for stations added or removed.
STATIONS_EVERY_S = 5.0


def register(root: typer.Typer) -> None:
    root.command("ingest")(ingest)
    root.command("watch")(watch)


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
    from flows.runtime import use_prefect
    from pipeline.registry.stations import get_station

    get_station(_catalog(settings), station)  # an unknown station: one clean line, no server
    use_prefect(settings)
    report = _run_with_progress(settings, station, paths, quiet=json_out)
    if json_out:
        output.print_json(report)
    else:
        output.console.print(output.sweep_table(report))
        output.console.print(output.sweep_summary(report))
    raise typer.Exit(0 if report.ok else 1)


def _run_with_progress(
    settings: Settings, station: str, paths: list[Path] | None, *, quiet: bool
) -> SweepReport:
    """The sweep with a bar in bytes (copied, hashed and verified) and a line for the proxy
    being made (ffmpeg's own progress), then one line per file as it ends."""
    from flows import ingest as ingest_flow

    with output.ingest_progress(disable=quiet) as bar:
        stored = bar.add_task(f"ingesting {station}", total=None)
        proxy = bar.add_task("proxy", total=1.0, visible=False)

        def planned(files: int, size: int) -> None:
            bar.update(stored, total=size or None, description=f"ingesting {station}: {files} "
                       f"file{'' if files == 1 else 's'}")  # fmt: skip

        def transcoding(path: str, fraction: float) -> None:
            name = output.shown(Path(path).name)
            bar.update(proxy, completed=fraction, visible=fraction < 1.0, description=name)

        def ended(report: FileReport) -> None:
            if not quiet:  # --json: stdout and stderr stay clean for scripts
                bar.console.print(output.file_line(report))

        progress = ingest_flow.IngestProgress(
            planned=planned,
            stored=lambda size: bar.advance(stored, size),
            transcoding=transcoding,
            ended=ended,
        )
        wanted = None if paths is None else [str(p) for p in paths]
        return ingest_flow.run_ingest(settings, station, wanted, progress=progress)


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
    cataloguing. A reconciliation sweep runs at start and every watch.sweep_interval_s; a
    sweep that finds nothing makes no flow run. Stations registered or removed while it runs
    are picked up within seconds. Stop with Ctrl-C.

    Example: evidence watch
    """
    settings = _settings()
    from flows.runtime import use_prefect
    from pipeline.registry.stations import list_stations

    registry = _catalog(settings)

    def wanted() -> list[Station]:
        return [s for s in list_stations(registry) if not station or s.id in station]

    stations = wanted()
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
        _watch_submitting(settings, stations, wanted)
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
        _run_watcher(settings, stations, ingest.on_batch, wanted)


def _watch_submitting(
    settings: Settings, stations: list[Station], wanted: Callable[[], list[Station]]
) -> None:
    """Scale-out: a worker on some host runs each batch; this station host only submits."""
    from flows.deploy import submit_ingest
    from flows.ingest import plan_ahead

    def on_batch(station_id: str, paths: list[Path] | None) -> None:
        wanted = None if paths is None else [str(p) for p in paths]
        # A sweep is planned here: one that finds nothing submits no run.
        job_ids = plan_ahead(settings, station_id) if wanted is None else None
        if job_ids == []:
            return
        run = submit_ingest(station_id, wanted, job_ids)
        what = "a sweep" if wanted is None else f"{len(wanted)} file(s)"
        output.console.print(output.text(f"{station_id}: submitted {what} as flow run {run}"))

    _run_watcher(settings, stations, on_batch, wanted)


def _run_watcher(
    settings: Settings,
    stations: list[Station],
    on_batch: Callable[[str, list[Path] | None], list[Path] | None],
    wanted: Callable[[], list[Station]],
) -> None:
    from docks.watcher import StationWatcher

    stop = threading.Event()
    watcher = StationWatcher(stations, settings.watch, settings.ingest.ignore, on_batch)

    def changed(added: list[str], removed: list[str]) -> None:
        for sid in added:
            output.console.print(output.text(f"watching {sid} too"))
        for sid in removed:
            output.console.print(output.text(f"no longer watching {sid}"))

    try:
        watcher.run_forever(stop, stations=wanted, every_s=STATIONS_EVERY_S, on_change=changed)
    except KeyboardInterrupt:
        stop.set()
        output.console.print("stopped")
