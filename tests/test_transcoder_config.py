"""A wrong ffmpeg or transcode setting is the system's fault, never a verdict on a recording
(issue 12, item 5): the job fails and is retried with its source kept, nothing is quarantined,
and what an older build quarantined that way can be released once the setting is fixed.

Real ffmpeg (imageio-ffmpeg's), real clips, a real SQLite catalog and the real CLI. Settings
are changed with ``model_copy``, which skips validation on purpose: derivation must hold even
for settings that pass it (a preset an ffmpeg build lacks, a binary that is not ffmpeg).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from docks.sweep import plan_sweep, sweep_station
from interfaces import synth
from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import media as media_db
from pipeline.catalog.schema import ingest_jobs
from pipeline.custody import log as custody
from pipeline.errors import QuarantineError, TranscodeError, TranscoderUnusable
from pipeline.ingest.quarantine import release, release_many
from pipeline.ingest.steps import IngestContext, catalogue_job, ingest_job, record_quarantine
from pipeline.media import transcode
from pipeline.media.derive import make_derivatives
from pipeline.models import (
    EventKind,
    JobState,
    MediaItem,
    MediaStatus,
    Outcome,
    Station,
)
from tests.conftest import put

EVIDENCE = [sys.executable, "-m", "interfaces.cli"]


def _script(path: Path, body: str) -> str:
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)
    return str(path)


def _with_transcode(ctx: IngestContext, **changes: Any) -> IngestContext:
    transcode_settings = ctx.settings.transcode.model_copy(update=changes)
    return replace(ctx, settings=ctx.settings.model_copy(update={"transcode": transcode_settings}))


def _broken_mp4(clip: Path, path: Path) -> Path:
    """A recording whose index is intact (MediaInfo reads it as H.264 video) but whose media
    data is gone: zeroed, as a card whose data clusters were lost gives it."""
    data = bytearray(clip.read_bytes())
    boxes = dict(synth.top_level_boxes(clip))
    data[boxes["mdat"] + 8 : boxes["moov"]] = bytes(boxes["moov"] - boxes["mdat"] - 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path


# What an operator gets wrong, and the words the failure must carry.
MISTAKES: dict[str, tuple[dict[str, Any], str]] = {
    "false": ({"ffmpeg": "/bin/false"}, "ffmpeg /bin/false cannot make "),
    "broken-install": (
        {"ffmpeg": "SCRIPT:echo 'error while loading shared libraries: libx264.so' >&2; exit 127"},
        "libx264.so",
    ),
    "not-ffmpeg": ({"ffmpeg": "/bin/true"}, "ffmpeg wrote an empty output"),
    "preset": ({"preset": "nonsense"}, "(preset=nonsense, "),
    "audio-bitrate": ({"audio_bitrate": "abc"}, 'Unable to parse "b" option value "abc"'),
    "timeout": ({"timeout_s": 0.001}, "did not finish within 0.001 s"),
    "missing": ({"ffmpeg": "/nonexistent/ffmpeg"}, "configured ffmpeg not found"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_a_configuration_mistake_fails_the_job_keeps_the_source_and_quarantines_nothing(
    ctx: IngestContext,
    station: Station,
    dock: Path,
    clips: dict[str, Path],
    tmp_path: Path,
    mistake: str,
) -> None:
    changes, words = MISTAKES[mistake]
    if str(changes.get("ffmpeg", "")).startswith("SCRIPT:"):
        changes = {"ffmpeg": _script(tmp_path / "ffmpeg", changes["ffmpeg"][len("SCRIPT:") :])}
    video = put(clips["video"], dock, "BWC0017/BWC0017_1023_20260505083000_0001.mp4")
    audio = put(clips["audio"], dock, "REC0031/rec 0001.m4a")

    report = sweep_station(_with_transcode(ctx, **changes), station)

    got = {Path(f.path).name: f for f in report.files}
    # preset only shapes the video encoder: the audio proxy is made and that file archived.
    failed = [video] if mistake == "preset" else [video, audio]
    assert {p.name for p in failed} == {n for n, f in got.items() if f.outcome is Outcome.FAILED}
    assert not report.ok
    for path in failed:
        assert words in (got[path.name].reason or ""), got[path.name].reason
        assert path.exists(), "a system error never releases the source"
    with ctx.catalog.begin() as conn:
        assert media_db.quarantine_entries(conn, include_resolved=True) == []
        assert EventKind.QUARANTINED not in {e.kind for e in custody.events(conn)}
        jobs = {Path(r.source_path).name: r for r in conn.execute(select(ingest_jobs))}
    assert jobs[video.name].state == JobState.CATALOGUED.value
    assert words in (jobs[video.name].last_error or "")

    # The operator fixes the setting: the next sweep retries the job and archives the file.
    again = sweep_station(ctx, station)

    assert {f.outcome for f in again.files} == {Outcome.ARCHIVED}
    assert Path(again.files[0].path).name in {p.name for p in failed}
    with ctx.catalog.begin() as conn:
        for path in failed:
            item = media_db.get(conn, jobs[path.name].sha256)
            assert item.status is MediaStatus.ARCHIVED and item.proxy_key
            assert ctx.store.derived_path(item.proxy_key).exists()
        assert media_db.quarantine_entries(conn, include_resolved=True) == []
        assert custody.broken_links(conn) == []
    assert not video.exists() and not audio.exists(), "released once archived"


def test_the_error_names_the_binary_the_setting_and_ffmpegs_complaint(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    item = _catalogued(ctx, station, put(clips["video"], dock, "BWC0017/a.mp4"))
    bad = _with_transcode(ctx, preset="nonsense")

    with pytest.raises(TranscoderUnusable) as caught:
        make_derivatives(bad.store, bad.settings, item)

    exe = transcode.find_ffmpeg("")
    assert caught.value.code == "transcoder-unusable"
    assert str(caught.value).startswith(
        f"ffmpeg {exe} cannot make a video proxy of a test clip with these settings "
        "(preset=nonsense, max_height=144, timeout_s=60): ffmpeg failed (exit status "
    )
    assert "invalid preset 'nonsense'" in caught.value.reason
    assert not isinstance(caught.value, TranscodeError), "not a verdict on the file"


def _catalogued(ctx: IngestContext, station: Station, source: Path) -> MediaItem:
    """Ingest ``source`` up to its proxy, as the watcher does before deriving."""
    (job_id,) = plan_sweep(ctx, station, [source]).job_ids
    assert catalogue_job(ctx, station, job_id) is None
    with ctx.catalog.begin() as conn:
        return media_db.get(conn, jobs_db.get(conn, job_id).media_id or 0)


def test_a_batch_that_fails_on_a_bad_ffmpeg_runs_one_self_test(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path], tmp_path: Path
) -> None:
    log = tmp_path / "calls.log"
    fake = _script(tmp_path / "ffmpeg", f'echo "$*" >> {log}\necho "no encoders" >&2; exit 1')
    put(clips["video"], dock, "BWC0017/a.mp4")
    put(clips["video2"], dock, "BWC0017/b.mp4")
    third = put(clips["video"], dock, "BWC0017/c.mp4")
    with third.open("ab") as f:  # other bytes, so not a duplicate of a.mp4
        f.write(b"\0" * 16)

    report = sweep_station(_with_transcode(ctx, ffmpeg=fake), station)

    assert [f.outcome for f in report.files] == [Outcome.FAILED] * 3
    calls = log.read_text(encoding="utf-8").splitlines()
    assert len([c for c in calls if "lavfi" not in c]) == 3, "one attempt per recording"
    assert len([c for c in calls if "lavfi" in c]) == 1, "the verdict is shared by the batch"


def test_a_corrupt_recording_is_still_quarantined_with_a_working_ffmpeg(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    src = _broken_mp4(clips["video"], dock / "BWC0017" / "BWC0017_lost.mp4")

    (f,) = sweep_station(ctx, station).files

    assert f.outcome is Outcome.QUARANTINED
    assert "Invalid data found when processing input" in (f.reason or "")
    with ctx.catalog.begin() as conn:
        (entry,) = media_db.quarantine_entries(conn)
    assert entry.code == "transcode-failed"
    assert not src.exists(), "its bytes are archived: the source is released as before"

    # A quarantine about the file itself is not released by trying again.
    with pytest.raises(QuarantineError, match="is about the file itself: ffmpeg still fails"):
        release(ctx, entry.id, "A001")
    with ctx.catalog.begin() as conn:
        assert [e.id for e in media_db.quarantine_entries(conn)] == [entry.id]


def _quarantined_the_old_way(
    ctx: IngestContext, station: Station, source: Path, **bad_setting: Any
) -> int:
    """What the landed code did with a good recording under a bad setting: ffmpeg's failure
    recorded as a transcode-failed quarantine, the job finished and the source released."""
    item = _catalogued(ctx, station, source)
    with ctx.catalog.begin() as conn:
        (job,) = [j for j in jobs_db.unfinished(conn, station.id) if j.media_id == item.id]
    work = ctx.settings.home / "work"
    work.mkdir(parents=True, exist_ok=True)
    bad = _with_transcode(ctx, **bad_setting).settings.transcode
    with ctx.store.original_file(item.sha256) as original, pytest.raises(TranscodeError) as failed:
        transcode.make_proxy(original, work / "proxy.mp4", item.probe, bad)
    now = ctx.clock()
    with ctx.catalog.begin() as conn:
        failure = failed.value
        record_quarantine(ctx, conn, item.id, job, job.source(), failure.code, failure.reason, now)
        jobs_db.advance(conn, job.id, JobState.DERIVED, now, outcome=Outcome.QUARANTINED)
    assert ingest_job(ctx, station, job.id).outcome is Outcome.QUARANTINED
    with ctx.catalog.begin() as conn:
        (entry,) = media_db.quarantine_entries(conn)
    assert entry.code == "transcode-failed"
    return entry.id


def test_an_old_transcode_quarantine_is_released_by_the_cli_once_the_setting_is_fixed(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    source = put(clips["video"], dock, "BWC0017/BWC0017_1023_20260505083000_0001.mp4")
    entry_id = _quarantined_the_old_way(ctx, station, source, preset="nonsense")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["EVIDENCE_TRANSCODE__MAX_HEIGHT"] = "144"

    def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*EVIDENCE, *args], env={**env, **extra}, capture_output=True, text=True, timeout=120
        )

    # Still misconfigured: kept, and the reason says what to fix.
    kept = cli(
        "quarantine", "release", str(entry_id), "--as", "A001", "--json",
        EVIDENCE_TRANSCODE__FFMPEG="/bin/false",
    )  # fmt: skip
    assert kept.returncode == 1, kept.stderr
    (row,) = json.loads(kept.stdout)
    assert (row["released"], row["code"]) == (False, "quarantine")
    assert "ffmpeg /bin/false cannot make a video proxy" in row["error"]
    assert "correct the transcode settings first" in row["error"]

    released = cli("quarantine", "release", str(entry_id), "--as", "A001")

    assert released.returncode == 0, released.stdout + released.stderr
    assert f"released {entry_id}: media" in released.stdout
    with ctx.catalog.begin() as conn:
        assert media_db.quarantine_entries(conn) == []
        (done,) = media_db.quarantine_entries(conn, include_resolved=True)
        item = media_db.get(conn, done.media_id or 0)
        kinds = [e.kind for e in custody.events(conn, media_id=item.id)]
        assert custody.broken_links(conn) == []
    assert done.resolved_by == "A001"
    assert item.status is MediaStatus.ARCHIVED and item.quarantine_reason is None
    assert item.proxy_key and ctx.store.derived_path(item.proxy_key).exists()
    assert item.thumbnail_key and ctx.store.derived_path(item.thumbnail_key).exists()
    assert kinds[-3:] == [
        EventKind.QUARANTINE_RELEASED,
        EventKind.PROXY_MADE,
        EventKind.THUMBNAIL_MADE,
    ]


def test_a_batch_release_goes_on_past_an_entry_about_the_file_and_reports_each(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    good = put(clips["video"], dock, "BWC0017/good.mp4")
    good_entry = _quarantined_the_old_way(ctx, station, good, audio_bitrate="abc")
    _broken_mp4(clips["video2"], dock / "BWC0017" / "lost.mp4")
    sweep_station(ctx, station)
    with ctx.catalog.begin() as conn:
        (bad_entry,) = [e.id for e in media_db.quarantine_entries(conn) if e.id != good_entry]

    results = release_many(ctx, [bad_entry, 999, good_entry, bad_entry], "A001")

    assert [(r.entry_id, r.released) for r in results] == [
        (bad_entry, False),
        (999, False),
        (good_entry, True),
    ]
    assert results[0].error is not None and "about the file itself" in str(results[0].error)
    assert results[1].error is not None and results[1].error.code == "not-found"
    assert results[2].item is not None and results[2].item.status is MediaStatus.ARCHIVED
