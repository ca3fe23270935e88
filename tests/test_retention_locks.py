"""Locks follow retention, against a real S3 server (SeaweedFS, which enforces Object Lock
like AWS): linking a record to a case of a permanent category extends its retain-until to
the permanent horizon, an important-file mark found at ingest extends it to the marked class,
a shorter date is refused by the server; a hold sets the object's legal hold and the last
release lifts it; a store that fails is reported (ALERT) and the link stands. (The local
store's dates: tests/test_holds.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher
from botocore.exceptions import ClientError

from docks.sweep import sweep_station
from pipeline.accounts import passwords
from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import UserRole
from pipeline.cases import usecases as case_usecases
from pipeline.catalog import Catalog
from pipeline.catalog import accounts as account_rows
from pipeline.catalog import cases as case_rows
from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import media as media_db
from pipeline.catalog import registry as registry_rows
from pipeline.catalog import retention as retention_rows
from pipeline.custody import log as custody
from pipeline.errors import ObjectLocked, StorageError
from pipeline.ingest.steps import IngestContext
from pipeline.instance import Instance
from pipeline.models import EventKind, MediaItem, Officer, Station
from pipeline.retention import holds, locks
from pipeline.retention.rules import add_months
from pipeline.settings import Settings
from pipeline.storage.s3 import S3Store, original_key
from tests import test_ingest_s3
from tests.conftest import put
from tests.seaweed import Seaweed
from tests.test_retention_rules import Clock

# The S3 server, and settings and a store archiving into a bucket of the test's own on it.
seaweed = test_ingest_s3.seaweed
settings = test_ingest_s3.settings
store = test_ingest_s3.store

SHANGHAI = ZoneInfo("Asia/Shanghai")
IMPORTANT = "BWC0017/BWC0017_1023_20260505083000_0002_IMP.mp4"


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC))


@pytest.fixture
def archived(
    catalog: Catalog,
    settings: Settings,
    store: S3Store,
    station: Station,
    clips: dict[str, Path],
    clock: Clock,
) -> dict[str, MediaItem]:
    """A plain video and one whose name carries an important-file mark, ingested into S3."""
    ctx = IngestContext(catalog, store, settings, jobs_db.new_owner(), clock=clock)
    put(clips["video"], station.root, "BWC0017/plain.mp4")
    put(clips["video2"], station.root, IMPORTANT)
    assert sweep_station(ctx, station).ok
    with catalog.read() as conn:
        return {m.original_name: m for m in media_db.listing(conn)}


@pytest.fixture
def instance(settings: Settings, catalog: Catalog, store: S3Store, clock: Clock) -> Instance:
    return Instance(settings, catalog, clock=clock, actor="A001", _store=store)


def retain_until(seaweed: Seaweed, store: S3Store, sha256: str) -> datetime:
    found = seaweed.client.get_object_retention(Bucket=store.bucket, Key=original_key(sha256))
    assert found["Retention"]["Mode"] == "COMPLIANCE"
    return found["Retention"]["RetainUntilDate"]


def legal_hold(seaweed: Seaweed, store: S3Store, sha256: str) -> str:
    """ON or OFF, as the server says (an object never held has no legal hold at all)."""
    try:
        found = seaweed.client.get_object_legal_hold(Bucket=store.bucket, Key=original_key(sha256))
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchObjectLegalHold"
        return "OFF"
    return str(found["LegalHold"]["Status"])


def test_linking_to_a_permanent_case_extends_the_s3_lock_which_is_never_shortened(
    instance: Instance,
    archived: dict[str, MediaItem],
    seaweed: Seaweed,
    store: S3Store,
    clock: Clock,
) -> None:
    item = archived["plain.mp4"]
    at_ingest = retain_until(seaweed, store, item.sha256)
    assert abs(at_ingest - (clock.now + timedelta(days=184))) < timedelta(minutes=1)  # the floor

    case_usecases.add_case(instance, "2026-0113", title="查封某仓库", category="seizure")
    assert case_usecases.link_media(instance, "2026-0113", item.id, "查封现场录像").made
    assert item.recorded_end is not None
    permanent = add_months(item.recorded_end, 12 * 100)  # retention.permanent_lock_years
    assert retain_until(seaweed, store, item.sha256) == permanent.replace(microsecond=0)
    with instance.catalog.read() as conn:
        lock = retention_rows.locks(conn, [item.id])[item.id]
        assert lock.lock_until == permanent and not lock.held
        assert not locks.may_remove(conn, item.id, clock.now + timedelta(days=365 * 50))

    # The server refuses to shorten it, even to what it was at ingest.
    with pytest.raises(ObjectLocked, match="never shortened"):
        store.set_retention(item.sha256, at_ingest)
    assert retain_until(seaweed, store, item.sha256) == permanent.replace(microsecond=0)
    # Unlinked, the retention falls back; the lock stays where it was.
    case_usecases.unlink_media(instance, "2026-0113", item.id, "误关联")
    assert locks.follow(instance, [item.id])[0].extended is False
    assert retain_until(seaweed, store, item.sha256) == permanent.replace(microsecond=0)


def test_a_mark_found_at_ingest_extends_the_lock_to_the_marked_class(
    archived: dict[str, MediaItem], seaweed: Seaweed, store: S3Store
) -> None:
    item = archived[IMPORTANT.rsplit("/", 1)[1]]
    assert item.recorded_end is not None
    marked = add_months(item.recorded_end.astimezone(SHANGHAI), 36).astimezone(UTC)
    assert retain_until(seaweed, store, item.sha256) == marked.replace(microsecond=0)
    plain = archived["plain.mp4"]
    assert retain_until(seaweed, store, plain.sha256) < marked  # the floor only


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


def test_a_hold_sets_the_s3_legal_hold_and_the_last_release_lifts_it(
    instance: Instance, archived: dict[str, MediaItem], seaweed: Seaweed, store: S3Store
) -> None:
    with instance.catalog.begin() as conn:
        registry_rows.save_officer(
            conn, Officer("9100", "钱科", "11019100", "县法制办"), instance.clock()
        )
    accounts.add_user(
        instance, "fazhi", officer_id="9100", roles=[UserRole.LEGAL_REVIEWER], password="p" * 12
    )
    with instance.catalog.read() as conn:
        fazhi = account_rows.get(conn, "fazhi")
    assert fazhi is not None
    item = archived["plain.mp4"]
    assert legal_hold(seaweed, store, item.sha256) == "OFF"
    first = holds.place_hold(instance, fazhi, media_ids=[item.id], reason="行政诉讼")
    assert first.locks[0].hold_changed and first.locks[0].problem is None
    assert legal_hold(seaweed, store, item.sha256) == "ON"
    second = holds.place_hold(instance, fazhi, query="device:BWC0017", reason="投诉核查")
    assert item.id in second.media
    holds.release_hold(instance, fazhi, first.hold.id, "诉讼终结")
    assert legal_hold(seaweed, store, item.sha256) == "ON"  # the query hold still covers it
    holds.release_hold(instance, fazhi, second.hold.id, "核查结束")
    assert legal_hold(seaweed, store, item.sha256) == "OFF"
    with instance.catalog.read() as conn:
        kinds = [e.kind for e in custody.events(conn, media_id=item.id)]
    assert kinds.count(EventKind.HELD) == 2 and kinds.count(EventKind.HOLD_RELEASED) == 2


class RefusingStore(S3Store):
    """The real store, whose retention calls fail as a server outage would."""

    def set_retention(self, sha256: str, until: datetime) -> None:
        raise StorageError(f"cannot set the retention of {sha256}: connection refused")


def test_a_store_that_fails_to_extend_the_lock_is_reported_and_the_link_stands(
    settings: Settings,
    catalog: Catalog,
    store: S3Store,
    archived: dict[str, MediaItem],
    seaweed: Seaweed,
    clock: Clock,
) -> None:
    refusing = RefusingStore(store.client, store.s3, settings.s3_work_dir)
    failing = Instance(settings, catalog, clock=clock, actor="A001", _store=refusing)
    item = archived["plain.mp4"]
    before = retain_until(seaweed, store, item.sha256)
    case_usecases.add_case(failing, "2026-0113", title="查封", category="seizure")
    assert case_usecases.link_media(failing, "2026-0113", item.id, "查封现场录像").made
    with catalog.read() as conn:
        linked = case_rows.links_of_case(conn, "2026-0113")
        assert [link.media_id for link in linked] == [item.id]  # the link stands
        (alert,) = [e for e in custody.events(conn, media_id=item.id) if e.kind is EventKind.ALERT]
    assert alert.details["code"] == "lock-not-extended"
    assert "connection refused" in alert.details["reason"]
    assert retain_until(seaweed, store, item.sha256) == before
    # The next follow, with the store back, extends it.
    working = Instance(settings, catalog, clock=clock, actor="A001", _store=store)
    (done,) = locks.follow(working, [item.id])
    assert done.extended and done.problem is None
    assert retain_until(seaweed, store, item.sha256) > before + timedelta(days=365 * 90)
