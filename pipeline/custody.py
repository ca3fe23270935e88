"""The custody log: append-only and hash-chained.

Each event's hash covers its content and the previous event's hash, so editing, deleting or
reordering any row breaks every hash after it. Writers serialise on the ``custody_head`` row,
which also makes the append part of the caller's transaction: an event exists exactly when
the change it records was committed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update

from pipeline.catalog.schema import custody_events, custody_head
from pipeline.models import EventKind

GENESIS = "0" * 64


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


def event_hash(
    seq: int,
    at: datetime,
    actor: str,
    kind: str,
    media_id: int | None,
    station_id: str | None,
    subject: str,
    details: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 over a canonical JSON encoding (sorted keys, no spaces, UTF-8)."""
    body = {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "kind": kind,
        "media_id": media_id,
        "station_id": station_id,
        "subject": subject,
        "details": details,
        "prev_hash": prev_hash,
    }
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


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
    at = now or datetime.now(UTC)
    body = dict(details or {})
    head = conn.execute(
        select(custody_head.c.seq, custody_head.c.hash)
        .where(custody_head.c.id == 1)
        .with_for_update()
    ).one()
    seq = head.seq + 1
    digest = event_hash(seq, at, actor, kind.value, media_id, station_id, subject, body, head.hash)
    conn.execute(
        custody_events.insert().values(
            seq=seq,
            at=at,
            actor=actor,
            kind=kind.value,
            media_id=media_id,
            station_id=station_id,
            subject=subject,
            details=body,
            prev_hash=head.hash,
            hash=digest,
        )
    )
    conn.execute(update(custody_head).where(custody_head.c.id == 1).values(seq=seq, hash=digest))
    return CustodyEvent(
        seq, at, actor, kind, media_id, station_id, subject, body, head.hash, digest
    )


def events(conn: Connection, *, media_id: int | None = None) -> Iterator[CustodyEvent]:
    """Events in sequence order, optionally those of one media item."""
    query = select(custody_events).order_by(custody_events.c.seq)
    if media_id is not None:
        query = query.where(custody_events.c.media_id == media_id)
    for row in conn.execute(query):
        yield CustodyEvent(
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


def broken_links(conn: Connection) -> list[str]:
    """Recompute the chain; describe every event whose link or hash does not hold."""
    problems: list[str] = []
    prev, expected_seq = GENESIS, 1
    for ev in events(conn):
        if ev.seq != expected_seq:
            problems.append(f"seq {ev.seq}: expected sequence {expected_seq}")
        if ev.prev_hash != prev:
            problems.append(f"seq {ev.seq}: previous hash does not match the event before")
        recomputed = event_hash(
            ev.seq,
            ev.at,
            ev.actor,
            ev.kind.value,
            ev.media_id,
            ev.station_id,
            ev.subject,
            ev.details,
            ev.prev_hash,
        )
        if recomputed != ev.hash:
            problems.append(f"seq {ev.seq}: content does not match its hash")
        prev, expected_seq = ev.hash, ev.seq + 1
    return problems
