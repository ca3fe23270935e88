"""Ingest of one file, step by step, each step recorded in its durable job.

    PENDING ──store──▶ STORED ──catalogue──▶ CATALOGUED ──derive──▶ DERIVED ──release──▶ DONE
       └─ checksum mismatch / unreadable source ──▶ HELD (source stays on the dock)

Each step commits its job state together with its custody events, so a crash between steps
loses nothing: the next run resumes at the recorded step, and every step is idempotent (the
store is content-addressed, a media item is keyed by SHA-256, a sighting by its job).

A run may stop early and leave the rest to a later one: :func:`store_job` after the copy (a
flow caps hashing apart from the rest), :func:`catalogue_job` before derivation (the watcher
catalogues at once and makes proxies behind).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection

from pipeline import custody, probe
from pipeline.catalog import Catalog, open_catalog
from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import media as media_db
from pipeline.derive import Derived, make_derivatives
from pipeline.errors import (
    CatalogError,
    ChecksumMismatch,
    DeviceError,
    EvidenceError,
    MediaError,
    SourceChanged,
    SourceError,
)
from pipeline.identify import device_verdict, identify
from pipeline.models import (
    EventKind,
    FileReport,
    Identification,
    JobState,
    MediaKind,
    MediaStatus,
    Outcome,
    ProbeResult,
    SourceFile,
    Station,
)
from pipeline.settings import Settings
from pipeline.store import ArchiveStore, open_store

log = logging.getLogger(__name__)

#: Folder under a station root that holds released sources (ingest.release = "move").
INGESTED_DIR = ".ingested"


@dataclass(frozen=True)
class IngestContext:
    """What every step needs, built once per sweep."""

    catalog: Catalog
    store: ArchiveStore
    settings: Settings
    owner: str  # this sweep's claim on its jobs (see catalog.jobs)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    @property
    def actor(self) -> str:
        return self.settings.actor


def prepare(ctx: IngestContext, sources: list[SourceFile]) -> list[int]:
    """Open (or find) the job of every source; return those that still need work."""
    todo: list[int] = []
    with ctx.catalog.begin() as conn:
        for source in sources:
            job = jobs_db.find_or_create(conn, source, ctx.clock())
            if job.state is JobState.DONE:
                jobs_db.reopen(conn, job.id, ctx.clock())
            todo.append(job.id)
    return todo


def ingest_job(ctx: IngestContext, station: Station, job_id: int) -> FileReport:
    """Run a job from its recorded step to the end. Never raises for bad input: a file ends
    archived, a duplicate, quarantined with a reason, or FAILED on a system error (the job
    then stays where it stands and the next run retries it)."""
    report = _run(ctx, station, job_id, stop_at=JobState.DONE)
    assert report is not None, "a full run always ends in a report"
    return report


def store_job(ctx: IngestContext, station: Station, job_id: int) -> FileReport | None:
    """Only the first step (copy, hash, verify): None when the job may go on, else how the
    file ended. Lets a flow cap hashing apart from transcoding."""
    return _run(ctx, station, job_id, stop_at=JobState.STORED)


def catalogue_job(ctx: IngestContext, station: Station, job_id: int) -> FileReport | None:
    """Everything but derivation: None when the job goes on to :func:`ingest_job` for its
    proxy and release, else how the file ended (a duplicate or a file quarantined at probe
    needs no proxy, and is released here). Archivists see a file as soon as it is
    catalogued, while proxies, which can take minutes, are made later."""
    return _run(ctx, station, job_id, stop_at=JobState.CATALOGUED)


def _run(
    ctx: IngestContext, station: Station, job_id: int, *, stop_at: JobState
) -> FileReport | None:
    """Run the job's steps from where it stands; ``stop_at`` STORED or CATALOGUED stops
    before cataloguing or before deriving (None: the job goes on in a later pass)."""
    with ctx.catalog.begin() as conn:
        job = jobs_db.claim(conn, job_id, ctx.owner, ctx.clock())
        if job is None:
            held = jobs_db.get(conn, job_id)
    if job is None:
        return _report_unclaimed(ctx, held)
    source = SourceFile(job.station_id, Path(job.source_path), job.size, job.mtime_ns)
    try:
        if job.state is JobState.PENDING:
            outcome = _store(ctx, job, source)
            if outcome is not None:
                return outcome
            job = _reload(ctx, job_id)
        if stop_at is JobState.STORED:
            return None
        if job.state is JobState.STORED:
            _catalogue(ctx, station, job, source)
            job = _reload(ctx, job_id)
        if job.state is JobState.CATALOGUED and stop_at is JobState.CATALOGUED:
            return None
        if job.state is JobState.CATALOGUED:
            _derive(ctx, job)
            job = _reload(ctx, job_id)
        if job.state is JobState.DERIVED:
            _release(ctx, station, job, source)
            job = _reload(ctx, job_id)
        return _report(ctx, job, source)
    except EvidenceError as exc:
        # System errors (store unwritable, catalog down, ffmpeg missing): decide nothing.
        log.error("ingest of %s failed: %s", source.path, exc)
        with ctx.catalog.begin() as conn:
            jobs_db.fail(conn, job_id, str(exc), ctx.clock())
        return FileReport(str(source.path), Outcome.FAILED, reason=str(exc))


def _reload(ctx: IngestContext, job_id: int) -> jobs_db.Job:
    with ctx.catalog.begin() as conn:
        return jobs_db.get(conn, job_id)


def _store(ctx: IngestContext, job: jobs_db.Job, source: SourceFile) -> FileReport | None:
    """Copy + hash + fsync + re-read. Returns a report when the job cannot go on."""
    try:
        digest = ctx.store.put_original(source.path)
    except SourceChanged as exc:
        # Still being written: not a verdict on the file; the next sweep sees its new size
        # and mtime as a new job.
        return FileReport(str(source.path), Outcome.WAITING, reason=str(exc))
    except SourceError as exc:
        if not source.path.exists():
            return FileReport(str(source.path), Outcome.WAITING, reason="vanished from the dock")
        return _hold(ctx, job, source, exc.code, str(exc))
    except ChecksumMismatch as exc:
        return _hold(ctx, job, source, exc.code, str(exc))
    now = ctx.clock()
    with ctx.catalog.begin() as conn:
        jobs_db.advance(conn, job.id, JobState.STORED, now, sha256=digest.sha256)
        custody.append(
            conn,
            EventKind.VERIFIED,
            ctx.actor,
            station_id=source.station_id,
            subject=str(source.path),
            details={"sha256": digest.sha256, "size": digest.size, "job": job.id},
            now=now,
        )
    return None


def _hold(
    ctx: IngestContext, job: jobs_db.Job, source: SourceFile, code: str, reason: str
) -> FileReport:
    """No verified copy exists: record the quarantine and keep the source on the dock."""
    now = ctx.clock()
    with ctx.catalog.begin() as conn:
        entry = media_db.add_quarantine(
            conn, source=source, code=code, reason=reason, now=now, job_id=job.id
        )
        jobs_db.advance(conn, job.id, JobState.HELD, now, outcome=Outcome.QUARANTINED)
        custody.append(
            conn,
            EventKind.QUARANTINED,
            ctx.actor,
            station_id=source.station_id,
            subject=str(source.path),
            details={"code": code, "reason": reason, "quarantine": entry, "source_kept": True},
            now=now,
        )
    log.warning("held on the dock: %s", reason)
    return FileReport(str(source.path), Outcome.QUARANTINED, reason=reason)


def _catalogue(ctx: IngestContext, station: Station, job: jobs_db.Job, source: SourceFile) -> None:
    """Probe the stored original, identify its device and officer, and record the media
    item — or a sighting of a known one."""
    assert job.sha256 is not None
    with ctx.catalog.begin() as conn:
        known = media_db.by_sha256(conn, job.sha256)
    if known is not None:
        _sight(ctx, job, source, known.id)
        return
    problem: MediaError | DeviceError | None = None
    with ctx.store.original_file(job.sha256) as original:
        try:
            probed = probe.probe(original)
        except MediaError as exc:
            problem = exc
            probed = ProbeResult(kind=MediaKind.OTHER)
    ident = None
    if probed.kind is not MediaKind.DOCUMENT:
        # Text records (笔录) are scanned or written, not recorded: no device to tie them to.
        # An unreadable file is still tied to its device (path and name), for health reports.
        with ctx.catalog.begin() as conn:
            ident, device = identify(
                conn, ctx.settings.devices, station.root, source, probed, ctx.clock()
            )
        verdict, flags = device_verdict(ident, device, ctx.settings.devices.unknown)
        ident = replace(ident, flags=(*ident.flags, *flags))
        problem = problem or verdict
    try:
        _insert_item(ctx, job, source, probed, ident, problem)
    except CatalogError as exc:
        # Two sweeps stored the same bytes at once and the other inserted first (the unique
        # SHA-256 refused ours): this file is a sighting of that item.
        with ctx.catalog.begin() as conn:
            known = media_db.by_sha256(conn, job.sha256)
        if known is None:
            raise exc
        _sight(ctx, job, source, known.id)


def _sight(ctx: IngestContext, job: jobs_db.Job, source: SourceFile, media_id: int) -> None:
    now = ctx.clock()
    with ctx.catalog.begin() as conn:
        media_db.add_sighting(conn, media_id, source, job.id, now)
        jobs_db.advance(
            conn, job.id, JobState.DERIVED, now, media_id=media_id, outcome=Outcome.DUPLICATE
        )
        custody.append(
            conn,
            EventKind.SIGHTED,
            ctx.actor,
            media_id=media_id,
            station_id=source.station_id,
            subject=str(source.path),
            details={"sha256": job.sha256, "job": job.id},
            now=now,
        )


def _insert_item(
    ctx: IngestContext,
    job: jobs_db.Job,
    source: SourceFile,
    probed: ProbeResult,
    ident: Identification | None,
    problem: MediaError | DeviceError | None,
) -> None:
    assert job.sha256 is not None
    now = ctx.clock()
    with ctx.catalog.begin() as conn:
        media_id = media_db.insert(
            conn,
            sha256=job.sha256,
            size=job.size,
            source=source,
            probe=probed,
            ident=ident,
            status=MediaStatus.ARCHIVED,
            now=now,
        )
        media_db.add_sighting(conn, media_id, source, job.id, now)
        custody.append(
            conn,
            EventKind.INGESTED,
            ctx.actor,
            media_id=media_id,
            station_id=source.station_id,
            subject=str(source.path),
            details={
                "sha256": job.sha256,
                "size": job.size,
                "kind": probed.kind.value,
                "original_name": source.path.name,
                "device": ident.device_serial if ident else None,
                "officer": ident.officer_id if ident else None,
                "flags": [f.code for f in ident.flags] if ident else [],
                "job": job.id,
            },
            now=now,
        )
        if problem is not None:
            record_quarantine(ctx, conn, media_id, job, source, problem.code, problem.reason, now)
            if isinstance(problem, DeviceError):
                # An upload from an unregistered, lost or retired recorder is a red flag.
                custody.append(
                    conn,
                    EventKind.ALERT,
                    ctx.actor,
                    media_id=media_id,
                    station_id=source.station_id,
                    subject=problem.serial or str(source.path),
                    details={"code": problem.code, "reason": problem.reason},
                    now=now,
                )
        state = JobState.DERIVED if problem else JobState.CATALOGUED
        outcome = Outcome.QUARANTINED if problem else Outcome.ARCHIVED
        jobs_db.advance(conn, job.id, state, now, media_id=media_id, outcome=outcome)


def record_quarantine(
    ctx: IngestContext,
    conn: Connection,
    media_id: int,
    job: jobs_db.Job,
    source: SourceFile,
    code: str,
    reason: str,
    now: datetime,
) -> None:
    """Quarantine a stored item: its bytes stay archived; a person sees the reason."""
    media_db.set_quarantined(conn, media_id, reason)
    entry = media_db.add_quarantine(
        conn,
        source=source,
        code=code,
        reason=reason,
        now=now,
        job_id=job.id,
        sha256=job.sha256,
        media_id=media_id,
    )
    custody.append(
        conn,
        EventKind.QUARANTINED,
        ctx.actor,
        media_id=media_id,
        station_id=source.station_id,
        subject=str(source.path),
        details={"code": code, "reason": reason, "quarantine": entry},
        now=now,
    )
    log.warning("quarantined %s: %s", source.path, reason)


def _derive(ctx: IngestContext, job: jobs_db.Job) -> None:
    """Proxy and thumbnail; an original ffmpeg cannot decode is quarantined."""
    assert job.media_id is not None
    with ctx.catalog.begin() as conn:
        item = media_db.get(conn, job.media_id)
    derived = make_derivatives(ctx.store, ctx.settings, item)
    source = SourceFile(job.station_id, Path(job.source_path), job.size, job.mtime_ns)
    now = ctx.clock()
    with ctx.catalog.begin() as conn:
        record_derivatives(ctx, conn, item.id, job.station_id, derived, now)
        outcome = Outcome.ARCHIVED
        if derived.failure is not None:
            failure = derived.failure
            record_quarantine(ctx, conn, item.id, job, source, failure.code, failure.reason, now)
            outcome = Outcome.QUARANTINED
        jobs_db.advance(conn, job.id, JobState.DERIVED, now, outcome=outcome)


def record_derivatives(
    ctx: IngestContext,
    conn: Connection,
    media_id: int,
    station_id: str,
    derived: Derived,
    now: datetime,
) -> None:
    media_db.set_derived(conn, media_id, derived.proxy_key, derived.thumbnail_key)
    made = (
        (derived.proxy_key, EventKind.PROXY_MADE),
        (derived.thumbnail_key, EventKind.THUMBNAIL_MADE),
    )
    for key, kind in made:
        if key is not None:
            custody.append(
                conn,
                kind,
                ctx.actor,
                media_id=media_id,
                station_id=station_id,
                subject=key,
                details={"key": key},
                now=now,
            )


def release_target(station: Station, source: Path) -> Path:
    """Where ``release = "move"`` puts a source: the same relative path under .ingested/."""
    return station.root / INGESTED_DIR / source.relative_to(station.root)


def _release(ctx: IngestContext, station: Station, job: jobs_db.Job, source: SourceFile) -> None:
    """The stored copy is verified: the source may leave the dock (invariant 2)."""
    assert job.sha256 is not None
    mode = ctx.settings.ingest.release
    where: str | None = None
    if source.path.exists():
        if _changed(source):
            # Same name, other bytes (the dock re-used the name): not ours to remove.
            where = "kept: the file on the dock changed after it was stored"
        elif mode == "delete":
            source.path.unlink()
            where = "deleted"
        else:
            target = _free_name(release_target(station, source.path))
            target.parent.mkdir(parents=True, exist_ok=True)
            source.path.rename(target)
            where = str(target)
    else:
        where = "already gone from the dock (released before a restart)"
    now = ctx.clock()
    with ctx.catalog.begin() as conn:
        custody.append(
            conn,
            EventKind.RELEASED,
            ctx.actor,
            media_id=job.media_id,
            station_id=job.station_id,
            subject=str(source.path),
            details={"mode": mode, "to": where, "sha256": job.sha256},
            now=now,
        )
        jobs_db.advance(conn, job.id, JobState.DONE, now)


def _changed(source: SourceFile) -> bool:
    st = source.path.stat()
    return (st.st_size, st.st_mtime_ns) != (source.size, source.mtime_ns)


def _free_name(target: Path) -> Path:
    """Never overwrite an earlier released file of the same name."""
    candidate, n = target, 1
    while candidate.exists():
        candidate = target.with_name(f"{target.stem}.{n}{target.suffix}")
        n += 1
    return candidate


def _report(ctx: IngestContext, job: jobs_db.Job, source: SourceFile) -> FileReport:
    kind: MediaKind | None = None
    reason = None
    if job.media_id is not None:
        with ctx.catalog.begin() as conn:
            item = media_db.get(conn, job.media_id)
        kind, reason = item.kind, item.quarantine_reason
    outcome = job.outcome or Outcome.FAILED
    return FileReport(str(source.path), outcome, job.sha256, job.media_id, kind, reason)


def _report_unclaimed(ctx: IngestContext, job: jobs_db.Job) -> FileReport:
    if job.state is JobState.HELD:
        with ctx.catalog.begin() as conn:
            entries = [
                e for e in media_db.quarantine_entries(conn) if e.source_path == job.source_path
            ]
        reason = entries[-1].reason if entries else job.last_error
        return FileReport(
            job.source_path, Outcome.QUARANTINED, reason=f"held on the dock: {reason}"
        )
    if job.state is JobState.DONE:
        return _report(
            ctx, job, SourceFile(job.station_id, Path(job.source_path), job.size, job.mtime_ns)
        )
    return FileReport(job.source_path, Outcome.WAITING, reason=f"being ingested by {job.owner}")


def open_context(settings: Settings, owner: str | None = None) -> IngestContext:
    """Catalog (migrated), store and an owner id (a fresh one unless given): everything a
    sweep needs. A process that catalogues in one run and derives in a later one passes the
    same owner to both, so its jobs stay its own in between."""
    return IngestContext(
        catalog=open_catalog(settings.catalog_url),
        store=open_store(settings),
        settings=settings,
        owner=owner or jobs_db.new_owner(),
    )
