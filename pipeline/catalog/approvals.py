"""Rows of access approvals (调阅审批, migration 0010): requests, their decisions, the grants
that cover an access now, and what the policy reads of an item (its departments, the
categories of its cases, whether one of them is sealed)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update

from pipeline.approvals.policy import Action
from pipeline.approvals.requests import AccessRequest, State, status_at
from pipeline.catalog.accounts import item_departments
from pipeline.catalog.schema import access_requests, cases, links, media, officers


def _request(row: Any, now: datetime) -> AccessRequest:
    return AccessRequest(
        id=row.id,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        action=Action(row.action),
        media=tuple(int(m) for m in row.media),
        case=row.case_number,
        reason=row.reason,
        hours=row.hours,
        status=status_at(State(row.state), row.expires_at, now),
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        comment=row.comment,
        granted_hours=row.granted_hours,
        expires_at=row.expires_at,
    )


def add(
    conn: Connection,
    *,
    requested_by: str,
    action: Action,
    media_ids: Iterable[int],
    case: str | None,
    reason: str,
    hours: int,
    now: datetime,
) -> AccessRequest:
    values = {
        "requested_by": requested_by,
        "requested_at": now,
        "action": action.value,
        "media": sorted(set(media_ids)),
        "case_number": case,
        "reason": reason,
        "hours": hours,
        "state": State.WAITING.value,
    }
    new_id = conn.execute(insert(access_requests).values(values)).inserted_primary_key
    assert new_id is not None
    found = get(conn, int(new_id[0]), now)
    assert found is not None
    return found


def get(conn: Connection, request_id: int, now: datetime) -> AccessRequest | None:
    row = conn.execute(
        select(access_requests).where(access_requests.c.id == request_id)
    ).one_or_none()
    return None if row is None else _request(row, now)


def decide(
    conn: Connection,
    request_id: int,
    state: State,
    *,
    by: str,
    comment: str | None,
    now: datetime,
    hours: int | None = None,
    expires_at: datetime | None = None,
) -> bool:
    """Record the decision on a waiting request; False when it was no longer waiting (decided
    meanwhile by someone else): a request is decided once."""
    done = conn.execute(
        update(access_requests)
        .where(
            access_requests.c.id == request_id,
            access_requests.c.state == State.WAITING.value,
        )
        .values(
            state=state.value,
            decided_by=by,
            decided_at=now,
            comment=comment,
            granted_hours=hours,
            expires_at=expires_at,
        )
    )
    return done.rowcount == 1


def listing(
    conn: Connection,
    now: datetime,
    *,
    requested_by: str | None = None,
    not_by: str | None = None,
    state: State | None = None,
    limit: int = 500,
) -> list[AccessRequest]:
    """Requests, newest first: of one requester, or of everyone but one, in one state."""
    query = select(access_requests)
    if requested_by is not None:
        query = query.where(access_requests.c.requested_by == requested_by)
    if not_by is not None:
        query = query.where(access_requests.c.requested_by != not_by)
    if state is not None:
        query = query.where(access_requests.c.state == state.value)
    query = query.order_by(access_requests.c.id.desc()).limit(limit)
    return [_request(row, now) for row in conn.execute(query)]


def count(conn: Connection, *, state: State, not_by: str) -> int:
    query = (
        select(func.count())
        .select_from(access_requests)
        .where(access_requests.c.state == state.value, access_requests.c.requested_by != not_by)
    )
    return int(conn.execute(query).scalar_one())


def covering(
    conn: Connection, login: str, media_id: int, action: Action, now: datetime
) -> list[int]:
    """The ids of the grants that cover ``login`` doing ``action`` to ``media_id`` at ``now``,
    newest first. The items are a JSON list: the user's live grants of that action are few,
    and are read and looked into here."""
    query = (
        select(access_requests.c.id, access_requests.c.media)
        .where(
            access_requests.c.requested_by == login,
            access_requests.c.action == action.value,
            access_requests.c.state == State.GRANTED.value,
            access_requests.c.decided_at <= now,
            access_requests.c.expires_at > now,
        )
        .order_by(access_requests.c.id.desc())
    )
    return [row.id for row in conn.execute(query) if media_id in row.media]


@dataclass(frozen=True)
class ItemRecord:
    """What the access policy reads of an item: its departments (its officer's and those of
    its cases), the categories of the cases it is linked to, and whether one is sealed."""

    departments: tuple[str, ...]
    categories: frozenset[str]
    sealed: bool


def item_record(conn: Connection, officer_id: str | None, media_id: int) -> ItemRecord:
    linked = (
        select(cases.c.category, cases.c.archived_at)
        .join(links, links.c.case_number == cases.c.number)
        .where(links.c.media_id == media_id, links.c.removed_at.is_(None))
    )
    rows = conn.execute(linked).all()
    return ItemRecord(
        item_departments(conn, officer_id, media_id),
        frozenset(r.category for r in rows),
        any(r.archived_at is not None for r in rows),
    )


def departments_of(conn: Connection, media_ids: Iterable[int]) -> dict[int, set[str]]:
    """The departments of each item (its officer's, its cases'), in two queries: what an
    approver's department tree must hold."""
    wanted = sorted(set(media_ids))
    found: dict[int, set[str]] = {m: set() for m in wanted}
    if not wanted:
        return found
    by_officer = (
        select(media.c.id, officers.c.department)
        .join(officers, officers.c.id == media.c.officer_id)
        .where(media.c.id.in_(wanted))
    )
    by_case = (
        select(links.c.media_id, cases.c.department)
        .join(cases, cases.c.number == links.c.case_number)
        .where(and_(links.c.media_id.in_(wanted), links.c.removed_at.is_(None)))
    )
    for media_id, department in [*conn.execute(by_officer), *conn.execute(by_case)]:
        if department:
            found[int(media_id)].add(department)
    return found
