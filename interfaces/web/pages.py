"""The pages of signing in and out, and of search. Each parses the request, calls one use
case and renders its dataclass; a search asked for by HTMX gets the results fragment only.
The item page is in ``media``, the case file in ``cases``, the audit trail in ``audit``."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from interfaces.web import deps
from interfaces.web.deps import InstanceDep, SignedDep, render
from interfaces.web.errors import BadRequest, status_of
from interfaces.web.security import (
    SESSION_COOKIE,
    clear_cookie,
    cookie,
    renew_csrf,
    safe_next,
    set_cookie,
)
from pipeline.accounts import permissions
from pipeline.accounts import usecases as accounts
from pipeline.custody.access import Field
from pipeline.errors import NotSignedIn, SignInFailed
from pipeline.search import run as search_run
from pipeline.search import usecases as search_usecases
from pipeline.search.usecases import SearchResult

router = APIRouter()

#: How a page names a field the listing withheld.
FIELD_LABELS = {
    Field.DESCRIPTION: "文字说明 (description)",
    Field.LOCATION: "位置 (location)",
    Field.TEXT_RECORD: "笔录信息 (text record)",
}


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/search", status_code=303)


@router.get("/signin", include_in_schema=False)
def signin_page(request: Request, next: str | None = None) -> Response:
    try:
        deps.signed_in(request)
    except NotSignedIn:
        return render(request, "signin.html", {"next": safe_next(next), "message": None})
    return RedirectResponse(safe_next(next), status_code=303)  # signed in already


@router.post("/signin", include_in_schema=False)
def signin(
    request: Request,
    instance: InstanceDep,
    login: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=2000)] = "/search",
) -> Response:
    address = request.client.host if request.client else ""
    try:
        signed = accounts.sign_in(instance, login, password, address=address)
    except SignInFailed as exc:
        context = {"next": safe_next(next), "message": str(exc), "login": login[:64]}
        status = status_of(exc)
        return render(request, "signin.html", context, status_code=status)
    response = RedirectResponse(safe_next(next), status_code=303)
    lifetime = int(instance.settings.web.session_minutes * 60)
    set_cookie(response, SESSION_COOKIE, signed.token, instance.settings.web, max_age=lifetime)
    renew_csrf(request)
    return response


@router.post("/signout", include_in_schema=False)
def signout(request: Request, instance: InstanceDep) -> Response:
    accounts.sign_out(instance, cookie(request, SESSION_COOKIE))
    response = RedirectResponse("/signin", status_code=303)
    clear_cookie(response, SESSION_COOKIE, instance.settings.web)
    renew_csrf(request)
    return response


def run_search(
    request: Request, signed: accounts.Signed, q: str, sort: str, limit: int
) -> SearchResult:
    """The search use case, for the page and the API alike: the items the user may view."""
    permissions.require(signed.user, permissions.can_search, "search")
    try:
        order = search_run.Sort.parse(sort)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return search_usecases.search(
        deps.acting(request, signed),
        q,
        sort=order,
        limit=limit,
        scope=permissions.reach(signed.user),
    )


#: Filter chips: the common terms, each a link that adds it to the query or takes it out.
CHIPS = (
    ("kind:video", "视频 video"),
    ("kind:audio", "音频 audio"),
    ("kind:photo", "照片 photo"),
    ("kind:document", "文书 document"),
    ("described:no", "无文字说明 undescribed"),
    ("linked:no", "未关联案件 unlinked"),
)
MAX_LIMIT = 10000


def chips(q: str, sort: str, limit: int) -> list[dict[str, object]]:
    """Each chip's label, whether its term is in the query, and the search with it toggled."""
    terms = q.split()
    found = []
    for term, label in CHIPS:
        active = term in terms
        toggled = " ".join(t for t in terms if t != term) if active else f"{q} {term}".strip()
        found.append({"label": label, "active": active, "href": search_url(toggled, sort, limit)})
    return found


def search_url(q: str, sort: str, limit: int) -> str:
    """The page of a search: the query in the URL, so that it can be shared."""
    return "/search?" + urlencode({"q": q, "sort": sort, "limit": limit})


QueryParam = Annotated[str, Query(max_length=2000)]
SortParam = Annotated[str, Query(max_length=40)]
LimitParam = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("/search", include_in_schema=False)
def search_page(
    request: Request,
    signed: SignedDep,
    q: QueryParam = "",
    sort: SortParam = str(search_run.NEWEST_FIRST),
    limit: LimitParam = 50,
) -> Response:
    found = run_search(request, signed, q, sort, limit)
    # HTMX swaps the results in; restoring a page from history it asks for the whole page.
    fragment = request.headers.get("HX-Request") == "true" and not request.headers.get(
        "HX-History-Restore-Request"
    )
    context = {
        "user": signed.user,
        "found": found,
        "q": q,
        "sort": sort,
        "limit": limit,
        "withheld": [FIELD_LABELS[f] for f in found.withheld],
        "chips": chips(q, sort, limit),
        "more_url": search_url(q, sort, min(limit * 2, MAX_LIMIT)) if found.more else None,
    }
    response = render(request, "_results.html" if fragment else "search.html", context)
    response.headers["Vary"] = "HX-Request"
    return response
