"""`evidence quarantine …`: files that need a person (隔离区)."""

from __future__ import annotations

from typing import Annotated

import typer

from interfaces import common, output
from interfaces.common import ActorOpt, JsonOpt
from pipeline.ingest import quarantine

app = typer.Typer(help="Files that need a person (隔离区).", no_args_is_help=True)


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
    entries = quarantine.list_entries(common.instance(), include_resolved=all_entries)
    if json_out:
        output.print_json(entries)
    else:
        output.console.print(output.quarantine_table(entries))


def quarantine_release(
    entries: Annotated[
        list[int] | None, typer.Argument(metavar="ID", help="Quarantine entry ids.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="Release every entry of this device.")] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (recorded with the release).")
    ] = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Release quarantined files once the reason is gone: a device registered (or its status
    corrected), or a failed transcode that works with the current settings. They are
    identified again, given proxies and archived. Goes on past an entry that cannot be
    released and reports it; exit 1 if any could not.

    Example: evidence quarantine release --device BWC0099 --reason "设备已登记" --as A001
    """
    if not entries and device is None:
        raise typer.BadParameter("give quarantine entry ids or --device SERIAL")
    inst = common.instance(actor)
    results = quarantine.release_entries(inst, entries or [], device=device, reason=reason)
    if json_out:
        output.print_json(results)
    else:
        names = common.officer_names(inst)
        for r in results:
            if isinstance(r, quarantine.Released):
                output.console.print(
                    output.line(
                        ("released", "green"),
                        f" {r.entry}: media {r.media} {r.status.value}, device {r.device}, "
                        f"officer {common.officer_label(r.officer, names) or '(unattributed)'}",
                    )
                )
            else:
                output.console.print(output.line(("kept", "red"), f" {r.entry}: {r.error}"))
    raise typer.Exit(0 if all(r.released for r in results) else 1)
