"""`evidence retention …`: the disposal plan and forecast, the retention sweep's candidates,
and disposal by approved request (销毁审批): request, approve, refuse, undo, dispose.

Requests, decisions and undos act as the user `--as` names (a login, or the officer id of one
user), as `evidence access` does; the rules are config/retention.toml (retention.rules_file),
the grace period retention.grace_days. docs/retention.md says the whole of it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from interfaces import common, output
from interfaces.common import JsonOpt
from pipeline.approvals.usecases import acting_user
from pipeline.retention import disposal, plan, sweep
from pipeline.retention import disposal_removal as removal
from pipeline.retention.disposal_requests import (
    DisposalListing,
    DisposalRequest,
    DisposalRun,
    ItemState,
    Sweep,
)
from pipeline.retention.plan import Plan, readable_bytes

app = typer.Typer(
    help="Retention and disposal (保存期限与销毁): plan, candidates, requests.",
    no_args_is_help=True,
)

AsOpt = Annotated[
    str | None,
    typer.Option("--as", help="Who acts: a user's login, or the officer id of one user."),
]
IdArg = Annotated[int, typer.Argument(metavar="ID", help="The disposal request's id.", min=1)]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="retention")
    app.command("plan")(retention_plan)
    app.command("sweep")(retention_sweep)
    app.command("candidates")(retention_candidates)
    app.command("requests")(retention_requests)
    app.command("request")(retention_request)
    app.command("approve")(retention_approve)
    app.command("refuse")(retention_refuse)
    app.command("undo")(retention_undo)
    app.command("dispose")(retention_dispose)


# ----------------------------------------------------------------------------- the plan


def retention_plan(
    until: Annotated[
        str | None,
        typer.Option("--until", help="Up to when (local: 2027-06, 2027-06-30); default 12 months."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """What would be disposed of when (bytes per retention category and month), and a
    storage forecast for the next 12 months from the current intake rate. Reads only:
    nothing is listed, requested or disposed.

    Example: evidence retention plan --until 2027-06
    """
    inst = common.instance()
    found = plan.retention_plan(inst, until=common.local_until(inst.settings, until))
    if json_out:
        output.print_json(found)
        return
    _print_plan(found)


def _print_plan(p: Plan) -> None:
    zone = common.settings().zone
    size = readable_bytes
    output.console.print(
        output.text(
            f"保存期限已满、待申请销毁 due now: {p.due_items} items, {size(p.due_bytes)}; "
            f"永久保存 permanent: {p.permanent_items} items, {size(p.permanent_bytes)}; "
            f"法律保全 held: {p.held_items} items, {size(p.held_bytes)}"
        )
    )
    table = output.titled_table(
        f"到期 going, {output.when(p.now, zone, seconds=False)} – "
        f"{output.when(p.until, zone, seconds=False)}, {output.zone_note(zone)}"
    )
    for col in ("month", "category", "items", "bytes"):
        table.add_column(
            col, overflow="fold", justify="right" if col in ("items", "bytes") else "left"
        )
    for g in p.going:
        table.add_row(g.month, output.text(g.category), str(g.items), size(g.bytes))
    output.console.print(table)
    forecast = output.titled_table(
        f"存储预测 forecast: stored now {size(p.stored_bytes)}, intake "
        f"{size(p.intake_per_day)}/day (last {p.intake_days} days), kept for good "
        f"{p.kept_share:.0%} of what is archived"
    )
    for col in ("month from", "intake", "freed", "stored at end"):
        forecast.add_column(col, justify="left" if col == "month from" else "right")
    for m in p.forecast:  # months from now: each starts on the day and time of ``now``
        start = output.when(m.start, zone, seconds=False)
        forecast.add_row(start, size(m.intake), size(m.freed), size(m.stored))
    output.console.print(forecast)


# ------------------------------------------------------------------------- candidates


def retention_sweep(json_out: JsonOpt = False) -> None:
    """List the disposal candidates now and record them as a sweep (what the daily
    retention-sweep flow does first); a listing, not a disposal.

    Example: evidence retention sweep
    """
    inst = common.instance()
    _print_sweep(sweep.list_candidates(inst), json_out)


def retention_candidates(
    sweep_id: Annotated[
        int | None, typer.Argument(metavar="[SWEEP]", help="A sweep's id; default the latest.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """The candidates a sweep listed.

    Example: evidence retention candidates 12 --json
    """
    inst = common.instance()
    _print_sweep(sweep.show_sweep(inst, sweep_id), json_out)


def _print_sweep(found: Sweep, json_out: bool) -> None:
    if json_out:
        output.print_json(found)
        return
    zone = common.settings().zone
    table = output.titled_table(
        f"sweep {found.id} at {output.when(found.at, zone, seconds=False)}: "
        f"{output.plural(len(found.candidates), 'candidate')}, {readable_bytes(found.bytes)}, "
        f"{output.zone_note(zone)}"
    )
    for col in ("media", "kept until", "bytes", "why"):
        table.add_column(col, overflow="fold")
    for c in found.candidates:
        table.add_row(
            str(c.media_id),
            output.when(c.until, zone, seconds=False),
            readable_bytes(c.size),
            output.text("; ".join(c.reasons)),
        )
    output.console.print(table)


# --------------------------------------------------------------------------- requests


def retention_requests(
    mine: common.MineOpt = False,
    waiting: common.WaitingOpt = False,
    every: common.EveryOpt = False,
    actor: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List disposal requests, newest first, with their items.

    Example: evidence retention requests --waiting --as wang.ju
    """
    listing = DisposalListing(common.listing(mine, waiting, every))
    inst = common.instance()
    user = acting_user(inst, actor)
    found = list(disposal.list_disposals(inst, user, listing))
    _print(found, json_out, title=listing.label_zh)


def retention_request(
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")],
    media: Annotated[
        str | None, typer.Option("--media", help="Media ids, comma-separated: 12,13.")
    ] = None,
    sweep_id: Annotated[
        int | None, typer.Option("--sweep", min=1, help="The candidates of this sweep.")
    ] = None,
    actor: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Ask for approval to dispose of items, or of the candidates of a sweep (an archivist).

    Example: evidence retention request --sweep 12 --reason "保存期满，无案件关联" --as zhang.wei
    """
    ids = _ids(media)
    if bool(ids) == (sweep_id is not None):
        raise typer.BadParameter("give --media or --sweep, not both, not neither")
    inst = common.instance()
    user = acting_user(inst, actor)
    asked = disposal.request_disposal(
        inst.acting(user.login), user, reason=reason, media_ids=ids, sweep=sweep_id
    )
    _print([asked], json_out, single=True)


def retention_approve(
    request: IdArg,
    comment: Annotated[str, typer.Option("--comment", help="The approval's note (recorded).")],
    actor: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Approve a waiting request (a supervisor of the items' unit, or the legal office):
    its items wait out the grace period (retention.grace_days), then go.

    Example: evidence retention approve 3 --comment "同意销毁" --as wang.ju
    """
    inst = common.instance()
    user = acting_user(inst, actor)
    done = disposal.approve_disposal(inst.acting(user.login), user, request, comment)
    _print([done], json_out, single=True)


def retention_refuse(
    request: IdArg,
    comment: Annotated[str, typer.Option("--comment", help="Why not (required; recorded).")],
    actor: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Refuse a waiting request, with a comment: its items stay.

    Example: evidence retention refuse 3 --comment "涉访事项，暂缓" --as wang.ju
    """
    inst = common.instance()
    user = acting_user(inst, actor)
    done = disposal.refuse_disposal(inst.acting(user.login), user, request, comment)
    _print([done], json_out, single=True)


def retention_undo(
    request: IdArg,
    reason: Annotated[str, typer.Option("--reason", help="Why (required; recorded).")],
    media: Annotated[
        str | None, typer.Option("--media", help="Only these items: 12,13 (default: all).")
    ] = None,
    actor: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Take approved items back within the grace period: they are kept.

    Example: evidence retention undo 3 --media 12 --reason "当事人已申请复议" --as zhang.wei
    """
    inst = common.instance()
    user = acting_user(inst, actor)
    done = disposal.undo_disposal(
        inst.acting(user.login), user, request, reason=reason, media_ids=_ids(media)
    )
    _print([done], json_out, single=True)


def retention_dispose(
    due: Annotated[
        bool, typer.Option("--due", help="Approved items past their grace period (required).")
    ] = False,
    actor: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Remove the originals and derivatives of approved items past their grace period,
    each checked once more (what the daily retention-sweep flow does second). Goes on past
    an item the store refuses, and reports it; exits 1 when one was refused.

    Example: evidence retention dispose --due
    """
    if not due:
        raise typer.BadParameter("only --due: disposal takes what approved requests let go")
    inst, _ = common.instance_as(actor)
    run = removal.dispose_due(inst)
    if json_out:
        output.print_json(run)
    else:
        _print_run(run)
    if run.count(ItemState.STORE_REFUSED) or run.count(ItemState.APPROVED):
        raise typer.Exit(1)


def _print_run(run: DisposalRun) -> None:
    table = output.titled_table(
        f"{output.plural(run.count(ItemState.DISPOSED), 'item')} disposed, "
        f"{readable_bytes(run.freed)} freed"
    )
    for col in ("request", "media", "outcome", "bytes", "note"):
        table.add_column(col, overflow="fold")
    for r in run.removals:
        table.add_row(
            str(r.request_id),
            str(r.media_id),
            f"{r.state.value} {r.state.label_zh}",
            readable_bytes(r.size),
            output.text(r.note or ""),
        )
    output.console.print(table)
    if run.derived_left:
        output.console.print(
            output.text(
                f"衍生文件待删除 derived objects left for the next run: {len(run.derived_left)}"
            )
        )


def _ids(text: str | None) -> list[int]:
    if text is None:
        return []
    try:
        return [int(part) for part in text.replace("，", ",").split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter("media ids are numbers: 12,13", param_hint="--media") from None


def _print(
    found: list[DisposalRequest], json_out: bool, *, single: bool = False, title: str = ""
) -> None:
    if json_out:
        output.print_json(found[0] if single else found)
        return
    zone = common.settings().zone
    table = output.titled_table(
        f"{title + ' ' if title else ''}{output.plural(len(found), 'request')}, "
        f"{output.zone_note(zone)}"
    )
    for col in ("id", "by", "reason", "items", "bytes", "status", "decided", "grace until"):
        table.add_column(col, overflow="fold")
    for r in found:
        decided = f"{r.decided_by} {r.comment or ''}".strip() if r.decided_by else ""
        table.add_row(
            str(r.id),
            output.text(r.requested_by),
            output.text(r.reason + (f" (sweep {r.sweep_id})" if r.sweep_id else "")),
            output.text(_items(r)),
            readable_bytes(r.bytes),
            f"{r.state.value} {r.state.label_zh}",
            output.text(decided),
            output.when(r.grace_until, zone, seconds=False),
        )
    output.console.print(table)


def _items(r: DisposalRequest) -> str:
    """``12 approved, 13 dropped: 已关联案件…`` — each item and where it stands."""
    return "; ".join(
        f"{i.media_id} {i.state.value}" + (f": {i.note}" if i.note else "") for i in r.items
    )
