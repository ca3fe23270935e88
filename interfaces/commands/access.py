"""`evidence media open`, `evidence audit`, `evidence export`: access supervision (调阅监督).

Viewing and exporting evidence need who (--as) and why (--reason); both are recorded as
custody events before anything is handed over. There is deliberately no default actor here:
the `actor` setting names a system, not a person answerable for a viewing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from interfaces import output
from interfaces.common import JsonOpt, catalog, settings
from pipeline.custody.access import View
from pipeline.custody.log import CustodyEvent
from pipeline.models import EventKind

AsOpt = Annotated[
    str | None, typer.Option("--as", help="Who views or exports (required; recorded).")
]
ReasonOpt = Annotated[
    str | None, typer.Option("--reason", help="Why (required; recorded), e.g. a case number.")
]


#: Characters of an event's details a table row shows.
DETAILS_WIDTH = 100


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    groups["media"].command("open")(media_open)
    app.command("audit")(audit)
    app.command("export")(export)


def media_open(
    key: Annotated[str, typer.Argument(metavar="ID-OR-SHA256", help="Id or SHA-256 (prefix).")],
    reason: ReasonOpt = None,
    actor: AsOpt = None,
    view: Annotated[
        View, typer.Option("--view", help="What to open: the proxy, a copy of the original, …")
    ] = View.PROXY,
    out: Annotated[
        Path | None, typer.Option("--out", help="Where a copy of the original goes.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """View a media item: prints the proxy's path (or copies the original out, or shows the
    metadata). The viewing is recorded with who and why before anything is shown.

    Example: evidence media open 3f2a9c --reason "复核 案件 2026-0113" --as 1023
    """
    from pipeline.custody.access import open_media
    from pipeline.storage.local import open_store

    s = settings()
    access = open_media(
        catalog(s),
        open_store(s),
        key,
        actor=actor,
        reason=reason,
        view=view,
        download_to=out,
        block_size=s.ingest.block_size,
    )
    if json_out:
        body = {"media_id": access.item.id, "view": view, "path": access.path}
        body["event"] = access.event.seq
        if view is View.METADATA:
            body["item"] = access.item
        output.print_json(body)
    elif view is View.METADATA:
        output.console.print(output.media_detail(access.item, {}))
    else:
        print(access.path)  # plain: for `mpv "$(evidence media open …)"`


def audit(
    media: Annotated[
        str | None, typer.Option("--media", help="One media item's history (id or SHA-256).")
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="What one person did.")] = None,
    case: Annotated[str | None, typer.Option("--case", help="One case's history.")] = None,
    kind: Annotated[
        list[EventKind] | None, typer.Option("--kind", help="Only these kinds (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, the newest.")] = 1000,
    json_out: JsonOpt = False,
) -> None:
    """List custody history: who did what to which evidence, when, and why.

    Example: evidence audit --media 3f2a9c --kind viewed --kind exported
    """
    from pipeline.custody.access import audit as audit_lib

    found = audit_lib(
        catalog(settings()),
        media_key=media,
        actor=actor,
        case=case,
        kinds=tuple(kind or ()),
        limit=limit,
    )
    if json_out:
        output.print_json(found)
    else:
        output.console.print(events_table(found))


def events_table(events: list[CustodyEvent]) -> Table:
    table = Table(title=f"{len(events)} custody events")
    for col in ("seq", "time (UTC)", "kind", "actor", "media", "reason / details"):
        table.add_column(col, overflow="fold")
    for e in events:
        details = dict(e.details)
        reason = details.pop("reason", None)
        summary = json.dumps(details, ensure_ascii=False, sort_keys=True) if details else ""
        if len(summary) > DETAILS_WIDTH:  # the whole of it is in --json
            summary = summary[: DETAILS_WIDTH - 1] + "…"
        shown = output.text(summary)
        if reason:
            shown = Text.assemble(output.text(reason, style="bold"), " ", shown)
        table.add_row(
            str(e.seq),
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            e.kind.value,
            output.text(e.actor),
            str(e.media_id or ""),
            shown,
        )
    return table


def export(
    out: Annotated[Path, typer.Option("--out", help="The bag's folder (new or empty).")],
    media: Annotated[
        list[str] | None,
        typer.Option("--media", help="Media items (id or SHA-256; repeat or comma-separate)."),
    ] = None,
    case: Annotated[str | None, typer.Option("--case", help="Every item of a case.")] = None,
    reason: ReasonOpt = None,
    actor: AsOpt = None,
    with_proxies: Annotated[
        bool, typer.Option("--with-proxies", help="Include the browser proxies.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Write a court package: a BagIt bag of originals, metadata and custody history, signed,
    with a standalone verifier inside. The export is itself recorded with who and why.

    Example: evidence export --media 3,5 --out /mnt/usb/2026-0113 --reason "移送法院" --as 1023
    """
    from pipeline.custody.checkpoints import checkpointer
    from pipeline.custody.export import export_bag
    from pipeline.storage.local import open_store

    if (case is None) == (not media):
        raise typer.BadParameter("give --case or --media, not both, not neither")
    s = settings()
    keys = [k.strip() for item in media or () for k in item.split(",") if k.strip()]
    result = export_bag(
        catalog(s),
        open_store(s),
        checkpointer(s),
        media_keys=keys,
        out=out,
        actor=actor,
        reason=reason,
        case=case,
        with_proxies=with_proxies,
        block_size=s.ingest.block_size,
    )
    if json_out:
        output.print_json(result)
        return
    output.console.print(
        output.text(
            f"exported {len(result.media_ids)} items to {result.path} (export "
            f"{result.export_id}): {result.files} files, {result.bytes:,} bytes; custody chain "
            f"seq {result.segment[0]}..{result.segment[1]} signed by key "
            f"{', '.join(result.key_ids)}"
        )
    )
    output.console.print(
        output.text(f"verify it: python3 {result.path / 'verify_bag.py'} {result.path}")
    )
