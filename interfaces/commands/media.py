"""`evidence media …`: archived media items (音视频及文书): list, show, open, describe,
record, unlinked, tag, mark."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from interfaces import common, output
from interfaces.common import LOOSE, ActorOpt, JsonOpt
from pipeline.cases import usecases as case_usecases
from pipeline.custody import usecases as custody_usecases
from pipeline.custody.access import TECHNICAL_EXTRA, Field, View
from pipeline.models import (
    MediaItem,
    MediaStatus,
    RecordType,
    Signature,
)
from pipeline.retention import usecases as retention_usecases
from pipeline.search import usecases as search_usecases

app = typer.Typer(help="Archived media items (音视频及文书).", no_args_is_help=True)

AsOpt = Annotated[
    str | None, typer.Option("--as", help="Who views or exports (required; recorded).")
]

ReasonOpt = Annotated[
    str | None, typer.Option("--reason", help="Why (required; recorded), e.g. a case number.")
]

RevealOpt = Annotated[
    bool,
    typer.Option(
        "--reveal",
        help="Show descriptions, GPS and text-record fields (needs --as and --reason; recorded).",
    ),
]

#: How people call the fields a listing withholds.
FIELD_NAMES = {
    Field.DESCRIPTION: "descriptions (文字说明)",
    Field.LOCATION: "GPS and metadata tags (位置)",
    Field.TEXT_RECORD: "text-record fields (笔录)",
}


def reveal_asked(reveal: bool, actor: str | None, reason: str | None) -> None:
    """--as and --reason name who reveals and why: without --reveal they would say nothing."""
    if not reveal and (actor is not None or reason is not None):
        raise typer.BadParameter("--as and --reason go with --reveal", param_hint="--reveal")


def withheld_note(fields: Iterable[Field], *, json_out: bool) -> None:
    """Say what was withheld and how to see it: after a table, or on stderr beside JSON."""
    names = [FIELD_NAMES[f] for f in fields]
    if not names:
        return
    note = (
        f"withheld (已隐去): {', '.join(names)}; to show them add "
        "--reveal --as WHO --reason WHY (the viewing is recorded, 调阅留痕)"
    )
    (output.err_console if json_out else output.console).print(note, markup=False, soft_wrap=True)


def revealed_table(rows: Iterable[tuple[int, Mapping[str, object]]]) -> Table:
    """The revealed fields of a page, one line per item and field that has a value."""
    table = Table(title="revealed (已调阅)")
    for col in ("media", "field", "value"):
        table.add_column(col, overflow="fold")
    for media_id, fields in rows:
        for name, value in fields.items():
            if value not in (None, "", {}):
                table.add_row(str(media_id), name, output.text(value))
    return table


def sensitive_values(item: MediaItem) -> dict[str, object]:
    """What :data:`Field` covers of ``item``, by name, for :func:`revealed_table`."""
    probe = item.probe
    gps = None if probe.latitude is None else f"{probe.latitude}, {probe.longitude}"
    tags = {k: v for k, v in probe.extra.items() if k not in TECHNICAL_EXTRA}
    record = " ".join(x for x in (item.record_type, item.signature) if x)
    return {"description": item.description, "gps": gps, "tags": tags or None, "record": record}


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="media")
    app.command("list")(media_list)
    app.command("show")(media_show)
    app.command("open")(media_open)
    app.command("describe")(media_describe)
    app.command("record")(media_record)
    app.command("unlinked")(media_unlinked)
    app.command("tag", context_settings=LOOSE)(media_tag)
    app.command("mark")(media_mark)


def media_list(
    status: Annotated[MediaStatus | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
    reveal: RevealOpt = False,
    actor: AsOpt = None,
    reason: ReasonOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List media items, newest first. Descriptions, GPS and text-record fields are withheld
    unless --reveal, which needs --as and --reason and is recorded (调阅监督).

    Example: evidence media list --status quarantined --json
    Example: evidence media list --reveal --as A001 --reason "复核 案件 2026-0113"
    """
    reveal_asked(reveal, actor, reason)
    inst, actor = common.instance_as(actor)
    items = search_usecases.media_list(
        inst, status=status, limit=limit, reveal=reveal, actor=actor, reason=reason
    )
    withheld = [f for f in Field if any(f in i.withheld for i in items)]
    if json_out:
        output.print_json(items)
    else:
        names = common.officer_names(inst)
        output.console.print(output.media_table(list(items), inst.settings.zone, names))
        if reveal:
            output.console.print(revealed_table((i.id, sensitive_values(i)) for i in items))
    withheld_note(withheld, json_out=json_out)


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
    """Show one media item: hashes, device and officer, when it was recorded and how that
    is known, flags, description, tags, cases, metadata, proxy, custody history. Viewing it is
    supervised (调阅监督): it needs --as and --reason and is recorded.

    Example: evidence media show 3f2a9c --reason "复核 案件 2026-0113" --as A001
    """
    inst, actor = common.instance_as(actor)
    shown = retention_usecases.media_shown(inst, key, actor=actor, reason=reason)
    if json_out:
        output.print_json(shown)
        return
    zone, names = inst.settings.zone, common.officer_names(inst)
    keys = {"proxy": shown.derived.proxy, "thumbnail": shown.derived.thumbnail}
    output.console.print(
        output.media_detail(
            shown.item,
            {k: v for k, v in keys.items() if v},
            zone,
            officer_name=shown.officer_name,
            tags=shown.tags,
            cases=shown.cases,
        )
    )
    output.console.print(output.text(shown.retention.said(zone)))
    output.console.print(output.plural(len(shown.custody), "custody event") + ":")
    for ev in shown.custody:
        output.console.print(
            output.text(
                f"  #{ev.seq} {output.when(ev.at, zone)} {ev.kind.value} by "
                f"{common.officer_label(ev.actor, names)}"
            )
        )


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
    metadata). The viewing is recorded with who and why before anything is shown. As a user
    (--as a login), what the access policy asks approval for (a copy of the original, another
    department's items) needs a grant first: `evidence access request`.

    Example: evidence media open 3f2a9c --reason "复核 案件 2026-0113" --as 1023
    """
    inst, actor = common.instance_as(actor)
    opened = custody_usecases.view_media(inst, key, actor=actor, reason=reason, view=view, out=out)
    if json_out:
        output.print_json(opened)
    elif isinstance(opened, custody_usecases.OpenedMetadata):
        output.console.print(output.media_detail(opened.item, {}, common.settings().zone))
    else:
        print(opened.path)  # plain: for `mpv "$(evidence media open …)"`


def media_describe(
    media: Annotated[str, typer.Argument(metavar="ID", help="Media id or SHA-256 prefix.")],
    text: Annotated[str, typer.Argument(help="The written description (文字说明).")],
    actor: ActorOpt = None,
) -> None:
    """Set the written description (文字说明) of a recording.

    Example: evidence media describe 42 "查封现场，当事人在场" --as 1023
    """
    case_usecases.describe_media(common.instance(actor), media, text)
    output.console.print("described")


def media_record(
    media: Annotated[str, typer.Argument(metavar="ID", help="Media id or SHA-256 prefix.")],
    record_type: Annotated[RecordType, typer.Option("--type", help="Record type (笔录).")],
    signature: Annotated[
        Signature, typer.Option(help="Signed, or refusal noted (拒绝签字已注明).")
    ],
    actor: ActorOpt = None,
) -> None:
    """Mark a document as a text record: its type and whether the party signed.

    Example: evidence media record 43 --type on-site --signature refusal-noted --as 1023
    """
    done = case_usecases.set_text_record(common.instance(actor), media, record_type, signature)
    output.console.print(f"{done.record_type.label_zh}, {done.signature.value}")


def media_unlinked(json_out: JsonOpt = False) -> None:
    """Archived recordings in no case, for review."""
    inst = common.instance()
    found = case_usecases.list_unlinked(inst)
    if json_out:
        output.print_json(found)
        return
    zone, names = inst.settings.zone, common.officer_names(inst)
    table = output.titled_table(
        f"{output.plural(len(found), 'recording')} in no case (未关联), {output.zone_note(zone)}"
    )
    for col in ("id", "name", "kind", "device", "officer", "recorded"):
        table.add_column(col, overflow="fold")
    for r in found:
        table.add_row(
            str(r.id),
            output.text(r.original_name),
            output.text(r.kind),
            output.text(r.device_serial or ""),
            output.text(common.officer_label(r.officer_id, names)),
            output.when(r.recorded_start, zone, seconds=False),
        )
    output.console.print(table)


def media_tag(
    key: Annotated[str, typer.Argument(metavar="ID-OR-SHA256", help="Id or SHA-256 (prefix).")],
    changes: Annotated[
        list[str], typer.Argument(metavar="+TAG|-TAG...", help="+tag (or tag) adds, -tag removes.")
    ],
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add and remove free tags of a media item; each change is a custody event.

    Example: evidence media tag 42 +待复核 +night -draft --as A001
    """
    add = [c.removeprefix("+") for c in changes if not c.startswith("-")]
    remove = [c.removeprefix("-") for c in changes if c.startswith("-")]
    done = custody_usecases.tag_media(common.instance(actor), key, add, remove)
    if json_out:
        output.print_json(done)
        return
    parts: list[Any] = [f"media {done.media_id}:"]
    for label, tags in (
        ("added", done.added),
        ("removed", done.removed),
        ("already tagged", done.already),
        ("was not tagged", done.absent),
    ):
        if tags:
            parts.append(f"{label} {', '.join(tags)};")
    parts.append(f"tags now: {', '.join(done.tags) or '(none)'}")
    output.console.print(output.text(" ".join(parts)), highlight=False)


# ---------------------------------------------------------------- retention (issue 19)


def media_mark(
    key: Annotated[str, typer.Argument(metavar="ID-OR-SHA256", help="Id or SHA-256 (prefix).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (required; recorded).")],
    clear: Annotated[
        bool, typer.Option("--clear", help="Clear the mark (with --class: the class).")
    ] = False,
    class_id: Annotated[
        str | None,
        typer.Option("--class", help="Assign a retention class instead, e.g. invalid (无效数据)."),
    ] = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Set or clear the important-file mark (重点文件) of a media item, or assign it a
    retention class (config/retention.toml); each is a custody event, and the item's lock
    follows its retention.

    Example: evidence media mark 42 --reason "执法人员按键标记" --as A001
    Example: evidence media mark 43 --class invalid --reason "误触录制，黑屏" --as A001
    """
    inst = common.instance(actor)
    if class_id is not None:
        done = retention_usecases.assign_class(inst, key, None if clear else class_id, reason)
    else:
        done = retention_usecases.mark_media(inst, key, reason, clear=clear)
    if json_out:
        output.print_json(done)
        return
    what = "unchanged" if not done.changed else "changed"
    output.console.print(output.text(f"media {done.media_id}: {what}"), highlight=False)
    output.console.print(output.text(done.retention.said(inst.settings.zone)), highlight=False)
    for followed in done.locks:
        if followed.problem:
            output.err_console.print(
                output.text(f"锁定未延长 lock not extended: {followed.problem}"), markup=False
            )
