"""The audit trail in the browser and the API: `/api/v1/audit` is what `evidence audit --json`
prints for the same filters, the CSV is safe to open in a spreadsheet, and only the roles
that supervise may read it."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from docks.sweep import sweep_station
from interfaces.cli import main
from interfaces.web.app import create_app
from interfaces.web.security import CSRF_COOKIE
from pipeline.accounts import passwords
from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import UserRole
from pipeline.catalog import Catalog
from pipeline.catalog import media as media_db
from pipeline.catalog import registry as registry_rows
from pipeline.custody import usecases as custody_usecases
from pipeline.ingest.steps import IngestContext
from pipeline.instance import Instance
from pipeline.models import MediaItem, Officer, Station
from pipeline.settings import Settings
from tests.conftest import put

PASSWORD = "correct horse 电池"
FORMULA = '=HYPERLINK("http://evil.example","复核")'


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def photo(
    catalog: Catalog, ctx: IngestContext, station: Station, clips: dict[str, Path]
) -> MediaItem:
    put(clips["photo"], station.root, "BWC-1/b.jpg")
    assert sweep_station(ctx, station).ok
    with catalog.read() as conn:
        (item,) = media_db.listing(conn)
    return item


@pytest.fixture
def instance(settings: Settings, catalog: Catalog, photo: MediaItem) -> Instance:
    with catalog.begin() as conn:
        registry_rows.save_officer(
            conn, Officer("9000", "法制", "11010099999", "县公安局"), datetime.now(UTC)
        )
    instance = Instance(settings, catalog, actor="setup")
    accounts.add_user(
        instance, "fazhi", officer_id="9000", roles=[UserRole.LEGAL_REVIEWER], password=PASSWORD
    )
    accounts.add_user(
        instance, "dangan", officer_id="9000", roles=[UserRole.ARCHIVIST], password=PASSWORD
    )
    # A viewing whose reason a spreadsheet would run as a formula.
    custody_usecases.media_detail(instance, str(photo.id), actor="fazhi", reason=FORMULA)
    return instance


def _client(app: FastAPI, login: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    client.get("/signin")
    signed = client.post(
        "/signin",
        data={"login": login, "password": PASSWORD, "csrf_token": client.cookies[CSRF_COOKIE]},
    )
    assert signed.status_code == 303
    return client


@pytest.fixture
def client(instance: Instance) -> Iterator[TestClient]:
    with _client(create_app(instance), "fazhi") as c:
        yield c


def _cli_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> object:
    umask = os.umask(0o077)
    os.umask(umask)
    monkeypatch.setattr(sys, "argv", ["evidence", *args, "--json"])
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    try:
        with pytest.raises(SystemExit) as done:
            main()
    finally:
        os.umask(umask)
    printed = capsys.readouterr()
    assert done.value.code in (0, None), printed.err
    return json.loads(printed.out)


@pytest.mark.parametrize(
    ("params", "options"),
    [
        ({}, []),
        ({"actor": "fazhi"}, ["--actor", "fazhi"]),
        ({"kind": ["viewed", "signed_in"]}, ["--kind", "viewed", "--kind", "signed_in"]),
        ({"media": "PHOTO", "limit": "2"}, ["--media", "PHOTO", "--limit", "2"]),
    ],
)
def test_the_api_returns_what_the_cli_prints(
    client: TestClient,
    photo: MediaItem,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    params: dict[str, object],
    options: list[str],
) -> None:
    params = {k: (str(photo.id) if v == "PHOTO" else v) for k, v in params.items()}
    options = [str(photo.id) if o == "PHOTO" else o for o in options]
    served = client.get("/api/v1/audit", params=params)
    assert served.status_code == 200
    printed = _cli_json(monkeypatch, capsys, "audit", *options)
    assert served.json() == printed
    assert printed, "the comparison compares something"


def test_the_page_and_its_csv(client: TestClient, instance: Instance, photo: MediaItem) -> None:
    page = client.get("/audit", params={"actor": "fazhi"})
    assert page.status_code == 200 and "监督日志" in page.text
    assert 'href="/audit.csv?media=&amp;actor=fazhi' in page.text
    assert (
        "&#34;http://evil.example&#34;" in page.text
        or "&quot;http://evil.example&quot;" in page.text
    )
    download = client.get("/audit.csv", params={"actor": "fazhi"})
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-disposition"] == 'attachment; filename="audit.csv"'
    text = download.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0][1] == "time (Asia/Shanghai)"
    viewed = [r for r in rows[1:] if r[2] == "viewed"]
    assert [r[6] for r in viewed] == ["'" + FORMULA], "no cell starts a formula"
    assert viewed[0][4] == str(photo.id)


def test_only_the_supervising_roles_read_the_audit(instance: Instance) -> None:
    with _client(create_app(instance), "dangan") as archivist:
        response = archivist.get("/api/v1/audit")
        page = archivist.get("/audit")
    assert (response.status_code, response.json()["error"]) == (403, "forbidden")
    assert page.status_code == 403


def test_a_bad_filter_is_400(client: TestClient) -> None:
    assert client.get("/api/v1/audit", params={"media": "abc"}).json()["error"] == "bad-request"
    assert client.get("/api/v1/audit", params={"kind": "nonsense"}).status_code == 400
    assert client.get("/api/v1/audit", params={"media": "99999"}).status_code == 404
