"""The web application's skeleton on a real catalog, through FastAPI's TestClient: sign-in
and sign-out as custody events, the session cookie's flags, CSRF, security headers, the
redirect or 401 of a request without a session, and the one table of error statuses."""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from interfaces.web import errors as web_errors
from interfaces.web.app import STATIC, create_app
from interfaces.web.security import CSRF_COOKIE, SESSION_COOKIE, safe_next
from pipeline import errors
from pipeline.accounts import passwords
from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import UserRole
from pipeline.catalog import Catalog
from pipeline.catalog import registry as registry_rows
from pipeline.custody import log as custody
from pipeline.instance import Instance
from pipeline.models import EventKind, Officer
from pipeline.settings import Settings
from tests.conftest import make_settings

PASSWORD = "correct horse 电池"
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at its smallest: the real profile costs 0.15 s a hash on two shared cores,
    and these tests hash and verify hundreds of times (the profile has its own test)."""
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _instance(settings: Settings, catalog: Catalog, clock: Clock) -> Instance:
    with catalog.begin() as conn:
        registry_rows.save_officer(
            conn, Officer("1023", "张伟", "11010012345", "县公安局/治安大队"), T0
        )
        registry_rows.save_officer(conn, Officer("0001", "管理员", "11010000001", "县公安局"), T0)
    instance = Instance(settings, catalog, clock=clock, actor="setup")
    accounts.add_user(
        instance, "zhang.wei", officer_id="1023", roles=[UserRole.ARCHIVIST], password=PASSWORD
    )
    accounts.add_user(
        instance, "admin", officer_id="0001", roles=[UserRole.ADMIN], password=PASSWORD
    )
    return instance


@pytest.fixture
def instance(settings: Settings, catalog: Catalog, clock: Clock) -> Instance:
    return _instance(settings, catalog, clock)


@pytest.fixture
def client(instance: Instance) -> Iterator[TestClient]:
    with TestClient(create_app(instance), follow_redirects=False) as c:
        yield c


def _csrf(client: TestClient) -> str:
    if CSRF_COOKIE not in client.cookies:
        client.get("/signin")
    return client.cookies[CSRF_COOKIE]


def sign_in(
    client: TestClient, login: str = "zhang.wei", password: str = PASSWORD, **extra: str
) -> object:
    return client.post(
        "/signin", data={"login": login, "password": password, "csrf_token": _csrf(client), **extra}
    )


def _events(catalog: Catalog, *kinds: EventKind) -> list[custody.CustodyEvent]:
    with catalog.read() as conn:
        return [e for e in custody.events(conn) if e.kind in kinds]


# -------------------------------------------------------------------------------- sign-in


def test_the_sign_in_page_is_zh_cn_first_with_a_csrf_field(client: TestClient) -> None:
    page = client.get("/signin")
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text and "登录名 Login" in page.text
    token = page.cookies[CSRF_COOKIE]
    assert f'name="csrf_token" value="{token}"' in page.text


def test_signing_in_sets_a_strict_httponly_session_cookie_and_is_an_event(
    client: TestClient, instance: Instance
) -> None:
    response = sign_in(client, next="/search?q=kind:photo")
    assert response.status_code == 303
    assert response.headers["location"] == "/search?q=kind:photo"
    (cookie,) = [
        h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "=")
    ]
    flags = {f.strip().split("=")[0].lower() for f in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path", "max-age"} <= flags
    assert "samesite=strict" in cookie.lower()
    assert "secure" not in flags, "secure only when configured"
    (event,) = _events(instance.catalog, EventKind.SIGNED_IN)
    assert (event.actor, event.details["via"], event.details["address"]) == (
        "zhang.wei",
        "web",
        "testclient",
    )
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["user"]["login"] == "zhang.wei"
    assert "password" not in me.text


def test_the_cookies_are_secure_and_host_only_when_configured(
    settings: Settings, catalog: Catalog, clock: Clock
) -> None:
    secure = make_settings(settings.home, web={"secure_cookies": True})
    instance = _instance(secure, catalog, clock)
    with TestClient(
        create_app(instance), base_url="https://testserver", follow_redirects=False
    ) as c:
        page = c.get("/signin")
        (csrf,) = [
            h for h in page.headers.get_list("set-cookie") if h.startswith("__Host-evidence_csrf=")
        ]
        token = c.cookies["__Host-evidence_csrf"]
        response = c.post(
            "/signin", data={"login": "zhang.wei", "password": PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 303
        (cookie,) = [
            h
            for h in response.headers.get_list("set-cookie")
            if h.startswith("__Host-evidence_session=")
        ]
        assert c.get("/api/v1/me").status_code == 200
        assert (
            c.post(
                "/signout", headers={"X-CSRF-Token": c.cookies["__Host-evidence_csrf"]}
            ).status_code
            == 303
        )
        assert c.get("/api/v1/me").status_code == 401
    for header in (csrf, cookie):
        assert (
            "secure" in header.lower()
            and "path=/" in header.lower()
            and "domain" not in header.lower()
        )


def test_a_failed_sign_in_shows_the_form_again_and_is_an_event(
    client: TestClient, instance: Instance
) -> None:
    response = sign_in(client, password="wrong password!")
    assert response.status_code == 401
    assert "登录名或密码错误" in response.text
    assert SESSION_COOKIE not in response.cookies
    (event,) = _events(instance.catalog, EventKind.SIGN_IN_FAILED)
    assert event.details["reason"] == "bad-password"


def test_the_lockout_answers_429(client: TestClient, instance: Instance) -> None:
    for _ in range(instance.settings.web.lockout_failures - 1):
        assert sign_in(client, password="wrong password!").status_code == 401
    locked = sign_in(client, password="wrong password!")
    assert locked.status_code == 429 and "登录失败次数过多" in locked.text


def test_one_address_trying_many_logins_answers_429(
    settings: Settings, catalog: Catalog, clock: Clock
) -> None:
    strict = _instance(
        make_settings(settings.home, web={"lockout_address_failures": 2}), catalog, clock
    )
    with TestClient(create_app(strict), follow_redirects=False) as c:
        assert sign_in(c, "ghost", "a wrong password").status_code == 401
        throttled = sign_in(c, "nobody", "a wrong password")
        assert throttled.status_code == 429 and "该地址登录失败次数过多" in throttled.text


def test_signing_out_revokes_the_session_and_is_an_event(
    client: TestClient, instance: Instance
) -> None:
    sign_in(client)
    token = client.cookies[SESSION_COOKIE]
    response = client.post("/signout", data={"csrf_token": _csrf(client)})
    assert response.status_code == 303 and response.headers["location"] == "/signin"
    (event,) = _events(instance.catalog, EventKind.SIGNED_OUT)
    assert event.actor == "zhang.wei"
    client.cookies.set(SESSION_COOKIE, token)  # a copy of the cookie kept after sign-out
    assert client.get("/api/v1/me").status_code == 401


def test_an_expired_session_signs_in_again(
    client: TestClient, instance: Instance, clock: Clock
) -> None:
    sign_in(client)
    clock.now += timedelta(minutes=instance.settings.web.session_minutes)
    response = client.get("/search")
    assert response.status_code == 303 and response.headers["location"].startswith("/signin")
    assert client.get("/api/v1/me").json()["error"] == "not-signed-in"


@pytest.mark.parametrize(
    ("target", "goes_to"),
    [
        ("/search?q=a", "/search?q=a"),
        ("//evil.example/x", "/search"),
        ("https://evil.example", "/search"),
        ("/\\evil", "/search"),
        ("/\t/evil.example", "/search"),
        ("/\n/evil.example", "/search"),
        ("/media/3", "/media/3"),
        ("", "/search"),
    ],
)
def test_after_sign_in_only_a_path_of_this_site(target: str, goes_to: str) -> None:
    assert safe_next(target) == goes_to


# ---------------------------------------------------------------------- unauthenticated


def test_without_a_session_a_page_redirects_to_sign_in_and_the_api_answers_401(
    client: TestClient,
) -> None:
    page = client.get("/search?q=kind:photo")
    assert page.status_code == 303
    assert page.headers["location"] == "/signin?next=%2Fsearch%3Fq%3Dkind%3Aphoto"
    api = client.get("/api/v1/search")
    assert api.status_code == 401
    assert api.json() == {"error": "not-signed-in", "message": "请先登录 (sign in first)"}
    client.cookies.set(SESSION_COOKIE, "made-up")
    assert client.get("/api/v1/search").status_code == 401


def test_without_a_session_htmx_is_sent_to_sign_in_and_a_post_comes_back_to_search(
    client: TestClient,
) -> None:
    fragment = client.get("/search?q=kind:photo", headers={"HX-Request": "true"})
    assert fragment.status_code == 401 and fragment.text == ""
    assert fragment.headers["hx-redirect"] == "/signin?next=%2Fsearch%3Fq%3Dkind%3Aphoto"
    posted = client.post("/media/1/view", data={"reason": "复核", "csrf_token": _csrf(client)})
    assert (posted.status_code, posted.headers["location"]) == (303, "/signin?next=%2Fsearch")


# ------------------------------------------------------------------------------------ CSRF


def test_a_post_without_the_csrf_token_is_refused(client: TestClient, instance: Instance) -> None:
    _csrf(client)
    refused = client.post("/signin", data={"login": "zhang.wei", "password": PASSWORD})
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    wrong = client.post(
        "/signin", data={"login": "zhang.wei", "password": PASSWORD, "csrf_token": "x" * 43}
    )
    assert wrong.status_code == 403
    assert _events(instance.catalog, EventKind.SIGNED_IN, EventKind.SIGN_IN_FAILED) == [], (
        "refused before the route ran"
    )
    sign_in(client)
    no_token = client.post("/signout")
    assert no_token.status_code == 403
    assert client.get("/api/v1/me").status_code == 200, "still signed in"
    header = client.post("/signout", headers={"X-CSRF-Token": client.cookies[CSRF_COOKIE]})
    assert header.status_code == 303, "HTMX sends the token as a header"


def test_a_csrf_token_from_another_browser_does_not_pass(
    client: TestClient, instance: Instance
) -> None:
    with TestClient(create_app(instance), follow_redirects=False) as other:
        theirs = _csrf(other)
    _csrf(client)
    response = client.post(
        "/signin", data={"login": "zhang.wei", "password": PASSWORD, "csrf_token": theirs}
    )
    assert response.status_code == 403


def test_the_csrf_token_is_renewed_at_sign_in(client: TestClient) -> None:
    before = _csrf(client)
    response = sign_in(client)
    assert response.cookies[CSRF_COOKIE] != before


# -------------------------------------------------------------------------------- headers


@pytest.mark.parametrize("path", ["/signin", "/search", "/api/v1/search", "/no-such-page"])
def test_every_answer_has_the_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path)
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


def test_pages_have_no_inline_script(client: TestClient) -> None:
    pages = [client.get("/signin").text]
    sign_in(client)
    pages += [client.get("/search").text, client.get("/nothing-here").text]
    for html in pages:
        scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S)
        assert scripts and all(s.strip() == "" for s in scripts), "every script is a file"
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", html), "no inline event handler"
        assert "hx-on" not in html


def test_the_vendored_htmx_is_the_recorded_file(client: TestClient) -> None:
    vendored = (STATIC / "VENDORED.md").read_text(encoding="utf-8")
    (row,) = [line for line in vendored.splitlines() if line.startswith("| `htmx.min.js`")]
    version, digest = re.findall(r"\| ([0-9.]+) \| `([0-9a-f]{64})` \|", row)[0]
    body = (STATIC / "htmx.min.js").read_bytes()
    assert hashlib.sha256(body).hexdigest() == digest
    assert f'version:"{version}"' in body.decode()
    served = client.get("/static/htmx.min.js")
    assert served.status_code == 200 and served.content == body


# --------------------------------------------------------------------------------- errors


def _domain_errors() -> list[type[errors.EvidenceError]]:
    return [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, errors.EvidenceError)
    ]


@pytest.mark.parametrize("kind", _domain_errors(), ids=lambda c: c.__name__)
def test_every_domain_error_has_a_status_not_shadowed_by_its_family(
    kind: type[errors.EvidenceError],
) -> None:
    table = [k for k, _ in web_errors.STATUS]
    first = next(k for k in table if issubclass(kind, k))
    if kind in table:
        assert first is kind, (
            f"{kind.__name__} is answered as {first.__name__}: list it before its family"
        )


def test_an_error_of_the_api_is_its_code_and_message_never_a_trace(client: TestClient) -> None:
    sign_in(client)
    bad_query = client.get("/api/v1/search", params={"q": "recorded:2026-13-45"})
    assert bad_query.status_code == 400
    assert (
        bad_query.json()["error"] == "query"
        and "recorded:2026-13-45" in bad_query.json()["message"]
    )
    bad_sort = client.get("/api/v1/search", params={"sort": "colour"})
    assert (bad_sort.status_code, bad_sort.json()["error"]) == (400, "bad-request")
    bad_limit = client.get("/api/v1/search", params={"limit": "0"})
    assert (bad_limit.status_code, bad_limit.json()["error"]) == (400, "bad-request")
    missing = client.get("/api/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"] == "not-found"
    for response in (bad_query, bad_sort, bad_limit, missing):
        assert "Traceback" not in response.text and set(response.json()) == {"error", "message"}


def test_an_admin_may_not_search(client: TestClient) -> None:
    sign_in(client, "admin")
    response = client.get("/api/v1/search")
    assert (response.status_code, response.json()["error"]) == (403, "forbidden")
    page = client.get("/search")
    assert page.status_code == 403 and "您的角色无此权限" in page.text


def test_an_unexpected_error_is_a_500_without_its_trace(
    client: TestClient, instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in(client)

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr("interfaces.web.pages.search_usecases.search", broken)
    with TestClient(
        client.app, raise_server_exceptions=False, follow_redirects=False, cookies=client.cookies
    ) as c:
        response = c.get("/api/v1/search")
        page = c.get("/search")
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal",
        "message": "内部错误，已记录 (internal error, logged)",
    }
    assert page.status_code == 500 and "secret internals" not in page.text


def test_the_api_has_an_openapi_document_and_no_cdn_docs_page(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json")
    assert document.status_code == 200
    paths = document.json()["paths"]
    assert {"/api/v1/search", "/api/v1/me", "/api/v1/media/{media_id}/view"} <= set(paths)
    assert not any(not p.startswith("/api/v1/") for p in paths), "pages are not API"
    assert client.get("/docs").status_code == 404, "the docs page would load scripts from a CDN"


def test_a_server_fault_says_its_code_and_not_its_internals(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in(client)

    def down(*_: object, **__: object) -> None:
        raise errors.CatalogError("catalog sqlite:////srv/evidence/catalog.db: disk I/O error")

    monkeypatch.setattr("interfaces.web.pages.search_usecases.search", down)
    response = client.get("/api/v1/search")
    assert response.status_code == 503
    assert response.json() == {"error": "catalog", "message": web_errors.SERVER_FAULT}
    page = client.get("/search")
    assert page.status_code == 503 and "/srv/evidence" not in page.text


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("EVIDENCE_WEB__PORT", "0", "web.port"),
        ("EVIDENCE_WEB__REASON_MINUTES", "0", "web.reason_minutes"),
        ("EVIDENCE_WEB__LOCKOUT_FAILURES", "0", "web.lockout_failures"),
        ("EVIDENCE_WEB__SESSION_MINUTES", "inf", "web.session_minutes"),
        ("EVIDENCE_WEB__SECURE_COOKIE", "true", "secure_cookie"),  # a typo is refused
    ],
)
def test_the_web_settings_are_bounded_and_named(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(errors.ConfigError, match=re.escape(named)):
        make_settings(settings.home)
