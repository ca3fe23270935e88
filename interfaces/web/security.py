"""Cookies, CSRF and response headers: what keeps a browser's session its own.

- The session cookie holds the token :func:`pipeline.accounts.usecases.sign_in` made;
  HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it), Secure
  when ``web.secure_cookies`` (behind TLS).
- CSRF: double submit. Every browser gets a random ``evidence_csrf`` cookie (HttpOnly,
  SameSite=Strict); every state-changing request (POST, PUT, PATCH, DELETE) must carry the
  same value in the ``X-CSRF-Token`` header (HTMX sends it from ``hx-headers``) or a
  ``csrf_token`` form field, else 403. The value is renewed at sign-in.
- Headers: a CSP that allows scripts and styles from this origin only (no inline script,
  no eval), no framing, no MIME sniffing, no referrer (queries are in URLs), and no caching
  of anything but the static files (pages show evidence metadata).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from starlette.datastructures import MutableHeaders
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.errors import PermissionDenied
from pipeline.settings import WebSettings

SESSION_COOKIE = "evidence_session"
CSRF_COOKIE = "evidence_csrf"
#: With secure cookies the names carry the ``__Host-`` prefix: a browser then takes such a
#: cookie only over HTTPS, for this host alone (no Domain), for every path, so that a page of
#: a sibling host cannot plant a session or a CSRF token here.
HOST_PREFIX = "__Host-"


def cookie_name(name: str, web: WebSettings) -> str:
    """The name a cookie has under these settings."""
    return HOST_PREFIX + name if web.secure_cookies else name


def cookie(request: Request, name: str) -> str:
    """The value of the cookie ``name`` (as the settings name it), or ""."""
    web: WebSettings = request.app.state.instance.settings.web
    return request.cookies.get(cookie_name(name, web)) or ""


CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DOCK_PREFIX = "/api/v1/dock/"

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (a new one, set on the response, for a first visit)."""
    token: str | None = request.state.csrf
    return token or ""


async def headers_and_csrf_cookie(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Middleware: give the request its CSRF token, the response its headers and cookie."""
    web: WebSettings = request.app.state.instance.settings.web
    known = cookie(request, CSRF_COOKIE)
    request.state.csrf = known or secrets.token_urlsafe(32)
    response = await call_next(request)
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.url.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    if request.state.csrf != known:
        set_cookie(response, CSRF_COOKIE, request.state.csrf, web, max_age=None)
    return response


#: What every answer of the station API carries (it serves no page: no CSP needed).
DOCK_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Headers:
    """ASGI middleware: pages and the JSON API go through :func:`headers_and_csrf_cookie`;
    the station API gets only its headers, and not through Starlette's BaseHTTPMiddleware,
    whose wrapping of every ``receive`` cost about a quarter of the event loop of an upload
    (measured with py-spy, benchmark 8)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.pages = BaseHTTPMiddleware(app, dispatch=headers_and_csrf_cookie)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(DOCK_PREFIX):
            await self.pages(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in DOCK_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)


async def check_csrf(request: Request) -> None:
    """Dependency of every route: a state-changing request without the browser's CSRF token
    is refused (PermissionDenied, 403) before the route runs."""
    if request.method in SAFE_METHODS:
        return
    if request.url.path.startswith(DOCK_PREFIX):
        # The station API authenticates by a bearer token in a header, never by a cookie:
        # no other site's page can make a browser send it.
        return
    expected = cookie(request, CSRF_COOKIE)
    given = request.headers.get(CSRF_HEADER) or ""
    if not given and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        field = (await request.form()).get(CSRF_FIELD)
        given = field if isinstance(field, str) else ""
    if not expected or not secrets.compare_digest(expected.encode(), given.encode()):
        raise PermissionDenied(
            "request", "缺少或错误的 CSRF 令牌，请刷新页面 (missing or wrong CSRF token)"
        )


def renew_csrf(request: Request) -> None:
    """A new CSRF token from this response on (at sign-in: none chosen before it survives)."""
    request.state.csrf = secrets.token_urlsafe(32)


def set_cookie(
    response: Response, name: str, value: str, web: WebSettings, *, max_age: int | None
) -> None:
    response.set_cookie(
        cookie_name(name, web),
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=web.secure_cookies,
    )


def clear_cookie(response: Response, name: str, web: WebSettings) -> None:
    response.delete_cookie(
        cookie_name(name, web),
        path="/",
        httponly=True,
        samesite="strict",
        secure=web.secure_cookies,
    )


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never ``//host`` or a URL)."""
    # Browsers drop tabs and newlines from a URL and read "\\" as "/": "/\t/host" is "//host".
    unsafe = any(c == "\\" or ord(c) < 0x21 or ord(c) == 0x7F for c in target or "")
    if not target or not target.startswith("/") or target.startswith("//") or unsafe:
        return "/search"
    return target
