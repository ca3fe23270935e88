"""The use cases of disposal (销毁): request, approve, refuse, undo, dispose of what is due,
list and show requests. The CLI (``evidence retention``), the pages (``/retention/…``) and
the daily sweep call these.

Disposal is a workflow, never a side effect (docs/retention.md, "Disposal"):

1. an archivist asks, naming items or the candidates of a sweep, with a reason
   (DISPOSAL_REQUESTED per item);
2. a supervisor (领导) of the items' department tree or the legal office approves or refuses,
   with a comment; never the requester (DISPOSAL_APPROVED / DISPOSAL_REFUSED per item);
3. approved items wait ``retention.grace_days``; within them anyone who may decide, or the
   requester, takes items back with a reason (DISPOSAL_UNDONE);
4. after it, :func:`~pipeline.retention.disposal_removal.dispose_due` removes original and
   derivatives, and the catalog keeps a tombstone (DISPOSED).

Every item is checked again at approval and at removal: one no longer disposable (linked to a
case since, held, marked, its retention lengthened) is dropped from the request with the
reason (a DISPOSAL_REFUSED event saying ``dropped``), never removed.

The DISPOSED event, the tombstone and the media row's new status are written in one
transaction, before the original is removed, and the transaction commits only once the store
has removed it: a store that refuses (an S3 Object Lock not expired, in COMPLIANCE mode the
server refuses everyone; a local lock date not reached) rolls it back, and the refusal is
recorded instead (an ALERT event, the item ``store-refused`` with the store's answer). A crash
after the removal and before the commit leaves an approved item whose original is gone: the
next run finds it due, sees the store no longer has it, and records the disposal then
(``details.found_removed``). Derived objects (proxy, thumbnail) go after the commit; one the
store could not remove stays listed on the tombstone and the next run tries it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import Connection

from pipeline.accounts.permissions import ItemScope, can_approve, can_decide, reach, reaches
from pipeline.accounts.users import User, UserRole
from pipeline.approvals import usecases as approvals
from pipeline.catalog import disposal as rows
from pipeline.catalog import media as media_db
from pipeline.catalog.approvals import departments_of
from pipeline.errors import (
    DisposalError,
    NotFound,
    PermissionDenied,
)
from pipeline.instance import Instance
from pipeline.models import EventKind, MediaItem
from pipeline.retention import disposal_checks as checks
from pipeline.retention.derive import retention_of
from pipeline.retention.disposal_requests import (
    DisposalListing,
    DisposalRequest,
    ItemState,
    RequestState,
    Tombstone,
)
from pipeline.retention.rules import rules_of

#: The longest reason or comment taken: a paragraph, not a file.
MAX_TEXT = 2000
MIN_TEXT = 2


# ------------------------------------------------------------------------------ request


def request_disposal(
    instance: Instance,
    user: User,
    *,
    reason: str | None,
    media_ids: Sequence[int] = (),
    sweep: int | None = None,
) -> DisposalRequest:
    """Ask to dispose of the items ``media_ids``, or of the candidates sweep ``sweep``
    listed, with a reason: an archivist, for items of their department tree (or of none).
    Items no longer disposable are kept on the request as ``dropped``, with why; a request
    with no disposable item at all is refused (DisposalError)."""
    if not (user.enabled and user.has(UserRole.ARCHIVIST)):
        approvals.refuse(
            instance,
            user,
            "disposal request",
            "request-disposal",
            list(media_ids),
            "须为档案管理员 (only an archivist asks for a disposal)",
        )
    why = _text("new", reason, "销毁须说明理由 (a disposal needs a reason)")
    if bool(media_ids) == (sweep is not None):
        raise DisposalError("new", "须指定记录或一次清理之一 (name the items or one sweep)")
    now, rules = instance.clock(), rules_of(instance.settings)
    with instance.catalog.read() as conn:
        ids = _asked(conn, media_ids, sweep)
        items = [media_db.get(conn, m) for m in ids]
        closed = _outside(conn, user, items)
    if closed:
        approvals.refuse(
            instance,
            user,
            "disposal request",
            "request-disposal",
            closed,
            "无权申请销毁：记录不在本部门范围内 (outside your department tree)",
        )
    with instance.catalog.begin() as conn:
        checked = [(item, checks.why_kept(conn, rules, item, now)) for item in items]
        if all(kept for _, kept in checked):
            detail = "; ".join(f"{item.id}: {kept}" for item, kept in checked)
            raise DisposalError("new", f"无可销毁的记录 (nothing disposable): {detail}")
        request_id = rows.add_request(
            conn,
            requested_by=user.login,
            reason=why,
            sweep_id=sweep,
            items=[
                (item.id, item.size, ItemState.DROPPED if kept else ItemState.WAITING, kept)
                for item, kept in checked
            ],
            now=now,
        )
        for item, kept in checked:
            if kept is None:
                found = retention_of(conn, rules, item.id, now=now)
                details = {
                    "reason": why,
                    **checks.retention_details(found),
                    **({"sweep": sweep} if sweep is not None else {}),
                }
                checks.record(
                    conn, EventKind.DISPOSAL_REQUESTED, user.login, request_id, item, details, now
                )
        return _get(conn, request_id)


# ------------------------------------------------------------------------------ decide


def approve_disposal(
    instance: Instance, user: User, request_id: int, comment: str | None
) -> DisposalRequest:
    """Approve the waiting request ``request_id`` with a comment: a supervisor of the items'
    department tree or the legal office, never the requester (PermissionDenied, a REFUSED
    event). Each item is checked again: one no longer disposable is dropped, with why; the
    others wait ``retention.grace_days``, then
    :func:`~pipeline.retention.disposal_removal.dispose_due` removes them."""
    note = _text(str(request_id), comment, "批准须填写意见 (an approval needs a comment)")
    now, rules = instance.clock(), rules_of(instance.settings)
    asked = _decidable(instance, user, request_id, "approve-disposal")
    grace = now + timedelta(days=instance.settings.retention.grace_days)
    with instance.catalog.begin() as conn:
        if not rows.decide(
            conn,
            request_id,
            RequestState.APPROVED,
            by=user.login,
            comment=note,
            now=now,
            grace_until=grace,
        ):
            raise DisposalError(str(request_id), "已被他人处理 (decided meanwhile)")
        for entry in asked.items:
            if entry.state is not ItemState.WAITING:
                continue
            item = media_db.get(conn, entry.media_id)
            kept = checks.why_kept(conn, rules, item, now)
            if kept is not None:
                checks.drop(conn, user.login, request_id, item, kept, [ItemState.WAITING], now)
                continue
            rows.set_item(
                conn,
                request_id,
                item.id,
                ItemState.APPROVED,
                was=[ItemState.WAITING],
                by=user.login,
                now=now,
            )
            details = {
                "comment": note,
                "requested_by": asked.requested_by,
                "grace_until": grace.isoformat(),
            }
            checks.record(
                conn, EventKind.DISPOSAL_APPROVED, user.login, request_id, item, details, now
            )
        return _get(conn, request_id)


def refuse_disposal(
    instance: Instance, user: User, request_id: int, comment: str | None
) -> DisposalRequest:
    """Refuse the waiting request ``request_id`` with a comment (who may: as for approving).
    Its items stay."""
    note = _text(str(request_id), comment, "驳回须说明理由 (a refusal needs a comment)")
    now = instance.clock()
    asked = _decidable(instance, user, request_id, "refuse-disposal")
    with instance.catalog.begin() as conn:
        if not rows.decide(
            conn, request_id, RequestState.REFUSED, by=user.login, comment=note, now=now
        ):
            raise DisposalError(str(request_id), "已被他人处理 (decided meanwhile)")
        for entry in asked.items:
            if rows.set_item(
                conn,
                request_id,
                entry.media_id,
                ItemState.REFUSED,
                was=[ItemState.WAITING],
                by=user.login,
                now=now,
            ):
                item = media_db.get(conn, entry.media_id)
                details = {"comment": note, "requested_by": asked.requested_by}
                checks.record(
                    conn, EventKind.DISPOSAL_REFUSED, user.login, request_id, item, details, now
                )
        return _get(conn, request_id)


def undo_disposal(
    instance: Instance,
    user: User,
    request_id: int,
    *,
    reason: str | None,
    media_ids: Sequence[int] = (),
) -> DisposalRequest:
    """Take approved items back within the grace period (all of the request's, or
    ``media_ids``), with a reason: the requester, or anyone who may decide the request.
    After the grace period nothing can be taken back (DisposalError)."""
    why = _text(str(request_id), reason, "撤回须说明理由 (an undo needs a reason)")
    now = instance.clock()
    with instance.catalog.read() as conn:
        asked = _get(conn, request_id)
        allowed = user.login == asked.requested_by or _may_decide(conn, user, asked)
    if not (user.enabled and allowed):
        approvals.refuse(
            instance,
            user,
            f"disposal request {request_id}",
            "undo-disposal",
            list(asked.media),
            "无权撤回 (the requester or an approver undoes)",
        )
    if asked.state is not RequestState.APPROVED or not asked.in_grace(now):
        raise DisposalError(
            str(request_id), "不在宽限期内，无法撤回 (not approved, or its grace period is over)"
        )
    wanted = set(media_ids) or {i.media_id for i in asked.items}
    unknown = wanted - set(asked.media)
    if unknown:
        raise DisposalError(str(request_id), f"申请中无这些记录 (not in it): {sorted(unknown)}")
    with instance.catalog.begin() as conn:
        undone = 0
        for entry in asked.items:
            if entry.media_id not in wanted:
                continue
            if rows.set_item(
                conn,
                request_id,
                entry.media_id,
                ItemState.UNDONE,
                was=[ItemState.APPROVED],
                by=user.login,
                now=now,
                note=why,
            ):
                undone += 1
                item = media_db.get(conn, entry.media_id)
                checks.record(
                    conn,
                    EventKind.DISPOSAL_UNDONE,
                    user.login,
                    request_id,
                    item,
                    {"reason": why},
                    now,
                )
        if not undone:
            raise DisposalError(str(request_id), "无可撤回的记录 (no approved item to undo)")
        return _get(conn, request_id)


# ------------------------------------------------------------------------------- read


def list_disposals(
    instance: Instance, user: User, listing: DisposalListing = DisposalListing.MINE
) -> tuple[DisposalRequest, ...]:
    """The requests ``listing`` shows the user, newest first: their own; those waiting that
    they may decide; or every one they may see (their own and those they may decide: the
    legal office sees all)."""
    with instance.catalog.read() as conn:
        if listing is DisposalListing.MINE:
            return tuple(rows.listing(conn, requested_by=user.login))
        if listing is DisposalListing.WAITING:
            if not can_approve(user):
                return ()
            waiting = rows.listing(conn, state=RequestState.WAITING, not_by=user.login)
            return tuple(r for r in waiting if _may_decide(conn, user, r))
        found = rows.listing(conn)
        if user.has(UserRole.LEGAL_REVIEWER):
            return tuple(found)
        return tuple(
            r
            for r in found
            if user.login in (r.requested_by, r.decided_by) or _may_decide(conn, user, r)
        )


def show_disposal(instance: Instance, user: User, request_id: int) -> DisposalRequest:
    """One request, for whoever may see it in :func:`list_disposals`."""
    with instance.catalog.read() as conn:
        found = _get(conn, request_id)
        if (
            user.login in (found.requested_by, found.decided_by)
            or user.has(UserRole.LEGAL_REVIEWER)
            or _may_decide(conn, user, found)
        ):
            return found
    raise PermissionDenied(f"disposal request {request_id}", "无权查看该申请 (not yours to see)")


def waiting_disposals(instance: Instance, user: User) -> int:
    """How many disposal requests wait for this approver (the queue's badge)."""
    if not can_approve(user):
        return 0
    if user.has(UserRole.LEGAL_REVIEWER):
        with instance.catalog.read() as conn:
            return rows.count_waiting(conn, not_by=user.login)
    return len(list_disposals(instance, user, DisposalListing.WAITING))


def tombstone_of(instance: Instance, media_id: int) -> Tombstone | None:
    """The tombstone of a disposed item (the item page shows it), None for any other."""
    with instance.catalog.read() as conn:
        return rows.tombstone(conn, media_id)


# ------------------------------------------------------------------------------ helpers


def _asked(conn: Connection, media_ids: Sequence[int], sweep: int | None) -> list[int]:
    if sweep is None:
        return sorted(set(media_ids))
    found = rows.get_sweep(conn, sweep)
    if found is None:
        raise NotFound("retention sweep", str(sweep))
    if not found.candidates:
        raise DisposalError("new", f"清理 {sweep} 无待销毁记录 (sweep {sweep} listed none)")
    return sorted(c.media_id for c in found.candidates)


def _outside(conn: Connection, user: User, items: Sequence[MediaItem]) -> list[int]:
    """The items outside the archivist's department tree (an item of no department, an
    unattributed recording of no case, is in nobody's tree: any archivist may ask)."""
    departments = departments_of(conn, (i.id for i in items))
    scope = reach(user)
    return [
        i.id
        for i in items
        if departments[i.id]
        and not reaches(scope, ItemScope(i.officer_id, tuple(sorted(departments[i.id]))))
    ]


def _may_decide(conn: Connection, user: User, asked: DisposalRequest) -> bool:
    departments = departments_of(conn, asked.media)
    return can_decide(user, asked.requested_by, [departments.get(m, set()) for m in asked.media])


def _decidable(instance: Instance, user: User, request_id: int, action: str) -> DisposalRequest:
    with instance.catalog.read() as conn:
        asked = _get(conn, request_id)
        allowed = _may_decide(conn, user, asked)
    subject = f"disposal request {request_id}"
    if user.login == asked.requested_by:
        approvals.refuse(
            instance,
            user,
            subject,
            action,
            list(asked.media),
            "不能审批本人的申请 (one cannot decide one's own request)",
        )
    if not allowed:
        approvals.refuse(
            instance,
            user,
            subject,
            action,
            list(asked.media),
            "无权审批：须为记录所属部门的领导或法制审核 (a supervisor of the items' "
            "department tree, or the legal office)",
        )
    if asked.state is not RequestState.WAITING:
        raise DisposalError(
            str(request_id), f"已处理：{asked.state.label_zh} (already {asked.state.value})"
        )
    return asked


def _get(conn: Connection, request_id: int) -> DisposalRequest:
    found = rows.get_request(conn, request_id)
    if found is None:
        raise NotFound("disposal request", str(request_id))
    return found


def _text(request: str, text: str | None, missing: str) -> str:
    found = (text or "").strip()
    if len(found) < MIN_TEXT:
        raise DisposalError(request, f"{missing}，至少 {MIN_TEXT} 个字")
    if len(found) > MAX_TEXT:
        raise DisposalError(request, f"至多 {MAX_TEXT} 个字 (at most {MAX_TEXT} characters)")
    return found
