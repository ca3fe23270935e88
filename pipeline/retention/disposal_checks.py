"""What every step of a disposal checks and records: whether an item may go now (and why
not), dropping one that may not, and the custody event of a step, per item."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from pipeline.catalog import disposal as rows
from pipeline.custody import log as custody
from pipeline.models import EventKind, MediaItem, MediaStatus
from pipeline.retention.derive import Retention, retention_of
from pipeline.retention.disposal_requests import ItemState
from pipeline.retention.rules import RetentionRules


def why_kept(conn: Connection, rules: RetentionRules, item: MediaItem, now: datetime) -> str | None:
    """Why ``item`` may not be disposed of now (zh-CN first), None when it may."""
    if item.status is not MediaStatus.ARCHIVED:
        return f"状态为{item.status.label_zh}，不可销毁 (status {item.status.value})"
    found = retention_of(conn, rules, item.id, now=now)
    if found.disposable(now):
        return None
    because = "；".join(found.reasons)
    if found.held:
        return f"法律保全中 (held): {because}"
    if found.until is None:
        return f"永久保存 (permanent): {because}"
    return f"保存至 {found.until:%Y-%m-%d} (kept until then, UTC): {because}"


def drop(
    conn: Connection,
    actor: str,
    request_id: int,
    item: MediaItem,
    why: str,
    was: Sequence[ItemState],
    now: datetime,
) -> None:
    if rows.set_item(
        conn, request_id, item.id, ItemState.DROPPED, was=was, by=actor, now=now, note=why
    ):
        record(
            conn,
            EventKind.DISPOSAL_REFUSED,
            actor,
            request_id,
            item,
            {"dropped": True, "why": why},
            now,
        )


def retention_details(found: Retention) -> dict[str, Any]:
    until = None if found.until is None else found.until.isoformat()
    return {"retention_until": until, "retention_reasons": list(found.reasons)}


def record(
    conn: Connection,
    kind: EventKind,
    actor: str,
    request_id: int,
    item: MediaItem,
    details: Mapping[str, Any],
    now: datetime,
) -> None:
    custody.append(
        conn,
        kind,
        actor,
        media_id=item.id,
        station_id=item.station_id,
        subject=f"disposal request {request_id}",
        details={"request": request_id, **details},
        now=now,
    )
