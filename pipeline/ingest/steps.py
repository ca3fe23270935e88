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
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection

from pipeline import names
from pipeline.catalog import Catalog, open_catalog
from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import media as media_db
from pipeline.catalog import uploads as upload_rows
from pipeline.custody import log as custody
from pipeline.custody import replay
from pipeline.errors import (
    CatalogError,
    ChecksumMismatch,
    DeviceError,
    EvidenceError,
    MediaError,
    NameContradictsContent,
    SourceChanged,
    SourceError,
    StationError,
)
from pipeline.ingest import dockfs
from pipeline.ingest.dockfs import NotARegularFile, OutsideDock
from pipeline.ingest.identify import device_verdict, identify, station_claim
from pipeline.ingest.writers import open_for_writing
from pipeline.media import probe
from pipeline.media.derive import Derived, make_derivatives
from pipeline.models import (
    EventKind,
    FileReport,
    Flag,
    Identification,
    JobState,
    MediaKind,
    MediaStatus,
    Outcome,
    ProbeResult,
    SourceFile,
    Station,
)
from pipeline.names import readable
from pipeline.retention import locks, marks
from pipeline.settings import Settings
from pipeline.storage.local import ArchiveStore, open_store

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


def prepare(ctx: IngestContext, sources: list[SourceFile]) -> tuple[list[int], list[FileReport]]:
    """Open (or find) the job of every source; return those that still need work, and a
    report for each source that could not even be planned (the others go on)."""
    todo: list[int] = []
    failed: list[FileReport] = []
    for source in sources:
        try:
            with ctx.catalog.begin() as conn:
                job_id = _plan_one(ctx, conn, source)
            if job_id is not None:
                todo.append(job_id)
        except Exception as exc:  # one bad entry never stops the station
            log.exception("cannot plan %s", source.shown)
            failed.append(
                FileReport(source.shown, Outcome.FAILED, reason=f"cannot plan: {_describe(exc)}")
            )
    return todo, failed


def _plan_one(ctx: IngestContext, conn: Connection, source: SourceFile) -> int | None:
    """The job of ``source``, opened or reopened; None when there is nothing to do: another
    sweep finished and released this very file between this sweep's scan and now."""
    job = jobs_db.find_or_create(conn, source, ctx.clock(), grown_from=_grown_from(conn, source))
    if job.state is JobState.DONE and not _still_on_dock(source):
        return None  # reopening it would report a recording safely archived as vanished
    if job.state in (JobState.DONE, JobState.VANISHED):
        # The same file version is on the dock again (after a release, or back after it
        # went away): take it anew rather than skipping it unseen.
        jobs_db.reopen(conn, job.id, ctx.clock())
    elif job.state is JobState.HELD and jobs_db.changed_since(job, source):
        # Held (unreadable, sparse…) and changed since in any way, a chmod included: retry.
        jobs_db.reopen(conn, job.id, ctx.clock())
    jobs_db.note_identity(conn, job.id, source)
    return job.id


def _still_on_dock(source: SourceFile) -> bool:
    """Whether the file the scan saw is still there, the same version (a look, not a read:
    whatever reads it later goes through the dock's own checks)."""
    try:
        st = os.lstat(source.path)
    except OSError:
        return False
    same = (st.st_size, st.st_mtime_ns) == (source.size, source.mtime_ns)
    return same and (source.ino is None or (st.st_dev, st.st_ino) == (source.dev, source.ino))


def _grown_from(conn: Connection, source: SourceFile) -> int | None:
    """A file in ``.ingested/`` that is not what was released there: a writer went on after
    the release. Its new bytes become a new item, linked to the first."""
    if INGESTED_DIR not in source.path.parts:
        return None
    earlier = jobs_db.released_to(conn, source.station_id, source.shown)
    return None if earlier is None else earlier.id


def _describe(exc: BaseException) -> str:
    """One line for an unexpected error: its kind and message, never a traceback."""
    text = str(exc) if isinstance(exc, EvidenceError) else f"{type(exc).__name__}: {exc}"
    return readable(text.encode("utf-8", "surrogateescape"))[:500]


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
    source = job.source()
    step = job.state
    try:
        if job.state is JobState.PENDING:
            outcome = _store(ctx, station, job, source)
            if outcome is not None:
                return outcome
            job = _reload(ctx, job_id)
        if stop_at is JobState.STORED:
            return None
        if job.state is JobState.STORED:
            step = job.state
            _catalogue(ctx, station, job, source)
            job = _reload(ctx, job_id)
        if job.state is JobState.CATALOGUED and stop_at is JobState.CATALOGUED:
            return None
        if job.state is JobState.CATALOGUED:
            step = job.state
            _derive(ctx, job)
            job = _reload(ctx, job_id)
        if job.state is JobState.DERIVED:
            step = job.state
            _release(ctx, station, job, source)
            job = _reload(ctx, job_id)
        return _report(ctx, job, source)
    except EvidenceError as exc:
        # System errors (store unwritable, catalog down, ffmpeg missing): decide nothing.
        log.error("ingest of %s failed: %s", source.shown, _describe(exc))
        with ctx.catalog.begin() as conn:
            jobs_db.fail(conn, job_id, _describe(exc), ctx.clock())
        return FileReport(source.shown, Outcome.FAILED, reason=_describe(exc))
    except Exception as exc:
        # A fault of ours on this one file (a value no rule foresaw): it must not stop the
        # station, and must not be retried blindly every minute. The file is held — its
        # source stays on the dock, any stored copy stays archived — with the reason for a
        # person, who releases the entry once the cause is fixed.
        log.exception("internal error ingesting %s", source.shown)
        reason = f"内部错误 internal error at step {step.value}: {_describe(exc)}"
        job = _reload(ctx, job_id)
        return _hold(ctx, job, source, "internal-error", reason)


def _reload(ctx: IngestContext, job_id: int) -> jobs_db.Job:
    with ctx.catalog.begin() as conn:
        return jobs_db.get(conn, job_id)


def _store(
    ctx: IngestContext, station: Station, job: jobs_db.Job, source: SourceFile
) -> FileReport | None:
    """Open the planned file (no link followed; the same inode, size and mtime), check its
    size and allocation, then copy + hash + fsync + re-read. Returns a report when the job
    cannot go on."""
    try:
        handle, seen = dockfs.open_in_dock(station.root, source.path, source.shown)
    except (NotARegularFile, OutsideDock) as exc:
        return _vanish(ctx, job, source, Outcome.REFUSED, str(exc), alert=True)
    except SourceError as exc:
        if dockfs.vanished(exc):
            return _vanish(
                ctx, job, source, Outcome.VANISHED, "从采集站消失 vanished from the dock"
            )
        return _hold(ctx, job, source, exc.code, str(exc))
    with handle:
        if (seen.size, seen.mtime_ns) != (job.size, job.mtime_ns) or (
            job.ino is not None and (seen.dev, seen.ino) != (job.dev, job.ino)
        ):
            # Not the version that was planned: that one is gone from the dock, and what is
            # there now is taken by the next sweep as a job of its own.
            return _vanish(
                ctx,
                job,
                source,
                Outcome.WAITING,
                "changed since it was planned: the next sweep takes the new version",
                alert=False,
            )
        limits = ctx.settings.ingest
        if seen.size > limits.max_file_bytes:
            reason = (
                f"文件过大 too large: {seen.size} bytes, more than ingest.max_file_bytes "
                f"({limits.max_file_bytes}); kept on the dock"
            )
            return _hold(ctx, job, source, "too-large", reason)
        if (
            seen.size >= dockfs.SPARSE_MIN_BYTES
            and seen.allocated < seen.size * limits.sparse_ratio
        ):
            # A file with holes reads as zeros: gigabytes from nothing (a tampered or broken
            # card). Not copied; the bytes stay on the dock as they are.
            reason = (
                f"稀疏文件 sparse file: {seen.allocated} bytes allocated for {seen.size} bytes "
                f"of apparent size; kept on the dock"
            )
            return _hold(ctx, job, source, "sparse-file", reason)
        try:
            digest = ctx.store.put_original(handle)
        except SourceChanged as exc:
            # Still being written: not a verdict on the file; the next sweep sees its new
            # size and mtime as a new job.
            return _vanish(ctx, job, source, Outcome.WAITING, str(exc), alert=False)
        except SourceError as exc:
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
            subject=source.shown,
            details={"sha256": digest.sha256, "size": digest.size, "job": job.id},
            now=now,
        )
    return None


def _vanish(
    ctx: IngestContext,
    job: jobs_db.Job,
    source: SourceFile,
    outcome: Outcome,
    reason: str,
    *,
    alert: bool = True,
) -> FileReport:
    """The planned file is no longer on the dock as planned (gone, replaced by a link or by
    another version): the job ends, said once. A recording that left the dock before a
    verified copy existed may be lost: that is an alert."""
    now = ctx.clock()
    with ctx.catalog.begin() as conn:
        jobs_db.advance(conn, job.id, JobState.VANISHED, now, last_error=reason)
        if alert:
            custody.append(
                conn,
                EventKind.ALERT,
                ctx.actor,
                station_id=source.station_id,
                subject=source.shown,
                details={"code": "source-vanished", "reason": reason, "job": job.id},
                now=now,
            )
    log.warning("%s: %s", source.shown, reason)
    return FileReport(source.shown, outcome, reason=reason)


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
            subject=source.shown,
            details={"code": code, "reason": reason, "quarantine": entry, "source_kept": True},
            now=now,
        )
    log.warning("held on the dock: %s", reason)
    return FileReport(source.shown, Outcome.QUARANTINED, reason=reason)


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
    if problem is None:
        problem = _name_contradicts(source, probed)
    ident = None
    if probed.kind is not MediaKind.DOCUMENT:
        # Text records (笔录) are scanned or written, not recorded: no device to tie them to.
        # An unreadable file is still tied to its device (path and name), for health reports.
        with ctx.catalog.begin() as conn:
            ident, device = identify(
                conn,
                ctx.settings.devices,
                station.root,
                source,
                probed,
                ctx.clock(),
                preserves_mtimes=station.preserves_mtimes,
                claim=station_claim(conn, station, job.sha256),
            )
        verdict, flags = device_verdict(ident, device, ctx.settings.devices.unknown)
        ident = replace(ident, flags=(*ident.flags, *flags, *_grown_flags(ctx, job)))
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


#: Extensions that promise recorded media; a text or office document behind one is no accident.
MEDIA_SUFFIXES = frozenset(
    {".mp4", ".mov", ".avi", ".mkv", ".ts", ".3gp", ".wmv", ".flv"}
    | {".m4a", ".mp3", ".wav", ".aac", ".amr", ".jpg", ".jpeg", ".png"}
)


def _name_contradicts(source: SourceFile, probed: ProbeResult) -> MediaError | None:
    suffix = Path(source.name).suffix.lower()
    if probed.kind is MediaKind.DOCUMENT and suffix in MEDIA_SUFFIXES:
        return NameContradictsContent(
            source.shown,
            f"名称与内容不符 the name says {suffix} but the content is a document "
            f"({probed.container or 'text'})",
        )
    return None


def _grown_flags(ctx: IngestContext, job: jobs_db.Job) -> list[Flag]:
    if job.grown_from is None:
        return []
    with ctx.catalog.read() as conn:
        first = jobs_db.get(conn, job.grown_from)
    return [
        Flag(
            "grew-after-release",
            f"文件在释放后继续增长 grew after its release: continues media {first.media_id} "
            f"(the first {first.size} bytes, job {first.id})",
        )
    ]


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
            subject=source.shown,
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
        values = media_db.row_values(
            sha256=job.sha256,
            size=job.size,
            source=source,
            probe=probed,
            ident=ident,
            status=MediaStatus.ARCHIVED,
            now=now,
            docked_at=upload_rows.first_docked(conn, source.station_id, job.sha256),
        )
        media_id = media_db.insert_row(conn, values)
        media_db.add_sighting(conn, media_id, source, job.id, now)
        # The whole row as inserted, so that pipeline.custody.replay can hold the catalog to
        # it; ``extra`` (any tags the file carries) by its digest only.
        row = replay.recorded_row({k: v for k, v in values.items() if k != "extra"})
        custody.append(
            conn,
            EventKind.INGESTED,
            ctx.actor,
            media_id=media_id,
            station_id=source.station_id,
            subject=source.shown,
            details={
                "sha256": job.sha256,
                "size": job.size,
                "kind": probed.kind.value,
                "original_name": source.name,
                "device": ident.device_serial if ident else None,
                "officer": ident.officer_id if ident else None,
                "flags": [f.code for f in ident.flags] if ident else [],
                "job": job.id,
                "row": row,
                "extra_sha256": replay.digest(values["extra"]),
            },
            now=now,
        )
        # An important-file mark (重点文件) in the name or the metadata (issue 19).
        marked = marks.on_ingest(
            conn, ctx.settings, media_id, source.name, probed.extra, ctx.actor, now
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
                    subject=problem.serial or source.shown,
                    details={"code": problem.code, "reason": problem.reason},
                    now=now,
                )
        state = JobState.DERIVED if problem else JobState.CATALOGUED
        outcome = Outcome.QUARANTINED if problem else Outcome.ARCHIVED
        jobs_db.advance(conn, job.id, state, now, media_id=media_id, outcome=outcome)
    if marked:  # its retention grew: the lock follows (issue 19)
        locks.follow_store(
            ctx.catalog, ctx.store, ctx.settings, [media_id], clock=ctx.clock, actor=ctx.actor
        )


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
    written = media_db.set_quarantined(conn, media_id, reason)
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
        subject=source.shown,
        details={
            "code": code,
            "reason": reason,
            "quarantine": entry,
            "row": replay.recorded_row(written),
        },
        now=now,
    )
    log.warning("quarantined %s: %s", source.path, reason)


def _derive(ctx: IngestContext, job: jobs_db.Job) -> None:
    """Proxy and thumbnail; an original ffmpeg cannot decode is quarantined."""
    assert job.media_id is not None
    with ctx.catalog.begin() as conn:
        item = media_db.get(conn, job.media_id)
    derived = make_derivatives(ctx.store, ctx.settings, item)
    source = job.source()
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
    if derived.proxy_key is None and derived.thumbnail_key is None:
        # Nothing made, nothing to record: writing None could only erase, without an event,
        # keys an earlier derivation recorded.
        return
    written = media_db.set_derived(conn, media_id, derived.proxy_key, derived.thumbnail_key)
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
                details={"key": key, "row": replay.recorded_row(written)},
                now=now,
            )


def release_target(station: Station, source: Path) -> Path:
    """Where ``release = "move"`` puts a source: the same relative path under .ingested/."""
    return station.root / INGESTED_DIR / source.relative_to(station.root)


def _release(ctx: IngestContext, station: Station, job: jobs_db.Job, source: SourceFile) -> None:
    """The stored copy is verified: the source may leave the dock (invariant 2). Every step
    goes from the station root's descriptor without following a link, ``.ingested`` too."""
    assert job.sha256 is not None
    # A push station's intake copy goes: the station keeps its own until it hears "verified".
    mode = "delete" if station.pushes else ctx.settings.ingest.release
    released_to: str | None = None
    try:
        st: os.stat_result | None = dockfs.lstat_in_dock(station.root, source.path)
    except FileNotFoundError:
        st = None
    if st is None:
        where = "already gone from the dock (released before a restart)"
    elif (st.st_size, st.st_mtime_ns) != (source.size, source.mtime_ns) or (
        job.ino is not None and (st.st_dev, st.st_ino) != (job.dev, job.ino)
    ):
        # Same name, other bytes (the dock re-used the name, or a writer went on): not ours
        # to remove; the next sweep takes the new version.
        where = "kept: the file on the dock changed after it was stored"
    elif ctx.settings.watch.writer_check and (st.st_dev, st.st_ino) in open_for_writing(
        [station.root]
    ):
        # Deleting or moving a file someone still writes loses what they write next.
        raise SourceError(
            Path(source.shown),
            "仍在写入 still open for writing: released once its writer closes it",
        )
    elif INGESTED_DIR in source.path.parts:
        # A file that grew after its release: it is already where released files go.
        where = "left in .ingested (it grew there after an earlier release)"
        released_to = source.shown
    else:
        try:
            if mode == "delete":
                dockfs.unlink_in_dock(station.root, source.path)
                where = "deleted"
            else:
                moved = dockfs.move_in_dock(
                    station.root, source.path, release_target(station, source.path)
                )
                released_to = names.readable(
                    station.root / moved, ctx.settings.ingest.legacy_encodings
                )
                where = released_to
        except OSError as exc:
            # The dock, not the file: e.g. `.ingested` is a file or a link. The source stays
            # where it is and the release is tried again by the next sweep.
            raise StationError(
                station.id,
                f"cannot release {source.shown} ({mode}): {exc.strerror}; "
                f"{INGESTED_DIR} must be a folder of the dock, not a file or a link",
            ) from exc
    now = ctx.clock()
    with ctx.catalog.begin() as conn:
        custody.append(
            conn,
            EventKind.RELEASED,
            ctx.actor,
            media_id=job.media_id,
            station_id=job.station_id,
            subject=source.shown,
            details={"mode": mode, "to": where, "sha256": job.sha256},
            now=now,
        )
        jobs_db.advance(conn, job.id, JobState.DONE, now, released_to=released_to)


def _report(ctx: IngestContext, job: jobs_db.Job, source: SourceFile) -> FileReport:
    kind: MediaKind | None = None
    reason = None
    if job.media_id is not None:
        with ctx.catalog.begin() as conn:
            item = media_db.get(conn, job.media_id)
        kind, reason = item.kind, item.quarantine_reason
    outcome = job.outcome or Outcome.FAILED
    return FileReport(source.shown, outcome, job.sha256, job.media_id, kind, reason)


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
        return _report(ctx, job, job.source())
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
