"""The case file page and `/api/v1/cases/{number}` on a real case with a real linked clip:
the JSON is what `evidence cases show --json` prints; who may read it goes by role and
department tree, and a refusal is a REFUSED custody event."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

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
from pipeline.cases import coverage
from pipeline.cases import usecases as cases_usecases
from pipeline.catalog import Catalog
from pipeline.catalog import media as media_db
from pipeline.catalog import registry as registry_rows
from pipeline.custody import log as custody
from pipeline.ingest.steps import IngestContext
from pipeline.instance import Instance
from pipeline.models import Device, DeviceKind, EventKind, Officer, Station
from pipeline.settings import Settings
from tests.conftest import RECORDED, put

PASSWORD = "correct horse 电池"
NUMBER = "2026-0113"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


USERS = [
    ("zhang.wei", "1023", UserRole.ARCHIVIST),  # the case's unit
    ("li.na", "2001", UserRole.ARCHIVIST),  # another unit
    ("kao", "1023", UserRole.OFFICER),  # an officer of the case
    ("wang", "2001", UserRole.OFFICER),  # an officer not of the case
    ("fazhi", "9000", UserRole.LEGAL_REVIEWER),
]


@pytest.fixture
def instance(
    settings: Settings,
    catalog: Catalog,
    ctx: IngestContext,
    station: Station,
    clips: dict[str, Path],
) -> Instance:
    now = datetime.now(UTC)
    with catalog.begin() as conn:
        registry_rows.save_officer(
            conn, Officer("1023", "张伟", "11010012345", "县公安局/治安大队"), now
        )
        registry_rows.save_officer(
            conn, Officer("2001", "李娜", "11010054321", "县公安局/交警大队"), now
        )
        registry_rows.save_officer(conn, Officer("9000", "法制", "11010099999", "县公安局"), now)
        registry_rows.save_device(conn, Device("BWC-1", DeviceKind.BODY_WORN), now)
        registry_rows.add_assignment(conn, "BWC-1", "1023", datetime(2026, 1, 1, tzinfo=UTC), None)
    put(clips["video"], station.root, "BWC-1/a.mp4")
    assert sweep_station(ctx, station).ok
    instance = Instance(settings, catalog, actor="1023")
    saved = cases_usecases.add_case(
        instance,
        NUMBER,
        title="查封扣押 <现场>",
        category="seizure",
        department="县公安局/治安大队",
        officers=["1023"],
        action_start=RECORDED - timedelta(minutes=1),
        action_end=RECORDED + timedelta(minutes=5),
    )
    assert saved.linked, "the rule linked the clip"
    for login, officer, role in USERS:
        accounts.add_user(instance, login, officer_id=officer, roles=[role], password=PASSWORD)
    return instance


@pytest.fixture
def app(instance: Instance) -> FastAPI:
    return create_app(instance)


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
def client(app: FastAPI) -> Iterator[TestClient]:
    with _client(app, "zhang.wei") as c:
        yield c


def test_the_case_page_shows_state_coverage_and_records(
    client: TestClient, instance: Instance
) -> None:
    with instance.catalog.read() as conn:
        (video,) = media_db.listing(conn)
    page = client.get(f"/cases/{NUMBER}")
    assert page.status_code == 200
    assert "案卷" in page.text and NUMBER in page.text
    assert "查封扣押 &lt;现场&gt;" in page.text, "stored text is escaped"
    assert f'<a href="/media/{video.id}">{video.id}</a>' in page.text
    assert "全过程覆盖" in page.text and "空白 gap" in page.text, (
        "a 6-minute window, a 1-second clip"
    )
    assert page.text.count("Asia/Shanghai（UTC+0800）") == 1


def test_the_case_page_draws_the_coverage_timeline_with_its_gap(
    client: TestClient, instance: Instance
) -> None:
    with instance.catalog.read() as conn:
        (video,) = media_db.listing(conn)
    assert video.recorded_start == RECORDED and video.recorded_end is not None
    page = client.get(f"/cases/{NUMBER}").text
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert "style=" not in svg and "<script" not in svg, "the CSP allows neither"
    # The 6-minute window ± 1 minute is drawn 1000 units wide: 480 s, 125 units to its start.
    assert re.search(r'<rect class="window" x="125.0" y="\d+" width="750.0"', svg)
    assert '<text x="-8" y="39" text-anchor="end" font-size="13" fill="#333">1023</text>' in svg
    (bar,) = re.findall(r'<a href="/media/(\d+)"><rect class="recording" x="([\d.]+)"', svg)
    assert bar == (str(video.id), "250.0")
    (gap,) = re.findall(r'<rect class="gap" x="([\d.]+)" y="\d+" width="([\d.]+)"', svg)
    assert abs(float(gap[0]) + float(gap[1]) - 875.0) < 0.2, "the gap runs to the window's end"
    local = ZoneInfo("Asia/Shanghai")
    since = video.recorded_end.astimezone(local).strftime("%Y-%m-%d %H:%M:%S")
    until = (RECORDED + timedelta(minutes=5)).astimezone(local).strftime("%Y-%m-%d %H:%M:%S")
    assert f"<title>空白 gap {since} – {until}</title>" in svg
    assert f'<li class="error">空白 gap：{since} – {until}（' in page


def test_the_timeline_places_each_officers_recordings_and_leaves_out_what_is_far() -> None:
    start = datetime(2026, 5, 1, 8, tzinfo=UTC)
    drawn = coverage.timeline(
        start,
        start + timedelta(minutes=80),
        ["1023", "2001"],
        [
            (None, 7, start - timedelta(minutes=5), start + timedelta(minutes=10)),
            ("1023", 8, start + timedelta(minutes=30), start + timedelta(minutes=40)),
            ("1023", 9, start + timedelta(hours=3), start + timedelta(hours=4)),
        ],
        [coverage.Gap(start + timedelta(minutes=40), start + timedelta(minutes=80))],
        timedelta(minutes=10),
    )
    assert [(r.officer, [(b.media_id, b.x, b.width) for b in r.bars]) for r in drawn.rows] == [
        ("1023", [(8, 400.0, 100.0)]),
        ("2001", []),
        (None, [(7, 50.0, 150.0)]),
    ]
    assert [(g.x, g.width) for g in drawn.gaps] == [(500.0, 400.0)]
    assert (drawn.window.x, drawn.window.width) == (100.0, 800.0)


def test_the_api_returns_what_the_cli_prints(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    umask = os.umask(0o077)
    os.umask(umask)
    monkeypatch.setattr(sys, "argv", ["evidence", "cases", "show", NUMBER, "--json"])
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    try:
        with pytest.raises(SystemExit) as done:
            main()
    finally:
        os.umask(umask)
    printed = capsys.readouterr()
    assert done.value.code in (0, None), printed.err
    served = client.get(f"/api/v1/cases/{NUMBER}")
    assert served.status_code == 200
    assert served.json() == json.loads(printed.out)


@pytest.mark.parametrize(
    ("login", "allowed"),
    [("zhang.wei", True), ("kao", True), ("fazhi", True), ("li.na", False), ("wang", False)],
)
def test_who_may_read_a_case_file(
    app: FastAPI, instance: Instance, login: str, allowed: bool
) -> None:
    with _client(app, login) as c:
        page = c.get(f"/cases/{NUMBER}")
        api = c.get(f"/api/v1/cases/{NUMBER}")
    with instance.catalog.read() as conn:
        refused = [e for e in custody.events(conn) if e.kind is EventKind.REFUSED]
    if allowed:
        assert (page.status_code, api.status_code, refused) == (200, 200, [])
    else:
        assert (page.status_code, api.status_code) == (403, 403)
        assert api.json()["error"] == "forbidden" and "查封扣押" not in page.text
        assert [(e.actor, e.subject, e.details["action"]) for e in refused] == [
            (login, f"case {NUMBER}", "view-case")
        ] * 2


def test_an_unknown_case_is_404(client: TestClient) -> None:
    assert client.get("/cases/1999-0001").status_code == 404
    assert client.get("/api/v1/cases/1999-0001").json()["error"] == "not-found"


def _post(client: TestClient, path: str, **data: object) -> Any:
    return client.post(path, data={**data, "csrf_token": client.cookies[CSRF_COOKIE]})


def _events(instance: Instance, kind: EventKind) -> list[custody.CustodyEvent]:
    with instance.catalog.read() as conn:
        return [e for e in custody.events(conn) if e.kind is kind]


def test_only_who_may_file_the_case_gets_the_forms(app: FastAPI) -> None:
    with _client(app, "zhang.wei") as archivist, _client(app, "fazhi") as legal:
        assert f'action="/cases/{NUMBER}/link"' in archivist.get(f"/cases/{NUMBER}").text
        assert "/link" not in legal.get(f"/cases/{NUMBER}").text


def test_unlink_and_link_again_with_a_reason(client: TestClient, instance: Instance) -> None:
    with instance.catalog.read() as conn:
        (video,) = media_db.listing(conn)
    path = f"/cases/{NUMBER}"
    assert _post(client, f"{path}/unlink", media_id=video.id, reason="x").status_code == 403
    assert (
        _post(client, f"{path}/unlink", media_id=video.id, reason="误关联 非本案现场").status_code
        == 303
    )
    (unlinked,) = _events(instance, EventKind.UNLINKED)
    assert unlinked.actor == "zhang.wei"
    assert "尚无关联记录" in client.get(path).text
    assert (
        _post(client, f"{path}/link", media_id=video.id, reason="复核确认 同一现场").status_code
        == 303
    )
    (linked,) = [e for e in _events(instance, EventKind.LINKED) if e.actor == "zhang.wei"]
    assert linked.media_id == video.id
    assert f'<a href="/media/{video.id}">' in client.get(path).text
    assert _post(client, f"{path}/link", media_id=999999, reason="不存在的记录").status_code == 404


def test_another_units_archivist_may_not_file_it_and_it_is_recorded(
    app: FastAPI, instance: Instance
) -> None:
    with instance.catalog.read() as conn:
        (video,) = media_db.listing(conn)
    with _client(app, "li.na") as other:
        for action, data in [
            ("unlink", {"media_id": video.id, "reason": "移出本案"}),
            ("conclude", {}),
            ("seal", {"reason": "归档"}),
        ]:
            assert _post(other, f"/cases/{NUMBER}/{action}", **data).status_code == 403
    refused = [(e.actor, e.details["action"]) for e in _events(instance, EventKind.REFUSED)]
    assert refused == [("li.na", "unlink"), ("li.na", "conclude"), ("li.na", "seal")]
    assert _events(instance, EventKind.UNLINKED) == [] and _events(instance, EventKind.SEALED) == []


def test_conclude_then_seal_a_complete_case_file(client: TestClient, instance: Instance) -> None:
    with instance.catalog.read() as conn:
        (video,) = media_db.listing(conn)
    # A case whose action window the clip covers, but for stretches shorter than a gap.
    cases_usecases.add_case(
        instance.acting("1023"),
        "2026-0114",
        title="查封扣押",
        category="seizure",
        department="县公安局/治安大队",
        officers=["1023"],
        action_start=RECORDED - timedelta(seconds=10),
        action_end=RECORDED + timedelta(seconds=10),
    )
    path = "/cases/2026-0114"
    assert _post(client, f"{path}/seal", reason="归档").status_code == 409, "not concluded"
    assert _post(client, f"{path}/conclude").status_code == 303
    refused = _post(client, f"{path}/seal", reason="按期归档")
    assert refused.status_code == 409, "the clip has no description yet"
    assert (
        _post(client, f"/media/{video.id}/describe", description="依法扣押 现场记录").status_code
        == 303
    )
    assert _post(client, f"{path}/seal", reason="按期归档").status_code == 303
    (sealed,) = _events(instance, EventKind.SEALED)
    assert sealed.actor == "zhang.wei"
    page = client.get(path).text
    assert "归档 sealed" in page and "/seal" not in page and "/link" not in page
    # Verified on request, as `evidence cases verify` does it: clean, then damaged.
    verified = _post(client, f"{path}/verify")
    assert verified.status_code == 200 and "校验通过 the sealed file verifies" in verified.text
    assert client.get("/api/v1/cases/2026-0114/verification").json()["problems"] == []
    case = cases_usecases.case_detail(instance, "2026-0114").case
    assert case.archive_key is not None
    stored = instance.store.original_path(case.archive_key)  # type: ignore[attr-defined]
    stored.chmod(0o600)
    data = bytearray(stored.read_bytes())
    data[2000] ^= 1
    stored.write_bytes(bytes(data))
    damaged = _post(client, f"{path}/verify")
    assert damaged.status_code == 200 and "E-SEAL-FIXITY" in damaged.text
    codes = [
        p["code"] for p in client.get("/api/v1/cases/2026-0114/verification").json()["problems"]
    ]
    assert codes == ["E-SEAL-FIXITY"]
