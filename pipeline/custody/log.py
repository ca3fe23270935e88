"""The custody log: append-only and hash-chained.

Each event's hash covers its content and the previous event's hash, so editing, deleting or
reordering any row breaks the chain (the encoding is in ``pipeline.bag_verifier``, the file an
export ships, so the agency and a court recompute hashes with the same code). Writers
serialise on the ``custody_head`` row (SELECT … FOR UPDATE on PostgreSQL, the write lock SQLite
takes at BEGIN IMMEDIATE), which also makes the append part of the caller's transaction: an
event exists exactly when the change it records was committed, and the chain never forks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select, bindparam, select, update

from pipeline.catalog import Catalog
from pipeline.catalog.schema import custody_events, custody_head
from pipeline.custody import verify_bag as rules
from pipeline.errors import CatalogError
from pipeline.models import EventKind

GENESIS = rules.GENESIS


@dataclass(frozen=True)
class CustodyEvent:
    seq: int
    at: datetime
    actor: str
    kind: EventKind
    media_id: int | None
    station_id: str | None
    subject: str
    details: Mapping[str, Any]
    prev_hash: str
    hash: str

    def record(self) -> dict[str, Any]:
        """The event as hashed and as exported: plain JSON values, ``at`` canonical."""
        return {
            "seq": self.seq,
            "at": canonical_time(self.at),
            "actor": self.actor,
            "kind": self.kind.value,
            "media_id": self.media_id,
            "station_id": self.station_id,
            "subject": self.subject,
            "details": dict(self.details),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


class Head(NamedTuple):
    seq: int
    hash: str


# Built once: composing these per append cost more than the database's work on them.
_LOCK_HEAD = (
    select(custody_head.c.seq, custody_head.c.hash).where(custody_head.c.id == 1).with_for_update()
)
_INSERT = custody_events.insert()
_MOVE_HEAD = (
    update(custody_head)
    .where(custody_head.c.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)


def canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def append(
    conn: Connection,
    kind: EventKind,
    actor: str,
    *,
    media_id: int | None = None,
    station_id: str | None = None,
    subject: str = "",
    details: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> CustodyEvent:
    """Append one event inside the caller's transaction."""
    # Hash exactly what the JSON column gives back (tuples become lists, keys strings),
    # so a hash recomputed from the stored row always matches.
    body = json.loads(json.dumps(dict(details or {}), ensure_ascii=False, allow_nan=False))
    head = lock_head(conn)
    at = now or datetime.now(UTC)  # taken under the lock: times follow the sequence
    seq = head.seq + 1
    record = {
        "seq": seq,
        "at": canonical_time(at),
        "actor": actor,
        "kind": kind.value,
        "media_id": media_id,
        "station_id": station_id,
        "subject": subject,
        "details": body,
        "prev_hash": head.hash,
    }
    digest = rules.event_hash(record)
    conn.execute(_INSERT, {**record, "at": at, "hash": digest})
    conn.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": digest})
    return CustodyEvent(
        seq, at, actor, kind, media_id, station_id, subject, body, head.hash, digest
    )


def lock_head(conn: Connection) -> Head:
    """The head, locked until the transaction ends: no event can be appended meanwhile."""
    head = locked_head_or_none(conn)
    if head is None:
        raise CatalogError("the custody log has no head row: run `evidence verify`")
    return head


def locked_head_or_none(conn: Connection) -> Head | None:
    """Like :func:`lock_head`, for readers that must report a deleted head, not fail on it."""
    row = conn.execute(_LOCK_HEAD).one_or_none()
    return None if row is None else Head(int(row.seq), str(row.hash))


def _event(row: Any) -> CustodyEvent:
    return CustodyEvent(
        row.seq,
        row.at,
        row.actor,
        EventKind(row.kind),
        row.media_id,
        row.station_id,
        row.subject,
        row.details,
        row.prev_hash,
        row.hash,
    )


def events(
    conn: Connection,
    *,
    media_id: int | None = None,
    after: int = 0,
    through: int | None = None,
    limit: int | None = None,
) -> Iterator[CustodyEvent]:
    """Events in sequence order: all, one media item's, or those in (after, through]."""
    query = select(custody_events).where(custody_events.c.seq > after)
    if through is not None:
        query = query.where(custody_events.c.seq <= through)
    if media_id is not None:
        query = query.where(custody_events.c.media_id == media_id)
    for row in conn.execute(query.order_by(custody_events.c.seq).limit(limit)):
        yield _event(row)


def query(conn: Connection, statement: Select[Any]) -> list[CustodyEvent]:
    """Events a caller selected (audit filters) from ``select(custody_events)``."""
    return [_event(row) for row in conn.execute(statement)]


class Scan:
    """The log in (after, through] (default: all of it), read in short transactions so that
    writers are never held up for long. A scan to the end reads its last chunk with the head
    locked, so ``head`` and the end of the log are one consistent moment while others append."""

    def __init__(
        self, catalog: Catalog, chunk: int = 5000, *, after: int = 0, through: int | None = None
    ) -> None:
        self.catalog = catalog
        self.chunk = chunk
        self.after = after
        self.through = through
        self.head: Head | None = None

    def __iter__(self) -> Iterator[CustodyEvent]:
        last = self.after
        while True:
            with self.catalog.begin() as conn:
                batch = list(events(conn, after=last, through=self.through, limit=self.chunk))
                final = len(batch) < self.chunk
                if final and self.through is None:
                    self.head = locked_head_or_none(conn)
                    batch += events(conn, after=batch[-1].seq if batch else last)
            yield from batch
            if final:
                return
            last = batch[-1].seq


def broken_links(conn: Connection) -> list[str]:
    """Recompute the chain; describe every event whose link or hash does not hold."""
    result = rules.check_chain(e.record() for e in events(conn))
    return [f"{p.subject}: {p.message}" for p in result.problems]
