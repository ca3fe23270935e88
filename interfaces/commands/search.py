"""`evidence search`: the query language at the command line."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from interfaces import common, output
from interfaces.commands.media import (
    AsOpt,
    ReasonOpt,
    RevealOpt,
    reveal_asked,
    revealed_table,
    withheld_note,
)
from interfaces.common import LOOSE, JsonOpt
from pipeline.search import run as search_lib
from pipeline.search.usecases import SearchResult
from pipeline.search.usecases import search as search_media


def register(root: typer.Typer) -> None:
    root.command("search", context_settings=LOOSE)(search)


def search(
    query: Annotated[
        list[str] | None,
        typer.Argument(help="The query (quote it as one argument); empty: everything."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many.")] = 50,
    sort: Annotated[
        str, typer.Option(help="recorded, ingested, duration, size or id; -key: descending.")
    ] = str(search_lib.NEWEST_FIRST),
    reveal: RevealOpt = False,
    actor: AsOpt = None,
    reason: ReasonOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Find media items by case, officer, device, time, tag or text (检索).

    Fields: case, officer, cert, device, station, department, category, kind, status,
    recorded, ingested, duration, size, id, sha256, tag, linked, described.

    Bare words and "quoted phrases" search file names, descriptions, tags and case titles.

    -term negates it, a,b is either, a..b is a range. Grammar: pipeline/search/query.py.

    Descriptions are withheld from the results unless --reveal, which needs --as and
    --reason and is recorded (调阅监督).

    Example: evidence search 'officer:1023 recorded:2026-05-05 -tag:reviewed 扣押'
    """
    try:
        order = search_lib.Sort.parse(sort)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--sort") from None
    reveal_asked(reveal, actor, reason)
    instance, actor = common.instance_as(actor)
    found = search_media(
        instance,
        " ".join(query or []),
        sort=order,
        limit=limit,
        reveal=reveal,
        actor=actor,
        reason=reason,
    )
    if json_out:
        output.print_json(found)
        withheld_note(found.withheld, json_out=True)
        return
    output.console.print(_table(found, instance.settings.zone))
    if reveal:
        output.console.print(
            revealed_table((v.id, {"description": v.description}) for v in found.items)
        )
    withheld_note(found.withheld, json_out=False)
    if found.more:
        output.console.print(
            f"More items match: raise --limit (now {limit}) or narrow the query.", markup=False
        )


def _table(found: SearchResult, zone: ZoneInfo) -> Table:
    more = "+" if found.more else ""
    table = output.titled_table(
        output.text(
            f"{output.plural(len(found.items), 'media item')}{more}: "
            f"{found.query or '(everything)'}; {output.zone_note(zone)}"
        )
    )
    for col in ("id", "kind", "recorded", "duration", "officer", "device", "case", "thumbnail"):
        table.add_column(col, overflow="fold")
    for v in found.items:
        officer = " ".join(x for x in (v.officer_id, v.officer_name) if x)
        table.add_row(
            str(v.id),
            f"{v.kind.value} {v.kind.label_zh}",
            _local(v.recorded_start, zone),
            "" if v.duration_s is None else f"{v.duration_s:.0f} s",
            output.text(officer),
            output.text(v.device_serial or ""),
            # One line per case: a newline inside a title is shown as \n, not as another case.
            output.text("\n").join(output.text(f"{c.number} {c.title}") for c in v.cases),
            output.text(v.thumbnail or ""),
        )
    return table


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    return output.when(moment, zone)
