"""`evidence quarantine …`: files that need a person (隔离区)."""

from __future__ import annotations

from typing import Annotated

import typer

from interfaces import common, output
from interfaces.common import ActorOpt, JsonOpt, settings
from pipeline.catalog import media as media_db

app = typer.Typer(help="Files that need a person (隔离区).", no_args_is_help=True)

_settings = common.settings

_catalog = common.catalog


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="quarantine")
    app.command("list")(quarantine_list)
    app.command("release")(quarantine_release)


def quarantine_list(
    all_entries: Annotated[bool, typer.Option("--all", help="Include resolved entries.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """List quarantined files with their reasons.

    Example: evidence quarantine list --json
    """

    with _catalog(_settings()).read() as conn:
        entries = media_db.quarantine_entries(conn, include_resolved=all_entries)
    if json_out:
        output.print_json(entries)
    else:
        output.console.print(output.quarantine_table(entries))


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
