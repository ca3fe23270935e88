"""Removal (``evidence retention dispose --due`` and the daily sweep's second step): the
approved items whose grace period is over, each checked once more, then the original and its
derivatives removed and the tombstone kept (the order and what a refusal does:
:mod:`pipeline.retention.disposal`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pipeline.catalog import disposal as rows
from pipeline.catalog import media as media_db
from pipeline.custody import log as custody
from pipeline.errors import EvidenceError, ObjectLocked, StorageError
from pipeline.instance import Instance
from pipeline.models import EventKind, MediaItem, MediaStatus
from pipeline.retention import disposal_checks as checks
from pipeline.retention.derive import Retention, retention_of
from pipeline.retention.disposal_requests import (
    DisposalRequest,
    DisposalRun,
    ItemState,
    Removal,
    Tombstone,
)
from pipeline.retention.locks import may_remove
from pipeline.retention.rules import RetentionRules, rules_of
from pipeline.storage.local import LocalStore

# ------------------------------------------------------------------------------ dispose


def dispose_due(instance: Instance, *, limit: int | None = None) -> DisposalRun:
    """Remove every approved item whose grace period is over (``instance.actor`` acts: the
    sweep's, or the person of ``evidence retention dispose --due --as``), after checking it
    once more; then derived objects an earlier run could not remove. Goes on past an item
    the store refuses, and reports it."""
    now, rules = instance.clock(), rules_of(instance.settings)
    actor = instance.actor or instance.settings.actor
    with instance.catalog.read() as conn:
        due = rows.due_requests(conn, now)
    removals: list[Removal] = []
    for asked in due:
        for entry in asked.items:
            if entry.state is not ItemState.APPROVED:
                continue
            if limit is not None and len(removals) >= limit:
                break
            removals.append(_dispose_one(instance, rules, asked, entry.media_id, actor, now))
    return DisposalRun(tuple(removals), tuple(_remove_derived_left(instance)))


def _dispose_one(
    instance: Instance,
    rules: RetentionRules,
    asked: DisposalRequest,
    media_id: int,
    actor: str,
    now: datetime,
) -> Removal:
    store = instance.store
    try:
        with instance.catalog.begin() as conn:
            item = media_db.get(conn, media_id)
            kept = checks.why_kept(conn, rules, item, now)
            if kept is not None:
                checks.drop(conn, actor, asked.id, item, kept, [ItemState.APPROVED], now)
                return Removal(asked.id, media_id, ItemState.DROPPED, item.size, kept)
            if isinstance(store, LocalStore) and not may_remove(
                conn, media_id, now, floor_days=instance.settings.store.s3.retention_days
            ):
                raise _LocalLock(
                    f"{store.root}: 本地锁定期未满 (the local lock date is not reached)"
                )
            if not rows.set_item(
                conn,
                asked.id,
                media_id,
                ItemState.DISPOSED,
                was=[ItemState.APPROVED],
                by=actor,
                now=now,
            ):
                return Removal(
                    asked.id,
                    media_id,
                    ItemState.DROPPED,
                    item.size,
                    "已被他人处理 (moved meanwhile)",
                )
            found = retention_of(conn, rules, media_id, now=now)
            derived = [k for k in (item.proxy_key, item.thumbnail_key) if k]
            present = store.has_original(item.sha256)
            stone = _tombstone(asked, item, found, actor, now, derived)
            rows.bury(conn, stone)
            details = {
                "reason": asked.reason,
                "sha256": item.sha256,
                "size": item.size,
                "requested_by": asked.requested_by,
                "approved_by": asked.decided_by,
                **checks.retention_details(found),
                "derived": derived,
                **({} if present else {"found_removed": True}),
                "row": {
                    "status": MediaStatus.DISPOSED.value,
                    "proxy_key": None,
                    "thumbnail_key": None,
                },
            }
            checks.record(conn, EventKind.DISPOSED, actor, asked.id, item, details, now)
            if present:
                store.remove_original(item.sha256)  # refused: the transaction rolls back
    except (_LocalLock, ObjectLocked) as exc:
        return _store_refused(instance, asked, media_id, actor, now, str(exc))
    except StorageError as exc:  # unreachable, not a refusal: the next run tries again
        return Removal(asked.id, media_id, ItemState.APPROVED, 0, str(exc))
    left = _remove_derived(instance, derived)
    if left:
        with instance.catalog.begin() as conn:
            rows.set_derived_left(conn, media_id, left)
    return Removal(asked.id, media_id, ItemState.DISPOSED, item.size)


class _LocalLock(Exception):
    """The local lock date (kept in the catalog) is not reached: the local store's refusal."""


def _store_refused(
    instance: Instance,
    asked: DisposalRequest,
    media_id: int,
    actor: str,
    now: datetime,
    answer: str,
) -> Removal:
    """The store refused: the item stays, marked store-refused with the store's answer; an
    ALERT says so (a person must look: a retention shorter than the lock the store keeps)."""
    with instance.catalog.begin() as conn:
        item = media_db.get(conn, media_id)
        rows.set_item(
            conn,
            asked.id,
            media_id,
            ItemState.STORE_REFUSED,
            was=[ItemState.APPROVED],
            by=actor,
            now=now,
            note=answer,
        )
        custody.append(
            conn,
            EventKind.ALERT,
            actor,
            media_id=item.id,
            station_id=item.station_id,
            subject=f"disposal request {asked.id}",
            details={
                "code": "disposal-refused-by-store",
                "request": asked.id,
                "answer": answer,
            },
            now=now,
        )
    return Removal(asked.id, media_id, ItemState.STORE_REFUSED, item.size, answer)


def _remove_derived(instance: Instance, keys: Sequence[str]) -> list[str]:
    """Remove each derived object; the keys the store could not remove (tried again)."""
    left = []
    for key in keys:
        try:
            instance.store.remove_derived(key)
        except EvidenceError:
            left.append(key)
    return left


def _remove_derived_left(instance: Instance) -> list[str]:
    with instance.catalog.read() as conn:
        stones = rows.with_derived_left(conn)
    still: list[str] = []
    for stone in stones:
        left = _remove_derived(instance, stone.derived_left)
        with instance.catalog.begin() as conn:
            rows.set_derived_left(conn, stone.media_id, left)
        still += left
    return still


def _tombstone(
    asked: DisposalRequest,
    item: MediaItem,
    found: Retention,
    actor: str,
    now: datetime,
    derived: Sequence[str],
) -> Tombstone:
    assert asked.decided_by is not None and asked.decided_at is not None
    return Tombstone(
        media_id=item.id,
        request_id=asked.id,
        sha256=item.sha256,
        size=item.size,
        ingested_at=item.ingested_at,
        recorded_start=item.recorded_start,
        recorded_end=item.recorded_end,
        retention_until=found.until,
        retention_reasons=found.reasons,
        requested_by=asked.requested_by,
        requested_at=asked.requested_at,
        approved_by=asked.decided_by,
        approved_at=asked.decided_at,
        reason=asked.reason,
        disposed_at=now,
        disposed_by=actor,
        derived_left=tuple(derived),
    )
