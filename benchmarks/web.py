"""The web application's figures: what a sign-in costs, and how fast the search answers as
JSON (``/api/v1/search``) and as a page (``/search``) at 100k items.

    python -m benchmarks.web                            # 100k items, 30 runs per query
    python -m benchmarks.web --items 20000 --repeats 10
    python -m benchmarks.web --browser                  # and the first video frame

The catalog is a temporary SQLite file filled as ``benchmarks.queries`` fills it (the same
items, officers, cases and Chinese descriptions), then migrated to the newest schema. One
legal reviewer (who may search everything) signs in through the sign-in form; each request
then goes through the whole application in this process (FastAPI's TestClient: routing,
session lookup, CSRF middleware, the use case, JSON or the Jinja2 page), without a network.
A sign-in is timed whole (form, lockout reads, Argon2id verification, the session and its
custody event), and the Argon2id verification alone (RFC 9106's low-memory profile: 3 passes
over 64 MiB), which is most of it by design. With ``--browser``, the time to the first video
frame in Debian's Chromium too (:func:`first_frame`).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from fastapi.testclient import TestClient

from benchmarks.queries import QUERIES, _migrate_to, generate
from docks.sweep import sweep_station
from interfaces.synth import make_video
from interfaces.web.app import create_app
from interfaces.web.security import CSRF_COOKIE
from pipeline.accounts import passwords
from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import UserRole
from pipeline.catalog import open_catalog
from pipeline.catalog import registry as registry_rows
from pipeline.catalog.db import upgrade
from pipeline.catalog.jobs import new_owner
from pipeline.ingest.steps import IngestContext
from pipeline.instance import Instance
from pipeline.models import Officer, Station
from pipeline.registry.stations import save_station
from pipeline.settings import load_settings
from pipeline.storage.local import open_store

PASSWORD = "benchmark password 基准"


def _percentiles(times_ms: list[float]) -> dict[str, float]:
    ordered = sorted(times_ms)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[max(0, round(0.95 * len(ordered)) - 1)], 1),
    }


def _timed(repeats: int, call: Callable[[int], object]) -> dict[str, float]:
    call(-1)  # warms the caches
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - started) * 1000)
    return _percentiles(times)


def run(items: int, repeats: int) -> list[dict[str, Any]]:
    """Rows of figures: the sign-in, then each common query as JSON and as a page."""
    with tempfile.TemporaryDirectory(prefix="evidence-bench-web-") as tmp:
        home = Path(tmp) / "home"
        settings = load_settings(home=home, catalog={"url": f"sqlite:///{home / 'catalog.db'}"})
        catalog = open_catalog(settings.catalog_url, migrate=False)
        try:
            _migrate_to(catalog, "0004")
            catalogue = generate(catalog, items)
            upgrade(catalog)
            instance = Instance(settings, catalog, actor="benchmark")
            accounts.add_user(
                instance,
                "bench",
                officer_id=catalogue.officers[0],
                roles=[UserRole.LEGAL_REVIEWER],
                password=PASSWORD,
            )
            return _measure(instance, catalogue, items, repeats)
        finally:
            catalog.dispose()


def _measure(instance: Instance, catalogue: Any, items: int, repeats: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    stored = passwords.hash_password(PASSWORD)

    def verify_once(_: int) -> None:
        assert passwords.verify_password(stored, PASSWORD)

    verify = _timed(repeats, verify_once)
    rows.append({"what": "Argon2id verification alone", "items": items, **verify})
    with TestClient(create_app(instance), follow_redirects=False) as client:
        client.get("/signin")

        def sign_in(_: int) -> None:
            response = client.post(
                "/signin",
                data={
                    "login": "bench",
                    "password": PASSWORD,
                    "csrf_token": client.cookies[CSRF_COOKIE],
                },
            )
            assert response.status_code == 303, response.text

        rows.append({"what": "sign-in (POST /signin)", "items": items, **_timed(repeats, sign_in)})
        for name, draw in QUERIES.items():
            rng = random.Random(name)
            texts = [draw(rng, catalogue) for _ in range(repeats + 1)]
            for label, path in (("API", "/api/v1/search"), ("page", "/search")):

                def get(i: int, path: str = path, texts: list[str] = texts) -> None:
                    response = client.get(path, params={"q": texts[i + 1]})
                    assert response.status_code == 200, response.text

                figures = _timed(repeats, get)
                rows.append({"what": f"{label} search: {name}", "items": items, **figures})
    return rows


def first_frame(repeats: int, seconds: float = 10.0) -> dict[str, Any] | None:
    """Time to the first video frame in Debian's Chromium (None without one): a 720p clip
    of ``seconds`` is ingested (its proxy made by ffmpeg), a reason is given once, then the
    item page is opened ``repeats`` times, each timed from the request of the page until the
    ``<video>`` has its first frame (``readyState`` ≥ 2: the page, the proxy's first Range
    requests and the decoding of one frame)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return None
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="evidence-bench-frame-") as tmp:
        home, dock = Path(tmp) / "home", Path(tmp) / "dock"
        settings = load_settings(
            home=home,
            catalog={"url": f"sqlite:///{home / 'catalog.db'}"},
            devices={"unknown": "accept"},
            watch={"stable_s": 0.0},
        )
        catalog = open_catalog(settings.catalog_url)
        try:
            (dock / "BWC-1").mkdir(parents=True)
            make_video(dock / "BWC-1" / "a.mp4", seconds=seconds, width=1280, height=720)
            station = Station("DOCK-01", dock.resolve())
            now = datetime.now(UTC)
            with catalog.begin() as conn:
                save_station(conn, station, "benchmark")
                registry_rows.save_officer(conn, Officer("1023", "张伟", "1101", "大队"), now)
            ctx = IngestContext(
                catalog=catalog, store=open_store(settings), settings=settings, owner=new_owner()
            )
            report = sweep_station(ctx, station)
            (media_id,) = [f.media_id for f in report.files if f.media_id is not None]
            instance = Instance(settings, catalog, actor="benchmark")
            accounts.add_user(
                instance,
                "bench",
                officer_id="1023",
                roles=[UserRole.LEGAL_REVIEWER],
                password=PASSWORD,
            )
            with _serving(instance) as base, sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                page = browser.new_page()
                page.goto(f"{base}/signin")
                page.fill("#login", "bench")
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(f"{base}/search")
                page.goto(f"{base}/media/{media_id}")
                page.fill("#reason", "基准测试 first frame")
                page.click("form[action$='/view'] button[type=submit]")
                page.wait_for_selector("video")

                def open_and_wait(_: int) -> None:
                    page.goto(f"{base}/media/{media_id}")
                    deadline = time.monotonic() + 30
                    ready = "() => document.querySelector('video').readyState"
                    while page.evaluate(ready) < 2:
                        assert time.monotonic() < deadline, "no first frame in 30 s"
                        time.sleep(0.002)

                figures = _timed(repeats, open_and_wait)
                browser.close()
        finally:
            catalog.dispose()
    return {"what": f"first video frame (720p, {seconds:g} s clip)", "items": 1, **figures}


@contextmanager
def _serving(instance: Instance) -> Iterator[str]:
    """The application served by uvicorn on a free loopback port, in a thread."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = uvicorn.Config(create_app(instance), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument(
        "--browser", action="store_true", help="also time the first video frame in Chromium"
    )
    args = parser.parse_args()
    rows = run(args.items, args.repeats)
    if args.browser:
        frame = first_frame(args.repeats)
        if frame is None:
            print("no Chromium installed: the first video frame is not measured")
        else:
            rows.append(frame)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    print(f"{'what':<46} {'items':>8} {'p50 ms':>8} {'p95 ms':>8}")
    for row in rows:
        print(f"{row['what']:<46} {row['items']:>8} {row['p50_ms']:>8} {row['p95_ms']:>8}")


if __name__ == "__main__":
    main()
