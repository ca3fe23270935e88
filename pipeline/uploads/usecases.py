"""The station API's use cases: one function per thing a station (or an admin) does.

The web layer (``interfaces/web/dock.py``) parses the HTTP of the tus protocol and calls
these; ``evidence stations token`` and ``evidence stations list`` call the admin ones. Each
owns its transaction and returns a frozen dataclass (``plain()`` gives its JSON).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import uploads as rows
from pipeline.catalog.media import get as media_item
from pipeline.custody import log as custody
from pipeline.errors import (
    AlreadyArchived,
    ChunkChecksumMismatch,
    StationApiError,
    StationError,
    StationForbidden,
    StationTokenRefused,
    UploadDigestMismatch,
    UploadGone,
    UploadNotFound,
    UploadRefused,
    UploadTooLarge,
)
from pipeline.instance import Instance
from pipeline.models import EventKind, JobState, Outcome, Station
from pipeline.registry.records import require_registrar
from pipeline.registry.stations import list_stations_in, station_in
from pipeline.uploads import receive
from pipeline.uploads.receive import Receiver

TOKEN_PREFIX = "evst_"
#: Who the custody log names for what a station did (the station id is in the event too).
STATION_ACTOR = "station-api"
#: ``last_used_at`` of a token is written at most this often (not at every chunk).
TOUCH_EVERY = timedelta(minutes=1)
MAX_DIGESTS = 1000
_HEX = frozenset("0123456789abcdef")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------------ admin: tokens


@dataclass(frozen=True)
class IssuedToken:
    station_id: str
    token: str  # shown once; the catalog keeps its SHA-256 only
    created_at: datetime


@dataclass(frozen=True)
class RevokedTokens:
    station_id: str
    revoked: int


def issue_token(instance: Instance, station_id: str) -> IssuedToken:
    """A new bearer token for a push station (its earlier ones stay valid until revoked)."""
    now = instance.clock()
    with instance.catalog.begin() as conn:
        actor = instance.actor or ""
        require_registrar(conn, actor)
        station = station_in(conn, station_id)
        if not station.pushes:
            raise StationError(
                station_id, "不是推送采集站 not a push station (evidence stations set ID --push)"
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        digest = token_digest(token)
        rows.add_token(conn, digest, station_id, actor, now)
        custody.append(
            conn,
            EventKind.STATION_CHANGED,
            actor,
            station_id=station_id,
            subject=station_id,
            details={"token": "issued", "token_sha256": digest[:16]},
            now=now,
        )
    return IssuedToken(station_id, token, now)


def revoke_tokens(instance: Instance, station_id: str) -> RevokedTokens:
    """Revoke every token of the station, at once: its next request is refused."""
    now = instance.clock()
    with instance.catalog.begin() as conn:
        actor = instance.actor or ""
        require_registrar(conn, actor)
        station_in(conn, station_id)
        count = rows.revoke_tokens(conn, station_id, actor, now)
        custody.append(
            conn,
            EventKind.STATION_CHANGED,
            actor,
            station_id=station_id,
            subject=station_id,
            details={"token": "revoked", "count": count},
            now=now,
        )
    return RevokedTokens(station_id, count)


# ------------------------------------------------------------------------ authentication


def authenticate(
    instance: Instance, receiver: Receiver, token: str, station_id: str, address: str = ""
) -> Station:
    """The push station a request may act for: its token must be known, not revoked, and
    the station's own. A refusal is a custody alert (at most one a minute per origin)."""
    now = instance.clock()
    digest = token_digest(token) if token else ""
    with instance.catalog.read() as conn:
        found = rows.token(conn, digest) if digest else None
        known = {s.id: s for s in list_stations_in(conn)}
    problem: StationApiError | None = None
    if found is None or found.revoked_at is not None:
        what = "no token" if not token else "a revoked token" if found else "an unknown token"
        problem = StationTokenRefused(
            station_id, f"令牌无效 station token refused ({what}): ask for a new one"
        )
    elif found.station_id != station_id:
        problem = StationForbidden(
            station_id,
            f"令牌不属于该采集站 the token is station {found.station_id}'s, not {station_id}'s",
        )
    elif station_id not in known or not known[station_id].pushes:
        problem = StationForbidden(
            station_id, f"采集站 {station_id} 不是推送采集站 not a push station"
        )
    if problem is not None:
        _alert(instance, receiver, station_id if station_id in known else None, problem, address)
        raise problem
    assert found is not None
    if found.last_used_at is None or now - found.last_used_at >= TOUCH_EVERY:
        with instance.catalog.begin() as conn:
            rows.touch_token(conn, digest, now)
    return known[station_id]


def _alert(
    instance: Instance,
    receiver: Receiver,
    station_id: str | None,
    problem: StationApiError,
    address: str,
    **details: Any,
) -> None:
    key = (problem.code, problem.station_id, address, str(details.get("upload", "")))
    if not receiver.should_alert(key, time.monotonic()):
        return
    with instance.catalog.begin() as conn:
        custody.append(
            conn,
            EventKind.ALERT,
            STATION_ACTOR,
            station_id=station_id,
            subject=problem.station_id,
            details={"code": problem.code, "reason": str(problem), "address": address, **details},
            now=instance.clock(),
        )


# --------------------------------------------------------------- register, keepalive, time


@dataclass(frozen=True)
class StationReport:
    """What a station says of itself at register and keepalive."""

    software_version: str = ""
    free_disk_bytes: int | None = None
    queue_length: int | None = None
    recorders: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class Welcome:
    station: str
    server_time: str
    keepalive_s: float
    max_upload_bytes: int
    max_concurrent_uploads: int
    chunk_bytes: int
    uploads: str


def keepalive(
    instance: Instance,
    station: Station,
    report: StationReport,
    *,
    register: bool = False,
    address: str = "",
) -> Welcome:
    """Record the station's state (online, version, free disk, queue, recorders docked)
    and answer the server's clock and limits."""
    now = instance.clock()
    values = {
        "software_version": report.software_version[:100],
        "free_disk_bytes": report.free_disk_bytes,
        "queue_length": report.queue_length,
        "recorders": [dict(r) for r in report.recorders[:200]],
        "address": address[:64],
    }
    with instance.catalog.begin() as conn:
        rows.save_presence(conn, station.id, values, now, register=register)
    dock = instance.settings.dock
    return Welcome(
        station.id,
        _utc(now),
        dock.keepalive_s,
        dock.max_upload_bytes,
        dock.max_concurrent_uploads,
        dock.chunk_bytes,
        f"/api/v1/dock/{station.id}/uploads",
    )


@dataclass(frozen=True)
class ServerTime:
    server_time: str
    epoch_ms: int


def server_time(instance: Instance) -> ServerTime:
    now = instance.clock()
    return ServerTime(_utc(now), int(now.timestamp() * 1000))


@dataclass(frozen=True)
class Drift:
    serial: str
    offset_s: float  # positive: the recorder's clock was fast
    observed_at: datetime


@dataclass(frozen=True)
class Recorded:
    recorded: int


def report_drift(instance: Instance, station: Station, drifts: Sequence[Drift]) -> Recorded:
    """The recorder clocks the station saw when it set them, kept per device."""
    now = instance.clock()
    with instance.catalog.begin() as conn:
        count = rows.add_clock_reports(
            conn,
            station.id,
            [(d.serial[:200], d.offset_s, d.observed_at) for d in drifts[:1000]],
            now,
        )
    return Recorded(count)


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
    bad = [d for d in wanted if len(d) != 64 or not set(d) <= _HEX]
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
    if len(sha256) != 64 or not set(sha256) <= _HEX:
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
        _alert(instance, receiver, station.id, problem, address, path=meta.get("path", ""))
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
        _alert(instance, receiver, station.id, exc, address)
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
            _alert(instance, receiver, station.id, exc, address, upload=upload_id, path=upload.path)
            raise
        now = instance.clock()
        with instance.catalog.begin() as conn:
            rows.set_upload(conn, upload.id, now, received=chunk.end)
    if digest is None:
        return UploadStatus(
            upload.id, upload.sha256, upload.size, chunk.end, upload.path, "receiving", None, None
        )
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
            rows.set_upload(conn, upload.id, now, state="failed", reason=reason)
        problem = UploadDigestMismatch(station.id, reason)
        _alert(instance, receiver, station.id, problem, address, upload=upload.id, path=upload.path)
        raise problem
    with instance.catalog.begin() as conn:
        rows.set_upload(conn, upload.id, now, state="received")
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
                "docked_at": _utc(upload.docked_at) if upload.docked_at else None,
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


# ------------------------------------------------------------------ admin: who is online


@dataclass(frozen=True)
class StationState:
    station: Station
    online: bool | None  # None: a folder station (no keepalives to judge by)
    last_seen: datetime | None
    software_version: str
    free_disk_bytes: int | None
    queue_length: int | None
    recorders: tuple[dict[str, str], ...]
    receiving: int  # uploads in progress
    waiting: int  # received, not yet verified: the server's backlog of the station's
    tokens: int  # valid tokens


def station_states(instance: Instance) -> tuple[StationState, ...]:
    """Every station, and for a push station whether it is online (a keepalive within
    ``dock.silent_after_s``), what it said last, and its uploads still open."""
    now = instance.clock()
    silent = timedelta(seconds=instance.settings.dock.silent_after_s)
    with instance.catalog.read() as conn:
        found = list_stations_in(conn)
        seen = rows.all_presence(conn)
        counts = rows.open_counts(conn)
        valid = {
            s.id: sum(t.revoked_at is None for t in rows.tokens_of(conn, s.id))
            for s in found
            if s.pushes
        }
    states = []
    for s in found:
        p = seen.get(s.id)
        c = counts.get(s.id, {})
        states.append(
            StationState(
                s,
                (p is not None and now - p.last_seen <= silent) if s.pushes else None,
                p.last_seen if p else None,
                p.software_version if p else "",
                p.free_disk_bytes if p else None,
                p.queue_length if p else None,
                p.recorders if p else (),
                c.get("receiving", 0),
                c.get("received", 0),
                valid.get(s.id, 0),
            )
        )
    return tuple(states)


def alert_silent_stations(instance: Instance) -> tuple[str, ...]:
    """For the compliance sweep: an alert for each push station silent for longer than
    ``dock.silent_after_s`` (once per silence: its next keepalive ends it)."""
    now = instance.clock()
    silent = timedelta(seconds=instance.settings.dock.silent_after_s)
    alerted = []
    with instance.catalog.begin() as conn:
        seen = rows.all_presence(conn)
        for s in list_stations_in(conn):
            if not s.pushes:
                continue
            p = seen.get(s.id)
            if p is None or p.silent_alerted_at is not None or now - p.last_seen <= silent:
                continue
            custody.append(
                conn,
                EventKind.ALERT,
                instance.actor or instance.settings.actor,
                station_id=s.id,
                subject=s.id,
                details={
                    "code": "station-silent",
                    "reason": f"采集站离线 no keepalive since {_utc(p.last_seen)}",
                },
                now=now,
            )
            rows.mark_silence_alerted(conn, s.id, now)
            alerted.append(s.id)
    return tuple(alerted)
