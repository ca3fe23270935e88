"""The whole ingest of real files into a real S3 server (SeaweedFS): probe and ffmpeg work
from downloaded originals, originals end locked, and a damaged upload keeps the source."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from docks.sweep import sweep_station
from pipeline.catalog import Catalog
from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import media as media_db
from pipeline.errors import ChecksumMismatch
from pipeline.ingest.steps import IngestContext, release_target
from pipeline.media.transcode import check_decodes
from pipeline.models import FileReport, MediaKind, Outcome, Station
from pipeline.settings import Settings
from pipeline.storage.s3 import S3Store, open_s3_store, original_key
from tests.conftest import make_settings, put
from tests.seaweed import Seaweed, running_seaweed
from tests.test_s3store import CorruptingS3Store, DamagingS3Store


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    with running_seaweed(tmp_path_factory.mktemp("seaweed")) as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """conftest's settings, archiving into a bucket of its own on the test server."""
    home = tmp_path / "home"
    monkeypatch.setenv("EVIDENCE_HOME", str(home))
    s3 = {
        "endpoint_url": seaweed.endpoint_url,
        "access_key": seaweed.access_key,
        "secret_key": seaweed.secret_key,
        "bucket": f"ev-{uuid.uuid4().hex[:12]}",
    }
    return make_settings(home, store={"kind": "s3", "s3": s3})


@pytest.fixture
def store(settings: Settings) -> S3Store:
    return open_s3_store(settings)


@pytest.fixture
def ctx(catalog: Catalog, settings: Settings, store: S3Store) -> IngestContext:
    return IngestContext(catalog, store, settings, jobs_db.new_owner())


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_dump_is_archived_into_s3_probed_and_transcoded_from_downloaded_originals(
    ctx: IngestContext,
    store: S3Store,
    station: Station,
    dock: Path,
    clips: dict[str, Path],
    seaweed: Seaweed,
) -> None:
    files = {
        "video": put(clips["video"], dock, "BWC-0017/BWC0017_1023_20260505083000_0001.mp4"),
        "audio": put(clips["audio"], dock, "REC-0031/rec 0001.m4a"),
        "photo": put(clips["photo"], dock, "BWC-0017/IMG_0001.jpg"),
        "truncated": put(clips["truncated"], dock, "BWC-0022/cut.mp4"),
        "copy": put(clips["video"], dock, "BWC-0018/same bytes.mp4"),
    }
    digests = {k: _sha(p) for k, p in files.items()}

    report = sweep_station(ctx, station)

    by_path = {f.path: f.outcome for f in report.files}
    outcome = {k: by_path[str(p)] for k, p in files.items()}
    assert {outcome["video"], outcome["copy"]} == {Outcome.ARCHIVED, Outcome.DUPLICATE}
    assert (outcome["audio"], outcome["photo"], outcome["truncated"]) == (
        Outcome.ARCHIVED,
        Outcome.ARCHIVED,
        Outcome.QUARANTINED,
    )
    with ctx.catalog.begin() as conn:
        video = media_db.get(conn, digests["video"])
        audio = media_db.get(conn, digests["audio"])
    assert video.kind is MediaKind.VIDEO and video.probe.video_codec and video.probe.width == 320
    assert audio.kind is MediaKind.AUDIO
    assert video.proxy_key and video.thumbnail_key
    check_decodes(store.derived_path(video.proxy_key), ctx.settings.transcode)

    client = seaweed.client
    for key in ("video", "audio", "photo", "truncated"):
        sha = digests[key]
        assert store.verify_original(sha).sha256 == sha
        assert store.lock_status(sha).mode == "COMPLIANCE", f"{key} is locked"
        listing = client.list_object_versions(Bucket=store.bucket, Prefix=original_key(sha))
        assert len(listing["Versions"]) == 1, "the duplicate was not uploaded again"
    for key, path in files.items():
        assert not path.exists(), "released only after the stored copy verified"
        assert _sha(release_target(station, path)) == digests[key]
    assert list(store.tmp.iterdir()) == [], "no download left behind"


def _sweep_through(
    kind: type[S3Store],
    catalog: Catalog,
    settings: Settings,
    store: S3Store,
    station: Station,
    dock: Path,
    clip: Path,
) -> tuple[FileReport, Path, str]:
    """Sweep one clip with the store's ``kind`` of faulty twin: its report, source and SHA."""
    faulty = kind(store.client, store.s3, settings.s3_work_dir, settings.ingest.block_size)
    ctx = IngestContext(catalog, faulty, settings, jobs_db.new_owner())
    src = put(clip, dock, "BWC-1/a.mp4")
    sha = _sha(src)
    (report,) = sweep_station(ctx, station).files
    return report, src, sha


def test_a_source_rewritten_between_the_reads_is_held_on_the_dock(
    catalog: Catalog,
    settings: Settings,
    store: S3Store,
    station: Station,
    dock: Path,
    clips: dict[str, Path],
) -> None:
    report, src, sha = _sweep_through(
        CorruptingS3Store, catalog, settings, store, station, dock, clips["video"]
    )

    assert report.outcome is Outcome.QUARANTINED and sha in (report.reason or "")
    assert src.exists() and _sha(src) != sha, "the source, as rewritten, stays on the dock"
    assert not store.has_original(sha)
    with catalog.begin() as conn:
        (entry,) = media_db.quarantine_entries(conn)
    assert entry.code == ChecksumMismatch.code and entry.sha256 is None


def test_a_damaged_upload_fails_and_keeps_the_source_on_the_dock(
    catalog: Catalog,
    settings: Settings,
    store: S3Store,
    station: Station,
    dock: Path,
    clips: dict[str, Path],
) -> None:
    report, src, sha = _sweep_through(
        DamagingS3Store, catalog, settings, store, station, dock, clips["video"]
    )

    assert report.outcome is Outcome.FAILED and "damaged on the way" in (report.reason or "")
    assert src.exists() and _sha(src) == sha, "the source stays on the dock, untouched"
    assert not store.has_original(sha)
