"""The compliance dashboard on the demo's data (`make demo`): every figure on the page, its
charts drawn as SVG without script or style attributes, `/api/v1/dashboard` and `evidence
compliance dashboard --json` both exactly the use case's JSON, the drill-down department →
officer → case file or item, and who may read which department (a supervisor outside it is
refused, and the refusal recorded)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from html import unescape
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from docks.sweep import sweep_station
from interfaces.cli import app as cli
from interfaces.demo import DASHBOARD_FROM, DEMO_LOGIN, DEMO_PASSWORD, run_demo
from interfaces.web.app import create_app
from interfaces.web.security import CSRF_COOKIE
from pipeline.accounts import passwords
from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import UserRole
from pipeline.custody import log as custody
from pipeline.ingest.steps import open_context
from pipeline.instance import Instance, open_instance
from pipeline.models import EventKind, FileReport, SweepReport, plain
from pipeline.registry.stations import get_station
from pipeline.settings import Settings, load_settings
from pipeline.supervision import usecases
from pipeline.supervision.dashboard import LABELS

PASSWORD = "supervise 监督 2026"
#: The demo's clock, held still: the JSON of the page and of the use case must be equal.
NOW = datetime.now(UTC)


def _sweep(
    settings: Settings, stations: list[str], on_file: Callable[[FileReport], None]
) -> list[SweepReport]:
    ctx = open_context(settings)
    return [sweep_station(ctx, get_station(ctx.catalog, s), on_file=on_file) for s in stations]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, Path, Path]]:
    """The demo, built as `evidence demo` builds it (swept without Prefect); its instance
    with the clock held still, its home and its trust config. Users: a supervisor of
    城市管理执法大队 (李娜) and an officer (张伟)."""
    home = tmp_path_factory.mktemp("dashboard-demo") / "demo"
    saved = {name: os.environ.pop(name, None) for name in ("EVIDENCE_HOME", "EVIDENCE_CONFIG")}
    try:
        assert run_demo(home, ingest=_sweep) == 0, "the demo's own checks pass"
        trust = Path(os.environ["EVIDENCE_CONFIG"])
        instance = open_instance(load_settings(home=home), clock=lambda: NOW)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    real, passwords._HASHER = passwords._HASHER, cheap
    try:
        admin = instance.acting("A001")
        accounts.add_user(
            admin, "li.na", officer_id="1088", roles=[UserRole.SUPERVISOR], password=PASSWORD
        )
        accounts.add_user(
            admin, "zhang.wei", officer_id="1023", roles=[UserRole.OFFICER], password=PASSWORD
        )
        yield instance, home, trust
    finally:
        passwords._HASHER = real
        instance.close()


@pytest.fixture(scope="module")
def app(demo: tuple[Instance, Path, Path]) -> FastAPI:
    return create_app(demo[0])


def _client(app: FastAPI, login: str, password: str = PASSWORD) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    client.get("/signin")
    signed = client.post(
        "/signin",
        data={"login": login, "password": password, "csrf_token": client.cookies[CSRF_COOKIE]},
    )
    assert signed.status_code == 303, signed.text
    return client


@pytest.fixture(scope="module")
def legal(app: FastAPI) -> Iterator[TestClient]:
    """王芳, the demo's login: the legal office reads every unit."""
    with _client(app, DEMO_LOGIN, DEMO_PASSWORD) as client:
        yield client


TODAY = NOW.astimezone(ZoneInfo("Asia/Shanghai")).date()
PERIOD = {"from": DASHBOARD_FROM.isoformat(), "until": TODAY.isoformat()}

#: What the demo's five case files and ten records give each figure (README, docs/web.md).
DEMO_FIGURES = {
    "cases_concluded": 5,
    "cases_archived_on_time": 1,  # 2026-0113, sealed complete
    "cases_archived_late": 1,  # 2026-0087, sealed after its deadline
    "cases_overdue": 1,  # 2026-0098
    "cases_due_soon": 1,  # 2026-0130
    "cases_open": 1,  # 2026-0121
    "on_time_rate": 0.3333,
    "mandatory_cases": 2,
    "coverage_failures": 1,  # 2026-0121's gaps
    "uncovered_minutes": 10.0,
    "undescribed_recordings": 2,
    "unsigned_records": 1,  # 询问笔录 2026-0121
    "recordings": 7,
    "av_recordings": 5,
    "uploads_on_time": 1,  # this morning's photo
    "uploads_late": 6,  # 27 November's recordings
    "upload_timeliness": 0.1429,
    "linked_recordings": 5,
    "unlinked_recordings": 2,
    "link_rate": 0.7143,
    "description_rate": 0.6,
    "drift_flagged": 1,  # BWC0022's slow clock
    "devices_active": 5,
    "devices_not_docked": 1,  # BWC0040, never docked
    "devices_drift_reported": 1,  # DOCK-02's report of BWC0022
}


def _figures(page: str) -> dict[str, str]:
    """Each figure card's key and the value it shows."""
    found = re.findall(
        r'data-figure="([a-z_]+)">\s*(?:<a [^>]*>)?<span class="value">([^<]*)</span>', page
    )
    return dict(found)


def test_the_dashboard_shows_every_figure_of_the_demo(legal: TestClient) -> None:
    page = legal.get("/dashboard", params=PERIOD)
    assert page.status_code == 200, page.text
    shown = _figures(page.text)
    assert set(shown) == set(LABELS), "a card for every figure"
    figures = legal.get("/api/v1/dashboard", params=PERIOD).json()["figures"]
    hours = figures.pop("recorded_hours")
    assert 0 < hours < 0.01, "the demo's clips are seconds long"
    assert figures == DEMO_FIGURES
    assert shown["cases_concluded"] == "5" and shown["on_time_rate"] == "33.3%"
    assert shown["upload_timeliness"] == "14.3%" and shown["uncovered_minutes"] == "10.0"
    assert shown["recorded_hours"] == f"{hours:.4f}"
    for zh, en in LABELS.values():
        assert zh in page.text and en in unescape(page.text)


def test_the_summary_per_department_is_at_the_top(legal: TestClient) -> None:
    page = legal.get("/dashboard", params=PERIOD).text
    assert page.index("今日提醒") < page.index('data-figure="cases_concluded"')
    alerts = legal.get("/api/v1/dashboard", params=PERIOD).json()["alerts"]
    # Late uploads count the last 7 days' recordings: the demo's of 27 November, while
    # they are that recent.
    assert [{k: v for k, v in a.items() if k != "late_uploads"} for a in alerts] == [
        {"department": "城市管理执法大队", "due_soon": 1, "overdue": 0, "coverage_failures": 1},
        {"department": "市场监管执法大队", "due_soon": 0, "overdue": 1, "coverage_failures": 0},
    ]
    assert '<tr data-alert="城市管理执法大队">' in page


def test_the_daily_sweeps_summary_is_kept_and_shown_as_of_it(
    demo: tuple[Instance, Path, Path], legal: TestClient, app: FastAPI
) -> None:
    """Before a sweep the dashboard computes the summary; after one it shows the kept one,
    with when it was computed (local time), each user only their tree's rows."""
    from sqlalchemy import delete, update

    from pipeline.catalog.schema import department_summaries

    instance = demo[0]
    with instance.catalog.begin() as conn:  # whatever another test of the module kept
        conn.execute(delete(department_summaries))
    before = legal.get("/api/v1/dashboard", params=PERIOD).json()
    assert before["alerts_as_of"] is None
    assert "尚无每日巡检结果" in legal.get("/dashboard", params=PERIOD).text
    try:
        kept = usecases.publish_department_summaries(instance)
        assert [plain(k) for k in kept] == before["alerts"]
        after = legal.get("/api/v1/dashboard", params=PERIOD).json()
        assert after["alerts"] == before["alerts"]
        assert after["alerts_as_of"] == plain(NOW)
        local = NOW.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
        assert f"截至 {local}" in legal.get("/dashboard", params=PERIOD).text
        # What is shown is the kept copy, not a reading made now.
        edited = [{**before["alerts"][0], "overdue": 7}, *before["alerts"][1:]]
        with instance.catalog.begin() as conn:
            conn.execute(update(department_summaries).values(summary=edited))
        assert legal.get("/api/v1/dashboard", params=PERIOD).json()["alerts"] == edited
        with _client(app, "li.na") as supervisor:
            own = supervisor.get("/api/v1/dashboard", params=PERIOD).json()["alerts"]
        assert [a["department"] for a in own] == ["城市管理执法大队"]
    finally:
        with instance.catalog.begin() as conn:
            conn.execute(delete(department_summaries))


def test_the_charts_are_server_drawn_svg_without_script_or_style(legal: TestClient) -> None:
    page = legal.get("/dashboard", params=PERIOD).text
    charts = re.findall(r'<svg class="chart".*?</svg>', page, flags=re.S)
    assert len(charts) >= 5, "states, units, trends, weekly, officers, devices"
    assert any('class="segment"' in c for c in charts), "the case file states"
    assert any("<polyline" in c or "<circle" in c for c in charts), "the trend lines"
    assert sum(c.count('class="bar"') for c in charts) > 10
    assert "style=" not in page and "<script>" not in page and "onclick" not in page
    assert "<title>按时归档 archived on time：1</title>" in page


def test_the_api_and_the_cli_print_exactly_the_use_cases_json(
    legal: TestClient, demo: tuple[Instance, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    instance, home, trust = demo
    api = legal.get("/api/v1/dashboard", params=PERIOD).json()
    expected = plain(usecases.dashboard(instance, None, DASHBOARD_FROM, TODAY))
    assert api == json.loads(json.dumps(expected))
    monkeypatch.setenv("EVIDENCE_HOME", str(home))
    monkeypatch.setenv("EVIDENCE_CONFIG", str(trust))
    args = ["compliance", "dashboard", "--from", str(DASHBOARD_FROM), "--to", str(TODAY), "--json"]
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == api
    # The JSON a spreadsheet is written from: flat rows, the same keys in every row.
    assert all(set(u) == set(api["units"][0]) for u in api["units"])
    assert set(api["figures"]) == set(LABELS) == set(api["labels"])
    text = CliRunner().invoke(cli, args[:-1])
    assert text.exit_code == 0 and "上传及时率 upload timeliness" in text.output


def test_drill_down_from_department_to_officer_to_case_and_item(legal: TestClient) -> None:
    page = legal.get("/dashboard", params=PERIOD).text
    units = set(re.findall(r'href="(/dashboard\?department=[^"]+)"', page))
    officers = set(re.findall(r'href="(/dashboard/officers/[^"]+)"', page))
    case_files = set(re.findall(r'href="(/cases/[^"]+)"', page))
    assert units and officers and case_files
    for href in units:
        unit = legal.get(unescape(href))
        assert unit.status_code == 200, href
        assert "统计分析" in unit.text
    city = legal.get("/api/v1/dashboard", params={**PERIOD, "department": "城市管理执法大队"})
    assert {c["number"] for c in city.json()["needing_action"]} == {"2026-0121", "2026-0130"}
    for href in case_files:
        assert legal.get(unescape(href)).status_code == 200, href
    officer = legal.get(unescape(next(h for h in officers if "/1023?" in h)))
    assert officer.status_code == 200 and "张伟" in officer.text
    items = set(re.findall(r'href="/media/(\d+)"', officer.text))
    assert items, "the officer's recordings that need a person"
    assert "缺文字说明" in officer.text and "逾期上传" in officer.text
    for media_id in items:
        assert legal.get(f"/media/{media_id}").status_code == 200
    for href in set(re.findall(r'href="(/cases/[^"]+)"', officer.text)):
        assert legal.get(unescape(href)).status_code == 200
    api = legal.get("/api/v1/dashboard/officers/1023", params=PERIOD).json()
    assert api["officer_id"] == "1023" and {c["number"] for c in api["cases"]} == {
        "2026-0113",
        "2026-0121",
    }


def test_a_supervisor_reads_their_tree_and_is_refused_outside_it(
    app: FastAPI, demo: tuple[Instance, Path, Path]
) -> None:
    instance = demo[0]
    with _client(app, "li.na") as client:
        own = client.get("/dashboard", params=PERIOD)
        assert own.status_code == 200 and "城市管理执法大队" in own.text
        found = client.get("/api/v1/dashboard", params=PERIOD).json()
        assert found["department"] == "城市管理执法大队", "their own tree by default"
        assert {u["department"] for u in found["units"]} == {"城市管理执法大队"}
        assert found["figures"]["cases_concluded"] == 2
        refused = client.get("/dashboard", params={**PERIOD, "department": "市场监管执法大队"})
        assert refused.status_code == 403
        api = client.get("/api/v1/dashboard", params={"department": "市场监管执法大队"})
        assert api.status_code == 403 and api.json()["error"] == "forbidden"
        everything = client.get("/api/v1/dashboard", params={"department": ""}).json()
        assert everything["department"] == "城市管理执法大队", "no department: their own"
        assert client.get("/dashboard/officers/1088", params=PERIOD).status_code == 200
        assert client.get("/dashboard/officers/1023", params=PERIOD).status_code == 403
    with instance.catalog.read() as conn:
        events = [e for e in custody.events(conn) if e.kind is EventKind.REFUSED]
    mine = [e for e in events if e.actor == "li.na" and e.details.get("action") == "dashboard"]
    assert {e.subject for e in mine} == {"dashboard 市场监管执法大队", "dashboard officer 1023"}
    with _client(app, "zhang.wei") as client:
        assert "统计 Dashboard" not in client.get("/search").text, "not offered"
        assert client.get("/dashboard").status_code == 403
        assert client.get("/api/v1/dashboard").status_code == 403


@pytest.mark.parametrize(
    "query",
    [{"from": "2026-13-01"}, {"from": "2026-11-30", "until": "2026-11-01"}, {"until": "x"}],
)
def test_a_period_that_is_not_one_is_a_bad_request(
    legal: TestClient, query: dict[str, str]
) -> None:
    assert legal.get("/dashboard", params=query).status_code == 400
    assert legal.get("/api/v1/dashboard", params=query).json()["error"] == "bad-request"


def test_the_default_period_is_the_last_30_days(legal: TestClient) -> None:
    found = legal.get("/api/v1/dashboard").json()
    assert found["end"] == TODAY.isoformat()
    assert (TODAY - date.fromisoformat(found["start"])).days == 29
    blank = legal.get("/dashboard", params={"department": "", "from": "", "until": ""})
    assert blank.status_code == 200, "an empty form field is no value"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def served(app: FastAPI) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_in_chromium_the_charts_draw_and_the_drill_down_clicks_through(
    served: str, tmp_path: Path
) -> None:
    """Debian's Chromium through Playwright, as tests/test_web_browser.py runs it (skipped
    without it, except under CI=true): the dashboard draws its charts with no Content
    Security Policy violation, and a unit, then an officer, then a case file open by click.
    The screenshots are under the test's temporary folder."""
    if not CHROMIUM:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is required on CI (apt-get install chromium) but not installed")
        pytest.skip("no Chromium installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_context(
            locale="zh-CN", viewport={"width": 1300, "height": 900}
        ).new_page()
        troubles: list[str] = []
        page.on("console", lambda m: troubles.append(m.text) if m.type == "error" else None)
        page.goto(f"{served}/signin?next=/dashboard")
        page.fill("#login", DEMO_LOGIN)
        page.fill("#password", DEMO_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{served}/dashboard")
        page.fill("#from", DASHBOARD_FROM.isoformat())
        page.click("form.period button[type=submit]")
        page.wait_for_url(re.compile(r"/dashboard\?department=&from=2026-11-01"))
        assert page.locator("svg.chart").count() >= 5
        box = page.locator("svg.chart rect.segment").first.bounding_box()
        assert box and box["width"] > 10, "the case file states are drawn"
        page.screenshot(path=shots / "1-dashboard.png", full_page=True)
        page.click('table.measures a:has-text("城市管理执法大队")')
        page.wait_for_url(re.compile(r"department=%E5%9F%8E"))
        assert "城市管理执法大队" in page.locator("h1").inner_text()
        page.screenshot(path=shots / "2-unit.png", full_page=True)
        page.click('table.measures a:has-text("李娜")')
        page.wait_for_url(re.compile(r"/dashboard/officers/1088"))
        page.screenshot(path=shots / "3-officer.png", full_page=True)
        page.click('a:has-text("2026-0130")')
        page.wait_for_url(f"{served}/cases/2026-0130")
        page.screenshot(path=shots / "4-case.png", full_page=True)
        browser.close()
    assert [t for t in troubles if "Content Security Policy" in t] == []
