"""The pages work on the demo's data (`make demo`): the demo built as `evidence demo` builds
it, its stations swept without Prefect (the same ingestion, without the ~15 s of a server),
then the web application signed in as the demo login the demo prints."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from docks.sweep import sweep_station
from interfaces.demo import DEMO_LOGIN, DEMO_PASSWORD, run_demo
from interfaces.web.app import create_app
from interfaces.web.security import CSRF_COOKIE
from pipeline.ingest.steps import open_context
from pipeline.instance import Instance, open_instance
from pipeline.models import FileReport, MediaKind, MediaStatus, SweepReport
from pipeline.registry.stations import get_station
from pipeline.search.usecases import media_list
from pipeline.settings import Settings, load_settings


def _sweep(
    settings: Settings, stations: list[str], on_file: Callable[[FileReport], None]
) -> list[SweepReport]:
    ctx = open_context(settings)
    return [sweep_station(ctx, get_station(ctx.catalog, s), on_file=on_file) for s in stations]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    home = tmp_path_factory.mktemp("web-demo") / "demo"
    # The demo sets both for its own commands. Put back exactly what was there (unset, in the
    # tests): MonkeyPatch.delenv of an unset variable records nothing to undo, so the demo's
    # trust config once leaked into every later test of the session.
    saved = {name: os.environ.pop(name, None) for name in ("EVIDENCE_HOME", "EVIDENCE_CONFIG")}
    try:
        assert run_demo(home, ingest=_sweep) == 0, "the demo's own checks pass"
        instance = open_instance(load_settings(home=home))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture(scope="module")
def client(demo: Instance) -> Iterator[TestClient]:
    with TestClient(create_app(demo), follow_redirects=False) as client:
        client.get("/signin")
        signed = client.post(
            "/signin",
            data={
                "login": DEMO_LOGIN,
                "password": DEMO_PASSWORD,
                "csrf_token": client.cookies[CSRF_COOKIE],
            },
        )
        assert signed.status_code == 303
        yield client


def _recordings(demo: Instance) -> list[int]:
    return [
        m.id
        for m in media_list(demo, limit=1000)
        if m.status is MediaStatus.ARCHIVED and m.kind in (MediaKind.VIDEO, MediaKind.AUDIO)
    ]


def test_the_search_page_lists_the_demos_recordings(client: TestClient, demo: Instance) -> None:
    recordings = _recordings(demo)
    assert len(recordings) == 5, "the demo archives 5 recordings"
    page = client.get("/search", params={"q": ""})
    assert page.status_code == 200
    listed = {int(i) for i in re.findall(r'href="/media/(\d+)"', page.text)}
    assert set(recordings) <= listed


def test_an_item_opens_after_a_reason_and_its_proxy_seeks(
    client: TestClient, demo: Instance
) -> None:
    media_id = _recordings(demo)[0]
    assert "调阅事由" in client.get(f"/media/{media_id}").text
    assert client.get(f"/media/{media_id}/proxy").status_code == 403, "no reason yet"
    viewed = client.post(
        f"/media/{media_id}/view",
        data={"reason": "演示 复核现场记录", "csrf_token": client.cookies[CSRF_COOKIE]},
    )
    assert viewed.status_code == 303
    page = client.get(f"/media/{media_id}").text
    assert f'src="/media/{media_id}/proxy"' in page and "分辨率 resolution" in page
    part = client.get(f"/media/{media_id}/proxy", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and len(part.content) == 100
    assert part.headers["content-range"].startswith("bytes 100-199/")


def test_a_demo_case_shows_its_coverage_timeline_and_gaps(client: TestClient) -> None:
    page = client.get("/cases/2026-0121")
    assert page.status_code == 200
    svg = page.text[page.text.index("<svg") : page.text.index("</svg>")]
    assert re.search(r'<rect class="recording" x="[\d.]+"', svg), "a bar per recording"
    gaps = re.findall(r"<title>空白 gap ([\d: -]+) – ([\d: -]+)</title>", svg)
    assert gaps, "the demo's forced demolition has a coverage gap"
    for start, end in gaps:
        assert f'<li class="error">空白 gap：{start} – {end}（' in page.text


@pytest.mark.parametrize("path", ["/audit", "/quarantine"])
def test_the_audit_and_quarantine_pages_answer(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200
