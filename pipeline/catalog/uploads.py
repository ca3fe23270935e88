"""Rows of the station API: tokens, presence, uploads, reported recorder clocks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from pipeline.catalog.schema import (
    clock_reports,
    dock_uploads,
    media,
    station_presence,
    station_tokens,
)
from pipeline.models import JobState

# ---------------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class TokenRow:
    station_id: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    last_used_at: datetime | None


def _token(row: Any) -> TokenRow:
    return TokenRow(
        row.station_id, row.created_at, row.created_by, row.revoked_at, row.last_used_at
    )


def add_token(conn: Connection, digest: str, station_id: str, actor: str, now: datetime) -> None:
    conn.execute(
        station_tokens.insert().values(
            token_sha256=digest, station_id=station_id, created_at=now, created_by=actor
        )
    )


def token(conn: Connection, digest: str) -> TokenRow | None:
    row = conn.execute(
        select(station_tokens).where(station_tokens.c.token_sha256 == digest)
    ).one_or_none()
    return None if row is None else _token(row)


def tokens_of(conn: Connection, station_id: str) -> list[TokenRow]:
    rows = conn.execute(
        select(station_tokens)
        .where(station_tokens.c.station_id == station_id)
        .order_by(station_tokens.c.created_at)
    )
    return [_token(r) for r in rows]


def revoke_tokens(conn: Connection, station_id: str, actor: str, now: datetime) -> int:
    done = conn.execute(
        update(station_tokens)
        .where(station_tokens.c.station_id == station_id, station_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=actor)
    )
    return int(done.rowcount or 0)


def touch_token(conn: Connection, digest: str, now: datetime) -> None:
    conn.execute(
        update(station_tokens)
        .where(station_tokens.c.token_sha256 == digest)
        .values(last_used_at=now)
    )


# -------------------------------------------------------------------------------- presence


@dataclass(frozen=True)
class PresenceRow:
    station_id: str
    registered_at: datetime
    last_seen: datetime
    software_version: str
    free_disk_bytes: int | None
    queue_length: int | None
    recorders: tuple[dict[str, str], ...]
    address: str
    silent_alerted_at: datetime | None


def _presence(row: Any) -> PresenceRow:
    return PresenceRow(
        row.station_id,
        row.registered_at,
        row.last_seen,
        row.software_version,
        row.free_disk_bytes,
        row.queue_length,
        tuple(row.recorders or ()),
        row.address,
        row.silent_alerted_at,
    )


def presence(conn: Connection, station_id: str) -> PresenceRow | None:
    row = conn.execute(
        select(station_presence).where(station_presence.c.station_id == station_id)
    ).one_or_none()
    return None if row is None else _presence(row)


def all_presence(conn: Connection) -> dict[str, PresenceRow]:
    return {r.station_id: _presence(r) for r in conn.execute(select(station_presence))}


def save_presence(
    conn: Connection, station_id: str, values: Mapping[str, Any], now: datetime, *, register: bool
) -> None:
    """Upsert what a station said; a keepalive ends the silence the sweep alerted about."""
    seen = {**values, "last_seen": now, "silent_alerted_at": None}
    if presence(conn, station_id) is None:
        conn.execute(
            station_presence.insert().values(station_id=station_id, registered_at=now, **seen)
        )
        return
    if register:
        seen["registered_at"] = now
    conn.execute(
        update(station_presence).where(station_presence.c.station_id == station_id).values(**seen)
    )


def mark_silence_alerted(conn: Connection, station_id: str, now: datetime) -> None:
    conn.execute(
        update(station_presence)
        .where(station_presence.c.station_id == station_id)
        .values(silent_alerted_at=now)
    )


def add_clock_reports(
    conn: Connection, station_id: str, reports: Iterable[tuple[str, float, datetime]], now: datetime
) -> int:
    rows = [
        {
            "station_id": station_id,
            "device_serial": serial,
            "offset_s": offset,
            "observed_at": observed,
            "reported_at": now,
        }
        for serial, offset, observed in reports
    ]
    if rows:
        conn.execute(clock_reports.insert(), rows)
    return len(rows)


def clock_reports_of(
    conn: Connection, serial: str, limit: int = 20
) -> list[tuple[str, float, datetime]]:
    rows = conn.execute(
        select(clock_reports.c.station_id, clock_reports.c.offset_s, clock_reports.c.observed_at)
        .where(clock_reports.c.device_serial == serial)
        .order_by(clock_reports.c.observed_at.desc())
        .limit(limit)
    )
    return [(r.station_id, r.offset_s, r.observed_at) for r in rows]


# --------------------------------------------------------------------------------- uploads


@dataclass(frozen=True)
class UploadRow:
    id: str
    station_id: str
    sha256: str
    size: int
    received: int
    path: str
    mtime: float
    claim: dict[str, str]
    docked_at: datetime | None
    state: str
    reason: str | None
    placed_path: str | None
    created_at: datetime
    updated_at: datetime


def _upload(row: Any) -> UploadRow:
    return UploadRow(
        row.id,
        row.station_id,
        row.sha256,
        row.size,
        row.received,
        row.path,
        row.mtime,
        dict(row.claim or {}),
        row.docked_at,
        row.state,
        row.reason,
        row.placed_path,
        row.created_at,
        row.updated_at,
    )


def add_upload(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(dock_uploads.insert().values(**values))


def upload(conn: Connection, upload_id: str) -> UploadRow | None:
    row = conn.execute(select(dock_uploads).where(dock_uploads.c.id == upload_id)).one_or_none()
    return None if row is None else _upload(row)


def open_upload(conn: Connection, station_id: str, sha256: str, path: str) -> UploadRow | None:
    """The station's upload of these bytes at this path not yet done with (receiving, or
    received and waiting for ingest), if any."""
    row = conn.execute(
        select(dock_uploads)
        .where(
            dock_uploads.c.station_id == station_id,
            dock_uploads.c.sha256 == sha256,
            dock_uploads.c.path == path,
            dock_uploads.c.state.in_(("receiving", "received")),
        )
        .order_by(dock_uploads.c.created_at.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else _upload(row)


def set_upload(conn: Connection, upload_id: str, now: datetime, **values: Any) -> None:
    conn.execute(
        update(dock_uploads).where(dock_uploads.c.id == upload_id).values(updated_at=now, **values)
    )


def unplaced(conn: Connection, station_id: str) -> list[UploadRow]:
    """Whole and checked, still waiting for their name in the intake folder to be free."""
    rows = conn.execute(
        select(dock_uploads)
        .where(
            dock_uploads.c.station_id == station_id,
            dock_uploads.c.state == "received",
            dock_uploads.c.placed_path.is_(None),
        )
        .order_by(dock_uploads.c.updated_at)
    )
    return [_upload(r) for r in rows]


def open_counts(conn: Connection) -> dict[str, dict[str, int]]:
    """Per station: uploads receiving, and received but not yet ingested (the backlog)."""
    rows = conn.execute(
        select(dock_uploads.c.station_id, dock_uploads.c.state, func.count())
        .where(dock_uploads.c.state.in_(("receiving", "received")))
        .group_by(dock_uploads.c.station_id, dock_uploads.c.state)
    )
    found: dict[str, dict[str, int]] = {}
    for station_id, state, count in rows:
        found.setdefault(station_id, {})[state] = int(count)
    return found


def claim_for(conn: Connection, station_id: str, sha256: str) -> UploadRow | None:
    """The latest received upload of these bytes from this station (its identity claim)."""
    row = conn.execute(
        select(dock_uploads)
        .where(
            dock_uploads.c.station_id == station_id,
            dock_uploads.c.sha256 == sha256,
            dock_uploads.c.state.in_(("received", "verified", "held")),
        )
        .order_by(dock_uploads.c.updated_at.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else _upload(row)


def first_docked(conn: Connection, station_id: str, sha256: str) -> datetime | None:
    """The earliest docking time this station's uploads of these bytes reported (a pushing
    station reads it off the recorder's docking): the media row keeps it (migration 0013)."""
    query = select(func.min(dock_uploads.c.docked_at)).where(
        dock_uploads.c.station_id == station_id, dock_uploads.c.sha256 == sha256
    )
    found: datetime | None = conn.execute(query).scalar()
    return found


def archived(conn: Connection, digests: Iterable[str]) -> set[str]:
    """Which of these SHA-256 digests the archive holds as media items (stored, verified)."""
    wanted = list(digests)
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        found.update(conn.execute(select(media.c.sha256).where(media.c.sha256.in_(part))).scalars())
    return found


STORED_STATES = frozenset({JobState.STORED, JobState.CATALOGUED, JobState.DERIVED, JobState.DONE})
