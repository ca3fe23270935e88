"""Rows of disposal (migration 0015): what each retention sweep listed, disposal requests
and their items, and the tombstones of disposed items."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from pipeline.catalog.schema import (
    disposal_items,
    disposal_requests,
    disposal_tombstones,
    media,
    retention_candidates,
    retention_sweeps,
)
from pipeline.models import MediaStatus
from pipeline.retention.disposal_requests import (
    Candidate,
    DisposalItem,
    DisposalRequest,
    ItemState,
    RequestState,
    Sweep,
    Tombstone,
)

# ------------------------------------------------------------------------------ sweeps


def add_sweep(conn: Connection, at: datetime, actor: str, candidates: Sequence[Candidate]) -> Sweep:
    values = {
        "at": at,
        "actor": actor,
        "candidates": len(candidates),
        "bytes": sum(c.size for c in candidates),
    }
    key = conn.execute(insert(retention_sweeps).values(values)).inserted_primary_key
    assert key is not None
    sweep_id = int(key[0])
    if candidates:
        conn.execute(
            insert(retention_candidates),
            [
                {
                    "sweep_id": sweep_id,
                    "media_id": c.media_id,
                    "until": c.until,
                    "size": c.size,
                    "reasons": list(c.reasons),
                }
                for c in candidates
            ],
        )
    return Sweep(sweep_id, at, actor, tuple(candidates))


def get_sweep(conn: Connection, sweep_id: int) -> Sweep | None:
    row = conn.execute(
        select(retention_sweeps).where(retention_sweeps.c.id == sweep_id)
    ).one_or_none()
    if row is None:
        return None
    found = conn.execute(
        select(retention_candidates)
        .where(retention_candidates.c.sweep_id == sweep_id)
        .order_by(retention_candidates.c.until, retention_candidates.c.media_id)
    )
    candidates = tuple(
        Candidate(r.media_id, r.until, r.size, tuple(r.reasons or ())) for r in found
    )
    return Sweep(row.id, row.at, row.actor, candidates)


def last_sweep_id(conn: Connection) -> int | None:
    found = conn.execute(select(func.max(retention_sweeps.c.id))).scalar()
    return None if found is None else int(found)


# ---------------------------------------------------------------------------- requests


def add_request(
    conn: Connection,
    *,
    requested_by: str,
    reason: str,
    sweep_id: int | None,
    items: Iterable[tuple[int, int, ItemState, str | None]],  # media id, size, state, note
    now: datetime,
) -> int:
    values = {
        "requested_by": requested_by,
        "requested_at": now,
        "reason": reason,
        "sweep_id": sweep_id,
        "state": RequestState.WAITING.value,
    }
    key = conn.execute(insert(disposal_requests).values(values)).inserted_primary_key
    assert key is not None
    request_id = int(key[0])
    conn.execute(
        insert(disposal_items),
        [
            {
                "request_id": request_id,
                "media_id": media_id,
                "size": size,
                "state": state.value,
                "note": note,
                "changed_at": now,
                "changed_by": requested_by,
            }
            for media_id, size, state, note in items
        ],
    )
    return request_id


def get_request(conn: Connection, request_id: int) -> DisposalRequest | None:
    found = _requests(conn, select(disposal_requests).where(disposal_requests.c.id == request_id))
    return found[0] if found else None


def listing(
    conn: Connection,
    *,
    requested_by: str | None = None,
    not_by: str | None = None,
    state: RequestState | None = None,
    limit: int = 500,
) -> list[DisposalRequest]:
    """Requests, newest first: of one requester, or of everyone but one, in one state."""
    query = select(disposal_requests)
    if requested_by is not None:
        query = query.where(disposal_requests.c.requested_by == requested_by)
    if not_by is not None:
        query = query.where(disposal_requests.c.requested_by != not_by)
    if state is not None:
        query = query.where(disposal_requests.c.state == state.value)
    return _requests(conn, query.order_by(disposal_requests.c.id.desc()).limit(limit))


def due_requests(conn: Connection, now: datetime) -> list[DisposalRequest]:
    """Approved requests whose grace period is over and that still hold approved items,
    oldest first."""
    with_items = select(disposal_items.c.request_id).where(
        disposal_items.c.state == ItemState.APPROVED.value
    )
    query = (
        select(disposal_requests)
        .where(
            disposal_requests.c.state == RequestState.APPROVED.value,
            disposal_requests.c.grace_until <= now,
            disposal_requests.c.id.in_(with_items),
        )
        .order_by(disposal_requests.c.id)
    )
    return _requests(conn, query)


def _requests(conn: Connection, query: Any) -> list[DisposalRequest]:
    rows = conn.execute(query).all()
    if not rows:
        return []
    items: dict[int, list[DisposalItem]] = defaultdict(list)
    found = conn.execute(
        select(disposal_items)
        .where(disposal_items.c.request_id.in_([r.id for r in rows]))
        .order_by(disposal_items.c.request_id, disposal_items.c.media_id)
    )
    for i in found:
        items[i.request_id].append(
            DisposalItem(i.media_id, ItemState(i.state), i.size, i.changed_at, i.changed_by, i.note)
        )
    return [
        DisposalRequest(
            id=r.id,
            requested_by=r.requested_by,
            requested_at=r.requested_at,
            reason=r.reason,
            state=RequestState(r.state),
            items=tuple(items[r.id]),
            sweep_id=r.sweep_id,
            decided_by=r.decided_by,
            decided_at=r.decided_at,
            comment=r.comment,
            grace_until=r.grace_until,
        )
        for r in rows
    ]


def decide(
    conn: Connection,
    request_id: int,
    state: RequestState,
    *,
    by: str,
    comment: str,
    now: datetime,
    grace_until: datetime | None = None,
) -> bool:
    """Record the decision on a waiting request; False when it was decided meanwhile."""
    done = conn.execute(
        update(disposal_requests)
        .where(
            disposal_requests.c.id == request_id,
            disposal_requests.c.state == RequestState.WAITING.value,
        )
        .values(
            state=state.value,
            decided_by=by,
            decided_at=now,
            comment=comment,
            grace_until=grace_until,
        )
    )
    return done.rowcount == 1


def set_item(
    conn: Connection,
    request_id: int,
    media_id: int,
    state: ItemState,
    *,
    was: Sequence[ItemState],
    by: str,
    now: datetime,
    note: str | None = None,
) -> bool:
    """Move one item from one of the states ``was`` to ``state``; False when it was not in
    one of them any more (another run or person moved it first)."""
    done = conn.execute(
        update(disposal_items)
        .where(
            disposal_items.c.request_id == request_id,
            disposal_items.c.media_id == media_id,
            disposal_items.c.state.in_([s.value for s in was]),
        )
        .values(state=state.value, note=note, changed_at=now, changed_by=by)
    )
    return done.rowcount == 1


def count_waiting(conn: Connection, *, not_by: str) -> int:
    query = (
        select(func.count())
        .select_from(disposal_requests)
        .where(
            disposal_requests.c.state == RequestState.WAITING.value,
            disposal_requests.c.requested_by != not_by,
        )
    )
    return int(conn.execute(query).scalar_one())


def live_requests_of(conn: Connection, media_id: int) -> list[int]:
    """The requests that still hold ``media_id`` on its way to disposal."""
    query = select(disposal_items.c.request_id).where(
        disposal_items.c.media_id == media_id,
        disposal_items.c.state.in_([ItemState.WAITING.value, ItemState.APPROVED.value]),
    )
    return [int(r) for r in conn.execute(query).scalars()]


# -------------------------------------------------------------------------- tombstones


def bury(conn: Connection, stone: Tombstone) -> None:
    """The tombstone, and the media row marked disposed: no proxy, no thumbnail left."""
    values = {c.name: getattr(stone, c.name) for c in disposal_tombstones.c}
    values["retention_reasons"] = list(stone.retention_reasons)
    values["derived_left"] = list(stone.derived_left)
    conn.execute(insert(disposal_tombstones).values(values))
    conn.execute(
        update(media)
        .where(media.c.id == stone.media_id)
        .values(status=MediaStatus.DISPOSED.value, proxy_key=None, thumbnail_key=None)
    )


def tombstone(conn: Connection, media_id: int) -> Tombstone | None:
    row = conn.execute(
        select(disposal_tombstones).where(disposal_tombstones.c.media_id == media_id)
    ).one_or_none()
    return None if row is None else _stone(row)


def tombstones(conn: Connection, media_ids: Iterable[int] | None = None) -> list[Tombstone]:
    query = select(disposal_tombstones).order_by(disposal_tombstones.c.media_id)
    if media_ids is not None:
        query = query.where(disposal_tombstones.c.media_id.in_(sorted(set(media_ids))))
    return [_stone(r) for r in conn.execute(query)]


def with_derived_left(conn: Connection) -> list[Tombstone]:
    """Tombstones whose derived objects could not all be removed yet (few: a store error)."""
    left = func.json_array_length(disposal_tombstones.c.derived_left) > 0
    query = select(disposal_tombstones).where(left).order_by(disposal_tombstones.c.media_id)
    return [_stone(r) for r in conn.execute(query)]


def set_derived_left(conn: Connection, media_id: int, keys: Sequence[str]) -> None:
    conn.execute(
        update(disposal_tombstones)
        .where(disposal_tombstones.c.media_id == media_id)
        .values(derived_left=list(keys))
    )


def _stone(row: Any) -> Tombstone:
    values = dict(row._mapping)
    values["retention_reasons"] = tuple(values["retention_reasons"] or ())
    values["derived_left"] = tuple(values["derived_left"] or ())
    return Tombstone(**values)
