"""Ingest of real files through the pipeline functions (no Prefect): every file ends archived,
a duplicate, or quarantined with a reason; sources leave the dock only after verification."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from docks.sweep import sweep_station
from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import media as media_db
from pipeline.catalog.schema import ingest_jobs, media
from pipeline.custody import log as custody
from pipeline.errors import ChecksumMismatch
from pipeline.ingest.steps import IngestContext, ingest_job, release_target
from pipeline.models import (
    EventKind,
    JobState,
    MediaKind,
    MediaStatus,
    Outcome,
    SourceFile,
    Station,
)
from pipeline.storage.local import LocalStore
from tests.conftest import RECORDED, make_settings, put
from tests.test_store import CorruptingStore


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _by_name(report) -> dict:  # type: ignore[no-untyped-def]
    return {Path(f.path).name: f for f in report.files}


def test_a_mixed_dump_ends_archived_or_quarantined_with_reasons(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    files = {
        "video": put(clips["video"], dock, "BWC-0017/BWC0017_1023_20260505083000_0001.mp4"),
        "audio": put(clips["audio"], dock, "REC-0031/rec 0001.m4a"),
        "photo": put(clips["photo"], dock, "BWC-0017/IMG_0001.jpg"),
        "pdf": put(clips["pdf"], dock, "SCAN/现场笔录.pdf"),
        "chinese": put(clips["video2"], dock, "BWC-0022/执法 记录 仪 001.mp4"),
        "truncated": put(clips["truncated"], dock, "BWC-0022/cut.mp4"),
        "header": put(clips["header_only"], dock, "BWC-0022/header.mp4"),
        "empty": put(clips["empty"], dock, "BWC-0022/empty.mp4"),
    }
    digests = {k: _sha(p) for k, p in files.items()}

    report = sweep_station(ctx, station)

    got = _by_name(report)
    outcome = {k: got[p.name].outcome for k, p in files.items()}
    assert outcome == {
        "video": Outcome.ARCHIVED,
        "audio": Outcome.ARCHIVED,
        "photo": Outcome.ARCHIVED,
        "pdf": Outcome.ARCHIVED,
        "chinese": Outcome.ARCHIVED,
        "truncated": Outcome.QUARANTINED,
        "header": Outcome.QUARANTINED,
        "empty": Outcome.QUARANTINED,
    }
    assert report.ok
    for key in ("truncated", "header", "empty"):
        assert got[files[key].name].reason, f"{key} must carry a reason"
    assert "empty" in (got[files["empty"].name].reason or "")

    with ctx.catalog.begin() as conn:
        video = media_db.get(conn, digests["video"])
        audio = media_db.get(conn, digests["audio"])
        photo = media_db.get(conn, digests["photo"])
        pdf = media_db.get(conn, digests["pdf"])
        cut = media_db.get(conn, digests["truncated"])
        entries = media_db.quarantine_entries(conn)
        assert custody.broken_links(conn) == []
        kinds = [e.kind for e in custody.events(conn, media_id=video.id)]

    assert (video.kind, video.status, video.probe.recorded_at) == (
        MediaKind.VIDEO,
        MediaStatus.ARCHIVED,
        RECORDED,
    )
    assert video.probe.make == "ZFJLY" and video.probe.video_codec and video.probe.width == 320
    assert video.proxy_key and video.thumbnail_key
    assert audio.kind is MediaKind.AUDIO and audio.proxy_key and audio.proxy_key.endswith(".m4a")
    assert photo.kind is MediaKind.PHOTO and photo.thumbnail_key and photo.proxy_key is None
    assert pdf.kind is MediaKind.DOCUMENT and pdf.proxy_key is None
    assert cut.status is MediaStatus.QUARANTINED and cut.quarantine_reason
    assert {e.sha256 for e in entries} == {
        digests["truncated"],
        digests["header"],
        digests["empty"],
    }
    assert kinds == [
        EventKind.INGESTED,
        EventKind.PROXY_MADE,
        EventKind.THUMBNAIL_MADE,
        EventKind.RELEASED,
    ]

    # Every original, quarantined ones too, is preserved bit for bit and verifies.
    for key, path in files.items():
        assert ctx.store.verify_original(digests[key]).sha256 == digests[key]
        moved = release_target(station, path)
        assert not path.exists() and moved.exists(), f"{key} released to .ingested/"
        assert _sha(moved) == digests[key], "the source is never modified"


def test_the_same_bytes_twice_are_one_item_and_a_sighting(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    put(clips["video"], dock, "BWC-1/a.mp4")
    put(clips["video"], dock, "BWC-2/copy of a.mp4")
    report = sweep_station(ctx, station)
    outcomes = sorted(f.outcome.value for f in report.files)
    assert outcomes == ["archived", "duplicate"]
    put(clips["video"], dock, "BWC-1/a again.mp4")
    assert [f.outcome for f in sweep_station(ctx, station).files] == [Outcome.DUPLICATE]
    with ctx.catalog.begin() as conn:
        item = media_db.get(conn, _sha(clips["video"]))
        assert media_db.count(conn) == 1
        assert media_db.sighting_count(conn, item.id) == 3
        sighted = [e for e in custody.events(conn, media_id=item.id) if e.kind is EventKind.SIGHTED]
    assert len(sighted) == 2


def test_a_re_docked_released_file_is_taken_again_not_skipped(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    src = put(clips["photo"], dock, "BWC-1/p.jpg")
    stat = src.stat()
    sweep_station(ctx, station)
    # The dock puts back the very same file (same name, size and mtime).
    put(clips["photo"], dock, "BWC-1/p.jpg")
    os.utime(src, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    report = sweep_station(ctx, station)
    assert [f.outcome for f in report.files] == [Outcome.DUPLICATE]
    assert not src.exists()


def test_delete_mode_removes_the_source_only_after_verification(
    catalog,
    station: Station,
    dock: Path,
    clips: dict[str, Path],
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    settings = make_settings(tmp_path / "home", ingest={"release": "delete"})
    ctx = IngestContext(catalog, LocalStore(settings.archive_dir), settings, jobs_db.new_owner())
    src = put(clips["audio"], dock, "REC/a.m4a")
    sha = _sha(src)
    report = sweep_station(ctx, station)
    assert report.files[0].outcome is Outcome.ARCHIVED
    assert not src.exists() and not (dock / ".ingested").exists()
    assert ctx.store.verify_original(sha).sha256 == sha


def test_a_checksum_mismatch_keeps_the_source_and_quarantines_with_both_digests(
    catalog,
    settings,
    station: Station,
    dock: Path,
    clips: dict[str, Path],  # type: ignore[no-untyped-def]
) -> None:
    ctx = IngestContext(
        catalog, CorruptingStore(settings.archive_dir), settings, jobs_db.new_owner()
    )
    src = put(clips["video"], dock, "BWC-1/a.mp4")
    sha = _sha(src)

    report = sweep_station(ctx, station)

    (f,) = report.files
    assert f.outcome is Outcome.QUARANTINED and sha in (f.reason or "")
    assert src.exists() and _sha(src) == sha, "the source stays on the dock, untouched"
    assert not ctx.store.has_original(sha)
    with catalog.begin() as conn:
        (entry,) = media_db.quarantine_entries(conn)
        assert entry.code == ChecksumMismatch.code and entry.sha256 is None
        assert media_db.count(conn) == 0
    # The next sweep does not silently pass over the held file: it reports it again.
    again = sweep_station(ctx, station)
    assert [(x.outcome, "held on the dock" in (x.reason or "")) for x in again.files] == [
        (Outcome.QUARANTINED, True)
    ]


def test_a_file_still_being_written_waits(
    catalog,
    station: Station,
    dock: Path,
    clips: dict[str, Path],
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    settings = make_settings(tmp_path / "home", watch={"stable_s": 30.0})
    ctx = IngestContext(catalog, LocalStore(settings.archive_dir), settings, jobs_db.new_owner())
    src = put(clips["video"], dock, "BWC-1/growing.mp4")
    report = sweep_station(ctx, station)
    assert [f.outcome for f in report.files] == [Outcome.WAITING]
    assert "still being written" in (report.files[0].reason or "")
    assert src.exists()
    old = time.time() - 60
    os.utime(src, (old, old))
    assert [f.outcome for f in sweep_station(ctx, station).files] == [Outcome.ARCHIVED]


def test_a_planned_file_that_became_a_folder_is_refused_and_kept(
    ctx: IngestContext, station: Station, dock: Path
) -> None:
    # The suite runs as root, which reads any file whatever its mode. A folder where the dock
    # listed a file is not a regular file: it is refused, said once with an alert (the file
    # that was planned is gone), and nothing on the dock is touched.
    src = dock / "BWC-1" / "locked.mp4"
    src.mkdir(parents=True)
    with ctx.catalog.begin() as conn:
        job = jobs_db.find_or_create(conn, SourceFile(station.id, src, 4096, 1), ctx.clock())

    report = ingest_job(ctx, station, job.id)

    assert report.outcome is Outcome.REFUSED and "not read" in (report.reason or "")
    assert src.is_dir()
    with ctx.catalog.begin() as conn:
        assert media_db.quarantine_entries(conn) == []
        assert jobs_db.get(conn, job.id).state is JobState.VANISHED
        alerts = [e for e in custody.events(conn) if e.kind is EventKind.ALERT]
    assert [a.details["code"] for a in alerts] == ["source-vanished"]


def test_a_job_left_mid_way_is_resumed_from_its_step(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    """A crash after the copy was verified and before cataloguing: the rerun goes on from
    STORED without copying again, and the item exists once."""
    src = put(clips["video"], dock, "BWC-1/a.mp4")
    sha = _sha(src)
    from docks.sweep import plan_sweep
    from pipeline.ingest.steps import _store

    plan = plan_sweep(ctx, station)
    with ctx.catalog.begin() as conn:
        job = jobs_db.claim(conn, plan.job_ids[0], ctx.owner, ctx.clock())
    assert job is not None
    assert _store(ctx, station, job, job.source()) is None
    with ctx.catalog.begin() as conn:
        assert jobs_db.get(conn, job.id).state is JobState.STORED
    # A new sweep (another owner: the first one "died" with its lease) resumes the job.
    dead = IngestContext(
        ctx.catalog,
        ctx.store,
        ctx.settings,
        jobs_db.new_owner(),
        clock=lambda: ctx.clock() + timedelta(hours=1),
    )
    report = sweep_station(dead, station)
    assert [f.outcome for f in report.files] == [Outcome.ARCHIVED]
    with ctx.catalog.begin() as conn:
        assert conn.execute(select(func.count()).select_from(media)).scalar_one() == 1
        (row,) = conn.execute(select(ingest_jobs)).all()
        assert row.state == JobState.DONE.value and row.sha256 == sha and row.attempts == 2
