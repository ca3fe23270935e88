"""The JSON API fuzzed against its own OpenAPI document (schemathesis, a bounded run): signed
in or not, whatever the parameters, it never answers a server error, and every error is
``{"error": code, "message": …}``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from docks.sweep import sweep_station
from interfaces.web.app import create_app
from interfaces.web.security import CSRF_COOKIE, SESSION_COOKIE
from pipeline.accounts import passwords
from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import UserRole
from pipeline.catalog import Catalog
from pipeline.catalog import registry as registry_rows
from pipeline.ingest.steps import IngestContext
from pipeline.instance import Instance
from pipeline.models import Officer, Station
from pipeline.registry import usecases as registry
from pipeline.settings import Settings
from pipeline.uploads import presence
from tests.conftest import put

PASSWORD = "correct horse 电池"


@pytest.fixture
def app(
    settings: Settings,
    catalog: Catalog,
    ctx: IngestContext,
    station: Station,
    clips: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> FastAPI:
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    put(clips["photo"], station.root, "BWC-1/b.jpg")
    assert sweep_station(ctx, station).ok
    with catalog.begin() as conn:
        registry_rows.save_officer(
            conn, Officer("1023", "张伟", "11010012345", "治安大队"), datetime.now(UTC)
        )
    instance = Instance(settings, catalog, actor="1023")
    accounts.add_user(
        instance, "zhang.wei", officer_id="1023", roles=[UserRole.LEGAL_REVIEWER], password=PASSWORD
    )
    # A push station and its token: the station API is fuzzed authenticated too.
    registry.add_station(instance, "DOCK-07", None, pushes=True)
    app = create_app(instance)
    app.state.station_token = presence.issue_token(instance, "DOCK-07").token
    return app


@pytest.fixture
def browser(app: FastAPI) -> dict[str, Any]:
    """The cookies and CSRF header of a signed-in browser."""
    with TestClient(app, follow_redirects=False) as client:
        client.get("/signin")
        token = client.cookies[CSRF_COOKIE]
        client.post(
            "/signin", data={"login": "zhang.wei", "password": PASSWORD, "csrf_token": token}
        )
        cookies = {
            SESSION_COOKIE: client.cookies[SESSION_COOKIE],
            CSRF_COOKIE: client.cookies[CSRF_COOKIE],
        }
    return {"cookies": cookies, "headers": {"X-CSRF-Token": cookies[CSRF_COOKIE]}}


def test_a_nul_in_a_query_is_a_query_error(app: FastAPI, browser: dict[str, Any]) -> None:
    """Found by the fuzzing below: ``q=00\x00`` made FTS5's MATCH fail, a CatalogError
    (503). The parser refuses a control character in a term: a QueryError (400)."""
    with TestClient(app, cookies=browser["cookies"]) as client:
        response = client.get("/api/v1/search", params={"q": "00\x00"})
    assert (response.status_code, response.json()["error"]) == (400, "query")


def test_the_api_never_answers_a_server_error(app: FastAPI, browser: dict[str, Any]) -> None:
    """Each operation of the document, a bounded number of generated requests, each sent
    signed in (with the CSRF header), without a session, and with a station's token."""
    api = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/api/v1/search",
        "/api/v1/me",
        "/api/v1/media/{media_id}/view",
        "/api/v1/dock/{station_id}/uploads/{upload_id}",
    }
    station = {"headers": {"Authorization": f"Bearer {app.state.station_token}"}}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def fuzz(case: Any) -> None:
            for who in (browser, {}, station):
                response = case.call(**who)
                assert response.status_code < 500, (
                    f"{case.method} {case.formatted_path}: {response.text}"
                )
                if response.status_code >= 400 and case.method != "HEAD":  # HEAD: no body
                    assert set(response.json()) == {"error", "message"}, response.text

        fuzz()
