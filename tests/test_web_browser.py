"""A real browser (Playwright driving Debian's Chromium) against `create_app` served by
uvicorn on loopback: sign in, search with HTMX, open an item, give a reason, play the proxy
and see its ``currentTime`` advance, describe it, conclude and seal its case, with no
Content-Security-Policy violation on the way.
A screenshot of each page is saved under the test's temporary folder.

Skipped where no Chromium is installed (``apt-get install chromium``; never ``playwright
install``, which downloads a browser), except under ``CI=true``, where its absence fails.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from argon2 import PasswordHasher

from docks.sweep import sweep_station
from interfaces.web.app import create_app
from pipeline.accounts import passwords
from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import UserRole
from pipeline.cases import usecases as cases_usecases
from pipeline.catalog import Catalog
from pipeline.catalog import media as media_db
from pipeline.catalog import registry as registry_rows
from pipeline.custody import log as custody
from pipeline.ingest.steps import IngestContext
from pipeline.instance import Instance
from pipeline.models import Device, DeviceKind, EventKind, MediaItem, Officer, Station
from pipeline.settings import Settings
from tests.conftest import RECORDED, put

PASSWORD = "correct horse 电池"
REASON = "复核案件 2026-0113 现场记录"
CASE = "2026-0114"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is required on CI (apt-get install chromium) but not installed")
        pytest.skip("no Chromium installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # As root (CI, these machines) Chromium's sandbox cannot start.
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--mute-audio"],
        )
        yield launched
        launched.close()


@pytest.fixture
def video(
    catalog: Catalog, ctx: IngestContext, station: Station, clips: dict[str, Path]
) -> MediaItem:
    now = datetime.now(UTC)
    with catalog.begin() as conn:
        registry_rows.save_officer(
            conn, Officer("1023", "张伟", "11010012345", "县公安局/治安大队"), now
        )
        registry_rows.save_device(conn, Device("BWC-1", DeviceKind.BODY_WORN), now)
        registry_rows.add_assignment(conn, "BWC-1", "1023", datetime(2026, 1, 1, tzinfo=UTC), None)
    put(clips["video"], station.root, "BWC-1/a.mp4")
    put(clips["photo"], station.root, "BWC-1/b.jpg")
    assert sweep_station(ctx, station).ok
    with catalog.read() as conn:
        (item,) = [i for i in media_db.listing(conn) if i.proxy_key]
    return item


@pytest.fixture
def served(
    settings: Settings, catalog: Catalog, video: MediaItem
) -> Iterator[tuple[str, Instance]]:
    instance = Instance(settings, catalog, actor="1023")
    cases_usecases.add_case(
        instance,
        CASE,
        title="查封扣押 现场",
        category="seizure",
        department="县公安局/治安大队",
        officers=["1023"],
        action_start=RECORDED - timedelta(seconds=10),
        action_end=RECORDED + timedelta(seconds=10),
    )
    accounts.add_user(
        instance, "zhang.wei", officer_id="1023", roles=[UserRole.ARCHIVIST], password=PASSWORD
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(instance), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", instance
    server.should_exit = True
    thread.join(timeout=10)


def test_sign_in_search_give_a_reason_and_play(
    browser: Any, served: tuple[str, Instance], video: MediaItem, tmp_path: Path
) -> None:
    base, instance = served
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    shots = tmp_path / "screenshots"
    shots.mkdir()

    page.goto(f"{base}/search")
    assert "/signin?next=%2Fsearch" in page.url
    page.screenshot(path=shots / "1-signin.png")
    page.fill("#login", "zhang.wei")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/search")

    # The query goes through HTMX: the results are swapped in and the URL carries the query.
    page.fill("input[name=q]", "kind:video")
    page.press("input[name=q]", "Enter")
    link = page.locator(f'#results a[href="/media/{video.id}"]')
    link.wait_for()
    page.wait_for_url(re.compile(r"/search\?q=kind%3Avideo&"))  # pushed after the swap settles
    assert page.locator("#results tbody tr").count() == 1
    page.screenshot(path=shots / "2-search.png")

    link.click()
    page.wait_for_url(f"{base}/media/{video.id}")
    assert page.locator("video").count() == 0, "nothing plays before a reason"
    page.screenshot(path=shots / "3-reason.png")
    page.fill("#reason", REASON)
    page.click("form[action$='/view'] button[type=submit]")
    page.wait_for_selector("video")

    # Polled from here: wait_for_function's predicate is a string the page's CSP refuses to eval.
    page.evaluate("() => document.querySelector('video').play()")
    deadline = time.monotonic() + 15
    while page.evaluate("() => document.querySelector('video').currentTime") <= 0.2:
        error = page.evaluate("() => document.querySelector('video').error?.message ?? null")
        assert error is None and time.monotonic() < deadline, f"the proxy does not play: {error}"
        time.sleep(0.05)
    page.screenshot(path=shots / "4-playing.png")

    page.fill("#description", "依法扣押 当事人在场")
    page.click("form[action$='/describe'] button[type=submit]")
    page.wait_for_selector("text=依法扣押 当事人在场")
    page.screenshot(path=shots / "5-described.png")

    page.goto(f"{base}/cases/{CASE}")
    page.click("form[action$='/conclude'] button[type=submit]")
    page.wait_for_selector("#seal_reason")
    page.screenshot(path=shots / "6-case.png")
    page.fill("#seal_reason", "按期归档")
    page.click("form[action$='/seal'] button[type=submit]")
    page.wait_for_selector("text=归档 sealed")
    page.screenshot(path=shots / "7-sealed.png")
    context.close()

    with instance.catalog.read() as conn:
        viewed = [e for e in custody.events(conn, media_id=video.id) if e.kind is EventKind.VIEWED]
    assert [(e.actor, e.details["reason"]) for e in viewed] == [("zhang.wei", REASON)]
    assert violations == [], "htmx and the pages run under the CSP"
    with instance.catalog.read() as conn:
        sealed = [e for e in custody.events(conn) if e.kind is EventKind.SEALED]
    assert [e.actor for e in sealed] == ["zhang.wei"]
    assert len(list(shots.iterdir())) == 7
