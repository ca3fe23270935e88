"""The media item page and playback under access supervision, on a real clip ingested from a
registered recorder: a reason first (a VIEWED event naming user and reason, committed before
any byte), the proxy served with HTTP Range (206, the right bytes), the reason remembered for
``web.reason_minutes``, and a user outside the item's department refused (403 and a REFUSED
event)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.responses import FileResponse
from fastapi.testclient import TestClient

from docks.sweep import sweep_station
from interfaces.web import media as web_media
from interfaces.web.app import create_app
from interfaces.web.security import CSRF_COOKIE
from pipeline.accounts import passwords
from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import UserRole
from pipeline.cases import usecases as cases_usecases
from pipeline.catalog import Catalog, schema
from pipeline.catalog import media as media_db
from pipeline.catalog import registry as registry_rows
from pipeline.custody import log as custody
from pipeline.custody import usecases as custody_usecases
from pipeline.ingest.steps import IngestContext
from pipeline.instance import Instance
from pipeline.models import (
    FLAG_EXPLANATIONS,
    Device,
    DeviceKind,
    EventKind,
    MediaItem,
    MediaKind,
    MediaStatus,
    Officer,
    ProbeResult,
    RecordType,
    Signature,
    SourceFile,
    Station,
)
from pipeline.settings import Settings
from tests.conftest import put

PASSWORD = "correct horse 电池"
REASON = "复核案件 2026-0113 现场记录"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at its smallest: the real profile costs 0.15 s a hash on two shared cores,
    and these tests hash and verify hundreds of times (the profile has its own test)."""
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture(autouse=True)
def no_approvals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests hold viewing, playback and downloading under a reason alone, as before
    approvals: a policy that asks none (the shipped one asks approval to copy an original,
    and to view another department's items: tests/test_approvals.py)."""
    policy = tmp_path / "no-approvals.toml"
    policy.write_text("# no [[rule]]: no access needs approval\n", encoding="utf-8")
    monkeypatch.setenv("EVIDENCE_APPROVALS__POLICY_FILE", str(policy))


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


USERS = [
    # login, officer, roles, department
    ("zhang.wei", "1023", [UserRole.ARCHIVIST], None),  # the recording officer's unit
    ("li.na", "2001", [UserRole.ARCHIVIST], None),  # another unit
    ("boss", "9000", [UserRole.SUPERVISOR], None),  # the unit above both
    ("admin", "9000", [UserRole.ADMIN], None),
]


@pytest.fixture
def video(
    catalog: Catalog, ctx: IngestContext, station: Station, clips: dict[str, Path]
) -> MediaItem:
    """The clip recorded by officer 1023 on recorder BWC-1, ingested with its proxy."""
    now = datetime.now(UTC)
    with catalog.begin() as conn:
        registry_rows.save_officer(
            conn, Officer("1023", "张伟", "11010012345", "县公安局/治安大队"), now
        )
        registry_rows.save_officer(
            conn, Officer("2001", "李娜", "11010054321", "县公安局/交警大队"), now
        )
        registry_rows.save_officer(conn, Officer("9000", "王局", "11010099999", "县公安局"), now)
        registry_rows.save_device(conn, Device("BWC-1", DeviceKind.BODY_WORN), now)
        registry_rows.add_assignment(conn, "BWC-1", "1023", datetime(2026, 1, 1, tzinfo=UTC), None)
    put(clips["video"], station.root, "BWC-1/a.mp4")
    assert sweep_station(ctx, station).ok
    with catalog.read() as conn:
        (item,) = media_db.listing(conn)
    assert item.officer_id == "1023" and item.proxy_key is not None
    return item


@pytest.fixture
def instance(settings: Settings, catalog: Catalog, clock: Clock, video: MediaItem) -> Instance:
    instance = Instance(settings, catalog, clock=clock, actor="setup")
    for login, officer, roles, department in USERS:
        accounts.add_user(
            instance,
            login,
            officer_id=officer,
            roles=roles,
            password=PASSWORD,
            department=department,
        )
    return instance


@pytest.fixture
def app(instance: Instance) -> object:
    return create_app(instance)


def _client(app: object, login: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)  # type: ignore[arg-type]
    client.get("/signin")
    signed = client.post(
        "/signin",
        data={"login": login, "password": PASSWORD, "csrf_token": client.cookies[CSRF_COOKIE]},
    )
    assert signed.status_code == 303
    return client


@pytest.fixture
def client(app: object) -> Iterator[TestClient]:
    with _client(app, "zhang.wei") as c:
        yield c


def _view(client: TestClient, media_id: int, reason: str = REASON) -> Any:
    return client.post(
        f"/media/{media_id}/view",
        data={"reason": reason, "csrf_token": client.cookies[CSRF_COOKIE]},
    )


def _events(catalog: Catalog, media_id: int, kind: EventKind) -> list[custody.CustodyEvent]:
    with catalog.read() as conn:
        return [e for e in custody.events(conn, media_id=media_id) if e.kind is kind]


def _proxy_bytes(instance: Instance, item: MediaItem) -> bytes:
    assert item.proxy_key is not None
    return instance.store.derived_path(item.proxy_key).read_bytes()


def test_the_page_asks_for_a_reason_before_showing_anything(
    client: TestClient, instance: Instance, video: MediaItem
) -> None:
    page = client.get(f"/media/{video.id}")
    assert page.status_code == 200
    assert "调阅事由" in page.text and 'name="reason"' in page.text
    assert video.sha256 not in page.text and "<video" not in page.text
    played = client.get(f"/media/{video.id}/proxy")
    assert played.status_code == 403 and "请先说明调阅事由" in played.text
    assert _events(instance.catalog, video.id, EventKind.VIEWED) == []


def test_no_reason_or_a_single_character_is_refused(
    client: TestClient, instance: Instance, video: MediaItem
) -> None:
    for reason in ["", " ", "x", " . "]:
        response = _view(client, video.id, reason)
        assert response.status_code == 403, reason
    assert _events(instance.catalog, video.id, EventKind.VIEWED) == []


def test_a_viewing_is_one_event_naming_user_and_reason_then_the_proxy_plays_with_range(
    client: TestClient, instance: Instance, video: MediaItem
) -> None:
    assert _view(client, video.id).status_code == 303
    (viewed,) = _events(instance.catalog, video.id, EventKind.VIEWED)
    assert viewed.actor == "zhang.wei"
    assert viewed.details["view"] == "proxy" and viewed.details["reason"] == REASON

    page = client.get(f"/media/{video.id}")
    assert video.sha256 in page.text and f'src="/media/{video.id}/proxy"' in page.text
    assert REASON in page.text
    assert "<td>ingested</td>" in page.text and "<td>viewed</td>" in page.text, (
        "the custody history"
    )

    body = _proxy_bytes(instance, video)
    part = client.get(f"/media/{video.id}/proxy", headers={"Range": "bytes=100-299"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-299/{len(body)}"
    assert part.content == body[100:300]
    assert part.headers["content-type"] == "video/mp4"
    tail = client.get(f"/media/{video.id}/proxy", headers={"Range": f"bytes={len(body) - 10}-"})
    assert tail.status_code == 206 and tail.content == body[-10:]
    whole = client.get(f"/media/{video.id}/proxy")
    assert whole.status_code == 200 and whole.content == body
    # Seeking and reloading are the same viewing: still exactly one event.
    assert len(_events(instance.catalog, video.id, EventKind.VIEWED)) == 1


def test_the_reason_holds_for_its_minutes_only(
    client: TestClient, instance: Instance, clock: Clock, video: MediaItem
) -> None:
    _view(client, video.id)
    clock.now += timedelta(minutes=instance.settings.web.reason_minutes - 1)
    assert client.get(f"/media/{video.id}/proxy", headers={"Range": "bytes=0-9"}).status_code == 206
    clock.now += timedelta(minutes=1)
    assert client.get(f"/media/{video.id}/proxy", headers={"Range": "bytes=0-9"}).status_code == 403
    assert 'name="reason"' in client.get(f"/media/{video.id}").text


def test_a_reason_is_the_users_own(app: object, instance: Instance, video: MediaItem) -> None:
    with _client(app, "zhang.wei") as first, _client(app, "boss") as second:
        _view(first, video.id)
        assert second.get(f"/media/{video.id}/proxy").status_code == 403


@pytest.mark.parametrize("login", ["li.na", "admin"])
def test_a_user_outside_the_items_department_is_refused_and_it_is_recorded(
    app: object, instance: Instance, video: MediaItem, login: str
) -> None:
    with _client(app, login) as outsider:
        page = outsider.get(f"/media/{video.id}")
        viewed = _view(outsider, video.id)
        played = outsider.get(f"/media/{video.id}/proxy", headers={"Range": "bytes=0-9"})
    assert page.status_code == viewed.status_code == played.status_code == 403
    assert video.sha256 not in page.text and played.content != _proxy_bytes(instance, video)[:10]
    refused = _events(instance.catalog, video.id, EventKind.REFUSED)
    assert len(refused) == 3 and {e.actor for e in refused} == {login}
    assert refused[0].subject == video.sha256
    assert _events(instance.catalog, video.id, EventKind.VIEWED) == []


def test_a_supervisor_reads_the_units_below(
    app: object, instance: Instance, video: MediaItem
) -> None:
    with _client(app, "boss") as boss:
        assert _view(boss, video.id).status_code == 303
        assert (
            boss.get(f"/media/{video.id}/proxy", headers={"Range": "bytes=0-9"}).status_code == 206
        )
    (viewed,) = _events(instance.catalog, video.id, EventKind.VIEWED)
    assert viewed.actor == "boss"


def test_the_api_views_with_a_reason_and_the_csrf_header(
    client: TestClient, instance: Instance, video: MediaItem
) -> None:
    assert client.post(f"/api/v1/media/{video.id}/view", json={"reason": REASON}).status_code == 403
    response = client.post(
        f"/api/v1/media/{video.id}/view",
        json={"reason": REASON},
        headers={"X-CSRF-Token": client.cookies[CSRF_COOKIE]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    (viewed,) = _events(instance.catalog, video.id, EventKind.VIEWED)
    assert (body["event"], body["reason"], body["view"], body["item"]["id"]) == (
        viewed.seq,
        REASON,
        "proxy",
        video.id,
    )
    short = client.post(
        f"/api/v1/media/{video.id}/view",
        json={"reason": "x"},
        headers={"X-CSRF-Token": client.cookies[CSRF_COOKIE]},
    )
    assert (short.status_code, short.json()["error"]) == (403, "access-refused")


def test_an_unknown_item_is_404(client: TestClient) -> None:
    assert client.get("/media/999999").status_code == 404
    assert client.get("/media/0").status_code == 404
    assert client.get("/media/-1").status_code == 404
    assert client.get(f"/media/{'9' * 30}").status_code == 404, "no integer overflow, no 500"
    assert client.get("/media/not-a-number").status_code == 400
    api = client.post(
        "/api/v1/media/999999/view",
        json={"reason": REASON},
        headers={"X-CSRF-Token": client.cookies[CSRF_COOKIE]},
    )
    assert (api.status_code, api.json()["error"]) == (404, "not-found")


def _describe(client: TestClient, media_id: int, text: str) -> Any:
    return client.post(
        f"/media/{media_id}/describe",
        data={"description": text, "csrf_token": client.cookies[CSRF_COOKIE]},
    )


def test_an_archivist_of_the_unit_describes_the_recording(
    client: TestClient, instance: Instance, video: MediaItem
) -> None:
    _view(client, video.id)
    assert 'name="description"' in client.get(f"/media/{video.id}").text
    assert _describe(client, video.id, "  依法扣押 当事人签字确认  ").status_code == 303
    (described,) = _events(instance.catalog, video.id, EventKind.DESCRIBED)
    assert (described.actor, described.details["description"]) == (
        "zhang.wei",
        "依法扣押 当事人签字确认",
    )
    page = client.get(f"/media/{video.id}").text
    assert "依法扣押 当事人签字确认" in page and "— zhang.wei" in page
    assert _describe(client, video.id, "   ").status_code == 409, "an empty description is refused"


@pytest.mark.parametrize("login", ["li.na", "boss", "admin"])
def test_who_may_not_describe_is_refused_and_it_is_recorded(
    app: object, instance: Instance, video: MediaItem, login: str
) -> None:
    """Another unit's archivist, a supervisor (who reads), an administrator."""
    with _client(app, login) as other:
        assert _describe(other, video.id, "改写说明").status_code == 403
    assert _events(instance.catalog, video.id, EventKind.DESCRIBED) == []
    (refused,) = _events(instance.catalog, video.id, EventKind.REFUSED)
    assert (refused.actor, refused.details["action"]) == (login, "describe")


def test_an_id_is_an_id_even_where_a_hash_begins_with_its_digits(
    catalog: Catalog, client: TestClient, instance: Instance, video: MediaItem, station: Station
) -> None:
    """Six digits or more on the command line may be a SHA-256 prefix; an id the web (or any
    caller) passes as an int is an id: it never reaches the item whose hash starts so."""
    now = datetime.now(UTC)
    with catalog.begin() as conn:
        values = media_db.row_values(
            sha256="123456" + "0" * 58,
            size=1,
            source=SourceFile(station.id, station.root / "BWC-1" / "decoy.mp4", 1, 0),
            probe=ProbeResult(MediaKind.VIDEO),
            ident=None,
            status=MediaStatus.ARCHIVED,
            now=now,
        )
        decoy = media_db.insert_row(conn, {**values, "officer_id": "1023"})
        moved = media_db.insert_row(
            conn, {**dict(values, sha256="f" * 64), "id": 123456, "officer_id": "1023"}
        )
        assert media_db.get(conn, 123456).id == moved
        assert media_db.get(conn, "123456").id == decoy, "text of six digits is a prefix first"
    _view(client, 123456)
    _describe(client, 123456, "说明 123456")
    with catalog.read() as conn:
        assert media_db.get(conn, moved).description == "说明 123456"
        assert media_db.get(conn, decoy).description is None


# ------------------------------------------------ thumbnails, photos and PDFs, the original


@pytest.fixture
def photo_and_pdf(
    catalog: Catalog, ctx: IngestContext, station: Station, clips: dict[str, Path], video: MediaItem
) -> tuple[MediaItem, MediaItem]:
    """A photo and a PDF recorded on BWC-1 (officer 1023), named in Chinese."""
    put(clips["photo"], station.root, "BWC-1/现场照片.jpg")
    put(clips["pdf"], station.root, "BWC-1/现场笔录.pdf")
    assert sweep_station(ctx, station).ok
    with catalog.begin() as conn:
        items = {i.kind: i for i in media_db.listing(conn)}
        # A document names no recorder: it is the officer's by their filing it (here, as a
        # text record would be attributed by hand).
        pdf_id = items[MediaKind.DOCUMENT].id
        conn.execute(
            schema.media.update().where(schema.media.c.id == pdf_id), {"officer_id": "1023"}
        )
        photo, pdf = items[MediaKind.PHOTO], media_db.get(conn, pdf_id)
    assert photo.thumbnail_key is not None and photo.officer_id == pdf.officer_id == "1023"
    return photo, pdf


def _original(instance: Instance, item: MediaItem) -> bytes:
    with instance.store.original_file(item.sha256) as path:
        return path.read_bytes()


def test_a_photo_and_a_pdf_show_in_place_only_after_a_reason_and_one_viewed_event(
    client: TestClient, instance: Instance, photo_and_pdf: tuple[MediaItem, MediaItem]
) -> None:
    for item, kind in zip(photo_and_pdf, ("image/jpeg", "application/pdf"), strict=True):
        for route in ("inline", "thumbnail"):
            refused = client.get(f"/media/{item.id}/{route}")
            assert refused.status_code == 403 and "请先说明调阅事由" in refused.text, route
        assert _events(instance.catalog, item.id, EventKind.VIEWED) == []

        assert _view(client, item.id).status_code == 303
        page = client.get(f"/media/{item.id}").text
        assert f'href="/media/{item.id}/inline"' in page and f"/media/{item.id}/original" in page
        shown = client.get(f"/media/{item.id}/inline")
        assert shown.status_code == 200 and shown.content == _original(instance, item)
        assert shown.headers["content-type"] == kind
        assert shown.headers["content-disposition"].startswith("inline; ")
        assert "filename*=UTF-8''%E7%8E%B0%E5%9C%BA" in shown.headers["content-disposition"]
        (viewed,) = _events(instance.catalog, item.id, EventKind.VIEWED)
        assert (viewed.actor, viewed.details["reason"]) == ("zhang.wei", REASON)
    photo, _ = photo_and_pdf
    assert (
        f'<img class="inline" src="/media/{photo.id}/inline"'
        in client.get(f"/media/{photo.id}").text
    )
    assert photo.thumbnail_key is not None
    thumb = client.get(f"/media/{photo.id}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content == instance.store.derived_path(photo.thumbnail_key).read_bytes()
    assert len(_events(instance.catalog, photo.id, EventKind.VIEWED)) == 1, "the same viewing"


def test_after_the_reason_the_page_shows_probe_officer_flags_tags_text_record_and_cases(
    client: TestClient, instance: Instance, photo_and_pdf: tuple[MediaItem, MediaItem]
) -> None:
    _, pdf = photo_and_pdf
    custody_usecases.tag_media(instance, str(pdf.id), ["现场", "复核"], [])
    cases_usecases.set_text_record(instance, pdf.id, RecordType.ON_SITE, Signature.REFUSAL_NOTED)
    cases_usecases.add_case(instance, "2026-0113", title="查封扣押 <现场>", category="seizure")
    cases_usecases.link_media(instance, "2026-0113", pdf.id, "现场笔录归卷")
    with instance.catalog.begin() as conn:  # as the identification would have flagged it
        flags = [{"code": "clock-drift", "message": "device clock 3 min fast"}]
        conn.execute(schema.media.update().where(schema.media.c.id == pdf.id), {"flags": flags})
    before = client.get(f"/media/{pdf.id}").text
    assert "查封扣押" not in before and "张伟" not in before and "复核、" not in before

    assert _view(client, pdf.id).status_code == 303
    page = client.get(f"/media/{pdf.id}").text
    assert "张伟" in page and "1023" in page
    assert "现场、复核" in page or "复核、现场" in page
    assert RecordType.ON_SITE.label_zh in page and Signature.REFUSAL_NOTED.label_zh in page
    assert '<a href="/cases/2026-0113">2026-0113</a> 查封扣押 &lt;现场&gt;' in page
    assert FLAG_EXPLANATIONS["clock-drift"] in page and "device clock 3 min fast" in page


def test_the_video_page_shows_its_probe(client: TestClient, video: MediaItem) -> None:
    assert _view(client, video.id).status_code == 303
    page = client.get(f"/media/{video.id}").text
    probe = video.probe
    assert probe.width and probe.height and probe.container and probe.video_codec
    assert f"{probe.width}×{probe.height}" in page
    assert probe.container in page and f"视频 video {probe.video_codec}" in page
    assert "帧/秒 fps" in page and '张伟 <span class="note">1023</span>' in page


def test_a_video_is_not_shown_in_place_and_its_poster_is_its_thumbnail(
    client: TestClient, video: MediaItem
) -> None:
    _view(client, video.id)
    assert f'poster="/media/{video.id}/thumbnail"' in client.get(f"/media/{video.id}").text
    assert client.get(f"/media/{video.id}/thumbnail").status_code == 200
    assert client.get(f"/media/{video.id}/inline").status_code == 404


def _download(client: TestClient, media_id: int, reason: str = "提交法院 案件 2026-0113") -> Any:
    return client.post(
        f"/media/{media_id}/original",
        data={"reason": reason, "csrf_token": client.cookies[CSRF_COOKIE]},
    )


def test_the_original_downloads_byte_identical_after_one_exported_event(
    client: TestClient,
    instance: Instance,
    photo_and_pdf: tuple[MediaItem, MediaItem],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, pdf = photo_and_pdf
    # The copy is made and verified first, the event committed, then the first byte sent:
    # look at the log when the original is read and when the response starts.
    when_copied: list[list[custody.CustodyEvent]] = []
    when_sent: list[list[custody.CustodyEvent]] = []
    real = type(instance.store).original_file

    def reading(store: Any, sha256: str) -> Any:
        when_copied.append(_events(instance.catalog, pdf.id, EventKind.EXPORTED))
        return real(store, sha256)

    class Watched(FileResponse):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            when_sent.append(_events(instance.catalog, pdf.id, EventKind.EXPORTED))
            await super().__call__(scope, receive, send)

    with monkeypatch.context() as patched:
        patched.setattr(type(instance.store), "original_file", reading)
        patched.setattr(web_media, "FileResponse", Watched)
        got = _download(client, pdf.id)
    assert got.status_code == 200, got.text
    assert when_copied == [[]] and [len(events) for events in when_sent] == [1]
    assert got.content == _original(instance, pdf)
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"____.pdf\"; filename*=UTF-8''"
        "%E7%8E%B0%E5%9C%BA%E7%AC%94%E5%BD%95.pdf"
    )
    (exported,) = _events(instance.catalog, pdf.id, EventKind.EXPORTED)
    assert (exported.actor, exported.details) == (
        "zhang.wei",
        {"view": "original", "reason": "提交法院 案件 2026-0113", "to": "web download"},
    )
    assert _events(instance.catalog, pdf.id, EventKind.VIEWED) == [], "a download is an export"
    assert list((instance.settings.home / "work").glob("*.download")) == [], "no copy is left"


def test_a_download_without_a_reason_or_by_an_outsider_is_refused(
    app: object, client: TestClient, instance: Instance, video: MediaItem
) -> None:
    for reason in ["", " ", "x"]:
        assert _download(client, video.id, reason).status_code == 403
    no_csrf = client.post(f"/media/{video.id}/original", data={"reason": REASON})
    assert no_csrf.status_code == 403
    with _client(app, "li.na") as outsider:
        assert _download(outsider, video.id).status_code == 403
    assert _events(instance.catalog, video.id, EventKind.EXPORTED) == []
    (refused,) = _events(instance.catalog, video.id, EventKind.REFUSED)
    assert (refused.actor, refused.details["action"]) == ("li.na", "view")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("现场.pdf", "attachment; filename=\"__.pdf\"; filename*=UTF-8''%E7%8E%B0%E5%9C%BA.pdf"),
        (
            'a"b;\r\nSet-Cookie: x.mp4',
            'attachment; filename="a_b___Set-Cookie:_x.mp4"; '
            "filename*=UTF-8''a%22b%3B%0D%0ASet-Cookie%3A%20x.mp4",
        ),
        ("", "attachment; filename=\"download\"; filename*=UTF-8''"),
    ],
)
def test_a_file_name_from_a_dock_cannot_break_out_of_its_header(name: str, expected: str) -> None:
    """Names come from recorders and people: CJK is kept (RFC 5987), quotes, semicolons and
    line breaks never reach the header as themselves."""
    assert web_media.content_disposition("attachment", name) == expected
