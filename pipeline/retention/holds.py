"""Legal holds (法律保全): records that must not be disposed of, whatever their retention, while
a matter (litigation, a complaint, an inspection) needs them.

A hold is placed on items by id, on a case (the records linked to it now, and those linked
later while the hold stands), or on a search query (the items it matched when placed; they
are stored, so the hold does not drift as the archive grows). It names who placed it, why,
and optionally a date it lapses (``until``); else it stands until released. A record
unlinked from a held case stays covered until the hold is released: a hold never lets go of
a record by accident.

Who: a supervisor (领导) for records of their department tree (and cases of it; a query
reaches only their tree's records), the legal office (法制审核) for any record. Placing and
releasing are a person's acts, so they need an account (``--as``, like ``evidence access``).

Every record a hold covers gets a HELD custody event (naming the hold), every record of a
released hold a HOLD_RELEASED event; then the locks follow (:mod:`pipeline.retention.locks`):
an S3 legal hold is set, and lifted only when no other hold covers the record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy import Connection

from pipeline.accounts.permissions import reach
from pipeline.accounts.users import User, UserRole, within
from pipeline.approvals.usecases import acting_user as approvals_acting_user
from pipeline.catalog import accounts as account_rows
from pipeline.catalog import cases as case_rows
from pipeline.catalog import media as media_db
from pipeline.catalog import retention as rows
from pipeline.custody import log as custody
from pipeline.errors import NotFound, PermissionDenied, RetentionError
from pipeline.instance import Instance
from pipeline.models import EventKind
from pipeline.retention import locks
from pipeline.search import run
from pipeline.search.query import parse
from pipeline.search.usecases import _category_ids  # category names, as a search reads them


class Scope:
    MEDIA = "media"
    CASE = "case"
    QUERY = "query"


@dataclass(frozen=True)
class Hold(rows.HoldRow):
    """A hold as listed: what it is on, who placed it and why, whether it holds now, and how
    many records it covers (a case hold: those covered so far)."""

    active: bool = field(kw_only=True)
    items: int = field(kw_only=True)


@dataclass(frozen=True)
class HoldDone:
    """A hold placed or released, the records it covers, and what the locks did."""

    hold: Hold
    media: tuple[int, ...]
    locks: tuple[locks.Followed, ...]


def can_hold(user: User) -> bool:
    """Whether the user may place and release holds: a supervisor or the legal office."""
    return user.enabled and user.has(UserRole.SUPERVISOR, UserRole.LEGAL_REVIEWER)


def can_list_holds(user: User) -> bool:
    """Who places holds, and archivists, who must know what they may not dispose of."""
    return can_hold(user) or (user.enabled and user.has(UserRole.ARCHIVIST))


#: The longest reason taken: a paragraph, not a file.
MAX_TEXT = 2000


def place_hold(
    instance: Instance,
    user: User,
    *,
    reason: str,
    media_ids: Sequence[int] = (),
    case: str | None = None,
    query: str | None = None,
    until: datetime | None = None,
) -> HoldDone:
    """Place a hold on ``media_ids``, on ``case`` or on what ``query`` matches now (exactly
    one of them), with a reason, until released or until ``until``."""
    _require(user, "hold")
    why = _reason("new hold", reason)
    given = [bool(media_ids), case is not None, query is not None]
    if sum(given) != 1:
        raise RetentionError(
            "new hold", "须指定记录、案件或查询之一 (give items, a case or a query)"
        )
    now = instance.clock()
    if until is not None and until <= now:
        raise RetentionError("new hold", "期限须在将来 (until must be in the future)")
    scope = Scope.MEDIA if media_ids else Scope.CASE if case is not None else Scope.QUERY
    text = None if query is None else query.strip()
    with instance.catalog.begin() as conn:
        covered = _covered(conn, instance, user, media_ids, case, text)
        if not covered and scope != Scope.CASE:
            raise RetentionError("new hold", "未匹配任何记录 (it covers no record)")
        hold_id = rows.add_hold(
            conn,
            scope=scope,
            case_number=case,
            query=text,
            reason=why,
            placed_by=user.login,
            placed_at=now,
            until=until,
        )
        rows.add_members(conn, hold_id, covered, now)
        details: dict[str, Any] = {
            "hold": hold_id,
            "scope": scope,
            "reason": why,
            "until": None if until is None else custody.canonical_time(until),
        }
        details.update({"case": case} if case is not None else {})
        details.update({"query": text} if text is not None else {})
        _events(conn, EventKind.HELD, user.login, covered, details, now)
        placed = _hold(conn, hold_id, now)
    return HoldDone(placed, tuple(covered), locks.follow(instance, covered))


def release_hold(instance: Instance, user: User, hold_id: int, reason: str) -> HoldDone:
    """Release a hold, with a reason; each record it covered gets a HOLD_RELEASED event, and
    loses its S3 legal hold unless another hold covers it."""
    _require(user, f"hold {hold_id}")
    why = _reason(f"hold {hold_id}", reason)
    now = instance.clock()
    with instance.catalog.begin() as conn:
        found = rows.get_hold(conn, hold_id)
        if found is None:
            raise NotFound("hold", str(hold_id))
        _may_release(conn, user, found)
        if not rows.release(conn, hold_id, user.login, why, now):
            raise RetentionError(f"hold {hold_id}", "已解除 (released already)")
        covered = rows.members(conn, hold_id)
        details = {"hold": hold_id, "scope": found.scope, "reason": why}
        _events(conn, EventKind.HOLD_RELEASED, user.login, covered, details, now)
        released = _hold(conn, hold_id, now)
    return HoldDone(released, tuple(covered), locks.follow(instance, covered))


def list_holds(instance: Instance, user: User, *, everything: bool = False) -> tuple[Hold, ...]:
    """Unreleased holds (every hold, released ones too, when ``everything``), newest first."""
    if not can_list_holds(user):
        _refuse(user, "holds")
    now = instance.clock()
    with instance.catalog.read() as conn:
        found = rows.holds(conn, everything=everything)
        counts = rows.member_counts(conn, [h.id for h in found])
    return tuple(listed(h, counts.get(h.id, 0), now) for h in found)


def release_lapsed(instance: Instance) -> tuple[int, ...]:
    """Release every hold whose ``until`` has passed (by the ``actor`` setting, the daily
    sweep's), with HOLD_RELEASED events, and let the locks follow; the ids released."""
    now, actor = instance.clock(), instance.actor or instance.settings.actor
    done, covered = [], []
    with instance.catalog.begin() as conn:
        for h in rows.lapsed(conn, now):
            why = "期限届满 (its until date passed)"
            if rows.release(conn, h.id, actor, why, now):
                members = rows.members(conn, h.id)
                details = {"hold": h.id, "scope": h.scope, "reason": why}
                _events(conn, EventKind.HOLD_RELEASED, actor, members, details, now)
                done.append(h.id)
                covered += members
    locks.follow(instance, covered)
    return tuple(done)


def acting_user(instance: Instance, name: str | None) -> User:
    """The user ``--as`` names, as ``evidence access`` takes it."""
    return approvals_acting_user(instance, name)


# ------------------------------------------------------------------------------- helpers


def _covered(
    conn: Connection,
    instance: Instance,
    user: User,
    media_ids: Sequence[int],
    case: str | None,
    query: str | None,
) -> list[int]:
    legal = user.has(UserRole.LEGAL_REVIEWER)
    if case is not None:
        found = case_rows.get(conn, case)
        if found is None:
            raise NotFound("case", case)
        if not legal and not within(found.department, user.department):
            _refuse(user, f"case {case}")
        return [link.media_id for link in case_rows.links_of_case(conn, case)]
    if query is not None:
        parsed = _category_ids(parse(query, instance.settings.zone), instance.settings)
        selected = run.selection(conn, parsed, scope=None if legal else reach(user))
        return list(dict.fromkeys(r.id for r in conn.execute(selected)))
    ids = list(dict.fromkeys(media_ids))
    for media_id in ids:
        item = media_db.get(conn, media_id)
        if not legal:
            departments = account_rows.item_departments(conn, item.officer_id, item.id)
            if not any(within(d, user.department) for d in departments):
                _refuse(user, f"media {media_id}")
    return ids


def _may_release(conn: Connection, user: User, hold: rows.HoldRow) -> None:
    """The legal office releases any hold; a supervisor one of their tree's case, or whose
    every record is of their tree."""
    if user.has(UserRole.LEGAL_REVIEWER):
        return
    if hold.case_number is not None:
        found = case_rows.get(conn, hold.case_number)
        if found is not None and within(found.department, user.department):
            return
        _refuse(user, f"hold {hold.id}")
    for media_id in rows.members(conn, hold.id):
        item = media_db.get(conn, media_id)
        departments = account_rows.item_departments(conn, item.officer_id, item.id)
        if not any(within(d, user.department) for d in departments):
            _refuse(user, f"hold {hold.id}")


def _events(
    conn: Connection,
    kind: EventKind,
    actor: str,
    media_ids: Sequence[int],
    details: dict[str, Any],
    now: datetime,
) -> None:
    for media_id in media_ids:
        custody.append(
            conn,
            kind,
            actor,
            media_id=media_id,
            subject=f"hold {details['hold']}",
            details=details,
            now=now,
        )


def _hold(conn: Connection, hold_id: int, now: datetime) -> Hold:
    found = rows.get_hold(conn, hold_id)
    assert found is not None
    return listed(found, len(rows.members(conn, hold_id)), now)


def listed(h: rows.HoldRow, items: int, now: datetime) -> Hold:
    return Hold(**vars(h), active=h.holds_at(now), items=items)


def _require(user: User, subject: str) -> None:
    if not can_hold(user):
        _refuse(user, subject)


def _refuse(user: User, subject: str) -> NoReturn:
    roles = ", ".join(f"{r.value} {r.label_zh}" for r in user.roles) or "none"
    raise PermissionDenied(
        subject,
        f"法律保全由领导或法制审核办理 (holds are placed and released by a supervisor or the "
        f"legal office; your roles: {roles})",
    )


def _reason(subject: str, reason: str | None) -> str:
    why = (reason or "").strip()
    if len(why) < 2:
        raise RetentionError(subject, "须说明理由 (a reason is required)")
    return why[:MAX_TEXT]
