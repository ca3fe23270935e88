"""Approval of viewings, copies and exports (调阅审批) under the shipped policy
(config/access-policy.toml), on a real catalog with real ingested clips, through the web
application (TestClient), its JSON API and the CLI (its real entry point), with an injected
clock: a request, a grant for two hours, the use within them, expiry, refused again at once;
a refused request; who may decide; a grant covering exactly its items and action; every step
a custody event."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from docks.sweep import sweep_station
from interfaces.cli import main
from interfaces.web.app import create_app
from interfaces.web.security import CSRF_COOKIE
from pipeline.accounts import passwords
from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import UserRole
from pipeline.approvals import usecases as approvals
from pipeline.approvals.policy import (
    DEFAULT_FILE,
    NO_APPROVALS,
    Action,
    Facts,
    policy_of,
    requiring,
)
from pipeline.approvals.requests import Listing
from pipeline.cases import usecases as cases_usecases
from pipeline.catalog import Catalog, schema
from pipeline.catalog import media as media_db
from pipeline.catalog import registry as registry_rows
from pipeline.custody import log as custody
from pipeline.custody import usecases as custody_usecases
from pipeline.custody.access import View, open_media
from pipeline.errors import ApprovalError, ApprovalRequired, ConfigError, PermissionDenied
from pipeline.ingest.steps import IngestContext
from pipeline.instance import Instance
from pipeline.models import Device, DeviceKind, EventKind, MediaItem, MediaKind, Officer, Station
from pipeline.settings import Settings
from tests.conftest import make_settings, put

PASSWORD = "correct horse 电池"
REASON = "移送法院 案件 2026-0113"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


USERS = [
    # login, officer, roles
    ("zhang.wei", "1023", [UserRole.ARCHIVIST]),  # 县公安局/治安大队: the recordings' unit
    ("li.na", "2001", [UserRole.ARCHIVIST]),  # 县公安局/交警大队: another unit
    ("boss", "9000", [UserRole.SUPERVISOR]),  # 县公安局: above both
    ("jiao.boss", "2002", [UserRole.SUPERVISOR]),  # 县公安局/交警大队: not the recordings'
    ("fazhi", "9100", [UserRole.LEGAL_REVIEWER]),  # 县法制办: the legal office
    ("admin", "9000", [UserRole.ADMIN]),
]


@pytest.fixture
def items(
    catalog: Catalog, ctx: IngestContext, station: Station, clips: dict[str, Path]
) -> tuple[MediaItem, MediaItem]:
    """A video (with its proxy) and a photo recorded by officer 1023 on BWC-1."""
    now = datetime.now(UTC)
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
                conn, Officer(officer_id, name, f"1101{officer_id}", department), now
            )
        registry_rows.save_device(conn, Device("BWC-1", DeviceKind.BODY_WORN), now)
        registry_rows.add_assignment(conn, "BWC-1", "1023", datetime(2026, 1, 1, tzinfo=UTC), None)
    put(clips["video"], station.root, "BWC-1/a.mp4")
    put(clips["photo"], station.root, "BWC-1/b.jpg")
    assert sweep_station(ctx, station).ok
    with catalog.read() as conn:
        found = {i.kind: i for i in media_db.listing(conn)}
    video, photo = found[MediaKind.VIDEO], found[MediaKind.PHOTO]
    assert video.proxy_key is not None and video.officer_id == photo.officer_id == "1023"
    return video, photo


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def instance(
    settings: Settings, catalog: Catalog, clock: Clock, items: tuple[MediaItem, MediaItem]
) -> Instance:
    assert settings.approvals.policy_file == ""  # the shipped policy
    instance = Instance(settings, catalog, clock=clock, actor="setup")
    for login, officer, roles in USERS:
        accounts.add_user(instance, login, officer_id=officer, roles=roles, password=PASSWORD)
    return instance


@pytest.fixture
def app(instance: Instance) -> object:
    return create_app(instance)


@pytest.fixture
def signed_in(app: object) -> Iterator[Callable[[str], TestClient]]:
    clients: list[TestClient] = []

    def sign_in(login: str) -> TestClient:
        client = TestClient(app, follow_redirects=False)  # type: ignore[arg-type]
        client.__enter__()
        clients.append(client)
        client.get("/signin")
        token = client.cookies[CSRF_COOKIE]
        signed = client.post(
            "/signin", data={"login": login, "password": PASSWORD, "csrf_token": token}
        )
        assert signed.status_code == 303
        client.headers["X-CSRF-Token"] = client.cookies[CSRF_COOKIE]
        return client

    yield sign_in
    for client in clients:
        client.__exit__(None, None, None)


def _post(client: TestClient, path: str, **data: Any) -> Any:
    return client.post(path, data={**data, "csrf_token": client.cookies[CSRF_COOKIE]})


def _events(catalog: Catalog, media_id: int, *kinds: EventKind) -> list[custody.CustodyEvent]:
    with catalog.read() as conn:
        return [e for e in custody.events(conn, media_id=media_id) if e.kind in kinds]


def _original(instance: Instance, item: MediaItem) -> bytes:
    with instance.store.original_file(item.sha256) as path:
        return path.read_bytes()


def _request(client: TestClient, media: list[int], action: Action, hours: int = 24) -> int:
    asked = client.post(
        "/api/v1/access/requests",
        json={"media": media, "action": action.value, "reason": REASON, "hours": hours},
    )
    assert asked.status_code == 200, asked.text
    body = asked.json()
    assert body["status"] == "waiting"
    return int(body["id"])


def _api_view(client: TestClient, media_id: int) -> Any:
    return client.post(f"/api/v1/media/{media_id}/view", json={"reason": REASON})


def _grant(client: TestClient, request_id: int, **body: Any) -> Any:
    return client.post(f"/api/v1/access/requests/{request_id}/grant", json=body)


# ---------------------------------------------------------------------------- the policy


def test_the_shipped_policy_asks_what_the_rules_say(settings: Settings) -> None:
    policy = policy_of(settings)
    assert policy.source == str(DEFAULT_FILE)

    def asks(action: Action, *roles: UserRole, own: bool = True, sealed: bool = False) -> list[str]:
        facts = Facts(action, frozenset(roles), own, sealed, frozenset())
        return [r.id for r in requiring(policy, facts)]

    archivist, legal = UserRole.ARCHIVIST, UserRole.LEGAL_REVIEWER
    assert asks(Action.VIEW_PROXY, archivist) == []  # one's own department's proxy: free
    assert asks(Action.VIEW_ORIGINAL, archivist) == []
    assert asks(Action.DOWNLOAD_ORIGINAL, archivist) == ["copy-original"]
    assert asks(Action.EXPORT, archivist) == ["court-export"]
    assert asks(Action.VIEW_PROXY, archivist, own=False) == ["other-department"]
    assert asks(Action.VIEW_PROXY, archivist, sealed=True) == ["sealed-case"]
    # The legal office reads every department (roles add up: an archivist too is still it).
    assert asks(Action.VIEW_PROXY, legal, archivist, own=False) == []
    assert asks(Action.DOWNLOAD_ORIGINAL, legal, own=False) == ["copy-original"]
    assert asks(Action.VIEW_PROXY, legal, sealed=True) == ["sealed-case"]
    anything = Facts(Action.EXPORT, frozenset(), False, True, frozenset())
    assert requiring(NO_APPROVALS, anything) == ()


def test_a_rule_by_category_and_role(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        '[[rule]]\nid = "seizure-footage"\ncategories = ["seizure"]\n'
        'actions = ["view-proxy"]\nroles = ["officer"]\n',
        encoding="utf-8",
    )
    policy = policy_of(make_settings(settings.home, approvals={"policy_file": str(path)}))

    def asks(roles: set[UserRole], categories: set[str]) -> bool:
        facts = Facts(Action.VIEW_PROXY, frozenset(roles), True, False, frozenset(categories))
        return bool(requiring(policy, facts))

    assert asks({UserRole.OFFICER}, {"seizure", "on-site-inspection"})
    assert not asks({UserRole.OFFICER}, {"on-site-inspection"})
    assert not asks({UserRole.ARCHIVIST}, {"seizure"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[rule]]\nid = "x"\nactoins = ["export"]\n', "unknown key(s) ['actoins']"),
        ('[[rule]]\nid = "x"\nactions = ["copy"]\n', "actions: unknown 'copy'"),
        ('[[rule]]\nid = "x"\nroles = ["boss"]\n', "roles: unknown 'boss'"),
        ('[[rule]]\nid = "x"\nwhere = "elsewhere"\n', "where: unknown 'elsewhere'"),
        ('[[rule]]\nid = "x"\ncategories = ["parking"]\n', "unknown categories ['parking']"),
        ('[[rule]]\nactions = ["export"]\n', "rule #1: has no id"),
        ('[[rule]]\nid = "x"\n[[rule]]\nid = "x"\n', "rule id 'x' is given twice"),
        ("[rules]\n", "only [[rule]]"),
        ("[[rule]\n", "cannot read the access policy"),
    ],
)
def test_a_policy_file_with_a_mistake_is_refused_naming_it(
    tmp_path: Path, settings: Settings, text: str, message: str
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        policy_of(make_settings(settings.home, approvals={"policy_file": str(path)}))
    assert message in str(refused.value) and str(path) in str(refused.value)


# ------------------------------------------------------------------------ the whole path


def test_request_grant_use_within_the_hours_then_refused_at_once_after_expiry(
    instance: Instance,
    signed_in: Callable[[str], TestClient],
    clock: Clock,
    items: tuple[MediaItem, MediaItem],
) -> None:
    video, _ = items
    archivist, supervisor = signed_in("zhang.wei"), signed_in("boss")

    # The proxy of an own-department item needs no approval: a reason, and it plays.
    assert _post(archivist, f"/media/{video.id}/view", reason=REASON).status_code == 303
    played = archivist.get(f"/media/{video.id}/proxy", headers={"Range": "bytes=0-9"})
    assert played.status_code == 206
    (viewed,) = _events(instance.catalog, video.id, EventKind.VIEWED)
    assert "grant" not in viewed.details
    page = archivist.get(f"/media/{video.id}").text
    assert f"/approvals/new?media={video.id}&amp;action=download-original" in page
    assert f'action="/media/{video.id}/original"' not in page

    # A copy of the original needs approval: refused before any byte, nothing exported.
    refused = _post(archivist, f"/media/{video.id}/original", reason=REASON)
    assert refused.status_code == 403 and "须经审批" in refused.text
    assert not list((instance.settings.home / "work").glob("*.download/*"))
    assert _events(instance.catalog, video.id, EventKind.EXPORTED) == []
    (no,) = _events(instance.catalog, video.id, EventKind.REFUSED)
    assert (no.actor, no.details["action"], no.details["rules"]) == (
        "zhang.wei",
        "download-original",
        ["copy-original"],
    )

    # The request, from the form the item page links to.
    form = archivist.get(f"/approvals/new?media={video.id}&action=download-original")
    assert form.status_code == 200 and 'value="download-original" selected' in form.text
    made = _post(
        archivist,
        "/approvals/new",
        media=str(video.id),
        action="download-original",
        reason=REASON,
        hours="24",
    )
    assert made.status_code == 303
    (asked,) = approvals.list_requests(instance, approvals.acting_user(instance, "zhang.wei"))
    (requested,) = _events(instance.catalog, video.id, EventKind.ACCESS_REQUESTED)
    assert (requested.actor, requested.details) == (
        "zhang.wei",
        {"request": asked.id, "action": "download-original", "reason": REASON, "hours": 24,
         "media": [video.id]},
    )  # fmt: skip
    assert _post(archivist, f"/media/{video.id}/original", reason=REASON).status_code == 403

    # The supervisor sees it waiting (the header counts it) and grants it for 2 hours, in place.
    waiting = supervisor.get("/approvals/waiting").text
    assert f'id="request-{asked.id}"' in waiting and '<span class="count">1</span>' in waiting
    granted = supervisor.post(
        f"/approvals/{asked.id}/grant",
        data={"hours": "2", "comment": "限两小时", "csrf_token": supervisor.cookies[CSRF_COOKIE]},
        headers={"HX-Request": "true"},
    )
    assert granted.status_code == 200 and granted.text.lstrip().startswith("<tr")
    assert "已批准" in granted.text and "<form" not in granted.text
    (grant_event,) = _events(instance.catalog, video.id, EventKind.ACCESS_GRANTED)
    expires = clock.now + timedelta(hours=2)
    assert grant_event.actor == "boss"
    assert grant_event.details == {
        "request": asked.id,
        "action": "download-original",
        "requested_by": "zhang.wei",
        "hours": 2,
        "expires_at": expires.isoformat(),
        "comment": "限两小时",
    }
    assert 'class="count"' not in supervisor.get("/approvals/waiting").text

    # Within the hours the copy flows, and its EXPORTED event names the grant.
    clock.now += timedelta(hours=1, minutes=59)
    copy = _post(archivist, f"/media/{video.id}/original", reason=REASON)
    assert copy.status_code == 200 and copy.content == _original(instance, video)
    (exported,) = _events(instance.catalog, video.id, EventKind.EXPORTED)
    assert (exported.actor, exported.details["grant"]) == ("zhang.wei", asked.id)

    # Past the expiry: refused again at once.
    clock.now = expires
    assert _post(archivist, f"/media/{video.id}/original", reason=REASON).status_code == 403
    assert len(_events(instance.catalog, video.id, EventKind.EXPORTED)) == 1
    (mine,) = archivist.get("/api/v1/access/requests").json()
    assert (mine["status"], mine["granted_hours"]) == ("expired", 2)


def test_another_departments_item_opens_under_a_grant_and_closes_when_it_expires(
    instance: Instance,
    signed_in: Callable[[str], TestClient],
    clock: Clock,
    items: tuple[MediaItem, MediaItem],
) -> None:
    video, photo = items
    outsider = signed_in("li.na")
    page = outsider.get(f"/media/{video.id}")
    assert page.status_code == 200
    assert f"/approvals/new?media={video.id}&amp;action=view-proxy" in page.text
    assert 'name="reason"' not in page.text and video.sha256 not in page.text
    refused = _api_view(outsider, video.id)
    assert (refused.status_code, refused.json()["error"]) == (403, "approval-required")
    assert _events(instance.catalog, video.id, EventKind.VIEWED) == []

    request_id = _request(outsider, [video.id], Action.VIEW_PROXY, hours=3)
    assert _grant(signed_in("boss"), request_id, hours=1).status_code == 200

    viewing = _api_view(outsider, video.id)
    assert viewing.status_code == 200 and viewing.json()["grant"] == request_id
    (viewed,) = _events(instance.catalog, video.id, EventKind.VIEWED)
    assert (viewed.actor, viewed.details["grant"]) == ("li.na", request_id)
    assert outsider.get(f"/media/{video.id}/proxy").status_code == 200
    # The grant covers that item and that action only.
    assert _api_view(outsider, photo.id).status_code == 403
    assert _post(outsider, f"/media/{video.id}/original", reason=REASON).status_code == 403
    # A viewing that holds (its reason would for 30 minutes) stops with its grant, at once.
    clock.now += timedelta(hours=1)
    assert outsider.get(f"/media/{video.id}/proxy").status_code == 403
    assert 'name="reason"' not in outsider.get(f"/media/{video.id}").text


def test_a_refused_request_leaves_the_item_unviewable(
    instance: Instance, signed_in: Callable[[str], TestClient], items: tuple[MediaItem, MediaItem]
) -> None:
    video, _ = items
    outsider, legal = signed_in("li.na"), signed_in("fazhi")
    request_id = _request(outsider, [video.id], Action.VIEW_PROXY)
    no_comment = legal.post(f"/api/v1/access/requests/{request_id}/refuse", json={"comment": " "})
    assert no_comment.status_code == 400
    refused = legal.post(
        f"/api/v1/access/requests/{request_id}/refuse", json={"comment": "事由不充分"}
    )
    assert refused.status_code == 200 and refused.json()["status"] == "refused"
    (denied,) = _events(instance.catalog, video.id, EventKind.ACCESS_DENIED)
    assert (denied.actor, denied.details["comment"], denied.details["request"]) == (
        "fazhi",
        "事由不充分",
        request_id,
    )
    assert _api_view(outsider, video.id).status_code == 403
    assert outsider.get(f"/media/{video.id}/proxy").status_code == 403
    assert _events(instance.catalog, video.id, EventKind.VIEWED) == []
    # Decided once: a grant afterwards is refused.
    again = _grant(legal, request_id)
    assert (again.status_code, again.json()["error"]) == (400, "approval")


def test_who_may_decide_a_request(
    instance: Instance, signed_in: Callable[[str], TestClient], items: tuple[MediaItem, MediaItem]
) -> None:
    video, _ = items
    supervisor = signed_in("boss")
    own = _request(supervisor, [video.id], Action.DOWNLOAD_ORIGINAL)
    # One cannot approve one's own request, and the refusal is recorded.
    mine = _grant(supervisor, own)
    assert (mine.status_code, mine.json()["error"]) == (403, "forbidden")
    assert "本人" in mine.json()["message"]
    # A supervisor of another unit cannot, an archivist cannot, an administrator cannot.
    for login in ("jiao.boss", "zhang.wei", "admin"):
        assert _grant(signed_in(login), own).status_code == 403, login
    with instance.catalog.read() as conn:
        refusals = [
            (e.actor, e.details["action"])
            for e in custody.events(conn)
            if e.kind is EventKind.REFUSED and e.subject == f"access request {own}"
        ]
    assert refusals == [
        ("boss", "grant"),
        ("jiao.boss", "grant"),
        ("zhang.wei", "grant"),
        ("admin", "grant"),
    ]
    # Waiting lists hold only what each may decide: not one's own, not outside one's tree.
    waiting = "/api/v1/access/requests?listing=waiting"
    assert signed_in("jiao.boss").get(waiting).json() == []
    assert supervisor.get(waiting).json() == []
    legal = signed_in("fazhi")
    assert [r["id"] for r in legal.get(waiting).json()] == [own]
    # The legal office decides for every department, fewer hours than asked at most.
    assert _grant(legal, own, hours=25).status_code == 400
    done = _grant(legal, own, hours=8)
    assert done.status_code == 200
    assert (done.json()["decided_by"], done.json()["granted_hours"]) == ("fazhi", 8)


def test_a_grant_covers_exactly_its_items_and_action(
    instance: Instance,
    signed_in: Callable[[str], TestClient],
    items: tuple[MediaItem, MediaItem],
    tmp_path: Path,
) -> None:
    video, photo = items
    archivist = signed_in("zhang.wei")
    granted = _request(archivist, [video.id], Action.DOWNLOAD_ORIGINAL)
    assert _grant(signed_in("boss"), granted).status_code == 200
    assert _post(archivist, f"/media/{video.id}/original", reason=REASON).status_code == 200
    assert _post(archivist, f"/media/{photo.id}/original", reason=REASON).status_code == 403
    # A court package of the same item is another action: the use case refuses it too,
    # naming every item that lacks a grant, before anything is written.
    as_user = instance.acting("zhang.wei")
    with pytest.raises(ApprovalRequired) as refused:
        custody_usecases.export_package(
            as_user, tmp_path / "bag", media_keys=[str(video.id), str(photo.id)],
            actor="zhang.wei", reason=REASON,
        )  # fmt: skip
    assert refused.value.subject == f"media {video.id}, {photo.id}"
    assert refused.value.rules == ("court-export",)
    assert not (tmp_path / "bag").exists()
    # With an export grant for both, the bag is written and each EXPORTED event names it.
    both = _request(archivist, [video.id, photo.id], Action.EXPORT)
    assert _grant(signed_in("boss"), both).status_code == 200
    result = custody_usecases.export_package(
        as_user, tmp_path / "bag", media_keys=[str(video.id), str(photo.id)],
        actor="zhang.wei", reason=REASON,
    )  # fmt: skip
    assert set(result.media_ids) == {video.id, photo.id}
    for item in items:
        bag_events = [
            e for e in _events(instance.catalog, item.id, EventKind.EXPORTED)
            if e.details.get("export") == result.export_id
        ]  # fmt: skip
        assert [e.details["grant"] for e in bag_events] == [both]


def test_a_photo_shown_in_place_under_a_grant_of_its_own(
    instance: Instance, signed_in: Callable[[str], TestClient], items: tuple[MediaItem, MediaItem]
) -> None:
    """Another department's photo: viewing it (its metadata) and showing its original in
    place are two actions, each granted; the original's grant is named by the viewing."""
    _, photo = items
    outsider, supervisor = signed_in("li.na"), signed_in("boss")
    _grant(supervisor, _request(outsider, [photo.id], Action.VIEW_PROXY))
    assert _api_view(outsider, photo.id).status_code == 200
    page = outsider.get(f"/media/{photo.id}").text
    assert "action=view-original" in page and f'src="/media/{photo.id}/inline"' not in page
    assert outsider.get(f"/media/{photo.id}/inline").status_code == 403
    original = _request(outsider, [photo.id], Action.VIEW_ORIGINAL)
    _grant(supervisor, original)
    # The viewing began before the grant: the reason is given again, naming it.
    assert outsider.get(f"/media/{photo.id}/inline").status_code == 403
    again = _api_view(outsider, photo.id)
    assert again.json()["original_grant"] == original
    shown = outsider.get(f"/media/{photo.id}/inline")
    assert shown.status_code == 200 and shown.content == _original(instance, photo)
    latest = _events(instance.catalog, photo.id, EventKind.VIEWED)[-1]
    assert latest.details["original_grant"] == original


def test_any_access_to_a_sealed_case_needs_approval(
    instance: Instance, signed_in: Callable[[str], TestClient], items: tuple[MediaItem, MediaItem]
) -> None:
    video, _ = items
    filing = instance.acting("zhang.wei")
    cases_usecases.add_case(
        filing, "2026-0113", title="查封某仓库", category="seizure",
        department="县公安局/治安大队",
    )  # fmt: skip
    cases_usecases.link_media(filing, "2026-0113", video.id, "现场录像")
    archivist = signed_in("zhang.wei")
    assert _post(archivist, f"/media/{video.id}/view", reason=REASON).status_code == 303
    # Sealed (set here directly: sealing itself is tested in tests/test_seal.py).
    with instance.catalog.begin() as conn:
        conn.execute(
            schema.cases.update().where(schema.cases.c.number == "2026-0113"),
            {"archived_at": instance.clock()},
        )
    assert archivist.get(f"/media/{video.id}/proxy").status_code == 403
    refused = _api_view(archivist, video.id)
    assert refused.json()["error"] == "approval-required"
    asked = archivist.post(
        "/api/v1/access/requests",
        json={"case": "2026-0113", "action": "view-proxy", "reason": REASON, "hours": 2},
    ).json()
    assert (asked["media"], asked["case"]) == ([video.id], "2026-0113")
    assert _grant(signed_in("boss"), asked["id"]).status_code == 200
    assert _api_view(archivist, video.id).status_code == 200


def test_an_item_of_ones_own_department_the_roles_keep_closed_stays_closed(
    instance: Instance, signed_in: Callable[[str], TestClient], items: tuple[MediaItem, MediaItem]
) -> None:
    """An officer reads their own recordings: a colleague's, of the same unit, is no matter
    of approval (the archivists of the unit read it); nor is anything an administrator's."""
    video, _ = items
    accounts.add_user(
        instance, "chen", officer_id="2002", roles=[UserRole.OFFICER], password=PASSWORD,
        department="县公安局/治安大队",
    )  # fmt: skip
    officer = signed_in("chen")
    assert officer.get(f"/media/{video.id}").status_code == 403
    asked = officer.post(
        "/api/v1/access/requests",
        json={"media": [video.id], "action": "view-proxy", "reason": REASON, "hours": 2},
    )
    assert (asked.status_code, asked.json()["error"]) == (403, "forbidden")
    assert signed_in("admin").get(f"/media/{video.id}").status_code == 403


def test_without_accounts_the_operator_is_not_asked_for_approval(
    catalog: Catalog, settings: Settings, items: tuple[MediaItem, MediaItem], tmp_path: Path
) -> None:
    """An instance without accounts (a fresh install, a dock host): `--as` names whoever the
    operator says, as before approvals; the policy applies to the users of the catalog."""
    video, _ = items
    bare = Instance(settings, catalog)
    opened = custody_usecases.view_media(
        bare, str(video.id), actor="A001", reason=REASON, view=View.ORIGINAL, out=tmp_path / "o"
    )
    assert opened.path is not None and opened.path.read_bytes() == _original(bare, video)
    # The catalog-level function takes no policy unless given one.
    assert open_media(catalog, None, str(video.id), actor="A001", reason=REASON, view=View.METADATA)


# ---------------------------------------------------------------------------------- CLI


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    """`evidence …` through its real entry point, in this process."""
    umask = os.umask(0o077)
    os.umask(umask)

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["evidence", *args])
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        with pytest.raises(SystemExit) as done:
            main()
        captured = capsys.readouterr()
        return int(done.value.code or 0), captured.out, captured.err

    yield run
    os.umask(umask)


def test_the_cli_requests_grants_and_lists_as_the_web_does(
    instance: Instance,
    cli: Cli,
    signed_in: Callable[[str], TestClient],
    items: tuple[MediaItem, MediaItem],
    tmp_path: Path,
) -> None:
    video, _ = items
    out = tmp_path / "copy.mp4"
    opening = ("media", "open", str(video.id), "--view", "original", "--out", str(out),
               "--reason", REASON, "--as", "zhang.wei")  # fmt: skip
    code, _, err = cli(*opening)
    assert code == 2 and "approval-required" in err and "evidence access request" in err
    assert not out.exists()

    code, printed, err = cli(
        "access", "request", "--media", str(video.id), "--action", "download-original",
        "--reason", REASON, "--hours", "4", "--as", "zhang.wei", "--json",
    )  # fmt: skip
    assert code == 0, err
    asked = json.loads(printed)
    assert (asked["requested_by"], asked["media"], asked["hours"]) == ("zhang.wei", [video.id], 4)

    code, _, err = cli("access", "grant", str(asked["id"]), "--as", "zhang.wei")
    assert code == 2 and "本人" in err  # not one's own
    code, _, err = cli("access", "grant", str(asked["id"]), "--as", "jiao.boss")
    assert code == 2 and "forbidden" in err
    code, printed, err = cli("access", "list", "--waiting", "--as", "9100", "--json")  # officer id
    assert code == 0 and [r["id"] for r in json.loads(printed)] == [asked["id"]]
    code, printed, err = cli(
        "access", "grant", str(asked["id"]), "--hours", "2", "--comment", "限当日", "--as", "boss",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    assert (json.loads(printed)["status"], json.loads(printed)["granted_hours"]) == ("granted", 2)

    code, printed, err = cli(*opening)
    assert code == 0, err
    assert out.read_bytes() == _original(instance, video)
    (exported,) = _events(instance.catalog, video.id, EventKind.EXPORTED)
    assert exported.details["grant"] == asked["id"]
    kinds = [e.kind for e in _events(instance.catalog, video.id, EventKind.ACCESS_REQUESTED,
                                     EventKind.ACCESS_GRANTED, EventKind.EXPORTED)]  # fmt: skip
    assert kinds == [EventKind.ACCESS_REQUESTED, EventKind.ACCESS_GRANTED, EventKind.EXPORTED]

    # --json is the API's JSON, for every listing.
    for flag, listing in (("--mine", "mine"), ("--waiting", "waiting"), ("--all", "all")):
        for login in ("zhang.wei", "boss"):
            code, printed, err = cli("access", "list", flag, "--as", login, "--json")
            assert code == 0, err
            web = signed_in(login).get(f"/api/v1/access/requests?listing={listing}").json()
            assert json.loads(printed) == web, (flag, login)
    code, printed, _ = cli("access", "list", "--all", "--as", "boss")
    assert "download-original" in printed and "granted" in printed

    # A refusal by the CLI, with its comment.
    code, printed, err = cli(
        "access", "request", "--media", str(video.id), "--action", "export", "--reason", REASON,
        "--as", "zhang.wei", "--json",
    )  # fmt: skip
    second = json.loads(printed)["id"]
    code, _, err = cli("access", "refuse", str(second), "--as", "boss")
    assert code == 2  # --comment is required
    code, printed, err = cli(
        "access", "refuse", str(second), "--comment", "不予批准", "--as", "boss"
    )
    assert code == 0 and "refused" in printed
    # Without a user, `evidence access` says what it needs.
    code, _, err = cli("access", "list", "--as", "nobody")
    assert code == 2 and "--as" in err


def test_requests_are_checked_before_anything_is_recorded(
    instance: Instance, items: tuple[MediaItem, MediaItem]
) -> None:
    video, _ = items
    user = approvals.acting_user(instance, "zhang.wei")
    asking = instance.acting(user.login)
    for kwargs in (
        {"media_ids": [video.id], "hours": 0},
        {"media_ids": [video.id], "hours": 169},  # approvals.max_hours
        {"media_ids": [], "hours": 2},
        {"media_ids": [video.id], "case": "2026-0113", "hours": 2},
    ):
        with pytest.raises(ApprovalError):
            approvals.request_access(
                asking,
                user,
                action=Action.EXPORT,
                reason=REASON,
                **kwargs,  # type: ignore[arg-type]
            )
    with pytest.raises(PermissionDenied):
        approvals.request_access(
            asking, approvals.acting_user(instance, "admin"), action=Action.EXPORT,
            reason=REASON, hours=2, media_ids=[video.id],
        )  # fmt: skip
    assert approvals.list_requests(instance, user, Listing.ALL) == ()
    assert _events(instance.catalog, video.id, EventKind.ACCESS_REQUESTED) == []
