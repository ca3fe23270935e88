"""Search in the browser and in the JSON API over real ingested clips: `/api/v1/search`
returns exactly what `evidence search --json` prints, the page shows the same items in local
time with the zone named once, and an HTMX request gets the results fragment alone."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import update

from docks.sweep import sweep_station
from interfaces.cli import main
from interfaces.web.app import create_app
from interfaces.web.security import CSRF_COOKIE
from pipeline.accounts import passwords
from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import UserRole
from pipeline.catalog import Catalog
from pipeline.catalog import registry as registry_rows
from pipeline.catalog.schema import media
from pipeline.ingest.steps import IngestContext
from pipeline.instance import Instance
from pipeline.models import Officer, Station
from pipeline.settings import Settings
from tests.conftest import put

PASSWORD = "correct horse 电池"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at its smallest: the real profile costs 0.15 s a hash on two shared cores,
    and these tests hash and verify hundreds of times (the profile has its own test)."""
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def instance(
    settings: Settings,
    catalog: Catalog,
    ctx: IngestContext,
    station: Station,
    clips: dict[str, Path],
) -> Instance:
    put(clips["photo"], station.root, "BWC-1/b.jpg")
    put(clips["pdf"], station.root, "SCAN/现场笔录.pdf")
    put(clips["audio"], station.root, "BWC-2/c.m4a")
    assert sweep_station(ctx, station).ok
    now = datetime.now(UTC)
    with catalog.begin() as conn:
        registry_rows.save_officer(
            conn, Officer("1023", "张伟", "11010012345", "县公安局/治安大队"), now
        )
    instance = Instance(settings, catalog, actor="setup")
    # A user who sees every item (legal reviewer): the listing's scope is tested below.
    roles = [UserRole.ARCHIVIST, UserRole.LEGAL_REVIEWER]
    accounts.add_user(instance, "zhang.wei", officer_id="1023", roles=roles, password=PASSWORD)
    return instance


@contextmanager
def _signed_in(instance: Instance, login: str) -> Iterator[TestClient]:
    with TestClient(create_app(instance), follow_redirects=False) as c:
        c.get("/signin")
        signed = c.post(
            "/signin",
            data={"login": login, "password": PASSWORD, "csrf_token": c.cookies[CSRF_COOKIE]},
        )
        assert signed.status_code == 303
        yield c


@pytest.fixture
def client(instance: Instance) -> Iterator[TestClient]:
    with _signed_in(instance, "zhang.wei") as c:
        yield c


def _cli_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> object:
    """`evidence … --json` through its real entry point, in this process."""
    umask = os.umask(0o077)
    os.umask(umask)
    monkeypatch.setattr(sys, "argv", ["evidence", *args, "--json"])
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    try:
        with pytest.raises(SystemExit) as done:
            main()
    finally:
        os.umask(umask)
    captured = capsys.readouterr()
    assert done.value.code in (0, None), captured.err
    return json.loads(captured.out)


@pytest.mark.parametrize(
    ("query", "options"),
    [
        ("", []),
        ("kind:photo,audio", []),
        ("-kind:photo", ["--sort", "size", "--limit", "2"]),
        ("笔录", []),
    ],
)
def test_the_api_returns_what_the_cli_prints(
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    query: str,
    options: list[str],
) -> None:
    printed = _cli_json(monkeypatch, capsys, "search", query, *options)
    params = dict(zip(["sort", "limit"], options[1::2], strict=False))
    served = client.get("/api/v1/search", params={"q": query, **params})
    assert served.status_code == 200
    assert served.json() == printed
    assert served.json()["items"], "the comparison compares something"


def test_the_search_page_shows_the_items_in_local_time(
    client: TestClient, instance: Instance
) -> None:
    found = client.get("/api/v1/search").json()["items"]
    page = client.get("/search")
    assert page.status_code == 200
    assert "检索" in page.text and "zhang.wei" in page.text and "档案管理员" in page.text
    assert page.text.count("Asia/Shanghai（UTC+0800）") == 1, "the zone is shown once"
    ingested = {item["id"] for item in found}
    assert len(ingested) == 3
    assert any(item["recorded_start"] for item in found), "a time to compare"
    for item in found:
        assert f'<a href="/media/{item["id"]}">{item["id"]}</a>' in page.text
        if item["recorded_start"]:
            shown = datetime.fromisoformat(item["recorded_start"]).astimezone(
                instance.settings.zone
            )
            assert shown.strftime("%Y-%m-%d %H:%M:%S") in page.text


def test_a_query_in_the_url_is_in_the_box_and_htmx_gets_the_fragment(client: TestClient) -> None:
    page = client.get("/search", params={"q": "kind:photo"})
    assert 'value="kind:photo"' in page.text
    assert "<html" in page.text
    fragment = client.get("/search", params={"q": "kind:photo"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<table>" in fragment.text
    assert "1 条记录" in fragment.text and "照片" in fragment.text
    assert fragment.headers["vary"] == "HX-Request"
    restored = client.get(
        "/search",
        params={"q": "kind:photo"},
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in restored.text, "a page restored from history is whole"


def test_a_bad_query_on_the_page_is_an_error_page_naming_the_term(client: TestClient) -> None:
    page = client.get("/search", params={"q": "recorded:2026-13-45"})
    assert page.status_code == 400
    assert "recorded:2026-13-45" in page.text and "Traceback" not in page.text


def test_what_was_typed_is_escaped_on_the_page(client: TestClient) -> None:
    """A query (and any stored text) is data: it cannot become markup."""
    page = client.get("/search", params={"q": "<script>alert(1)</script>"})
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_filter_chips_toggle_their_term_and_show_more_raises_the_limit(client: TestClient) -> None:
    page = client.get("/search", params={"q": "笔录", "limit": "1"})
    assert (
        'href="/search?q=%E7%AC%94%E5%BD%95+kind%3Avideo&amp;sort=-recorded&amp;limit=1"'
        in page.text
    )
    on = client.get("/search", params={"q": "kind:photo", "limit": "1"})
    assert 'class="chip active" href="/search?q=&amp;sort=-recorded&amp;limit=1"' in on.text
    everything = client.get("/search", params={"limit": "1"})
    assert 'href="/search?q=&amp;sort=-recorded&amp;limit=2">显示更多' in everything.text
    assert "显示更多" not in client.get("/search").text


def test_the_sign_in_page_sends_a_signed_in_user_on(client: TestClient) -> None:
    response = client.get("/signin", params={"next": "/search?q=kind:photo"})
    assert (response.status_code, response.headers["location"]) == (303, "/search?q=kind:photo")


# ---------------------------------------------------------- what each user may see listed


@pytest.fixture
def tree(instance: Instance) -> dict[str, dict[str, object]]:
    """The photo recorded by 李四 of 治安大队, the audio by 王交 of 交警大队, the document by
    nobody; an archivist and supervisor of 治安大队, an officer of 交警大队, a supervisor of
    县公安局: each signed in once. The items by name ("b.jpg" …), as the API lists them."""
    now = datetime.now(UTC)
    with instance.catalog.begin() as conn:
        for officer in (
            Officer("1024", "李四", "11010012346", "县公安局/治安大队"),
            Officer("2001", "王交", "11010054321", "县公安局/交警大队"),
            Officer("9000", "赵局", "11010099999", "县公安局"),
        ):
            registry_rows.save_officer(conn, officer, now)
        for name, officer_id in (("b.jpg", "1024"), ("c.m4a", "2001")):
            conn.execute(
                update(media).where(media.c.original_name == name).values(officer_id=officer_id)
            )
    for login, officer_id, roles in (
        ("li.si", "1024", [UserRole.ARCHIVIST, UserRole.SUPERVISOR]),
        ("wang.jiao", "2001", [UserRole.OFFICER]),
        ("zhao.ju", "9000", [UserRole.SUPERVISOR]),
    ):
        accounts.add_user(instance, login, officer_id=officer_id, roles=roles, password=PASSWORD)
        with _signed_in(instance, login):
            pass
    with _signed_in(instance, "zhang.wei") as c:
        return {i["original_name"]: i for i in c.get("/api/v1/search").json()["items"]}


def _names(client: TestClient, q: str = "") -> set[str]:
    found = client.get("/api/v1/search", params={"q": q})
    assert found.status_code == 200
    return {i["original_name"] for i in found.json()["items"]}


def test_search_lists_only_the_items_the_signed_in_user_may_view(
    instance: Instance, tree: dict[str, dict[str, object]]
) -> None:
    audio = tree["c.m4a"]
    by_audio = ["officer:2001", f"sha256:{str(audio['sha256'])[:12]}", "m4a", "kind:audio",
                "department:县公安局/交警大队"]  # fmt: skip
    with _signed_in(instance, "li.si") as archivist:
        assert _names(archivist) == {"b.jpg"}
        for q in by_audio:
            assert _names(archivist, q) == set(), q
        page = archivist.get("/search")
        assert f'<a href="/media/{tree["b.jpg"]["id"]}">' in page.text
        assert f'<a href="/media/{audio["id"]}">' not in page.text
    with _signed_in(instance, "zhao.ju") as supervisor:
        assert _names(supervisor) == {"b.jpg", "c.m4a"}
        assert all(_names(supervisor, q) == {"c.m4a"} for q in by_audio)
    with _signed_in(instance, "wang.jiao") as officer:
        assert _names(officer) == {"c.m4a"}


def test_the_audit_trail_lists_the_items_and_the_people_of_the_users_tree(
    instance: Instance, tree: dict[str, dict[str, object]]
) -> None:
    """A supervisor of 治安大队 reads the events of its items, and those of no item (sign-ins,
    accounts) by its people: not the audio's of 交警大队, nor 王交's or 赵局's sign-ins."""
    with _signed_in(instance, "li.si") as supervisor:
        events = supervisor.get("/api/v1/audit").json()
    items = {e["media_id"] for e in events if e["media_id"] is not None}
    assert items == {tree["b.jpg"]["id"]}
    signed = {e["actor"] for e in events if e["kind"] == "signed_in"}
    assert signed == {"li.si", "zhang.wei"}
    assert all(e["actor"] in ("li.si", "zhang.wei") for e in events if e["media_id"] is None)
    with _signed_in(instance, "zhang.wei") as legal:
        everything = legal.get("/api/v1/audit").json()
    assert {e["media_id"] for e in everything} >= {i["id"] for i in tree.values()}
    assert {"wang.jiao", "zhao.ju", "setup"} <= {e["actor"] for e in everything}
