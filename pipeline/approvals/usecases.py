"""The use cases of approvals (调阅审批): request access, grant it, refuse it, list requests,
count those waiting for an approver. The CLI (``evidence access``), the pages and the API
(``/api/v1/access/``) call these with the same user.

Each step is custody events in the step's own transaction, one per item asked for (so that
an item's history tells who asked to see it, who allowed it and until when):
ACCESS_REQUESTED, ACCESS_GRANTED, ACCESS_DENIED, each naming the request (``request``).
A use of a grant is the VIEWED or EXPORTED event of the access, naming it (``grant``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import Connection

from pipeline.accounts.permissions import can_approve, can_decide, can_search, require
from pipeline.accounts.usecases import person_acting, reason_given
from pipeline.accounts.users import User, UserRole
from pipeline.approvals import enforce
from pipeline.approvals.policy import Action, policy_of
from pipeline.approvals.requests import AccessRequest, Listing, State, Status
from pipeline.catalog import accounts as account_rows
from pipeline.catalog import approvals as rows
from pipeline.catalog import media as media_db
from pipeline.custody import log as custody
from pipeline.custody.access import case_media
from pipeline.errors import AccountError, ApprovalError, NotFound, PermissionDenied
from pipeline.instance import Instance
from pipeline.models import EventKind, MediaItem

#: The longest reason or comment taken: a paragraph, not a file.
MAX_TEXT = 2000
MIN_COMMENT = 2


def acting_user(instance: Instance, name: str | None) -> User:
    """The user ``--as`` names (``accounts.person_acting``): requests, grants and refusals
    are a person's acts, so ``evidence access`` needs an account; AccountError otherwise."""
    login = person_acting(instance, name)
    with instance.catalog.read() as conn:
        user = account_rows.get(conn, login) if login else None
    if user is None or not user.enabled:
        raise AccountError(
            name or "?",
            "须以已启用的用户身份操作 (--as names no user: `evidence access` acts as a user "
            "of the web application; `evidence users add` makes one)",
        )
    return user


def request_access(
    instance: Instance,
    user: User,
    *,
    action: Action,
    reason: str | None,
    hours: int,
    media_ids: Sequence[int] = (),
    case: str | None = None,
) -> AccessRequest:
    """Ask to do ``action`` to the items ``media_ids``, or to the records linked to ``case``
    now, for ``hours``, with a reason. Refused (PermissionDenied, a REFUSED event) for an
    item the user could not come to even with a grant: one of their own department that
    their roles keep closed."""
    require(user, can_search, "access request")  # a role that views evidence asks
    why = _text("new", reason_given("access request", reason))
    limit = instance.settings.approvals.max_hours
    if not 1 <= hours <= limit:
        raise ApprovalError("new", f"时长须为 1–{limit} 小时 (hours from 1 to {limit})")
    if bool(media_ids) == (case is not None):
        raise ApprovalError("new", "须指定记录或案件之一 (name the items or one case)")
    policy, now = policy_of(instance.settings), instance.clock()
    with instance.catalog.read() as conn:
        items = _items(conn, media_ids, case)
        closed = [
            item
            for item in items
            if not enforce.reachable(
                user, enforce.permits(conn, policy, user, item, [action], now)[action]
            )
        ]
    if closed:
        refuse(instance, user, "access request", "request-access", [i.id for i in closed])
    with instance.catalog.begin() as conn:
        asked = rows.add(
            conn,
            requested_by=user.login,
            action=action,
            media_ids=[i.id for i in items],
            case=case,
            reason=why,
            hours=hours,
            now=now,
        )
        details = {"action": action.value, "reason": why, "hours": hours,
                   "media": list(asked.media), **({"case": case} if case else {})}  # fmt: skip
        _record(conn, EventKind.ACCESS_REQUESTED, user, asked, items, details, now)
    return asked


def grant_access(
    instance: Instance,
    user: User,
    request_id: int,
    *,
    hours: int | None = None,
    comment: str | None = None,
) -> AccessRequest:
    """Grant the waiting request ``request_id`` from now for the hours asked, or fewer: a
    supervisor of the items' department tree or the legal office, never the requester
    (PermissionDenied, a REFUSED event). The grant covers exactly its items and action."""
    now = instance.clock()
    asked = _decidable(instance, user, request_id, "grant", now)
    given = asked.hours if hours is None else hours
    if not 1 <= given <= asked.hours:
        raise ApprovalError(
            str(request_id), f"批准时长须为 1–{asked.hours} 小时 (hours from 1 to those asked)"
        )
    note = _text(str(request_id), (comment or "").strip()) or None
    expires = now + timedelta(hours=given)
    with instance.catalog.begin() as conn:
        if not rows.decide(
            conn, request_id, State.GRANTED, by=user.login, comment=note, now=now,
            hours=given, expires_at=expires,
        ):  # fmt: skip
            raise ApprovalError(str(request_id), "已被他人处理 (decided meanwhile)")
        decided = _get(conn, request_id, now)
        details = {"action": asked.action.value, "requested_by": asked.requested_by,
                   "hours": given, "expires_at": expires.isoformat(),
                   **({"comment": note} if note else {})}  # fmt: skip
        items = [media_db.get(conn, m) for m in asked.media]
        _record(conn, EventKind.ACCESS_GRANTED, user, decided, items, details, now)
    return decided


def refuse_access(
    instance: Instance, user: User, request_id: int, comment: str | None
) -> AccessRequest:
    """Refuse the waiting request ``request_id`` with a comment (who may: as for granting).
    The items stay as closed as they were."""
    now = instance.clock()
    note = _text(str(request_id), (comment or "").strip())
    if len(note) < MIN_COMMENT:
        raise ApprovalError(
            str(request_id),
            f"驳回须说明理由，至少 {MIN_COMMENT} 个字 (a refusal needs a comment)",
        )
    asked = _decidable(instance, user, request_id, "refuse", now)
    with instance.catalog.begin() as conn:
        if not rows.decide(conn, request_id, State.REFUSED, by=user.login, comment=note, now=now):
            raise ApprovalError(str(request_id), "已被他人处理 (decided meanwhile)")
        decided = _get(conn, request_id, now)
        details = {"action": asked.action.value, "requested_by": asked.requested_by,
                   "comment": note}  # fmt: skip
        items = [media_db.get(conn, m) for m in asked.media]
        _record(conn, EventKind.ACCESS_DENIED, user, decided, items, details, now)
    return decided


def list_requests(
    instance: Instance, user: User, listing: Listing = Listing.MINE
) -> tuple[AccessRequest, ...]:
    """The requests ``listing`` shows the user, newest first: their own; those waiting that
    they may decide; or every one they may see (their own, and those in their reach as an
    approver: the legal office sees all)."""
    now = instance.clock()
    with instance.catalog.read() as conn:
        if listing is Listing.MINE:
            return tuple(rows.listing(conn, now, requested_by=user.login))
        if listing is Listing.WAITING:
            if not can_approve(user):
                return ()
            waiting = rows.listing(conn, now, state=State.WAITING, not_by=user.login)
            return tuple(_in_reach(conn, user, waiting))
        found = rows.listing(conn, now)
        if user.has(UserRole.LEGAL_REVIEWER):
            return tuple(found)
        theirs = {r.id for r in found if user.login in (r.requested_by, r.decided_by)}
        reached = {r.id for r in _in_reach(conn, user, found)}
        return tuple(r for r in found if r.id in theirs | reached)


def show_request(instance: Instance, user: User, request_id: int) -> AccessRequest:
    """One request, for its requester and whoever may see it in :func:`list_requests`."""
    now = instance.clock()
    with instance.catalog.read() as conn:
        found = _get(conn, request_id, now)
        mine = user.login in (found.requested_by, found.decided_by)
        if mine or user.has(UserRole.LEGAL_REVIEWER) or _in_reach(conn, user, [found]):
            return found
    raise PermissionDenied(f"access request {request_id}", "无权查看该申请 (not yours to see)")


def waiting_count(instance: Instance, user: User) -> int:
    """How many requests wait for this approver (the header's badge): 0 for a user who
    approves nothing; one COUNT for the legal office."""
    if not can_approve(user):
        return 0
    if user.has(UserRole.LEGAL_REVIEWER):
        with instance.catalog.read() as conn:
            return rows.count(conn, state=State.WAITING, not_by=user.login)
    return len(list_requests(instance, user, Listing.WAITING))


# ------------------------------------------------------------------------------ helpers


def _items(conn: Connection, media_ids: Sequence[int], case: str | None) -> list[MediaItem]:
    ids = case_media(conn, case) if case is not None else list(media_ids)
    if not ids:
        raise ApprovalError("new", f"案件 {case} 无关联记录 (case {case} has no linked records)")
    return [media_db.get(conn, m) for m in sorted(set(ids))]


def _get(conn: Connection, request_id: int, now: datetime) -> AccessRequest:
    found = rows.get(conn, request_id, now)
    if found is None:
        raise NotFound("access request", str(request_id))
    return found


def _in_reach(conn: Connection, user: User, found: Iterable[AccessRequest]) -> list[AccessRequest]:
    """The requests ``user`` may decide by their roles and department (their own left out)."""
    found = list(found)
    departments = rows.departments_of(conn, (m for r in found for m in r.media))
    return [
        r
        for r in found
        if can_decide(user, r.requested_by, [departments.get(m, set()) for m in r.media])
    ]


def _decidable(
    instance: Instance, user: User, request_id: int, action: str, now: datetime
) -> AccessRequest:
    """The waiting request ``request_id`` if ``user`` may decide it; refused (a REFUSED
    event) for the requester and for one outside the items' department tree."""
    with instance.catalog.read() as conn:
        asked = _get(conn, request_id, now)
        allowed = bool(_in_reach(conn, user, [asked]))
    subject = f"access request {request_id}"
    if user.login == asked.requested_by:
        refuse(instance, user, subject, action, list(asked.media),
               "不能审批本人的申请 (one cannot decide one's own request)")  # fmt: skip
    if not allowed:
        refuse(instance, user, subject, action, list(asked.media),
               "无权审批：须为记录所属部门的领导或法制审核 (a supervisor of the items' "
               "department tree, or the legal office)")  # fmt: skip
    if asked.status is not Status.WAITING:
        raise ApprovalError(
            str(request_id), f"已处理：{asked.status.label_zh} (already {asked.status.value})"
        )
    return asked


def refuse(
    instance: Instance,
    user: User,
    subject: str,
    action: str,
    media_ids: list[int],
    message: str = "无权申请调阅这些记录 (outside your roles and department, and no approval "
    "can open them)",
) -> NoReturn:
    """A REFUSED event (who, their roles and department, what they tried on which items),
    then PermissionDenied: the refusal of every approval workflow (access, disposal)."""
    with instance.catalog.begin() as conn:
        custody.append(
            conn,
            EventKind.REFUSED,
            user.login,
            subject=subject,
            details={
                "action": action,
                "media": media_ids,
                "roles": [r.value for r in user.roles],
                "department": user.department,
            },
            now=instance.clock(),
        )
    raise PermissionDenied(subject, message)


def _record(
    conn: Connection,
    kind: EventKind,
    user: User,
    asked: AccessRequest,
    items: Sequence[MediaItem],
    details: Mapping[str, Any],
    now: datetime,
) -> None:
    for item in items:
        custody.append(
            conn,
            kind,
            user.login,
            media_id=item.id,
            station_id=item.station_id,
            subject=f"access request {asked.id}",
            details={"request": asked.id, **details},
            now=now,
        )


def _text(request: str, text: str) -> str:
    if len(text) > MAX_TEXT:
        raise ApprovalError(request, f"至多 {MAX_TEXT} 个字 (at most {MAX_TEXT} characters)")
    return text
