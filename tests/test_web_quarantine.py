"""The quarantine page on a real catalog: a clip from a recorder nobody registered goes to
quarantine; the page lists it with its code's zh-CN label and its reason, ``/api/v1/quarantine``
is exactly ``evidence quarantine list --json``, an archivist releases it with a reason (one
QUARANTINE_RELEASED event naming them and it), an officer asking is refused (403 and a
REFUSED event), and a release without the CSRF token or a reason is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from docks.sweep import sweep_station
from interfaces.cli import app as cli_app
from interfaces.web.app import create_app
from interfaces.web.security import CSRF_COOKIE
from pipeline.accounts import passwords
from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import UserRole
from pipeline.catalog import Catalog
from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import media as media_db
from pipeline.catalog import registry as registry_rows
from pipeline.custody import log as custody
from pipeline.ingest.steps import IngestContext
from pipeline.instance import Instance
from pipeline.models import Device, DeviceKind, EventKind, MediaStatus, Officer, QuarantineEntry
from pipeline.settings import Settings
from pipeline.storage.local import LocalStore
from tests.conftest import make_settings, put

PASSWORD = "correct horse 电池"
REASON = "记录仪 BWC0099 已登记，归属张伟"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at its smallest (the real profile has its own test)."""
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def entry(
    settings: Settings, catalog: Catalog, station: object, dock: Path, clips: dict[str, Path]
) -> QuarantineEntry:
    """A clip from recorder BWC0099, which nobody registered: quarantined, as in production."""
    strict = make_settings(settings.home, devices={"unknown": "quarantine"})
    ctx = IngestContext(catalog, LocalStore(strict.archive_dir), strict, jobs_db.new_owner())
    put(clips["video"], dock, "BWC0099/a.mp4")
    sweep_station(ctx, station)  # type: ignore[arg-type]
    with catalog.read() as conn:
        (found,) = media_db.quarantine_entries(conn)
    assert found.code == "unknown-device"
    return found


@pytest.fixture
def instance(settings: Settings, catalog: Catalog, entry: QuarantineEntry) -> Instance:
    now = datetime.now(UTC)
    with catalog.begin() as conn:
        registry_rows.save_officer(
            conn, Officer("1023", "张伟", "11010012345", "县公安局/治安大队"), now
        )
    instance = Instance(settings, catalog, actor="setup")
    for login, roles in (
        ("zhang.wei", [UserRole.ARCHIVIST]),
        ("officer.zhang", [UserRole.OFFICER]),
    ):
        accounts.add_user(instance, login, officer_id="1023", roles=roles, password=PASSWORD)
    return instance


def _client(instance: Instance, login: str) -> TestClient:
    client = TestClient(create_app(instance), follow_redirects=False)
    client.get("/signin")
    signed = client.post(
        "/signin",
        data={"login": login, "password": PASSWORD, "csrf_token": client.cookies[CSRF_COOKIE]},
    )
    assert signed.status_code == 303
    return client


@pytest.fixture
def archivist(instance: Instance) -> Iterator[TestClient]:
    with _client(instance, "zhang.wei") as c:
        yield c


def _release(
    client: TestClient, entry_id: int, reason: str = REASON, csrf: bool = True
) -> httpx.Response:
    data = {"entry": str(entry_id), "reason": reason}
    if csrf:
        data["csrf_token"] = client.cookies[CSRF_COOKIE]
    return client.post("/quarantine/release", data=data)


def _register(catalog: Catalog) -> None:
    """What releases the entry: the recorder registered, and held by officer 1023."""
    with catalog.begin() as conn:
        registry_rows.save_device(conn, Device("BWC0099", DeviceKind.BODY_WORN), datetime.now(UTC))
        registry_rows.add_assignment(
            conn, "BWC0099", "1023", datetime(2026, 1, 1, tzinfo=UTC), None
        )


def _events(catalog: Catalog, kind: EventKind) -> list[custody.CustodyEvent]:
    with catalog.read() as conn:
        return [e for e in custody.events(conn) if e.kind is kind]


def test_the_page_lists_codes_and_reasons_and_the_api_is_the_clis_json(
    archivist: TestClient, entry: QuarantineEntry
) -> None:
    page = archivist.get("/quarantine")
    assert page.status_code == 200
    assert "未登记的记录仪" in page.text and "unknown-device" in page.text
    assert entry.reason in page.text and f'name="entry" value="{entry.id}"' in page.text
    assert 'href="/quarantine"' in page.text, "the navigation offers it"
    api = archivist.get("/api/v1/quarantine")
    cli = CliRunner().invoke(cli_app, ["quarantine", "list", "--json"])
    assert cli.exit_code == 0, cli.output
    assert api.json() == json.loads(cli.stdout) and api.json()[0]["id"] == entry.id


def test_an_archivist_releases_with_a_reason_and_it_is_one_event(
    archivist: TestClient, instance: Instance, entry: QuarantineEntry
) -> None:
    for reason in ["", "x"]:
        assert _release(archivist, entry.id, reason).status_code == 403
    now = datetime.now(UTC)
    with instance.catalog.begin() as conn:
        registry_rows.save_device(conn, Device("BWC0099", DeviceKind.BODY_WORN), now)
        registry_rows.add_assignment(
            conn, "BWC0099", "1023", datetime(2026, 1, 1, tzinfo=UTC), None
        )
    done = _release(archivist, entry.id)
    assert done.status_code == 200, done.text
    assert "已放行 released" in done.text
    (released,) = _events(instance.catalog, EventKind.QUARANTINE_RELEASED)
    assert (released.actor, released.media_id, released.details["reason"]) == (
        "zhang.wei",
        entry.media_id,
        REASON,
    )
    with instance.catalog.read() as conn:
        assert media_db.quarantine_entries(conn) == []
        assert entry.media_id is not None
        item = media_db.get(conn, entry.media_id)
    assert (item.status, item.officer_id) == (MediaStatus.ARCHIVED, "1023")
    assert archivist.get("/api/v1/quarantine").json() == []


def test_an_officer_may_not_release_and_it_is_recorded(
    instance: Instance, entry: QuarantineEntry
) -> None:
    with _client(instance, "officer.zhang") as officer:
        refused = _release(officer, entry.id)
        assert refused.status_code == 403
        assert officer.get("/quarantine").status_code == 403
        assert officer.get("/api/v1/quarantine").status_code == 403
    (event,) = _events(instance.catalog, EventKind.REFUSED)
    assert (event.actor, event.details["action"], event.details["entries"]) == (
        "officer.zhang",
        "release-quarantine",
        [entry.id],
    )
    assert _events(instance.catalog, EventKind.QUARANTINE_RELEASED) == []
    with instance.catalog.read() as conn:
        assert [e.id for e in media_db.quarantine_entries(conn)] == [entry.id]


def test_a_release_without_the_csrf_token_is_refused(
    archivist: TestClient, instance: Instance, entry: QuarantineEntry
) -> None:
    assert _release(archivist, entry.id, csrf=False).status_code == 403
    assert _events(instance.catalog, EventKind.QUARANTINE_RELEASED) == []
    with instance.catalog.read() as conn:
        assert [e.id for e in media_db.quarantine_entries(conn)] == [entry.id]


def test_the_cli_records_its_reason_too(instance: Instance, entry: QuarantineEntry) -> None:
    _register(instance.catalog)
    args = ["quarantine", "release", str(entry.id), "--reason", REASON, "--as", "zhang.wei"]
    done = CliRunner().invoke(cli_app, [*args, "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)[0]["released"] is True
    (released,) = _events(instance.catalog, EventKind.QUARANTINE_RELEASED)
    assert (released.actor, released.details["reason"]) == ("zhang.wei", REASON)
