"""`evidence access …`: approval of viewings, copies and exports (调阅审批): request, grant,
refuse, list. Each acts as the user `--as` names (a login, or the officer id of one user);
the policy saying what needs approval is config/access-policy.toml (approvals.policy_file).
"""

from __future__ import annotations

from typing import Annotated

import typer

from interfaces import common, output
from interfaces.common import JsonOpt
from pipeline.approvals import usecases
from pipeline.approvals.policy import Action
from pipeline.approvals.requests import AccessRequest, Listing

app = typer.Typer(help="Approval of viewings, copies and exports (调阅审批).", no_args_is_help=True)

AsOpt = Annotated[
    str | None,
    typer.Option("--as", help="Who acts: a user's login, or the officer id of one user."),
]
IdArg = Annotated[int, typer.Argument(metavar="ID", help="The request's id.", min=1)]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="access")
    app.command("request")(access_request)
    app.command("grant")(access_grant)
    app.command("refuse")(access_refuse)
    app.command("list")(access_list)


def access_request(
    action: Annotated[Action, typer.Option("--action", help="What to do to the items.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")],
    media: Annotated[
        str | None, typer.Option("--media", help="Media ids, comma-separated: 12,13.")
    ] = None,
    case: Annotated[
        str | None, typer.Option("--case", help="A case: its records as linked now.")
    ] = None,
    hours: Annotated[
        int, typer.Option("--hours", min=1, help="How long the grant should last.")
    ] = 24,
    actor: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Ask for approval to view, copy or export items, or a case's records.

    Example: evidence access request --media 12,13 --action download-original \
        --reason "移送法院 2026-0113" --hours 24 --as zhang.wei
    """
    ids = _ids(media)
    if bool(ids) == (case is not None):
        raise typer.BadParameter("give --media or --case, not both, not neither")
    inst = common.instance()
    user = usecases.acting_user(inst, actor)
    asked = usecases.request_access(
        inst.acting(user.login),
        user,
        action=action,
        reason=reason,
        hours=hours,
        media_ids=ids,
        case=case,
    )
    _print([asked], json_out, single=True)


def access_grant(
    request: IdArg,
    hours: Annotated[
        int | None, typer.Option("--hours", min=1, help="Fewer hours than asked.")
    ] = None,
    comment: Annotated[str | None, typer.Option("--comment", help="A note (recorded).")] = None,
    actor: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Grant a waiting request, from now, for the hours asked or fewer.

    Example: evidence access grant 7 --hours 2 --comment "限当日" --as wang.ju
    """
    inst = common.instance()
    user = usecases.acting_user(inst, actor)
    done = usecases.grant_access(
        inst.acting(user.login), user, request, hours=hours, comment=comment
    )
    _print([done], json_out, single=True)


def access_refuse(
    request: IdArg,
    comment: Annotated[str, typer.Option("--comment", help="Why not (required; recorded).")],
    actor: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Refuse a waiting request, with a comment.

    Example: evidence access refuse 7 --comment "事由不充分" --as wang.ju
    """
    inst = common.instance()
    user = usecases.acting_user(inst, actor)
    done = usecases.refuse_access(inst.acting(user.login), user, request, comment)
    _print([done], json_out, single=True)


def access_list(
    mine: common.MineOpt = False,
    waiting: common.WaitingOpt = False,
    every: common.EveryOpt = False,
    actor: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List access requests, newest first; --json is the JSON of /api/v1/access/requests.

    Example: evidence access list --waiting --as wang.ju
    """
    listing = Listing(common.listing(mine, waiting, every))
    inst = common.instance()
    user = usecases.acting_user(inst, actor)
    _print(list(usecases.list_requests(inst, user, listing)), json_out, title=listing.label_zh)


def _ids(text: str | None) -> list[int]:
    if text is None:
        return []
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter("media ids are numbers: 12,13", param_hint="--media") from None


def _print(
    found: list[AccessRequest], json_out: bool, *, single: bool = False, title: str = ""
) -> None:
    if json_out:
        output.print_json(found[0] if single else found)
        return
    zone = common.settings().zone
    table = output.titled_table(
        f"{title + ' ' if title else ''}{output.plural(len(found), 'request')}, "
        f"{output.zone_note(zone)}"
    )
    for col in ("id", "by", "action", "items", "reason", "hours", "status", "decided", "until"):
        table.add_column(col, overflow="fold")
    for r in found:
        items = ",".join(str(m) for m in r.media) + (f" (case {r.case})" if r.case else "")
        decided = f"{r.decided_by} {r.comment or ''}".strip() if r.decided_by else ""
        table.add_row(
            str(r.id),
            output.text(r.requested_by),
            f"{r.action.value} {r.action.label_zh}",
            output.text(items),
            output.text(r.reason),
            str(r.granted_hours or r.hours),
            f"{r.status.value} {r.status.label_zh}",
            output.text(decided),
            output.when(r.expires_at, zone, seconds=False),
        )
    output.console.print(table)
