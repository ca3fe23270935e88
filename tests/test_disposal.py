"""Disposal as a workflow (issue 19): real clips ingested into a real catalog and store, the
shipped retention rules, an injected clock. A sweep lists what is past its retention; an
archivist asks, a supervisor approves; the bytes go only after the grace period, an undo
within it keeps them; a hold or a link placed after approval keeps them too; verify accepts
the disposed item and still catches an original deleted any other way; the custody log
replays a disposed item as disposed. On S3 (SeaweedFS, COMPLIANCE) a lock not expired is
refused by the server and reported, never forced. The CLI and the queue page on top."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from docks.sweep import sweep_station
from interfaces.web.app import create_app
from interfaces.web.security import CSRF_COOKIE
from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import User, UserRole
from pipeline.cases import usecases as cases_usecases
from pipeline.catalog import Catalog, schema
from pipeline.catalog import accounts as account_rows
from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import media as media_db
from pipeline.catalog import registry as registry_rows
from pipeline.custody import log as custody
from pipeline.custody import replay
from pipeline.custody import usecases as custody_usecases
from pipeline.custody.access import View, open_media
from pipeline.errors import DisposalError, NotFound, PermissionDenied
from pipeline.ingest.steps import IngestContext
from pipeline.instance import Instance
from pipeline.models import (
    Device,
    DeviceKind,
    EventKind,
    MediaItem,
    MediaKind,
    MediaStatus,
    Officer,
    Station,
)
from pipeline.retention import disposal, disposal_removal, holds
from pipeline.retention.derive import retention_of
from pipeline.retention.disposal_requests import DisposalListing, ItemState, RequestState
from pipeline.retention.rules import add_months, rules_of
from pipeline.retention.sweep import list_candidates, show_sweep
from pipeline.settings import Settings
from pipeline.storage.local import LocalStore
from tests.conftest import RECORDED, free_port, make_settings, pin_instance_key, put
from tests.seaweed import Seaweed, running_seaweed
from tests.test_approvals import PASSWORD, Cli, cheap_hashing, cli  # noqa: F401  (the fixtures)
from tests.test_web_browser import browser  # noqa: F401  (the fixture)

REASON = "保存期满，未关联案件 (retention passed, no case)"
#: Ingest time of the clips (the video was recorded at RECORDED): the tests' clock starts here.
T0 = RECORDED + timedelta(hours=1)
#: Past the video's six months and the 184-day lock floor from ingest.
LATER = T0 + timedelta(days=200)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


USERS = [
    ("zhang.wei", "1023", [UserRole.ARCHIVIST]),  # 县公安局/治安大队: the recordings' unit
    ("li.na", "2001", [UserRole.ARCHIVIST]),  # 县公安局/交警大队: another unit
    ("boss", "9000", [UserRole.SUPERVISOR]),  # 县公安局: above both
    ("jiao.boss", "2002", [UserRole.SUPERVISOR]),  # 县公安局/交警大队: not the recordings'
    ("fazhi", "9100", [UserRole.LEGAL_REVIEWER]),
]


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _ingest(
    catalog: Catalog, ctx: IngestContext, station: Station, clips: dict[str, Path]
) -> tuple[MediaItem, MediaItem]:
    """A video (with proxy and thumbnail) and a photo recorded by officer 1023 on BWC-1."""
    officers = [
        ("1023", "张伟", "县公安局/治安大队"),
        ("2001", "李娜", "县公安局/交警大队"),
        ("2002", "赵队", "县公安局/交警大队"),
        ("9000", "王局", "县公安局"),
        ("9100", "钱科", "县法制办"),
    ]
    with catalog.begin() as conn:
        for officer_id, name, department in officers:
            registry_rows.save_officer(
                conn, Officer(officer_id, name, f"1101{officer_id}", department), T0
            )
        registry_rows.save_device(conn, Device("BWC-1", DeviceKind.BODY_WORN), T0)
        registry_rows.add_assignment(conn, "BWC-1", "1023", datetime(2026, 1, 1, tzinfo=UTC), None)
    put(clips["video"], station.root, "BWC-1/a.mp4")
    photo_file = put(clips["photo"], station.root, "BWC-1/b.jpg")
    # A photo carries no recording time: its file time is taken, the time it was taken.
    os.utime(photo_file, (RECORDED.timestamp(), RECORDED.timestamp()))
    assert sweep_station(ctx, station).ok
    with catalog.read() as conn:
        found = {i.kind: i for i in media_db.listing(conn)}
    video, photo = found[MediaKind.VIDEO], found[MediaKind.PHOTO]
    assert video.proxy_key and video.thumbnail_key and video.officer_id == "1023"
    return video, photo


def _instance(settings: Settings, catalog: Catalog, clock: Clock, store: Any) -> Instance:
    instance = Instance(settings, catalog, clock=clock, actor="setup", _store=store)
    for login, officer, roles in USERS:
        accounts.add_user(instance, login, officer_id=officer, roles=roles, password=PASSWORD)
    return instance


@pytest.fixture
def local(
    catalog: Catalog, settings: Settings, station: Station, clips: dict[str, Path], clock: Clock
) -> tuple[Instance, MediaItem, MediaItem]:
    store = LocalStore(settings.archive_dir, settings.ingest.block_size)
    ctx = IngestContext(catalog, store, settings, jobs_db.new_owner(), clock=clock)
    video, photo = _ingest(catalog, ctx, station, clips)
    return _instance(settings, catalog, clock, store), video, photo


def _user(instance: Instance, login: str) -> User:
    with instance.catalog.read() as conn:
        found = account_rows.get(conn, login)
    assert found is not None
    return found


def _events(catalog: Catalog, media_id: int, *kinds: EventKind) -> list[custody.CustodyEvent]:
    with catalog.read() as conn:
        return [e for e in custody.events(conn, media_id=media_id) if e.kind in kinds]


def _item(catalog: Catalog, media_id: int) -> MediaItem:
    with catalog.read() as conn:
        return media_db.get(conn, media_id)


def _approved(instance: Instance, *media_ids: int) -> int:
    """A request of zhang.wei for ``media_ids``, approved by boss at the clock's time."""
    asked = disposal.request_disposal(
        instance, _user(instance, "zhang.wei"), reason=REASON, media_ids=media_ids
    )
    done = disposal.approve_disposal(instance, _user(instance, "boss"), asked.id, "同意销毁")
    assert done.state is RequestState.APPROVED
    return asked.id


def _problems(instance: Instance) -> list[tuple[str, str]]:
    report = custody_usecases.verify(instance, record=False)
    return [(p.code, p.subject) for p in report.problems]


# ------------------------------------------------------------------------- candidates


def test_an_unlinked_item_becomes_a_candidate_after_six_months(
    local: tuple[Instance, MediaItem, MediaItem], clock: Clock
) -> None:
    instance, video, _ = local
    rules = rules_of(instance.settings)
    with instance.catalog.read() as conn:
        kept = retention_of(conn, rules, video.id)
    assert video.recorded_end is not None
    six_months = add_months(video.recorded_end.astimezone(rules.zone), 6)
    assert kept.until == six_months and not kept.held
    assert any("未关联案件的记录 6 个月" in r for r in kept.reasons)

    clock.now = six_months - timedelta(seconds=1)
    before = list_candidates(instance)
    assert video.id not in [c.media_id for c in before.candidates]
    clock.now = six_months
    after = list_candidates(instance)
    (listed,) = [c for c in after.candidates if c.media_id == video.id]
    assert listed.until == six_months and listed.size == video.size
    assert after.id > before.id and show_sweep(instance).id == after.id
    # A listing is not a disposal: the item is untouched, no custody event says otherwise.
    assert _item(instance.catalog, video.id).status is MediaStatus.ARCHIVED
    assert not _events(instance.catalog, video.id, EventKind.DISPOSAL_REQUESTED)

    # An archivist asks for "the candidates of sweep N": once on a request, not listed again.
    asked = disposal.request_disposal(
        instance, _user(instance, "zhang.wei"), reason=REASON, sweep=after.id
    )
    assert video.id in asked.media and asked.sweep_id == after.id
    assert video.id not in [c.media_id for c in list_candidates(instance).candidates]


def test_linking_to_a_case_makes_it_permanent_and_drops_it_at_approval(
    local: tuple[Instance, MediaItem, MediaItem], clock: Clock
) -> None:
    instance, video, photo = local
    clock.now = LATER
    asked = disposal.request_disposal(
        instance, _user(instance, "zhang.wei"), reason=REASON, media_ids=[video.id, photo.id]
    )
    cases_usecases.add_case(
        instance, "2026-0113", title="扣押", category="seizure", department="县公安局/治安大队"
    )
    cases_usecases.link_media(instance, "2026-0113", video.id, "涉案证据")
    done = disposal.approve_disposal(instance, _user(instance, "boss"), asked.id, "同意")
    states = {i.media_id: i for i in done.items}
    assert states[video.id].state is ItemState.DROPPED
    assert "永久" in (states[video.id].note or "") and "2026-0113" in (states[video.id].note or "")
    assert states[photo.id].state is ItemState.APPROVED
    (dropped,) = _events(instance.catalog, video.id, EventKind.DISPOSAL_REFUSED)
    assert dropped.details["dropped"] is True and dropped.actor == "boss"
    assert not _events(instance.catalog, video.id, EventKind.DISPOSAL_APPROVED)


# --------------------------------------------------------------------- grace and removal


def test_an_approved_disposal_removes_the_bytes_only_after_the_grace_period(
    local: tuple[Instance, MediaItem, MediaItem], clock: Clock
) -> None:
    instance, video, photo = local
    store = instance.store
    assert isinstance(store, LocalStore)
    clock.now = LATER
    request_id = _approved(instance, video.id)
    assert instance.settings.retention.grace_days == 7

    clock.now = LATER + timedelta(days=7) - timedelta(seconds=1)
    assert disposal_removal.dispose_due(instance).removals == ()
    assert store.has_original(video.sha256) and _item(instance.catalog, video.id).proxy_key

    clock.now = LATER + timedelta(days=7)
    run = disposal_removal.dispose_due(instance.acting("system"))
    assert [(r.media_id, r.state) for r in run.removals] == [(video.id, ItemState.DISPOSED)]
    assert run.freed == video.size and run.derived_left == ()
    assert not store.has_original(video.sha256)
    assert video.proxy_key and not (store.root / video.proxy_key).exists()
    assert video.thumbnail_key and not (store.root / video.thumbnail_key).exists()
    assert store.has_original(photo.sha256)  # not asked for: kept

    gone = _item(instance.catalog, video.id)
    assert gone.status is MediaStatus.DISPOSED and gone.proxy_key is None
    stone = disposal.tombstone_of(instance, video.id)
    assert stone is not None
    assert (stone.sha256, stone.size, stone.request_id) == (video.sha256, video.size, request_id)
    assert (stone.requested_by, stone.approved_by, stone.reason) == ("zhang.wei", "boss", REASON)
    assert stone.disposed_at == clock.now and stone.approved_at == LATER
    kinds = [e.kind for e in _events(instance.catalog, video.id, *_DISPOSAL_KINDS)]
    assert kinds == [EventKind.DISPOSAL_REQUESTED, EventKind.DISPOSAL_APPROVED, EventKind.DISPOSED]
    # Opening it finds nothing to copy, and says why (no event: nothing was accessed).
    with pytest.raises(NotFound, match="已销毁"):
        open_media(
            instance.catalog,
            store,
            str(video.id),
            actor="zhang.wei",
            reason=REASON,
            view=View.ORIGINAL,
            download_to=store.root.parent / "copy.mp4",
        )
    # verify --full: the chain with the DISPOSED event, the replay, the tombstone: clean.
    assert _problems(instance) == []
    # Nothing is due any more; a second run does nothing.
    assert disposal_removal.dispose_due(instance).removals == ()


_DISPOSAL_KINDS = (
    EventKind.DISPOSAL_REQUESTED,
    EventKind.DISPOSAL_APPROVED,
    EventKind.DISPOSAL_REFUSED,
    EventKind.DISPOSAL_UNDONE,
    EventKind.DISPOSED,
)


def test_undo_within_the_grace_period_keeps_the_bytes(
    local: tuple[Instance, MediaItem, MediaItem], clock: Clock
) -> None:
    instance, video, photo = local
    clock.now = LATER
    request_id = _approved(instance, video.id, photo.id)
    clock.now = LATER + timedelta(days=3)
    with pytest.raises(PermissionDenied):  # another unit's archivist
        disposal.undo_disposal(instance, _user(instance, "li.na"), request_id, reason="误报")
    undone = disposal.undo_disposal(
        instance,
        _user(instance, "zhang.wei"),
        request_id,
        reason="当事人申请复议",
        media_ids=[video.id],
    )
    states = {i.media_id: i.state for i in undone.items}
    assert states == {video.id: ItemState.UNDONE, photo.id: ItemState.APPROVED}
    (event,) = _events(instance.catalog, video.id, EventKind.DISPOSAL_UNDONE)
    assert event.details["reason"] == "当事人申请复议"

    clock.now = LATER + timedelta(days=8)
    with pytest.raises(DisposalError, match="宽限期"):
        disposal.undo_disposal(instance, _user(instance, "boss"), request_id, reason="太晚了")
    run = disposal_removal.dispose_due(instance)
    assert [(r.media_id, r.state) for r in run.removals] == [(photo.id, ItemState.DISPOSED)]
    assert instance.store.has_original(video.sha256)
    assert _item(instance.catalog, video.id).status is MediaStatus.ARCHIVED
    assert _problems(instance) == []


def test_a_hold_placed_after_approval_blocks_the_removal(
    local: tuple[Instance, MediaItem, MediaItem], clock: Clock
) -> None:
    instance, video, _ = local
    clock.now = LATER
    request_id = _approved(instance, video.id)
    clock.now = LATER + timedelta(days=2)
    holds.place_hold(
        instance, _user(instance, "fazhi"), reason="行政复议期间保全", media_ids=[video.id]
    )
    clock.now = LATER + timedelta(days=8)
    (removal,) = disposal_removal.dispose_due(instance).removals
    assert removal.state is ItemState.DROPPED and "法律保全" in (removal.note or "")
    assert instance.store.has_original(video.sha256)
    assert _item(instance.catalog, video.id).status is MediaStatus.ARCHIVED
    assert disposal.tombstone_of(instance, video.id) is None
    shown = disposal.show_disposal(instance, _user(instance, "zhang.wei"), request_id)
    assert shown.items[0].state is ItemState.DROPPED
    assert _events(instance.catalog, video.id, EventKind.DISPOSAL_REFUSED)[-1].details["dropped"]
    assert not _events(instance.catalog, video.id, EventKind.DISPOSED)


def test_who_may_ask_and_decide(local: tuple[Instance, MediaItem, MediaItem], clock: Clock) -> None:
    instance, video, _ = local
    clock.now = LATER
    with pytest.raises(PermissionDenied):  # a supervisor does not ask
        disposal.request_disposal(
            instance, _user(instance, "boss"), reason=REASON, media_ids=[video.id]
        )
    with pytest.raises(PermissionDenied):  # an archivist of another unit
        disposal.request_disposal(
            instance, _user(instance, "li.na"), reason=REASON, media_ids=[video.id]
        )
    with pytest.raises(DisposalError, match="理由"):
        disposal.request_disposal(
            instance, _user(instance, "zhang.wei"), reason=" ", media_ids=[video.id]
        )
    asked = disposal.request_disposal(
        instance, _user(instance, "zhang.wei"), reason=REASON, media_ids=[video.id]
    )
    assert _events(instance.catalog, video.id, EventKind.DISPOSAL_REQUESTED)[0].actor == "zhang.wei"
    for login in ("zhang.wei", "jiao.boss", "li.na"):  # the requester; another unit; no approver
        with pytest.raises(PermissionDenied):
            disposal.approve_disposal(instance, _user(instance, login), asked.id, "同意")
    refusals = [e for e in _all_events(instance.catalog) if e.kind is EventKind.REFUSED]
    assert {e.actor for e in refusals} >= {"boss", "li.na", "zhang.wei", "jiao.boss"}
    waiting = disposal.list_disposals(instance, _user(instance, "boss"), DisposalListing.WAITING)
    assert [r.id for r in waiting] == [asked.id]
    assert disposal.waiting_disposals(instance, _user(instance, "fazhi")) == 1
    assert disposal.waiting_disposals(instance, _user(instance, "jiao.boss")) == 0
    with pytest.raises(DisposalError, match="理由"):
        disposal.refuse_disposal(instance, _user(instance, "fazhi"), asked.id, "")
    done = disposal.refuse_disposal(instance, _user(instance, "fazhi"), asked.id, "涉诉，暂缓")
    assert done.state is RequestState.REFUSED and done.items[0].state is ItemState.REFUSED
    (event,) = _events(instance.catalog, video.id, EventKind.DISPOSAL_REFUSED)
    assert event.actor == "fazhi" and event.details["comment"] == "涉诉，暂缓"
    with pytest.raises(DisposalError, match="已处理"):
        disposal.approve_disposal(instance, _user(instance, "boss"), asked.id, "同意")
    clock.now = LATER + timedelta(days=30)
    assert disposal_removal.dispose_due(instance).removals == ()


def _all_events(catalog: Catalog) -> list[custody.CustodyEvent]:
    with catalog.read() as conn:
        return list(custody.events(conn))


def test_nothing_disposable_is_refused_as_a_request(
    local: tuple[Instance, MediaItem, MediaItem], clock: Clock
) -> None:
    instance, video, _ = local
    clock.now = T0 + timedelta(days=30)  # six months not passed
    with pytest.raises(DisposalError, match="无可销毁"):
        disposal.request_disposal(
            instance, _user(instance, "zhang.wei"), reason=REASON, media_ids=[video.id]
        )
    assert not _events(instance.catalog, video.id, *_DISPOSAL_KINDS)


# ------------------------------------------------------------------------------- verify


def test_an_original_deleted_outside_disposal_is_still_caught(
    local: tuple[Instance, MediaItem, MediaItem], clock: Clock
) -> None:
    instance, video, photo = local
    store = instance.store
    assert isinstance(store, LocalStore)
    clock.now = LATER
    _approved(instance, video.id)
    clock.now = LATER + timedelta(days=8)
    disposal_removal.dispose_due(instance)
    assert _problems(instance) == []

    # The photo's original deleted by hand: caught, and only it.
    path = store.original_path(photo.sha256)
    path.chmod(0o600)
    path.unlink()
    assert _problems(instance) == [("E-ORIGINAL-MISSING", f"media {photo.id}")]

    # Its row set to "disposed" by hand to hide it: no event, no tombstone, still caught.
    with instance.catalog.begin() as conn:
        conn.execute(
            update(schema.media)
            .where(schema.media.c.id == photo.id)
            .values(status=MediaStatus.DISPOSED.value)
        )
    found = _problems(instance)
    assert ("E-ORIGINAL-MISSING", f"media {photo.id}") in found
    assert (replay.MISMATCH, f"media {photo.id} status") in found


def test_the_custody_log_replays_a_disposed_item_as_disposed(
    local: tuple[Instance, MediaItem, MediaItem], clock: Clock
) -> None:
    instance, video, _ = local
    clock.now = LATER
    _approved(instance, video.id)
    clock.now = LATER + timedelta(days=8)
    disposal_removal.dispose_due(instance)
    assert replay.check_records(instance.catalog).problems == ()
    # Resurrected by hand (status back, a proxy key again): the log says otherwise.
    with instance.catalog.begin() as conn:
        conn.execute(
            update(schema.media)
            .where(schema.media.c.id == video.id)
            .values(status=MediaStatus.ARCHIVED.value, proxy_key=video.proxy_key)
        )
    subjects = {p.subject for p in replay.check_records(instance.catalog).problems}
    assert {f"media {video.id} status", f"media {video.id} proxy_key"} <= subjects
    # A tombstone forged or edited: held to the DISPOSED event.
    with instance.catalog.begin() as conn:
        conn.execute(
            update(schema.disposal_tombstones)
            .where(schema.disposal_tombstones.c.media_id == video.id)
            .values(size=1)
        )
    found = _problems(instance)
    assert (replay.MISMATCH, f"disposal_tombstones {video.id} size") in found


# ------------------------------------------------------------------------------- the flow


def test_the_daily_flow_lists_candidates_and_disposes_what_is_due(
    prefect_api: str, local: tuple[Instance, MediaItem, MediaItem], clock: Clock
) -> None:
    """The flow runs on the real clock: approved eight days ago, the video is due; the photo,
    past its six months too but asked for by nobody, is only listed."""
    from prefect.client.orchestration import get_client

    from flows.retention import retention_sweep

    instance, video, photo = local
    clock.now = datetime.now(UTC) - timedelta(days=8)
    _approved(instance, video.id)
    result = retention_sweep()
    assert result["candidates"] == 1 and result["candidate_bytes"] == photo.size
    assert (result["disposed"], result["freed_bytes"]) == (1, video.size)
    assert result["refused_by_store"] == result["dropped"] == result["derived_left"] == 0
    assert result["holds_lapsed"] == []
    assert _item(instance.catalog, video.id).status is MediaStatus.DISPOSED
    assert _item(instance.catalog, photo.id).status is MediaStatus.ARCHIVED
    assert not _events(instance.catalog, photo.id, *_DISPOSAL_KINDS)  # listed, nothing more
    listed = show_sweep(instance, result["sweep"])
    assert [c.media_id for c in listed.candidates] == [photo.id]
    with get_client(sync_client=True) as client:
        (artifact,) = [a for a in client.read_latest_artifacts() if a.key == "retention-candidates"]
    rows = json.loads(str(artifact.data))
    assert rows == [
        {"media": photo.id, "until": listed.candidates[0].until.isoformat(), "bytes": photo.size}
    ]
    assert photo.original_name not in str(artifact.data)  # ids, dates, sizes: no names


# ------------------------------------------------------------------------------------ S3


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    with running_seaweed(tmp_path_factory.mktemp("seaweed")) as server:
        yield server


@pytest.fixture
def on_s3(
    tmp_path: Path,
    seaweed: Seaweed,
    monkeypatch: pytest.MonkeyPatch,
    clips: dict[str, Path],
    clock: Clock,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Instance, MediaItem, MediaItem]]:
    """The same two clips, archived into a bucket of their own, locked in COMPLIANCE mode
    for the default 184 days from the server's own now."""
    from pipeline.catalog import open_catalog
    from pipeline.registry.stations import save_station
    from pipeline.storage.s3 import open_s3_store

    home = tmp_path / "s3home"
    monkeypatch.setenv("EVIDENCE_HOME", str(home))
    pin_instance_key(home, monkeypatch)
    if os.environ.get("EVIDENCE_TEST_CATALOG") == "postgresql":
        monkeypatch.setenv("EVIDENCE_CATALOG__URL", request.getfixturevalue("pg_url"))
    s3 = {
        "endpoint_url": seaweed.endpoint_url,
        "access_key": seaweed.access_key,
        "secret_key": seaweed.secret_key,
        "bucket": f"ev-{uuid.uuid4().hex[:12]}",
        "retention_mode": "COMPLIANCE",
    }
    settings = make_settings(home, store={"kind": "s3", "s3": s3})
    catalog = open_catalog(settings.catalog_url)
    dock = tmp_path / "s3dock"
    dock.mkdir()
    with catalog.begin() as conn:
        save_station(conn, Station("DOCK-01", dock, name="采集站 1"), "tester")
    store = open_s3_store(settings)
    ctx = IngestContext(catalog, store, settings, jobs_db.new_owner(), clock=clock)
    video, photo = _ingest(catalog, ctx, Station("DOCK-01", dock.resolve()), clips)
    yield _instance(settings, catalog, clock, store), video, photo
    catalog.dispose()


def test_on_s3_a_lock_not_expired_is_refused_by_the_server_and_reported(
    on_s3: tuple[Instance, MediaItem, MediaItem], clock: Clock
) -> None:
    from pipeline.storage.s3 import S3Store, original_key

    instance, video, _ = on_s3
    store = instance.store
    assert isinstance(store, S3Store)
    lock = store.lock_status(video.sha256)
    assert lock.mode == "COMPLIANCE" and lock.retain_until is not None
    # The rules say it may go (the injected clock is past six months), the server's lock,
    # counted from the server's real time, says not yet.
    assert lock.retain_until > datetime.now(UTC) + timedelta(days=100)
    clock.now = LATER
    request_id = _approved(instance, video.id)
    clock.now = LATER + timedelta(days=8)
    (removal,) = disposal_removal.dispose_due(instance).removals
    assert removal.state is ItemState.STORE_REFUSED
    assert "refused the deletion" in (removal.note or "") and "AccessDenied" in (removal.note or "")
    assert store.has_original(video.sha256)
    store.verify_original(video.sha256)  # every byte still there, under its first version
    assert store.lock_status(video.sha256).retain_until == lock.retain_until
    kept = _item(instance.catalog, video.id)
    assert kept.status is MediaStatus.ARCHIVED and kept.proxy_key == video.proxy_key
    assert disposal.tombstone_of(instance, video.id) is None
    assert not _events(instance.catalog, video.id, EventKind.DISPOSED)
    (alert,) = _events(instance.catalog, video.id, EventKind.ALERT)
    assert alert.details["code"] == "disposal-refused-by-store"
    assert original_key(video.sha256) in alert.details["answer"]
    shown = disposal.show_disposal(instance, _user(instance, "boss"), request_id)
    assert shown.items[0].state is ItemState.STORE_REFUSED
    # Never tried again by itself, never forced: the next run leaves it.
    assert disposal_removal.dispose_due(instance).removals == ()
    assert _problems(instance) == []
    # A derived object is not locked: every version of it goes, and its cached copy.
    assert video.thumbnail_key is not None
    key = store.put_derived(video.sha256, "scratch.jpg", store.derived_path(video.thumbnail_key))
    assert store.derived_path(key).exists()
    store.remove_derived(key)
    assert not (store.cache / key).exists()
    listed = store.client.list_object_versions(Bucket=store.bucket, Prefix=key)
    assert not listed.get("Versions") and not listed.get("DeleteMarkers")


# ------------------------------------------------------------------------- CLI and web


def test_the_cli_requests_approves_undoes_and_disposes(
    local: tuple[Instance, MediaItem, MediaItem],
    cli: Cli,  # noqa: F811  (the fixture)
) -> None:
    """The CLI runs on the real clock: the clips' six months (and the lock floor from their
    ingest at T0) are long past."""
    _, video, photo = local
    code, out, err = cli("retention", "sweep", "--json")
    assert code == 0, err
    sweep_id = json.loads(out)["id"]
    assert {video.id, photo.id} <= {c["media_id"] for c in json.loads(out)["candidates"]}
    code, out, err = cli(
        "retention",
        "request",
        "--sweep",
        str(sweep_id),
        "--reason",
        REASON,
        "--as",
        "zhang.wei",
        "--json",
    )
    assert code == 0, err
    request_id = json.loads(out)["id"]
    code, _, err = cli(
        "retention", "approve", str(request_id), "--comment", "同意", "--as", "zhang.wei"
    )
    assert code == 2 and "不能审批本人的申请" in err
    code, out, err = cli(
        "retention", "approve", str(request_id), "--comment", "同意销毁", "--as", "boss", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["state"] == "approved" and json.loads(out)["grace_until"]
    code, out, err = cli(
        "retention",
        "undo",
        str(request_id),
        "--media",
        str(video.id),
        "--reason",
        "需留存",
        "--as",
        "boss",
        "--json",
    )
    assert code == 0, err
    code, out, err = cli("retention", "requests", "--all", "--as", "boss", "--json")
    assert code == 0, err
    (listed,) = json.loads(out)
    assert {i["media_id"]: i["state"] for i in listed["items"]} == {
        video.id: "undone",
        photo.id: "approved",
    }
    code, out, err = cli("retention", "dispose", "--due", "--json")
    assert code == 0 and json.loads(out)["removals"] == []  # the grace period runs
    code, out, err = cli("retention", "plan", "--json")
    assert code == 0, err
    assert json.loads(out)["stored_bytes"] == video.size + photo.size
    code, out, err = cli("retention", "plan")
    assert code == 0 and "存储预测 forecast" in out


def test_the_queue_page_shows_and_decides_requests(
    local: tuple[Instance, MediaItem, MediaItem], clock: Clock
) -> None:
    instance, video, _ = local
    clock.now = LATER
    asked = disposal.request_disposal(
        instance, _user(instance, "zhang.wei"), reason=REASON, media_ids=[video.id]
    )
    with TestClient(create_app(instance), follow_redirects=False) as client:
        _sign_in(client, "boss")
        page = client.get("/retention/disposals")
        assert page.status_code == 200
        assert 'href="/retention/disposals">销毁审批' in page.text  # the nav offers it
        assert f"申请 #{asked.id}" in page.text and "a.mp4" in page.text and REASON in page.text
        assert f'action="/retention/disposals/{asked.id}/approve"' in page.text
        refused = client.post(f"/retention/disposals/{asked.id}/approve", data={"comment": "同意"})
        assert refused.status_code == 403  # no CSRF token
        done = client.post(
            f"/retention/disposals/{asked.id}/approve",
            data={"comment": "同意销毁", "csrf_token": client.cookies[CSRF_COOKIE]},
        )
        assert done.status_code == 303
        shown = client.get(f"/api/v1/retention/disposals/{asked.id}").json()
        assert shown["state"] == "approved" and shown["decided_by"] == "boss"
        clock.now = LATER + timedelta(days=8)
        disposal_removal.dispose_due(instance)
        _sign_in(client, "boss")  # a session of 8 days ago has expired
        item = client.get(f"/media/{video.id}")
        assert item.status_code == 200 and "已销毁" in item.text and video.sha256 in item.text


def _sign_in(client: TestClient, login: str) -> None:
    client.get("/signin")
    token = client.cookies[CSRF_COOKIE]
    signed = client.post(
        "/signin", data={"login": login, "password": PASSWORD, "csrf_token": token}
    )
    assert signed.status_code == 303


def test_an_approver_decides_in_a_real_browser(
    browser: Any,  # noqa: F811  (the fixture)
    local: tuple[Instance, MediaItem, MediaItem],
    clock: Clock,
    tmp_path: Path,
) -> None:
    """Chromium against the app on loopback: the header offers the queue to a supervisor, the
    queue shows the request and its item, the approval form posts with its CSRF token, and
    nothing breaks the Content-Security-Policy."""
    import threading
    import time

    import uvicorn

    instance, video, photo = local
    clock.now = LATER
    asked = disposal.request_disposal(
        instance, _user(instance, "zhang.wei"), reason=REASON, media_ids=[video.id, photo.id]
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(instance), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    try:
        context = browser.new_context(locale="zh-CN")
        page = context.new_page()
        violations: list[str] = []
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.goto(f"{base}/signin")
        page.fill("#login", "boss")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        page.click("header a[href='/retention/disposals']")
        page.wait_for_url(f"{base}/retention/disposals")
        section = page.locator(f"#disposal-{asked.id}")
        assert "a.mp4" in section.inner_text() and "b.jpg" in section.inner_text()
        page.screenshot(path=tmp_path / "disposals.png")
        page.fill(f"#approve-comment-{asked.id}", "同意销毁")
        page.click(f"form[action$='/{asked.id}/approve'] button[type=submit]")
        page.wait_for_url(f"{base}/retention/disposals")
        page.goto(f"{base}/retention/disposals/history")
        assert "已批准" in page.locator(f"#disposal-{asked.id}").inner_text()
        context.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert violations == []
    done = disposal.show_disposal(instance, _user(instance, "boss"), asked.id)
    assert done.state is RequestState.APPROVED and done.comment == "同意销毁"
    assert {i.state for i in done.items} == {ItemState.APPROVED}


def test_the_local_store_refuses_before_the_lock_date_it_keeps(
    local: tuple[Instance, MediaItem, MediaItem], clock: Clock
) -> None:
    """Linked to a case of a permanent category, the video's lock moved out by a hundred
    years; unlinked again, its retention is six months once more — but a lock is never
    shortened, and the local store refuses to remove it before that date, as S3 would."""
    instance, video, _ = local
    clock.now = LATER
    cases_usecases.add_case(
        instance, "2026-0200", title="扣押", category="seizure", department="县公安局/治安大队"
    )
    cases_usecases.link_media(instance, "2026-0200", video.id, "涉案证据")
    cases_usecases.unlink_media(instance, "2026-0200", video.id, "关联有误")
    request_id = _approved(instance, video.id)
    clock.now = LATER + timedelta(days=8)
    (removal,) = disposal_removal.dispose_due(instance).removals
    assert removal.state is ItemState.STORE_REFUSED and "本地锁定期未满" in (removal.note or "")
    assert instance.store.has_original(video.sha256)
    assert _item(instance.catalog, video.id).status is MediaStatus.ARCHIVED
    (alert,) = _events(instance.catalog, video.id, EventKind.ALERT)
    assert alert.details["code"] == "disposal-refused-by-store"
    shown = disposal.show_disposal(instance, _user(instance, "boss"), request_id)
    assert shown.items[0].state is ItemState.STORE_REFUSED
    assert _problems(instance) == []
