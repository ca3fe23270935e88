"""Legal holds (法律保全) on a real catalog with an injected clock: a hold on items, on a case
(its records now and those linked later) and on a query (what it matched when placed); held
records are never disposal candidates, whatever their dates; a release lifts the hold only
where no other hold covers the record; HELD and HOLD_RELEASED custody events for every record;
who may place and release; a hold that lapses; `evidence hold` through the real CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from interfaces.web.app import create_app
from interfaces.web.security import CSRF_COOKIE
from pipeline.accounts import passwords
from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import User, UserRole
from pipeline.cases import records as cases_records
from pipeline.cases import usecases as case_usecases
from pipeline.catalog import Catalog
from pipeline.catalog import accounts as account_rows
from pipeline.catalog import registry as registry_rows
from pipeline.catalog import retention as retention_rows
from pipeline.custody import log as custody
from pipeline.errors import PermissionDenied, RetentionError
from pipeline.instance import Instance
from pipeline.models import EventKind, Officer, Station
from pipeline.retention import holds, locks
from pipeline.retention import usecases as retention
from pipeline.retention.derive import candidates, derived
from pipeline.retention.rules import rules_of
from pipeline.settings import Settings
from tests import test_approvals
from tests.test_approvals import Cli
from tests.test_retention_rules import END, Clock, record

cli = test_approvals.cli  # `evidence …` through its real entry point, in this process

PASSWORD = "correct horse 电池"
UNIT = "县公安局/治安大队"
USERS = [
    ("zhang.wei", "1023", [UserRole.ARCHIVIST]),  # 县公安局/治安大队: the recordings' unit
    ("boss", "9000", [UserRole.SUPERVISOR]),  # 县公安局: above it
    ("jiao.boss", "2002", [UserRole.SUPERVISOR]),  # 县公安局/交警大队: not the recordings'
    ("fazhi", "9100", [UserRole.LEGAL_REVIEWER]),  # 县法制办: the legal office
]


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(END + timedelta(days=1))


@pytest.fixture
def instance(settings: Settings, catalog: Catalog, clock: Clock) -> Instance:
    instance = Instance(settings, catalog, clock=clock, actor="setup")
    with catalog.begin() as conn:
        for officer_id, name, department in [
            ("1023", "张伟", "县公安局/治安大队"),
            ("2002", "赵队", "县公安局/交警大队"),
            ("9000", "王局", "县公安局"),
            ("9100", "钱科", "县法制办"),
        ]:
            registry_rows.save_officer(
                conn, Officer(officer_id, name, f"1101{officer_id}", department), END
            )
    for login, officer, roles in USERS:
        accounts.add_user(instance, login, officer_id=officer, roles=roles, password=PASSWORD)
    return instance


def user(instance: Instance, login: str) -> User:
    with instance.catalog.read() as conn:
        found = account_rows.get(conn, login)
    assert found is not None
    return found


def events(catalog: Catalog, media_id: int, kind: EventKind) -> list[custody.CustodyEvent]:
    with catalog.read() as conn:
        return [e for e in custody.events(conn, media_id=media_id) if e.kind is kind]


def test_a_hold_keeps_a_record_past_its_retention_until_the_last_hold_is_released(
    instance: Instance, catalog: Catalog, station: Station, clock: Clock
) -> None:
    with catalog.begin() as conn:
        item = record(conn, station, officer="1023")
        other = record(conn, station, officer="1023")
    fazhi = user(instance, "fazhi")
    first = holds.place_hold(
        instance, fazhi, media_ids=[item], reason="行政诉讼 (2026)某01行初12号"
    )
    assert first.media == (item,) and first.hold.active and first.hold.items == 1
    kept = retention.retention(instance, item)
    assert kept.held and kept.holds == (first.hold.id,)
    assert kept.reasons[-1] == (
        f"法律保全 #{first.hold.id}：行政诉讼 (2026)某01行初12号（fazhi）(legal hold #{first.hold.id})"
    )
    assert "法律保全中，不得处置" in kept.said(instance.settings.zone)

    # Long past six months, the held record is no candidate; the other one is.
    late = END + timedelta(days=400)
    rules = rules_of(instance.settings)
    with catalog.read() as conn:
        assert [r.media_id for r in candidates(conn, rules, late)] == [other]
        assert not locks.may_remove(conn, item, late)
        assert locks.may_remove(conn, other, late)
        assert retention_rows.locks(conn, [item])[item].held

    case_usecases.add_case(
        instance, "2026-0113", title="送达", category="service-of-documents", department=UNIT
    )
    case_usecases.link_media(instance, "2026-0113", item, "送达录像")
    boss = user(instance, "boss")
    second = holds.place_hold(instance, boss, case="2026-0113", reason="复议期间")
    assert second.media == (item,)
    assert len(events(catalog, item, EventKind.HELD)) == 2

    released = holds.release_hold(instance, fazhi, first.hold.id, "诉讼终结")
    assert not released.hold.active and released.hold.released_by == "fazhi"
    assert retention.retention(instance, item).held  # the case hold still covers it
    with catalog.read() as conn:
        assert retention_rows.locks(conn, [item])[item].held
    holds.release_hold(instance, boss, second.hold.id, "复议结束")
    assert not retention.retention(instance, item).held
    with catalog.read() as conn:
        assert not retention_rows.locks(conn, [item])[item].held
        assert locks.may_remove(conn, item, late)
    gone = events(catalog, item, EventKind.HOLD_RELEASED)
    assert [(e.actor, e.details["hold"], e.details["reason"]) for e in gone] == [
        ("fazhi", first.hold.id, "诉讼终结"),
        ("boss", second.hold.id, "复议结束"),
    ]
    with pytest.raises(RetentionError, match="已解除"):
        holds.release_hold(instance, fazhi, first.hold.id, "再次解除")
    assert [h.id for h in holds.list_holds(instance, fazhi)] == []
    listed = holds.list_holds(instance, fazhi, everything=True)
    assert [(h.id, h.active, h.released_reason) for h in listed] == [
        (second.hold.id, False, "复议结束"),
        (first.hold.id, False, "诉讼终结"),
    ]


def test_a_case_hold_covers_records_linked_later_and_keeps_those_unlinked(
    instance: Instance, catalog: Catalog, station: Station
) -> None:
    case_usecases.add_case(instance, "2026-0200", title="听证", category="hearing", department=UNIT)
    placed = holds.place_hold(instance, user(instance, "boss"), case="2026-0200", reason="信访")
    assert placed.media == ()  # a case with no records yet may be held
    with catalog.begin() as conn:
        item = record(conn, station, officer="1023")
    assert not retention.retention(instance, item).held
    case_usecases.link_media(instance, "2026-0200", item, "听证录像")
    assert retention.retention(instance, item).held
    (held,) = events(catalog, item, EventKind.HELD)
    assert held.details == {
        "hold": placed.hold.id,
        "scope": "case",
        "case": "2026-0200",
        "reason": "信访",
    }
    case_usecases.unlink_media(instance, "2026-0200", item, "误关联")
    assert retention.retention(instance, item).held  # a hold never lets go by accident
    assert len(events(catalog, item, EventKind.HELD)) == 1


def test_a_query_hold_covers_what_the_query_matched_when_placed(
    instance: Instance, catalog: Catalog, station: Station
) -> None:
    with catalog.begin() as conn:
        a = record(conn, station, officer="1023")
        b = record(conn, station, officer="1023")
        c = record(conn, station, officer="2002")
    placed = holds.place_hold(
        instance, user(instance, "fazhi"), query="officer:1023", reason="投诉核查"
    )
    assert set(placed.media) == {a, b}
    assert placed.hold.query == "officer:1023"
    with catalog.begin() as conn:
        later = record(conn, station, officer="1023")
    assert retention.retention(instance, a).held and retention.retention(instance, b).held
    assert not retention.retention(instance, c).held
    assert not retention.retention(instance, later).held
    with pytest.raises(RetentionError, match="未匹配任何记录"):
        holds.place_hold(instance, user(instance, "fazhi"), query="officer:7777", reason="无此人")


def test_who_may_place_and_release_holds(
    instance: Instance, catalog: Catalog, station: Station
) -> None:
    with catalog.begin() as conn:
        item = record(conn, station, officer="1023")
    with pytest.raises(PermissionDenied, match="法律保全由领导或法制审核办理"):
        holds.place_hold(instance, user(instance, "zhang.wei"), media_ids=[item], reason="保全")
    with pytest.raises(PermissionDenied):  # a supervisor of another unit
        holds.place_hold(instance, user(instance, "jiao.boss"), media_ids=[item], reason="保全")
    placed = holds.place_hold(instance, user(instance, "boss"), media_ids=[item], reason="保全")
    with pytest.raises(PermissionDenied):
        holds.release_hold(instance, user(instance, "jiao.boss"), placed.hold.id, "解除")
    with pytest.raises(RetentionError, match="须说明理由"):
        holds.release_hold(instance, user(instance, "boss"), placed.hold.id, "")
    # An archivist sees what may not be disposed of.
    assert [h.id for h in holds.list_holds(instance, user(instance, "zhang.wei"))] == [
        placed.hold.id
    ]
    assert not events(catalog, item, EventKind.HOLD_RELEASED)


def test_a_hold_with_an_until_date_lapses_and_is_released_by_the_sweep(
    instance: Instance, catalog: Catalog, station: Station, clock: Clock
) -> None:
    with catalog.begin() as conn:
        item = record(conn, station, officer="1023")
    with pytest.raises(RetentionError, match="期限须在将来"):
        holds.place_hold(
            instance, user(instance, "fazhi"), media_ids=[item], reason="保全", until=clock.now
        )
    placed = holds.place_hold(
        instance,
        user(instance, "fazhi"),
        media_ids=[item],
        reason="核查期间",
        until=clock.now + timedelta(days=30),
    )
    assert retention.retention(instance, item).held
    clock.now += timedelta(days=31)
    assert not retention.retention(instance, item).held  # lapsed: no longer holds
    assert holds.release_lapsed(instance) == (placed.hold.id,)
    (gone,) = events(catalog, item, EventKind.HOLD_RELEASED)
    assert gone.actor == "setup" and "期限届满" in gone.details["reason"]  # the sweep's actor
    assert holds.release_lapsed(instance) == ()


# --------------------------------------------------------------------------------- CLI


def test_evidence_hold_add_list_release(
    cli: Cli, instance: Instance, catalog: Catalog, station: Station
) -> None:
    with catalog.begin() as conn:
        a = record(conn, station, officer="1023")
        b = record(conn, station, officer="1023")
    code, out, err = cli(
        "hold", "add", "--media", f"{a},{b}", "--reason", "行政诉讼", "--until", "2099-06-30",
        "--as", "fazhi", "--json",
    )  # fmt: skip
    assert code == 0, err
    placed = json.loads(out)
    assert placed["media"] == [a, b] and placed["hold"]["placed_by"] == "fazhi"
    # --until names the last day: the hold lapses when it ends, local time (+08:00).
    assert placed["hold"]["until"] == "2099-06-30T16:00:00+00:00"
    code, out, err = cli("hold", "add", "--media", str(a), "--reason", "保全", "--as", "zhang.wei")
    assert code == 2 and "法律保全由领导或法制审核办理" in err and "Traceback" not in err
    code, out, err = cli("hold", "add", "--reason", "保全", "--as", "fazhi")
    assert code == 2 and "--media, --case, --query" in err
    code, out, err = cli("hold", "list", "--as", "fazhi")
    assert code == 0, err
    assert "行政诉讼" in out and "1 hold" in out
    hold_id = placed["hold"]["id"]
    code, out, err = cli("hold", "release", str(hold_id), "--reason", "撤诉", "--as", "fazhi")
    assert code == 0, err
    assert f"hold {hold_id} released" in out
    code, out, err = cli("hold", "list", "--all", "--as", "fazhi", "--json")
    assert code == 0, err
    (listed,) = json.loads(out)
    assert listed["released_by"] == "fazhi" and listed["items"] == 2 and not listed["active"]
    assert len(events(catalog, a, EventKind.HOLD_RELEASED)) == 1


# --------------------------------------------------------------------------------- web


def test_the_item_and_case_pages_show_retention_and_holds_and_the_item_page_marks(
    instance: Instance, catalog: Catalog, station: Station
) -> None:
    with catalog.begin() as conn:
        item = record(conn, station, officer="1023")
    case_usecases.add_case(instance, "2026-0113", title="查封", category="seizure", department=UNIT)
    case_usecases.link_media(instance, "2026-0113", item, "查封现场录像")
    placed = holds.place_hold(instance, user(instance, "boss"), case="2026-0113", reason="复议期间")
    with TestClient(create_app(instance), follow_redirects=False) as client:
        client.get("/signin")
        signed = client.post(
            "/signin",
            data={
                "login": "zhang.wei",
                "password": PASSWORD,
                "csrf_token": client.cookies[CSRF_COOKIE],
            },
        )
        assert signed.status_code == 303
        token = {"csrf_token": client.cookies[CSRF_COOKIE]}
        assert (
            client.post(f"/media/{item}/view", data={"reason": "复核", **token}).status_code == 303
        )
        page = client.get(f"/media/{item}").text
        assert "保存期限 retention" in page
        assert "永久保存：永久：案件 2026-0113（查封扣押）的证据" in page
        assert "法律保全中，不得处置" in page
        # Without the form's token the mark is refused; with it, recorded.
        assert client.post(f"/media/{item}/mark", data={"reason": "按键标记"}).status_code == 403
        marked = client.post(f"/media/{item}/mark", data={"reason": "按键标记", **token})
        assert marked.status_code == 303
        assert "重点文件 36 个月" in client.get(f"/media/{item}").text
        cleared = client.post(
            f"/media/{item}/mark", data={"reason": "误按", "clear": "true", **token}
        )
        assert cleared.status_code == 303
        assert client.post(f"/media/{item}/mark", data={"reason": "", **token}).status_code == 409
        case_page = client.get("/cases/2026-0113").text
        assert "保存期限与法律保全" in case_page
        assert f"法律保全 #{placed.hold.id}（boss" in case_page and "复议期间" in case_page
        assert "永久 permanent · 法律保全中 on hold" in case_page
        listed = client.get("/holds").text
        assert "复议期间" in listed and "解除理由" not in listed  # an archivist only reads
        (api,) = client.get("/api/v1/holds").json()
        assert api["id"] == placed.hold.id and api["case_number"] == "2026-0113"
        refused = client.post(f"/holds/{placed.hold.id}/release", data={"reason": "解除", **token})
        assert refused.status_code == 403
    marks = events(catalog, item, EventKind.MARKED)
    assert [(e.actor, e.details["mark"]) for e in marks] == [
        ("zhang.wei", "set"),
        ("zhang.wei", "cleared"),
    ]


# ------------------------------------------------------------------- the local store's locks


def test_the_local_store_keeps_the_lock_dates_in_the_catalog(
    settings: Settings, catalog: Catalog, station: Station
) -> None:
    clock = Clock(datetime(2026, 5, 6, tzinfo=UTC))
    instance = Instance(settings, catalog, clock=clock, actor="A001")
    with catalog.begin() as conn:
        plain = record(conn, station)
        linked = record(conn, station)
    ingested = datetime(2026, 5, 5, 11, tzinfo=UTC)  # record(): two hours after the end
    with catalog.read() as conn:  # no row yet: the floor from ingest (184 days)
        assert not locks.may_remove(conn, plain, ingested + timedelta(days=184, seconds=-1))
        assert locks.may_remove(conn, plain, ingested + timedelta(days=184))
    case_usecases.add_case(instance, "2026-0113", title="查封", category="seizure")
    case_usecases.link_media(instance, "2026-0113", linked, "查封现场录像")
    with catalog.read() as conn:
        lock = retention_rows.locks(conn, [linked])[linked]
        assert lock.lock_until.year == 2126 and not lock.held
        assert not locks.may_remove(conn, linked, datetime(2126, 1, 1, tzinfo=UTC))
    # A lock is never shortened in the catalog either.
    with catalog.begin() as conn:
        retention_rows.save_lock(
            conn, retention_rows.Lock(linked, datetime(2027, 1, 1, tzinfo=UTC), False, clock.now)
        )
    with catalog.read() as conn:
        assert retention_rows.locks(conn, [linked])[linked].lock_until.year == 2126


def test_the_candidates_sql_filter_agrees_with_the_rules_item_by_item(
    instance: Instance, catalog: Catalog, station: Station
) -> None:
    """candidates() filters in SQL first; what it returns is exactly what deriving every
    archived record's retention says is disposable, in the order of their start."""
    case_usecases.add_case(instance, "2026-0113", title="查封", category="seizure", department=UNIT)
    case_usecases.add_case(
        instance, "2026-0121", title="送达", category="service-of-documents", department=UNIT
    )
    with catalog.begin() as conn:
        ids = [
            record(conn, station, officer="1023", end=END + timedelta(days=d))
            for d in (-400, -30, 0, 5, 60, 200, 370)
            for _ in range(3)
        ]
    fazhi = user(instance, "fazhi")
    case_usecases.link_media(instance, "2026-0113", ids[0], "查封")
    case_usecases.link_media(instance, "2026-0121", ids[3], "送达")
    retention.mark_media(instance, ids[4], "重点")
    for i in (5, 6, 9):
        retention.assign_class(instance, ids[i], "invalid", "黑屏")
    case_usecases.link_media(instance, "2026-0113", ids[6], "查封")
    holds.place_hold(instance, fazhi, media_ids=[ids[7]], reason="诉讼")
    lapsing = holds.place_hold(
        instance, fazhi, media_ids=[ids[8]], reason="核查", until=END + timedelta(days=100)
    )
    released = holds.place_hold(instance, fazhi, media_ids=[ids[10]], reason="核查")
    holds.release_hold(instance, fazhi, released.hold.id, "结束")
    assert lapsing.hold.until is not None
    rules = rules_of(instance.settings)
    for days in (0, 10, 100, 190, 250, 400, 800, 2000, 4000):
        now = END + timedelta(days=days)
        with catalog.read() as conn:
            found = [r.media_id for r in candidates(conn, rules, now)]
            every = retention_rows.facts(conn, ids)
        due = sorted(
            (m for m, f in every.items() if derived(f, rules, now).disposable(now)),
            key=lambda m: (every[m].start, m),
        )
        assert found == due, f"{days} days on"
    assert ids[0] not in found and ids[7] not in found and ids[8] in found


def test_follow_all_catches_up_a_link_made_without_its_follow(
    settings: Settings, catalog: Catalog, station: Station
) -> None:
    """A link made where no follow came after it (a crash between the two, or the daily
    compliance flow's linking rule): ``follow_all`` finds the lock short and extends it."""
    instance = Instance(settings, catalog, clock=Clock(END + timedelta(days=1)), actor="A001")
    case_usecases.add_case(instance, "2026-0113", title="查封", category="seizure")
    with catalog.begin() as conn:
        item = record(conn, station)
        cases_records.link(conn, "2026-0113", item, "A001", "查封现场录像", END)
    with catalog.read() as conn:
        assert retention_rows.locks(conn, [item]) == {}
    (done,) = locks.follow_all(instance)
    assert done.media_id == item and done.extended and done.lock_until.year == 2126
    assert locks.follow_all(instance) == ()  # nothing left to do
