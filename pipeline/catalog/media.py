"""Media items, their sightings, and quarantine entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from pipeline.catalog.schema import media, quarantine, sightings
from pipeline.errors import NotFound
from pipeline.models import (
    Flag,
    Identification,
    MediaItem,
    MediaKind,
    MediaStatus,
    ProbeResult,
    QuarantineEntry,
    SourceFile,
)

_PROBE_COLUMNS = (
    "container",
    "duration_s",
    "video_codec",
    "audio_codec",
    "width",
    "height",
    "frame_rate",
    "encoded_at",
    "recorded_at",
    "make",
    "model",
    "serial",
    "latitude",
    "longitude",
)


def insert(
    conn: Connection,
    *,
    sha256: str,
    size: int,
    source: SourceFile,
    probe: ProbeResult,
    ident: Identification | None,
    status: MediaStatus,
    now: datetime,
) -> int:
    values = row_values(
        sha256=sha256,
        size=size,
        source=source,
        probe=probe,
        ident=ident,
        status=status,
        now=now,
    )
    return insert_row(conn, values)


#: Columns of a new media row left to the database: its id, and ``linked``, which triggers on
#: ``links`` keep (migration 0013).
LEFT_TO_THE_DATABASE = frozenset({"id", "linked"})


def row_values(
    *,
    sha256: str,
    size: int,
    source: SourceFile,
    probe: ProbeResult,
    ident: Identification | None,
    status: MediaStatus,
    now: datetime,
    docked_at: datetime | None = None,
) -> dict[str, Any]:
    """Every column of a new media row but its id, as :func:`insert_row` writes it (columns
    set later, a description or a proxy, are None): what its INGESTED event records.
    ``docked_at``: when a pushing station reported the bytes docked (default: ``now``)."""
    values: dict[str, Any] = {
        c.name: None for c in media.columns if c.name not in LEFT_TO_THE_DATABASE
    }
    values.update({c: _fit(c, getattr(probe, c)) for c in _PROBE_COLUMNS})
    values.update(ident_values(ident))
    values.update(
        sha256=sha256,
        size=size,
        kind=probe.kind.value,
        status=status.value,
        original_name=source.name,
        station_id=source.station_id,
        source_path=source.shown,
        ingested_at=now,
        extra=dict(probe.extra),
    )
    values.update(docking(docked_at or now, values["recorded_start"], values["recorded_end"]))
    return values


def docking(
    docked_at: datetime, recorded_start: datetime | None, recorded_end: datetime | None
) -> dict[str, Any]:
    """The dashboard's facts of a row (migration 0013): when its bytes reached a dock, and
    the seconds from the end of the recording (a photo: its taking) to then, to the
    millisecond (None without a recording time)."""
    ended = recorded_end or recorded_start
    delay = None if ended is None else round((docked_at - ended).total_seconds(), 3)
    return {"docked_at": docked_at, "dock_delay_s": delay}


def insert_row(conn: Connection, values: dict[str, Any]) -> int:
    result = conn.execute(media.insert().values(**values))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _fit(column: str, value: Any) -> Any:
    """Text from the file's own metadata, cut to its column: a crafted tag of any length must
    not make the insert fail (PostgreSQL refuses over-long values; the job would be retried
    for ever). The whole tag stays in the original's bytes."""
    length = getattr(media.c[column].type, "length", None)
    if isinstance(value, str) and length is not None and len(value) > length:
        return value[: length - 1] + "…"
    return value


def ident_values(ident: Identification | None) -> dict[str, Any]:
    """The identification columns as the catalog stores them."""
    if ident is None:
        return {"id_sources": {}, "flags": []}
    return {
        "device_serial": ident.device_serial,
        "officer_id": ident.officer_id,
        "recorded_start": ident.recorded_start,
        "recorded_end": ident.recorded_end,
        "time_source": ident.time_source.value if ident.time_source else None,
        "id_sources": dict(ident.serials),
        "flags": [{"code": f.code, "message": f.message} for f in ident.flags],
    }


# The setters return the values they wrote: the custody event of the change records them.


def set_identification(conn: Connection, media_id: int, ident: Identification) -> dict[str, Any]:
    values = ident_values(ident)
    row = conn.execute(
        select(media.c.docked_at, media.c.ingested_at).where(media.c.id == media_id)
    ).one()
    # Its recording time may be another now: the delay to its docking follows.
    docked = row.docked_at or row.ingested_at
    values.update(docking(docked, values.get("recorded_start"), values.get("recorded_end")))
    conn.execute(update(media).where(media.c.id == media_id).values(**values))
    return values


def set_archived(conn: Connection, media_id: int) -> dict[str, Any]:
    values = {"status": MediaStatus.ARCHIVED.value, "quarantine_reason": None}
    conn.execute(update(media).where(media.c.id == media_id).values(**values))
    return values


def _item(row: Any) -> MediaItem:
    probe = ProbeResult(
        kind=MediaKind(row.kind),
        extra=dict(row.extra or {}),
        **{c: getattr(row, c) for c in _PROBE_COLUMNS},
    )
    return MediaItem(
        id=row.id,
        sha256=row.sha256,
        size=row.size,
        kind=MediaKind(row.kind),
        status=MediaStatus(row.status),
        original_name=row.original_name,
        station_id=row.station_id,
        source_path=row.source_path,
        ingested_at=row.ingested_at,
        probe=probe,
        proxy_key=row.proxy_key,
        thumbnail_key=row.thumbnail_key,
        quarantine_reason=row.quarantine_reason,
        device_serial=row.device_serial,
        officer_id=row.officer_id,
        recorded_start=row.recorded_start,
        recorded_end=row.recorded_end,
        time_source=row.time_source,
        id_sources=dict(row.id_sources or {}),
        flags=tuple(Flag(f["code"], f["message"]) for f in row.flags or []),
        description=row.description,
        described_by=row.described_by,
        record_type=row.record_type,
        signature=row.signature,
    )


def by_sha256(conn: Connection, sha256: str) -> MediaItem | None:
    row = conn.execute(select(media).where(media.c.sha256 == sha256)).one_or_none()
    return None if row is None else _item(row)


def get(conn: Connection, key: str | int) -> MediaItem:
    """A media item by id, or by SHA-256 (a unique prefix of at least 6 hex digits). An int
    is an id, always: only text of six digits or more may be a SHA-256 prefix."""
    text = str(key).strip().lower()
    if isinstance(key, int):
        bindable = 0 < key < 2**63  # beyond: no row, and no integer the database binds
        query = select(media).where(media.c.id == key)
        row = conn.execute(query).one_or_none() if bindable else None
    elif text.isdigit() and len(text) < 6:
        row = conn.execute(select(media).where(media.c.id == int(text))).one_or_none()
    else:
        if len(text) < 6 or any(c not in "0123456789abcdef" for c in text):
            raise NotFound("media item", str(key))
        rows = conn.execute(select(media).where(media.c.sha256.startswith(text)).limit(2)).all()
        if len(rows) > 1:
            raise NotFound("media item (prefix is ambiguous)", str(key))
        row = rows[0] if rows else None
        if row is None and text.isdigit():
            row = conn.execute(select(media).where(media.c.id == int(text))).one_or_none()
    if row is None:
        raise NotFound("media item", str(key))
    return _item(row)


def listing(
    conn: Connection, *, status: MediaStatus | None = None, limit: int = 100
) -> list[MediaItem]:
    query = select(media).order_by(media.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(media.c.status == status.value)
    return [_item(r) for r in conn.execute(query)]


def count(conn: Connection, status: MediaStatus | None = None) -> int:
    query = select(func.count()).select_from(media)
    if status is not None:
        query = query.where(media.c.status == status.value)
    return int(conn.execute(query).scalar_one())


def set_derived(
    conn: Connection, media_id: int, proxy_key: str | None, thumb_key: str | None
) -> dict[str, Any]:
    values = {"proxy_key": proxy_key, "thumbnail_key": thumb_key}
    conn.execute(update(media).where(media.c.id == media_id).values(**values))
    return values


def set_quarantined(conn: Connection, media_id: int, reason: str) -> dict[str, Any]:
    values = {"status": MediaStatus.QUARANTINED.value, "quarantine_reason": reason}
    conn.execute(update(media).where(media.c.id == media_id).values(**values))
    return values


def add_sighting(
    conn: Connection, media_id: int, source: SourceFile, job_id: int, now: datetime
) -> None:
    """Record that a dock offered these bytes; one row per job, so a resumed job adds none."""
    exists = conn.execute(select(sightings.c.id).where(sightings.c.job_id == job_id)).first()
    if exists is None:
        conn.execute(
            sightings.insert().values(
                media_id=media_id,
                station_id=source.station_id,
                source_path=source.shown,
                job_id=job_id,
                seen_at=now,
            )
        )


def sighting_count(conn: Connection, media_id: int) -> int:
    query = select(func.count()).select_from(sightings).where(sightings.c.media_id == media_id)
    return int(conn.execute(query).scalar_one())


def add_quarantine(
    conn: Connection,
    *,
    source: SourceFile,
    code: str,
    reason: str,
    now: datetime,
    job_id: int,
    sha256: str | None = None,
    media_id: int | None = None,
) -> int:
    result = conn.execute(
        quarantine.insert().values(
            station_id=source.station_id,
            source_path=source.shown,
            code=code,
            reason=reason,
            sha256=sha256,
            media_id=media_id,
            job_id=job_id,
            created_at=now,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _entry(r: Any) -> QuarantineEntry:
    return QuarantineEntry(
        id=r.id,
        station_id=r.station_id,
        source_path=r.source_path,
        code=r.code,
        reason=r.reason,
        created_at=r.created_at,
        sha256=r.sha256,
        media_id=r.media_id,
        job_id=r.job_id,
        resolved_at=r.resolved_at,
        resolved_by=r.resolved_by,
    )


def quarantine_entries(
    conn: Connection, *, include_resolved: bool = False, device_serial: str | None = None
) -> list[QuarantineEntry]:
    query = select(quarantine).order_by(quarantine.c.id)
    if not include_resolved:
        query = query.where(quarantine.c.resolved_at.is_(None))
    if device_serial is not None:
        query = query.join(media, media.c.id == quarantine.c.media_id).where(
            media.c.device_serial == device_serial
        )
    return [_entry(r) for r in conn.execute(query)]


def quarantine_entry(conn: Connection, entry_id: int) -> QuarantineEntry:
    r = conn.execute(select(quarantine).where(quarantine.c.id == entry_id)).one_or_none()
    if r is None:
        raise NotFound("quarantine entry", str(entry_id))
    return _entry(r)


def resolve_quarantine(conn: Connection, entry_id: int, actor: str, now: datetime) -> None:
    conn.execute(
        update(quarantine)
        .where(quarantine.c.id == entry_id)
        .values(resolved_at=now, resolved_by=actor)
    )


def set_description(conn: Connection, media_id: int, text: str, actor: str, now: datetime) -> None:
    conn.execute(
        update(media)
        .where(media.c.id == media_id)
        .values(description=text, described_at=now, described_by=actor)
    )


def set_record(conn: Connection, media_id: int, record_type: str, signature: str) -> None:
    conn.execute(
        update(media)
        .where(media.c.id == media_id)
        .values(record_type=record_type, signature=signature)
    )
