"""Durable ingest jobs: one row per file seen on a dock, advanced step by step.

A job is claimed by one owner at a time (``host:pid:token``). An owner that died — its
process is gone from this host, or its lease ran out — loses the claim, so a crashed sweep's
jobs are taken over by the next run and resumed from their last recorded step.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from pipeline import processes
from pipeline.catalog.schema import ingest_jobs, media
from pipeline.models import JobState, Outcome, SourceFile
from pipeline.names import from_raw

LEASE = timedelta(minutes=15)


@dataclass(frozen=True)
class Job:
    id: int
    station_id: str
    source_path: str
    size: int
    mtime_ns: int
    state: JobState
    sha256: str | None
    media_id: int | None
    outcome: Outcome | None
    attempts: int
    owner: str | None
    last_error: str | None
    source_raw: bytes | None = None
    dev: int | None = None
    ino: int | None = None
    ctime_ns: int | None = None
    released_to: str | None = None
    grown_from: int | None = None

    def source(self) -> SourceFile:
        """The dock file this job is about, with its real (possibly non-UTF-8) name."""
        return SourceFile(
            self.station_id,
            from_raw(self.source_path, self.source_raw),
            self.size,
            self.mtime_ns,
            text=self.source_path,
            dev=self.dev,
            ino=self.ino,
            ctime_ns=self.ctime_ns,
        )


def new_owner() -> str:
    """An owner id for one sweep: host and pid (to tell a dead owner) and a unique token."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_alive(owner: str) -> bool:
    """False once the owner's process is known to be gone (another machine's: only its
    lease can tell)."""
    host, pid, _ = owner.rsplit(":", 2)
    return not processes.gone(host, pid)


def _job(row: Any) -> Job:
    return Job(
        row.id,
        row.station_id,
        row.source_path,
        row.size,
        row.mtime_ns,
        JobState(row.state),
        row.sha256,
        row.media_id,
        Outcome(row.outcome) if row.outcome else None,
        row.attempts,
        row.owner,
        row.last_error,
        row.source_raw,
        row.dev,
        row.ino,
        row.ctime_ns,
        row.released_to,
        row.grown_from,
    )


def find_or_create(
    conn: Connection, source: SourceFile, now: datetime, *, grown_from: int | None = None
) -> Job:
    """The job of this exact file version (path, size, mtime); created when new. The file's
    identity (device, inode, ctime) is recorded as seen now: the copy must read that file."""
    key = and_(
        ingest_jobs.c.station_id == source.station_id,
        ingest_jobs.c.source_path == source.shown,
        ingest_jobs.c.size == source.size,
        ingest_jobs.c.mtime_ns == source.mtime_ns,
    )
    identity = {"dev": source.dev, "ino": source.ino, "ctime_ns": source.ctime_ns}
    row = conn.execute(select(ingest_jobs).where(key)).one_or_none()
    if row is None:
        conn.execute(
            ingest_jobs.insert().values(
                station_id=source.station_id,
                source_path=source.shown,
                source_raw=source.raw,
                size=source.size,
                mtime_ns=source.mtime_ns,
                state=JobState.PENDING.value,
                attempts=0,
                created_at=now,
                updated_at=now,
                grown_from=grown_from,
                **identity,
            )
        )
        row = conn.execute(select(ingest_jobs).where(key)).one()
    return _job(row)


def changed_since(job: Job, source: SourceFile) -> bool:
    """True when the dock entry is not the one the job last saw in any way: another inode,
    or a change of its metadata (a chmod changes the ctime, not the mtime)."""
    seen = (job.dev, job.ino, job.ctime_ns)
    now = (source.dev, source.ino, source.ctime_ns)
    return None not in now and seen != now


def note_identity(conn: Connection, job_id: int, source: SourceFile) -> None:
    conn.execute(
        update(ingest_jobs)
        .where(ingest_jobs.c.id == job_id)
        .values(dev=source.dev, ino=source.ino, ctime_ns=source.ctime_ns)
    )


def recently_released(conn: Connection, station_id: str, since: datetime) -> list[Job]:
    """Jobs of the station moved to ``.ingested/`` since ``since``, newest version of each."""
    rows = conn.execute(
        select(ingest_jobs)
        .where(
            ingest_jobs.c.station_id == station_id,
            ingest_jobs.c.released_to.is_not(None),
            ingest_jobs.c.state == JobState.DONE.value,
            ingest_jobs.c.updated_at >= since,
        )
        .order_by(ingest_jobs.c.id)
    )
    latest: dict[str, Job] = {}
    for row in rows:
        job = _job(row)
        assert job.released_to is not None
        latest[job.released_to] = job
    return list(latest.values())


def released_to(conn: Connection, station_id: str, path: str) -> Job | None:
    """The latest job whose source was moved to ``path`` (below the station root)."""
    row = conn.execute(
        select(ingest_jobs)
        .where(ingest_jobs.c.station_id == station_id, ingest_jobs.c.released_to == path)
        .order_by(ingest_jobs.c.id.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else _job(row)


def job_at(conn: Connection, station_id: str, source_path: str) -> Job | None:
    """The newest ingest job of the file at ``source_path`` on the station."""
    row = conn.execute(
        select(ingest_jobs)
        .where(ingest_jobs.c.station_id == station_id, ingest_jobs.c.source_path == source_path)
        .order_by(ingest_jobs.c.id.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else _job(row)


def get(conn: Connection, job_id: int) -> Job:
    return _job(conn.execute(select(ingest_jobs).where(ingest_jobs.c.id == job_id)).one())


def claim(conn: Connection, job_id: int, owner: str, now: datetime) -> Job | None:
    """Take the job for ``owner`` unless a live owner holds it; None when held elsewhere."""
    job = get(conn, job_id)
    if job.state.finished:
        return None
    row = conn.execute(
        select(ingest_jobs.c.owner, ingest_jobs.c.lease_until).where(ingest_jobs.c.id == job_id)
    ).one()
    held = (
        row.owner is not None
        and row.owner != owner
        and row.lease_until is not None
        and row.lease_until > now
        and owner_alive(row.owner)
    )
    if held:
        return None
    # Compare-and-set on the previous owner: two claimants cannot both win.
    previous = (
        ingest_jobs.c.owner.is_(None) if row.owner is None else ingest_jobs.c.owner == row.owner
    )
    taken = conn.execute(
        update(ingest_jobs)
        .where(ingest_jobs.c.id == job_id, previous)
        .values(
            owner=owner,
            lease_until=now + LEASE,
            # A step of the same sweep re-claiming its job is not a new attempt.
            attempts=ingest_jobs.c.attempts + (0 if row.owner == owner else 1),
            updated_at=now,
        )
    ).rowcount
    return get(conn, job_id) if taken == 1 else None


def advance(conn: Connection, job_id: int, state: JobState, now: datetime, **values: Any) -> None:
    """Record that a job reached ``state`` (with e.g. sha256, media_id, outcome)."""
    finished = state.finished
    conn.execute(
        update(ingest_jobs)
        .where(ingest_jobs.c.id == job_id)
        .values(
            state=state.value,
            updated_at=now,
            lease_until=None if finished else now + LEASE,
            owner=None if finished else ingest_jobs.c.owner,
            **{k: (v.value if isinstance(v, Outcome) else v) for k, v in values.items()},
        )
    )


def fail(conn: Connection, job_id: int, error: str, now: datetime) -> None:
    """A system error: keep the job where it stands and let the next run retry it."""
    conn.execute(
        update(ingest_jobs)
        .where(ingest_jobs.c.id == job_id)
        .values(last_error=error, owner=None, lease_until=None, updated_at=now)
    )


def unfinished(conn: Connection, station_id: str | None = None) -> list[Job]:
    """Jobs not yet done: what a crash or a system error left behind."""
    query = select(ingest_jobs).where(
        ingest_jobs.c.state.notin_([s.value for s in JobState if s.finished])
    )
    if station_id is not None:
        query = query.where(ingest_jobs.c.station_id == station_id)
    return [_job(r) for r in conn.execute(query.order_by(ingest_jobs.c.id))]


def held(conn: Connection, station_id: str) -> list[Job]:
    query = select(ingest_jobs).where(
        ingest_jobs.c.state == JobState.HELD.value, ingest_jobs.c.station_id == station_id
    )
    return [_job(r) for r in conn.execute(query.order_by(ingest_jobs.c.id))]


def reopen(conn: Connection, job_id: int, now: datetime) -> None:
    """The same file version appeared on the dock again after it was released: take it anew
    (it becomes a sighting of the archived item), rather than skipping it unseen."""
    conn.execute(
        update(ingest_jobs)
        .where(ingest_jobs.c.id == job_id)
        .values(
            state=JobState.PENDING.value,
            outcome=None,
            owner=None,
            lease_until=None,
            last_error=None,
            updated_at=now,
        )
    )


# ---------------------------------------------------------------------- the queue view


@dataclass(frozen=True)
class StateCount:
    station_id: str
    state: JobState
    count: int
    bytes: int


def unfinished_by_state(conn: Connection) -> list[StateCount]:
    """Unfinished jobs per station and state, with their bytes."""
    query = (
        select(
            ingest_jobs.c.station_id,
            ingest_jobs.c.state,
            func.count(),
            func.coalesce(func.sum(ingest_jobs.c.size), 0),
        )
        .where(ingest_jobs.c.state.notin_([s.value for s in JobState if s.finished]))
        .group_by(ingest_jobs.c.station_id, ingest_jobs.c.state)
        .order_by(ingest_jobs.c.station_id, ingest_jobs.c.state)
    )
    return [StateCount(r[0], JobState(r[1]), int(r[2]), int(r[3])) for r in conn.execute(query)]


def failing(conn: Connection) -> list[Job]:
    """Unfinished jobs whose last attempt hit a system error, oldest first."""
    query = select(ingest_jobs).where(
        ingest_jobs.c.state.notin_([s.value for s in JobState if s.finished]),
        ingest_jobs.c.last_error.is_not(None),
    )
    return [_job(r) for r in conn.execute(query.order_by(ingest_jobs.c.id))]


@dataclass(frozen=True)
class Backlog:
    station_id: str
    count: int
    footage_s: float  # recorded seconds of the items still to derive


def derive_backlog(conn: Connection) -> list[Backlog]:
    """Per station: jobs catalogued whose proxies and release are still to come."""
    query = (
        select(
            ingest_jobs.c.station_id,
            func.count(),
            func.coalesce(func.sum(media.c.duration_s), 0.0),
        )
        .select_from(ingest_jobs.outerjoin(media, media.c.id == ingest_jobs.c.media_id))
        .where(ingest_jobs.c.state == JobState.CATALOGUED.value)
        .group_by(ingest_jobs.c.station_id)
        .order_by(ingest_jobs.c.station_id)
    )
    return [Backlog(r[0], int(r[1]), float(r[2])) for r in conn.execute(query)]


@dataclass(frozen=True)
class Waiting:
    station_id: str
    source_path: str
    since: datetime  # when the job was opened


def oldest_unfinished(conn: Connection) -> list[Waiting]:
    """Per station, the unfinished job opened first."""
    first = (
        select(ingest_jobs.c.station_id, func.min(ingest_jobs.c.id).label("id"))
        .where(ingest_jobs.c.state.notin_([s.value for s in JobState if s.finished]))
        .group_by(ingest_jobs.c.station_id)
        .subquery()
    )
    query = (
        select(ingest_jobs.c.station_id, ingest_jobs.c.source_path, ingest_jobs.c.created_at)
        .join(first, first.c.id == ingest_jobs.c.id)
        .order_by(ingest_jobs.c.station_id)
    )
    return [Waiting(r[0], r[1], r[2]) for r in conn.execute(query)]


def sizes(conn: Connection, job_ids: list[int]) -> dict[int, int]:
    """The bytes of each job's file, for a progress bar in bytes."""
    found: dict[int, int] = {}
    for start in range(0, len(job_ids), 500):  # bound the IN list
        part = job_ids[start : start + 500]
        query = select(ingest_jobs.c.id, ingest_jobs.c.size).where(ingest_jobs.c.id.in_(part))
        found.update({int(r[0]): int(r[1]) for r in conn.execute(query)})
    return found
