"""Rows of retention (issue 19): important-file marks, assigned classes, legal holds and the
records they cover, and the lock date of each original. Reads are batched by id (one query
per table for a chunk of items, never one per item)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from pipeline.catalog.schema import (
    cases,
    links,
    media,
    retention_assigned,
    retention_hold_items,
    retention_holds,
    retention_locks,
    retention_marks,
)

#: Ids per IN (…): well below SQLite's bound-parameter limit.
CHUNK = 500


def chunks(ids: Sequence[int], size: int = CHUNK) -> Iterator[list[int]]:
    for i in range(0, len(ids), size):
        yield list(ids[i : i + size])


@dataclass(frozen=True)
class Mark:
    media_id: int
    source: str  # filename, metadata or person
    matched: str
    reason: str
    marked_by: str
    marked_at: datetime


@dataclass(frozen=True)
class Assigned:
    media_id: int
    class_id: str
    reason: str
    assigned_by: str
    assigned_at: datetime


@dataclass(frozen=True)
class HoldRow:
    id: int
    scope: str
    case_number: str | None
    query: str | None
    reason: str
    placed_by: str
    placed_at: datetime
    until: datetime | None
    released_at: datetime | None = None
    released_by: str | None = None
    released_reason: str | None = None

    def holds_at(self, now: datetime | None) -> bool:
        """Not released, and not lapsed at ``now`` (None: a lapse date is not yet passed)."""
        if self.released_at is not None:
            return False
        return self.until is None or now is None or self.until > now


@dataclass(frozen=True)
class Facts:
    """What the rules of one record look at."""

    media_id: int
    sha256: str
    kind: str
    status: str
    start: datetime  # recorded_end, else recorded_start, else ingested_at
    ingested_at: datetime
    cases: tuple[tuple[str, str], ...] = ()  # (case number, category) of its active links
    mark: Mark | None = None
    assigned: Assigned | None = None
    holds: tuple[HoldRow, ...] = field(default=())  # unreleased holds covering it


def facts(conn: Connection, media_ids: Sequence[int]) -> dict[int, Facts]:
    """The facts of each item of ``media_ids`` the catalog has."""
    found: dict[int, Facts] = {}
    for ids in chunks(list(dict.fromkeys(media_ids))):
        found.update(_facts(conn, ids))
    return found


def _facts(conn: Connection, ids: list[int]) -> dict[int, Facts]:
    rows = conn.execute(
        select(
            media.c.id,
            media.c.sha256,
            media.c.kind,
            media.c.status,
            media.c.recorded_start,
            media.c.recorded_end,
            media.c.ingested_at,
        ).where(media.c.id.in_(ids))
    ).all()
    linked: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for r in conn.execute(
        select(links.c.media_id, cases.c.number, cases.c.category)
        .join(cases, cases.c.number == links.c.case_number)
        .where(links.c.media_id.in_(ids), links.c.removed_at.is_(None))
        .order_by(cases.c.number)
    ):
        linked[r.media_id].append((r.number, r.category))
    marks = {
        r.media_id: Mark(**r._mapping)
        for r in conn.execute(select(retention_marks).where(retention_marks.c.media_id.in_(ids)))
    }
    assigned = {
        r.media_id: Assigned(**r._mapping)
        for r in conn.execute(
            select(retention_assigned).where(retention_assigned.c.media_id.in_(ids))
        )
    }
    holds = _holds_covering(conn, ids)
    return {
        r.id: Facts(
            r.id,
            r.sha256,
            r.kind,
            r.status,
            r.recorded_end or r.recorded_start or r.ingested_at,
            r.ingested_at,
            tuple(linked.get(r.id, ())),
            marks.get(r.id),
            assigned.get(r.id),
            tuple(holds.get(r.id, ())),
        )
        for r in rows
    }


def _holds_covering(conn: Connection, ids: list[int]) -> dict[int, list[HoldRow]]:
    """Unreleased holds of each item: those it is a member of, and the case holds of the
    cases it is linked to now (a record linked a moment ago, its HELD event still to come)."""
    unreleased = retention_holds.c.released_at.is_(None)
    member = select(retention_hold_items.c.media_id, retention_holds).join(
        retention_holds, retention_holds.c.id == retention_hold_items.c.hold_id
    )
    member = member.where(retention_hold_items.c.media_id.in_(ids), unreleased)
    by_case = (
        select(links.c.media_id, retention_holds)
        .join(retention_holds, retention_holds.c.case_number == links.c.case_number)
        .where(
            links.c.media_id.in_(ids),
            links.c.removed_at.is_(None),
            retention_holds.c.scope == "case",
            unreleased,
        )
    )
    found: dict[int, dict[int, HoldRow]] = defaultdict(dict)
    for statement in (member, by_case):
        for r in conn.execute(statement):
            values = dict(r._mapping)
            media_id = values.pop("media_id")
            found[media_id][values["id"]] = HoldRow(**values)
    return {m: sorted(h.values(), key=lambda h: h.id) for m, h in found.items()}


# ------------------------------------------------------------------------ marks, classes


def save_mark(conn: Connection, mark: Mark) -> None:
    conn.execute(delete(retention_marks).where(retention_marks.c.media_id == mark.media_id))
    conn.execute(insert(retention_marks).values(**vars(mark)))


def clear_mark(conn: Connection, media_id: int) -> bool:
    """False: it had no mark."""
    gone = conn.execute(delete(retention_marks).where(retention_marks.c.media_id == media_id))
    return bool(gone.rowcount)


def save_assigned(conn: Connection, assigned: Assigned) -> None:
    conn.execute(
        delete(retention_assigned).where(retention_assigned.c.media_id == assigned.media_id)
    )
    conn.execute(insert(retention_assigned).values(**vars(assigned)))


def clear_assigned(conn: Connection, media_id: int) -> bool:
    gone = conn.execute(delete(retention_assigned).where(retention_assigned.c.media_id == media_id))
    return bool(gone.rowcount)


# ---------------------------------------------------------------------------------- holds


def add_hold(conn: Connection, **values: Any) -> int:
    key = conn.execute(insert(retention_holds).values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def add_members(conn: Connection, hold_id: int, media_ids: Sequence[int], at: datetime) -> None:
    if media_ids:
        conn.execute(
            insert(retention_hold_items),
            [{"hold_id": hold_id, "media_id": m, "added_at": at} for m in media_ids],
        )


def members(conn: Connection, hold_id: int) -> list[int]:
    query = select(retention_hold_items.c.media_id).where(retention_hold_items.c.hold_id == hold_id)
    return list(conn.execute(query.order_by(retention_hold_items.c.media_id)).scalars())


def member_counts(conn: Connection, hold_ids: Sequence[int]) -> dict[int, int]:
    counts: dict[int, int] = defaultdict(int)
    for ids in chunks(list(hold_ids)):
        query = select(retention_hold_items.c.hold_id).where(
            retention_hold_items.c.hold_id.in_(ids)
        )
        for hold_id in conn.execute(query).scalars():
            counts[hold_id] += 1
    return counts


def get_hold(conn: Connection, hold_id: int) -> HoldRow | None:
    row = conn.execute(select(retention_holds).where(retention_holds.c.id == hold_id)).first()
    return None if row is None else HoldRow(**row._mapping)


def holds(conn: Connection, *, everything: bool = False) -> list[HoldRow]:
    """Unreleased holds (every hold when ``everything``), newest first."""
    query = select(retention_holds).order_by(retention_holds.c.id.desc())
    if not everything:
        query = query.where(retention_holds.c.released_at.is_(None))
    return [HoldRow(**r._mapping) for r in conn.execute(query)]


def case_holds(conn: Connection, numbers: Sequence[str]) -> dict[str, list[HoldRow]]:
    """Unreleased holds of these cases."""
    found: dict[str, list[HoldRow]] = defaultdict(list)
    if numbers:
        query = select(retention_holds).where(
            retention_holds.c.case_number.in_(list(numbers)),
            retention_holds.c.released_at.is_(None),
        )
        for r in conn.execute(query.order_by(retention_holds.c.id)):
            found[r.case_number].append(HoldRow(**r._mapping))
    return found


def release(conn: Connection, hold_id: int, by: str, reason: str, at: datetime) -> bool:
    """False: released already (by another person a moment ago)."""
    done = conn.execute(
        update(retention_holds)
        .where(retention_holds.c.id == hold_id, retention_holds.c.released_at.is_(None))
        .values(released_at=at, released_by=by, released_reason=reason)
    )
    return bool(done.rowcount)


def lapsed(conn: Connection, now: datetime) -> list[HoldRow]:
    """Unreleased holds whose lapse date has passed."""
    query = select(retention_holds).where(
        retention_holds.c.released_at.is_(None),
        retention_holds.c.until.is_not(None),
        retention_holds.c.until <= now,
    )
    return [HoldRow(**r._mapping) for r in conn.execute(query)]


# ---------------------------------------------------------------------------------- locks


@dataclass(frozen=True)
class Lock:
    media_id: int
    lock_until: datetime
    held: bool
    updated_at: datetime


def locks(conn: Connection, media_ids: Sequence[int]) -> dict[int, Lock]:
    found: dict[int, Lock] = {}
    for ids in chunks(list(media_ids)):
        query = select(retention_locks).where(retention_locks.c.media_id.in_(ids))
        found.update({r.media_id: Lock(**r._mapping) for r in conn.execute(query)})
    return found


def save_lock(conn: Connection, lock: Lock) -> None:
    """Write the lock; its date only ever grows (a later date already there is kept)."""
    now = conn.execute(
        select(retention_locks).where(retention_locks.c.media_id == lock.media_id)
    ).first()
    if now is None:
        conn.execute(insert(retention_locks).values(**vars(lock)))
        return
    conn.execute(
        update(retention_locks)
        .where(retention_locks.c.media_id == lock.media_id)
        .values(
            lock_until=max(now.lock_until, lock.lock_until),
            held=lock.held,
            updated_at=lock.updated_at,
        )
    )
