"""`evidence hold …`: legal holds (法律保全): add, release, list. A held record is never
disposed of; on S3 its original gets an Object Lock legal hold. Each acts as the user `--as`
names (a login, or the officer id of one user), like `evidence access`: a supervisor (领导)
for their department tree, or the legal office (法制审核). docs/retention.md says more.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from interfaces import common, output
from interfaces.common import JsonOpt
from pipeline.retention import holds
from pipeline.retention.holds import Hold, HoldDone

app = typer.Typer(help="Legal holds (法律保全).", no_args_is_help=True)

AsOpt = Annotated[
    str | None,
    typer.Option("--as", help="Who acts: a user's login, or the officer id of one user."),
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (required; recorded).")]
COLUMNS = (
    "id",
    "on 对象",
    "reason 理由",
    "by 保全人",
    "placed 时间",
    "until 期限",
    "state",
    "items",
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="hold")
    app.command("add")(hold_add)
    app.command("release")(hold_release)
    app.command("list")(hold_list)


def hold_add(
    reason: ReasonOpt,
    media: Annotated[
        list[str] | None,
        typer.Option("--media", help="Media ids (repeat, or comma-separated: 12,13)."),
    ] = None,
    case: Annotated[
        str | None, typer.Option("--case", help="A case: its records now and those linked later.")
    ] = None,
    query: Annotated[
        str | None,
        typer.Option("--query", help="A search query: the records it matches now."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="The last day it holds (local time); else until released."),
    ] = None,
    actor: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Place a legal hold on records, a case or what a search query matches.

    Example: evidence hold add --case 2026-0113 --reason "行政诉讼 (2026)某01行初12号" --as fazhi
    Example: evidence hold add --query 'officer:1023 recorded:2026-05' --reason "投诉核查" \
        --until 2027-06-30 --as wang.ju
    """
    ids = _ids(media or [])
    if sum([bool(ids), case is not None, query is not None]) != 1:
        raise typer.BadParameter("give one of --media, --case, --query")
    inst = common.instance()
    user = holds.acting_user(inst, actor)
    done = holds.place_hold(
        inst.acting(user.login),
        user,
        reason=reason,
        media_ids=ids,
        case=case,
        query=query,
        until=common.local_until(inst.settings, until),
    )
    _done(done, json_out, "placed")


def hold_release(
    hold_id: Annotated[int, typer.Argument(metavar="HOLD_ID", help="The hold's id.", min=1)],
    reason: ReasonOpt,
    actor: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Release a hold; its records lose their S3 legal hold unless another hold covers them.

    Example: evidence hold release 3 --reason "判决已生效" --as fazhi
    """
    inst = common.instance()
    user = holds.acting_user(inst, actor)
    done = holds.release_hold(inst.acting(user.login), user, hold_id, reason)
    _done(done, json_out, "released")


def hold_list(
    every: Annotated[bool, typer.Option("--all", help="Released holds too.")] = False,
    actor: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List holds, newest first: those in force (--all: released ones too).

    Example: evidence hold list --as fazhi
    """
    inst = common.instance()
    user = holds.acting_user(inst, actor)
    found = holds.list_holds(inst, user, everything=every)
    if json_out:
        output.print_json(found)
        return
    zone = inst.settings.zone
    title = f"{output.plural(len(found), 'hold')} 法律保全 ({output.zone_note(zone)})"
    table = output.titled_table(title)
    for column in COLUMNS:
        table.add_column(column)
    for h in found:
        table.add_row(
            str(h.id),
            output.text(_on(h)),
            output.text(h.reason),
            output.text(h.placed_by),
            output.when(h.placed_at, zone, seconds=False),
            output.when(h.until, zone, seconds=False) or "解除前 until released",
            _state(h),
            str(h.items),
        )
    output.console.print(table)


def _on(h: Hold) -> str:
    if h.case_number is not None:
        return f"案件 case {h.case_number}"
    if h.query is not None:
        return f"查询 query {h.query}"
    return "记录 items"


def _state(h: Hold) -> str:
    if h.released_at is not None:
        return f"已解除 released by {h.released_by}: {h.released_reason}"
    return "保全中 holding" if h.active else "已到期 lapsed"


def _done(done: HoldDone, json_out: bool, what: str) -> None:
    if json_out:
        output.print_json(done)
        return
    h = done.hold
    output.console.print(
        output.text(f"hold {h.id} {what}: {_on(h)}, {output.plural(len(done.media), 'record')}"),
        highlight=False,
    )
    for followed in done.locks:
        if followed.problem:
            output.err_console.print(
                output.text(
                    f"media {followed.media_id}: 锁定未设置 lock not set: {followed.problem}"
                ),
                markup=False,
            )


def _ids(values: Sequence[str]) -> list[int]:
    try:
        return [int(p) for v in values for p in v.split(",") if p.strip()]
    except ValueError:
        raise typer.BadParameter("media ids are numbers: 12,13", param_hint="--media") from None
