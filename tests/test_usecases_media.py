"""The media, search and custody use cases: the CLI prints exactly what they return, and
they work called directly with an Instance on a real archive (SQLite, a local folder, and a
real S3 server for where thumbnails are)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from docks.sweep import sweep_station
from pipeline.catalog import Catalog
from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import media as media_db
from pipeline.custody import log as custody
from pipeline.custody import usecases as custody_usecases
from pipeline.custody.access import View
from pipeline.errors import AccessRefused
from pipeline.ingest.steps import IngestContext
from pipeline.instance import Instance
from pipeline.models import EventKind, Station, plain
from pipeline.retention import usecases as retention_usecases
from pipeline.search import run as search_run
from pipeline.search import usecases as search_usecases
from pipeline.settings import Settings
from pipeline.storage.s3 import open_s3_store
from tests.conftest import make_settings, put
from tests.custody_helpers import Archive, copy_archive, template
from tests.seaweed import Seaweed, running_seaweed


@pytest.fixture
def archive(
    tmp_path_factory: pytest.TempPathFactory, clips: dict[str, Path], tmp_path: Path
) -> Iterator[Archive]:
    copy = copy_archive(template(tmp_path_factory, clips), tmp_path / "home")
    yield copy
    copy.catalog.dispose()


def _instance(archive: Archive, actor: str | None = None) -> Instance:
    return Instance(archive.settings, archive.catalog, actor=actor, _store=archive.store)


def _events(archive: Archive, media_id: int, kind: EventKind) -> list[custody.CustodyEvent]:
    with archive.catalog.read() as conn:
        return [e for e in custody.events(conn, media_id=media_id) if e.kind is kind]


def test_media_show_json_is_exactly_the_plain_media_detail(archive: Archive) -> None:
    video = archive.items["video"]
    result = archive.cli(
        "media", "show", video.sha256[:10], "--reason", "复核 2026-0113", "--as", "A001", "--json"
    )  # fmt: skip
    assert result.returncode == 0, result.stderr

    (viewed,) = _events(archive, video.id, EventKind.VIEWED)
    assert viewed.actor == "A001"
    assert viewed.details == {"view": "metadata", "reason": "复核 2026-0113"}
    with archive.catalog.read() as conn:
        item = media_db.get(conn, video.id)
        history = tuple(custody.events(conn, media_id=video.id))
        (view,) = search_run.views(conn, [video.id])
    assert history[-1] == viewed, "the viewing is recorded before anything is shown"
    detail = custody_usecases.MediaDetail(
        item,
        custody_usecases.Derived(item.proxy_key, item.thumbnail_key),
        history,
        officer_name=view.officer_name,
        tags=view.tags,
        cases=view.cases,
    )
    # With how long it is kept and why (issue 19: pipeline.retention.usecases.media_shown).
    kept = retention_usecases.retention(_instance(archive), video.id)
    assert json.loads(result.stdout) == plain(detail) | {"retention": plain(kept)}


def test_media_detail_refuses_without_a_reason_and_records_nothing(archive: Archive) -> None:
    video = archive.items["video"]
    # The instance's default actor never stands in for who views evidence.
    instance = _instance(archive, actor="A001")
    with pytest.raises(AccessRefused, match=re.escape("who is asking is required (--as)")):
        custody_usecases.media_detail(instance, str(video.id), actor=None, reason="复核")
    with pytest.raises(AccessRefused, match=re.escape("a reason is required (--reason)")):
        custody_usecases.media_detail(instance, str(video.id), actor="A001", reason=" ")
    assert _events(archive, video.id, EventKind.VIEWED) == []

    shown = custody_usecases.media_detail(instance, str(video.id), actor="1023", reason="核查")
    assert shown.item.id == video.id and shown.derived.proxy == video.proxy_key
    assert shown.custody[0].kind is EventKind.INGESTED
    assert (shown.custody[-1].kind, shown.custody[-1].actor) == (EventKind.VIEWED, "1023")


def test_view_media_and_audit_called_directly(archive: Archive) -> None:
    video, pdf = archive.items["video"], archive.items["pdf"]
    instance = _instance(archive)
    proxy = custody_usecases.view_media(instance, str(video.id), actor="1023", reason="复核")
    assert type(proxy) is custody_usecases.Opened and proxy.view is View.PROXY
    assert proxy.path is not None and proxy.path.is_file()
    metadata = custody_usecases.view_media(
        instance, pdf.sha256[:8], actor="1088", reason="核查", view=View.METADATA
    )
    assert isinstance(metadata, custody_usecases.OpenedMetadata)
    assert metadata.item.id == pdf.id and metadata.path is None
    assert set(plain(proxy)) == {"media_id", "view", "path", "event"}, "JSON as it was"

    history = custody_usecases.audit(instance, kinds=(EventKind.VIEWED,), limit=2)
    assert [(e.media_id, e.actor, e.seq) for e in history] == [
        (video.id, "1023", proxy.event),
        (pdf.id, "1088", metadata.event),
    ]


def test_tag_media_records_the_instances_actor(archive: Archive) -> None:
    photo = archive.items["photo"]
    done = custody_usecases.tag_media(
        _instance(archive, actor="A001"), str(photo.id), ["待复核", "Night"], ["draft"]
    )
    assert (done.added, done.absent, done.tags) == (("night", "待复核"), ("draft",), done.added)
    (tagged,) = _events(archive, photo.id, EventKind.TAGGED)
    assert tagged.actor == "A001" and tagged.details["added"] == ["night", "待复核"]


def test_search_carries_the_thumbnails_key_and_its_local_path(archive: Archive) -> None:
    found = search_usecases.search(_instance(archive), "kind:video,photo", limit=10)
    assert {h.id for h in found.items} == {archive.items["video"].id, archive.items["photo"].id}
    assert (found.sort, found.more) == ("-recorded", False)
    for hit in found.items:
        assert hit.thumbnail_key is not None
        assert hit.thumbnail == str(archive.store.derived_path(hit.thumbnail_key))
    listed = search_usecases.media_list(_instance(archive), limit=2)
    newest = sorted((i.id for i in archive.items.values()), reverse=True)[:2]
    assert [i.id for i in listed] == newest


# ---------------------------------------------------------------------------------- S3


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    with running_seaweed(tmp_path_factory.mktemp("seaweed")) as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """conftest's settings (and so its catalog and station), archiving into a bucket of its
    own on the test server. Only the S3 test asks for them: the others use ``archive``."""
    home = tmp_path / "home"
    monkeypatch.setenv("EVIDENCE_HOME", str(home))
    s3 = {
        "endpoint_url": seaweed.endpoint_url,
        "access_key": seaweed.access_key,
        "secret_key": seaweed.secret_key,
        "bucket": f"ev-{uuid.uuid4().hex[:12]}",
    }
    return make_settings(home, store={"kind": "s3", "s3": s3})


def test_search_in_an_s3_archive_shows_the_objects_address_not_a_made_up_path(
    settings: Settings,
    catalog: Catalog,
    station: Station,
    dock: Path,
    clips: dict[str, Path],
    seaweed: Seaweed,
) -> None:
    store = open_s3_store(settings)
    put(clips["photo"], dock, "BWC-0017/IMG_0001.jpg")
    ctx = IngestContext(catalog, store, settings, jobs_db.new_owner())
    assert sweep_station(ctx, station).ok
    bucket = settings.store.s3.bucket

    found = search_usecases.search(Instance(settings, catalog), "kind:photo")
    (hit,) = found.items
    assert hit.thumbnail_key and hit.thumbnail == f"s3://{bucket}/{hit.thumbnail_key}"
    assert not (settings.archive_dir / hit.thumbnail_key).exists()

    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_")}
    env.update(
        {
            "EVIDENCE_HOME": str(settings.home),
            "EVIDENCE_STORE__KIND": "s3",
            "EVIDENCE_STORE__S3__ENDPOINT_URL": seaweed.endpoint_url,
            "EVIDENCE_STORE__S3__ACCESS_KEY": seaweed.access_key,
            "EVIDENCE_STORE__S3__SECRET_KEY": seaweed.secret_key,
            "EVIDENCE_STORE__S3__BUCKET": bucket,
            "COLUMNS": "300",
        }
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "interfaces.cli", *args],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    emitted = cli("search", "kind:photo", "--json")
    assert emitted.returncode == 0, emitted.stderr
    assert json.loads(emitted.stdout) == plain(found)
    table = cli("search", "kind:photo")
    assert table.returncode == 0, table.stderr
    assert f"s3://{bucket}/" in table.stdout and str(settings.archive_dir) not in table.stdout
