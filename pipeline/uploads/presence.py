"""The station API's use cases about the stations themselves: their tokens (issued,
revoked, checked at every request), what they say at register and keepalive, the server's
clock and the recorder clocks they report, and who is online. The uploads are in
``pipeline.uploads.usecases``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.catalog import uploads as rows
from pipeline.custody import log as custody
from pipeline.errors import (
    StationApiError,
    StationError,
    StationForbidden,
    StationTokenRefused,
)
from pipeline.instance import Instance
from pipeline.models import EventKind, Station
from pipeline.registry.records import require_registrar
from pipeline.registry.stations import list_stations_in, station_in
from pipeline.uploads.receive import Receiver

TOKEN_PREFIX = "evst_"
#: Who the custody log names for what a station did (the station id is in the event too).
STATION_ACTOR = "station-api"
#: ``last_used_at`` of a token is written at most this often (not at every chunk).
TOUCH_EVERY = timedelta(minutes=1)
MAX_DIGESTS = 1000
HEX_DIGITS = frozenset("0123456789abcdef")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def utc_text(moment: datetime) -> str:
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
        alert_refusal(
            instance, receiver, station_id if station_id in known else None, problem, address
        )
        raise problem
    assert found is not None
    if found.last_used_at is None or now - found.last_used_at >= TOUCH_EVERY:
        with instance.catalog.begin() as conn:
            rows.touch_token(conn, digest, now)
    return known[station_id]


def alert_refusal(
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
        utc_text(now),
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
    return ServerTime(utc_text(now), int(now.timestamp() * 1000))


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
                    "reason": f"采集站离线 no keepalive since {utc_text(p.last_seen)}",
                },
                now=now,
            )
            rows.mark_silence_alerted(conn, s.id, now)
            alerted.append(s.id)
    return tuple(alerted)
