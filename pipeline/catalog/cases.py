"""Rows of cases, their officers and their links to media."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, select, update

from pipeline.catalog.schema import case_officers, cases, links
from pipeline.models import Case, CaseStatus, Link, LinkMethod


def _case(row: Any, officers: tuple[str, ...]) -> Case:
    return Case(
        number=row.number,
        title=row.title,
        category=row.category,
        department=row.department,
        status=CaseStatus(row.status),
        officers=officers,
        action_start=row.action_start,
        action_end=row.action_end,
        due=row.due,
        due_provisional=row.due_provisional,
        archived_at=row.archived_at,
        archived_on=row.archived_on,
        archive_key=row.archive_key,
    )


def _officers(conn: Connection, number: str) -> tuple[str, ...]:
    query = select(case_officers.c.officer_id).where(case_officers.c.case_number == number)
    return tuple(sorted(r[0] for r in conn.execute(query)))


def get(conn: Connection, number: str) -> Case | None:
    row = conn.execute(select(cases).where(cases.c.number == number)).one_or_none()
    return None if row is None else _case(row, _officers(conn, number))


def listing(conn: Connection, query: Any = None) -> list[Case]:
    """All cases, or those a query (a WHERE clause on ``cases``) selects."""
    stmt = select(cases).order_by(cases.c.number)
    if query is not None:
        stmt = stmt.where(query)
    rows = conn.execute(stmt).all()
    officers: dict[str, list[str]] = {}
    for number, officer in conn.execute(
        select(case_officers.c.case_number, case_officers.c.officer_id)
    ):
        officers.setdefault(number, []).append(officer)
    return [_case(r, tuple(sorted(officers.get(r.number, [])))) for r in rows]


def save(conn: Connection, case: Case, now: datetime) -> dict[str, Any]:
    """Insert or update the case and its officers; returns the values written (every column
    but the number, and ``officers``), which the change's custody event records."""
    values: dict[str, Any] = {
        "title": case.title,
        "category": case.category,
        "department": case.department,
        "status": case.status.value,
        "action_start": case.action_start,
        "action_end": case.action_end,
        "due": case.due,
        "due_provisional": case.due_provisional,
        "archived_at": case.archived_at,
        "archived_on": case.archived_on,
        "archive_key": case.archive_key,
        "updated_at": now,
    }
    if get(conn, case.number) is None:
        conn.execute(cases.insert().values(number=case.number, **values))
    else:
        conn.execute(update(cases).where(cases.c.number == case.number).values(**values))
    conn.execute(delete(case_officers).where(case_officers.c.case_number == case.number))
    for officer in case.officers:
        conn.execute(case_officers.insert().values(case_number=case.number, officer_id=officer))
    return {**values, "officers": sorted(case.officers)}


def _link(row: Any) -> Link:
    return Link(
        row.case_number, row.media_id, LinkMethod(row.method), row.rule, row.actor, row.created_at
    )


def active_link(conn: Connection, number: str, media_id: int) -> Link | None:
    row = conn.execute(
        select(links).where(
            links.c.case_number == number,
            links.c.media_id == media_id,
            links.c.removed_at.is_(None),
        )
    ).first()
    return None if row is None else _link(row)


def was_unlinked(conn: Connection, number: str, media_id: int) -> bool:
    """A person removed this link before: the rule must not put it back."""
    row = conn.execute(
        select(links.c.id).where(
            links.c.case_number == number,
            links.c.media_id == media_id,
            links.c.removed_at.is_not(None),
        )
    ).first()
    return row is not None


def add_link(
    conn: Connection,
    number: str,
    media_id: int,
    method: LinkMethod,
    rule: str,
    actor: str,
    now: datetime,
) -> int:
    """Add a link; its id."""
    result = conn.execute(
        links.insert().values(
            case_number=number,
            media_id=media_id,
            method=method.value,
            rule=rule,
            actor=actor,
            created_at=now,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def remove_link(
    conn: Connection, number: str, media_id: int, actor: str, reason: str, now: datetime
) -> list[int]:
    """End the active link(s) of a record to a case; the ids of the links ended."""
    active = and_(
        links.c.case_number == number,
        links.c.media_id == media_id,
        links.c.removed_at.is_(None),
    )
    ids = [int(r.id) for r in conn.execute(select(links.c.id).where(active).order_by(links.c.id))]
    if ids:
        conn.execute(
            update(links)
            .where(links.c.id.in_(ids))
            .values(removed_at=now, removed_by=actor, removed_reason=reason)
        )
    return ids


def links_of_case(conn: Connection, number: str) -> list[Link]:
    query = select(links).where(links.c.case_number == number, links.c.removed_at.is_(None))
    return [_link(r) for r in conn.execute(query.order_by(links.c.id))]
