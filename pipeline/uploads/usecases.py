"""The station API's use cases for uploads: "do you have these?", tus creation, offset,
chunks, completion, termination, and where each upload stands. The web layer
(``interfaces/web/dock.py``) parses the HTTP of the tus protocol and calls these; each owns
its transaction and returns a frozen dataclass (``plain()`` gives its JSON). Tokens,
keepalives and the clock are in ``pipeline.uploads.presence``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import uploads as rows
from pipeline.catalog.media import get as media_item
from pipeline.custody import log as custody
from pipeline.errors import (
    AlreadyArchived,
    ChunkChecksumMismatch,
    StationForbidden,
    UploadDigestMismatch,
    UploadGone,
    UploadNotFound,
    UploadRefused,
    UploadTooLarge,
)
from pipeline.instance import Instance
from pipeline.models import EventKind, JobState, Outcome, Station
from pipeline.uploads import receive
from pipeline.uploads.presence import (
    HEX_DIGITS,
    MAX_DIGESTS,
    STATION_ACTOR,
    alert_refusal,
    utc_text,
)
from pipeline.uploads.receive import Receiver

# ------------------------------------------------------------------------------ have


@dataclass(frozen=True)
class Have:
    missing: tuple[str, ...]
    present: tuple[str, ...]


def which_missing(instance: Instance, station: Station, digests: Sequence[str]) -> Have:
    """Of these SHA-256 digests, those the archive does not hold verified: to be sent."""
    wanted = [d.lower() for d in digests]
    if len(wanted) > MAX_DIGESTS:
        raise UploadRefused(station.id, f"一次最多 {MAX_DIGESTS} 个 at most {MAX_DIGESTS} digests")
    bad = [d for d in wanted if len(d) != 64 or not set(d) <= HEX_DIGITS]
    if bad:
        raise UploadRefused(station.id, f"不是 SHA-256 not a SHA-256 digest: {bad[0][:80]!r}")
    with instance.catalog.read() as conn:
        present = rows.archived(conn, wanted)
    return Have(
        tuple(d for d in wanted if d not in present), tuple(d for d in wanted if d in present)
    )


# --------------------------------------------------------------------------- uploads


@dataclass(frozen=True)
class UploadStatus:
    upload: str
    sha256: str
    size: int
    offset: int
    path: str
    state: str  # receiving | received | verified | held | failed | terminated
    reason: str | None
    media_id: int | None


def _metadata(
    station: Station, length: int, meta: Mapping[str, str], ignore: list[str]
) -> dict[str, Any]:
    sha256 = meta.get("sha256", "").lower()
    if len(sha256) != 64 or not set(sha256) <= HEX_DIGITS:
        raise UploadRefused(station.id, "缺少 sha256 Upload-Metadata needs the file's sha256 (hex)")
    path = receive.checked_relative(station.id, meta.get("path", ""), ignore)
    try:
        mtime = float(meta.get("mtime", ""))
    except ValueError:
        raise UploadRefused(
            station.id, "缺少 mtime Upload-Metadata needs mtime (seconds)"
        ) from None
    if not 0 <= mtime < 1e11:
        raise UploadRefused(station.id, f"mtime {mtime} is not a time")
    docked_at = None
    if meta.get("docked_at"):
        try:
            docked_at = datetime.fromisoformat(meta["docked_at"].replace("Z", "+00:00"))
        except ValueError:
            raise UploadRefused(station.id, "docked_at is not an ISO 8601 time") from None
        if docked_at.tzinfo is None:
            raise UploadRefused(station.id, "docked_at needs its zone (Z or +08:00)")
    claim = {k: meta[k][:200] for k in ("serial", "officer", "unit") if meta.get(k)}
    return {
        "sha256": sha256,
        "size": length,
        "path": str(path),
        "mtime": mtime,
        "claim": claim,
        "docked_at": docked_at,
    }


def create_upload(
    instance: Instance,
    receiver: Receiver,
    station: Station,
    length: int,
    meta: Mapping[str, str],
    address: str = "",
) -> UploadStatus:
    """A new upload (tus creation); the station's open upload of the same bytes and path,
    if it has one (an agent that lost its state resumes it)."""
    limit = instance.settings.dock.max_upload_bytes
    if length > limit or length < 0:
        problem = UploadTooLarge(
            station.id, f"文件过大 {length} bytes: over dock.max_upload_bytes ({limit})"
        )
        alert_refusal(instance, receiver, station.id, problem, address, path=meta.get("path", ""))
        raise problem
    values = _metadata(station, length, meta, instance.settings.ingest.ignore)
    now = instance.clock()
    with instance.catalog.begin() as conn:
        if rows.archived(conn, [values["sha256"]]):
            raise AlreadyArchived(station.id, f"已归档 {values['sha256']} is archived already")
        earlier = rows.open_upload(conn, station.id, values["sha256"], values["path"])
        if earlier is not None and earlier.size == length:
            return _status(conn, receiver, station, earlier)[0]
        upload_id = secrets.token_urlsafe(18)
        receiver.create(upload_id)
        rows.add_upload(
            conn,
            {
                "id": upload_id,
                "station_id": station.id,
                "received": 0,
                "state": "receiving",
                "created_at": now,
                "updated_at": now,
                **values,
            },
        )
        created = rows.upload(conn, upload_id)
        assert created is not None
        return _status(conn, receiver, station, created)[0]


def _own(conn: Connection, station: Station, upload_id: str) -> rows.UploadRow:
    found = rows.upload(conn, upload_id)
    if found is None:
        raise UploadNotFound(station.id, f"没有该上传 no upload {upload_id[:40]!r}")
    if found.station_id != station.id:
        raise StationForbidden(
            station.id, f"上传 {upload_id} 属于其他采集站 belongs to another station"
        )
    return found


def upload_status(
    instance: Instance, receiver: Receiver, station: Station, upload_id: str, address: str = ""
) -> UploadStatus:
    return upload_statuses(instance, receiver, station, [upload_id], address)[0]


def upload_statuses(
    instance: Instance,
    receiver: Receiver,
    station: Station,
    upload_ids: Sequence[str],
    address: str = "",
) -> tuple[UploadStatus, ...]:
    """Where each upload stands; ``verified`` only once the archive's stored copy is.
    Reads, and writes only what changed (a station polls this while its files ingest)."""
    if len(upload_ids) > MAX_DIGESTS:
        raise UploadRefused(station.id, f"一次最多 {MAX_DIGESTS} 个 at most {MAX_DIGESTS} uploads")
    try:
        with instance.catalog.read() as conn:
            for upload_id in upload_ids:
                _own(conn, station, upload_id)
            waiting = bool(rows.unplaced(conn, station.id))
    except StationForbidden as exc:
        alert_refusal(instance, receiver, station.id, exc, address)
        raise
    if waiting:
        with instance.catalog.begin() as conn:
            _place_waiting(conn, instance, receiver, station)
    with instance.catalog.read() as conn:
        found = [_status(conn, receiver, station, _own(conn, station, u)) for u in upload_ids]
    _settle(instance, found)
    return tuple(status for status, _ in found)


def _settle(instance: Instance, found: Sequence[tuple[UploadStatus, bool]]) -> None:
    """Write back the uploads whose state became final (verified, held)."""
    final = [status for status, changed in found if changed]
    if not final:
        return
    now = instance.clock()
    with instance.catalog.begin() as conn:
        for status in final:
            rows.set_upload(conn, status.upload, now, state=status.state, reason=status.reason)


def _status(
    conn: Connection, receiver: Receiver, station: Station, upload: rows.UploadRow
) -> tuple[UploadStatus, bool]:
    """An upload's state for its station, and whether it changed: what the station's
    ingest job says decides between received, verified and held."""
    state, reason, media_id = upload.state, upload.reason, None
    if upload.state == "received" and upload.placed_path is None:
        reason = "等待入库 waiting: a file of the same name in the intake is being ingested"
    elif upload.state in ("received", "verified", "held") and upload.placed_path:
        job = jobs_db.job_at(conn, station.id, upload.placed_path)
        if job is not None and job.sha256 in (None, upload.sha256):
            if job.state in rows.STORED_STATES:
                state, media_id = "verified", job.media_id
                if job.outcome is Outcome.QUARANTINED and job.media_id is not None:
                    why = media_item(conn, job.media_id).quarantine_reason
                    reason = f"已隔离 quarantined: {why}"
            elif job.state is JobState.HELD:
                state, reason = "held", job.last_error or "held on the intake"
            elif job.state is JobState.VANISHED:
                state, reason = "held", "removed from the intake before it was stored"
            else:
                state = "received"
    offset = upload.received if upload.state != "receiving" else receiver.offset(upload)
    status = UploadStatus(
        upload.id, upload.sha256, upload.size, offset, upload.path, state, reason, media_id
    )
    return status, state != upload.state and state in ("verified", "held")


def upload_offset(
    instance: Instance, receiver: Receiver, station: Station, upload_id: str
) -> UploadStatus:
    """HEAD: the offset to resume from."""
    with instance.catalog.read() as conn:
        found = _own(conn, station, upload_id)
        if found.state in ("failed", "terminated"):
            raise UploadGone(station.id, f"上传已结束 upload {upload_id} is {found.state}")
        return _status(conn, receiver, station, found)[0]


def receive_chunk(
    instance: Instance,
    receiver: Receiver,
    station: Station,
    upload_id: str,
    offset: int,
    checksum: tuple[str, bytes] | None,
    body: Iterable[bytes | bytearray],
    address: str = "",
) -> UploadStatus:
    """PATCH: take the bytes of one chunk, whole or not at all. The chunk that completes the
    upload is answered once the whole file's SHA-256 is checked and the file is in the
    station's intake folder (or waits there for its name to be free)."""
    with instance.catalog.read() as conn:
        upload = _own(conn, station, upload_id)
    if upload.state != "receiving":
        raise UploadGone(station.id, f"上传已结束 upload {upload_id} is {upload.state}")

    def counted() -> int:
        with instance.catalog.read() as conn:
            return _own(conn, station, upload_id).received

    with receiver.chunk(upload, offset, checksum, counted) as chunk:
        try:
            for data in body:
                chunk.write(data)
            digest = chunk.keep()
        except (ChunkChecksumMismatch, UploadTooLarge) as exc:
            alert_refusal(
                instance, receiver, station.id, exc, address, upload=upload_id, path=upload.path
            )
            raise
        if digest is None:
            with instance.catalog.begin() as conn:
                rows.set_upload(conn, upload.id, instance.clock(), received=chunk.end)
            return UploadStatus(
                upload.id, upload.sha256, upload.size, chunk.end, upload.path, "receiving",
                None, None,
            )  # fmt: skip
        # Still under the upload's lock: no other request meets it whole but not yet done.
        return _complete(instance, receiver, station, upload, digest, address)


def _complete(
    instance: Instance,
    receiver: Receiver,
    station: Station,
    upload: rows.UploadRow,
    digest: str,
    address: str,
) -> UploadStatus:
    now = instance.clock()
    if digest != upload.sha256:
        receiver.remove(upload.id)
        reason = (
            f"文件摘要不符 SHA-256 of the bytes received is {digest}, "
            f"the station declared {upload.sha256}"
        )
        with instance.catalog.begin() as conn:
            rows.set_upload(
                conn, upload.id, now, state="failed", reason=reason, received=upload.size
            )
        problem = UploadDigestMismatch(station.id, reason)
        alert_refusal(
            instance, receiver, station.id, problem, address, upload=upload.id, path=upload.path
        )
        raise problem
    with instance.catalog.begin() as conn:  # the last chunk counts with the completion
        rows.set_upload(conn, upload.id, now, state="received", received=upload.size)
        custody.append(
            conn,
            EventKind.UPLOAD_RECEIVED,
            STATION_ACTOR,
            station_id=station.id,
            subject=upload.path,
            details={
                "sha256": upload.sha256,
                "size": upload.size,
                "upload": upload.id,
                "claim": upload.claim,
                "docked_at": utc_text(upload.docked_at) if upload.docked_at else None,
                "address": address,
            },
            now=now,
        )
        _place_waiting(conn, instance, receiver, station)
        placed = rows.upload(conn, upload.id)
        assert placed is not None
        return _status(conn, receiver, station, placed)[0]


def _place_waiting(
    conn: Connection, instance: Instance, receiver: Receiver, station: Station
) -> None:
    """Move into the intake every whole upload of the station whose name is free there."""
    for waiting in rows.unplaced(conn, station.id):
        target = receive.place(receiver, station, waiting)
        if target is not None:
            rows.set_upload(conn, waiting.id, instance.clock(), placed_path=str(target))


def terminate_upload(
    instance: Instance, receiver: Receiver, station: Station, upload_id: str
) -> UploadStatus:
    """DELETE (tus termination): the station gives the upload up; its bytes are removed."""
    with instance.catalog.begin() as conn:
        found = _own(conn, station, upload_id)
        if found.state != "receiving":
            raise UploadGone(station.id, f"上传已结束 upload {upload_id} is {found.state}")
        rows.set_upload(conn, upload_id, instance.clock(), state="terminated")
    receiver.remove(upload_id)
    return UploadStatus(found.id, found.sha256, found.size, 0, found.path, "terminated", None, None)
