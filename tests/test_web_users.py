"""The accounts page for administrators: `/api/v1/users` is what `evidence users list --json`
prints; adding, disabling and ending sessions from the browser are USER_CHANGED events with
the administrator acting; nobody else may."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from interfaces.cli import main
from interfaces.web.app import create_app
from interfaces.web.security import CSRF_COOKIE
from pipeline.accounts import passwords
from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import UserRole
from pipeline.catalog import Catalog
from pipeline.catalog import registry as registry_rows
from pipeline.custody import log as custody
from pipeline.errors import NotSignedIn
from pipeline.instance import Instance
from pipeline.models import EventKind, Officer
from pipeline.settings import Settings

PASSWORD = "correct horse 电池"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def instance(settings: Settings, catalog: Catalog) -> Instance:
    now = datetime.now(UTC)
    with catalog.begin() as conn:
        registry_rows.save_officer(conn, Officer("0001", "管理员", "11010000001", "县公安局"), now)
        registry_rows.save_officer(
            conn, Officer("1023", "张伟", "11010012345", "县公安局/治安大队"), now
        )
    instance = Instance(settings, catalog, actor="setup")
    accounts.add_user(
        instance, "admin", officer_id="0001", roles=[UserRole.ADMIN], password=PASSWORD
    )
    accounts.add_user(
        instance, "dangan", officer_id="1023", roles=[UserRole.ARCHIVIST], password=PASSWORD
    )
    return instance


@pytest.fixture
def app(instance: Instance) -> FastAPI:
    return create_app(instance)


def _client(app: FastAPI, login: str, password: str = PASSWORD) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    client.get("/signin")
    signed = client.post(
        "/signin",
        data={"login": login, "password": password, "csrf_token": client.cookies[CSRF_COOKIE]},
    )
    assert signed.status_code == 303, signed.text
    return client


@pytest.fixture
def admin(app: FastAPI) -> Iterator[TestClient]:
    with _client(app, "admin") as c:
        yield c


def _post(client: TestClient, path: str, data: dict[str, Any]) -> Any:
    return client.post(path, data={**data, "csrf_token": client.cookies[CSRF_COOKIE]})


def _changes(instance: Instance) -> list[custody.CustodyEvent]:
    with instance.catalog.read() as conn:
        return [e for e in custody.events(conn) if e.kind is EventKind.USER_CHANGED]


def test_the_api_returns_what_the_cli_prints(
    admin: TestClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served = admin.get("/api/v1/users")
    assert served.status_code == 200
    umask = os.umask(0o077)
    os.umask(umask)
    monkeypatch.setattr(sys, "argv", ["evidence", "users", "list", "--json"])
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    try:
        with pytest.raises(SystemExit):
            main()
    finally:
        os.umask(umask)
    assert served.json() == json.loads(capsys.readouterr().out)
    assert [u["login"] for u in served.json()] == ["admin", "dangan"]


def test_an_administrator_adds_disables_and_signs_out_users(
    app: FastAPI, admin: TestClient, instance: Instance
) -> None:
    page = admin.get("/users")
    assert page.status_code == 200 and "用户管理" in page.text and 'href="/search"' not in page.text
    added = _post(
        admin,
        "/users",
        {
            "login": "Li.Na",
            "officer": "1023",
            "role": ["officer", "archivist"],
            "password": "a good password 1",
        },
    )
    assert added.status_code == 303, added.text
    assert "li.na" in admin.get("/users").text
    with _client(app, "li.na", "a good password 1") as li:
        token = li.cookies["evidence_session"]
        assert _post(admin, "/users/li.na/sign-out", {}).status_code == 303
        with pytest.raises(NotSignedIn):
            accounts.authenticate(instance, token)
    assert (
        _post(
            admin, "/users/li.na/roles", {"role": ["supervisor"], "department": "县公安局"}
        ).status_code
        == 303
    )
    assert _post(admin, "/users/li.na/enabled", {"enabled": "false"}).status_code == 303
    (li_na,) = [u for u in accounts.list_users(instance) if u.login == "li.na"]
    assert (li_na.roles, li_na.department, li_na.enabled) == (
        (UserRole.SUPERVISOR,),
        "县公安局",
        False,
    )
    changes = [
        (e.actor, e.details["action"]) for e in _changes(instance) if e.details["login"] == "li.na"
    ]
    assert changes == [
        ("admin", "added"),
        ("admin", "sessions-revoked"),
        ("admin", "roles-set"),
        ("admin", "disabled"),
    ]


def test_a_bad_account_is_refused_with_its_reason(admin: TestClient) -> None:
    short = _post(
        admin,
        "/users",
        {"login": "x1", "officer": "1023", "role": ["officer"], "password": "short"},
    )
    assert short.status_code == 400 and "至少 10 个字符" in short.text
    nobody = _post(
        admin,
        "/users",
        {"login": "x1", "officer": "7777", "role": ["officer"], "password": "a good password 1"},
    )
    assert nobody.status_code == 404 and "7777" in nobody.text
    assert (
        _post(
            admin,
            "/users",
            {"login": "x1", "officer": "1023", "role": ["boss"], "password": "a good password 1"},
        ).status_code
        == 400
    )


def test_nobody_else_manages_users(app: FastAPI, instance: Instance) -> None:
    with _client(app, "dangan") as archivist:
        assert archivist.get("/api/v1/users").status_code == 403
        assert archivist.get("/users").status_code == 403
        assert _post(archivist, "/users/admin/enabled", {"enabled": "false"}).status_code == 403
        assert 'href="/users"' not in archivist.get("/search").text
    assert all(u.enabled for u in accounts.list_users(instance))
