"""The approvals pages (调阅审批): my requests, those waiting for me (approvers), the history;
the request form (the item page links to it when an access needs approval); granting and
refusing (forms posted with the CSRF token; an HTMX post gets the decided row back in place).
``/api/v1/access/requests…`` is the JSON of ``evidence access … --json``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from interfaces.web.deps import InstanceDep, SignedDep, render
from pipeline.accounts import permissions
from pipeline.approvals import usecases
from pipeline.approvals.policy import Action
from pipeline.approvals.requests import Listing
from pipeline.errors import ApprovalError
from pipeline.models import plain

router = APIRouter()

#: An id the catalog's integer column can hold: anything larger is no request's or item's.
LARGEST_ID = 2**31 - 1
RequestId = Annotated[int, Path(ge=1, le=LARGEST_ID)]
MediaId = Annotated[int, Field(ge=1, le=LARGEST_ID)]
TextField = Annotated[str, Form(max_length=usecases.MAX_TEXT)]

#: The tabs of the page, and the listing each shows.
TABS = {"mine": Listing.MINE, "waiting": Listing.WAITING, "history": Listing.ALL}


def _page(request: Request, instance: InstanceDep, signed: SignedDep, tab: str) -> Response:
    listing = TABS[tab]
    found = usecases.list_requests(instance, signed.user, listing)
    context = {
        "user": signed.user,
        "tab": tab,
        "requests": found,
        "approver": permissions.can_approve(signed.user),
        "deciding": listing is Listing.WAITING,
    }
    return render(request, "approvals.html", context)


@router.get("/approvals", include_in_schema=False)
def mine(request: Request, instance: InstanceDep, signed: SignedDep) -> Response:
    return _page(request, instance, signed, "mine")


@router.get("/approvals/waiting", include_in_schema=False)
def waiting(request: Request, instance: InstanceDep, signed: SignedDep) -> Response:
    return _page(request, instance, signed, "waiting")


@router.get("/approvals/history", include_in_schema=False)
def history(request: Request, instance: InstanceDep, signed: SignedDep) -> Response:
    return _page(request, instance, signed, "history")


@router.get("/approvals/new", include_in_schema=False)
def new_request(
    request: Request,
    signed: SignedDep,
    media: Annotated[str, Query(max_length=2000)] = "",
    case: Annotated[str, Query(max_length=64)] = "",
    action: Action = Action.VIEW_PROXY,
) -> Response:
    """The request form, filled in from the item page's link (its item and action)."""
    context = {"user": signed.user, "media": media, "case": case, "action": action,
               "actions": list(Action)}  # fmt: skip
    return render(request, "approvals_new.html", context)


@router.post("/approvals/new", include_in_schema=False)
def submit_request(
    instance: InstanceDep,
    signed: SignedDep,
    action: Annotated[Action, Form()],
    reason: TextField = "",
    media: Annotated[str, Form(max_length=2000)] = "",
    case: Annotated[str, Form(max_length=64)] = "",
    hours: Annotated[int, Form(ge=1, le=8760)] = 24,
) -> Response:
    usecases.request_access(
        instance.acting(signed.user.login),
        signed.user,
        action=action,
        reason=reason,
        hours=hours,
        media_ids=_ids(media),
        case=case.strip() or None,
    )
    return RedirectResponse("/approvals", status_code=303)


def _decided(request: Request, signed: SignedDep, decided: Any) -> Response:
    """The decided row in place for HTMX; the waiting list again for a plain form."""
    if request.headers.get("HX-Request") == "true":
        context = {"user": signed.user, "r": decided, "deciding": True}
        return render(request, "approvals_row.html", context)
    return RedirectResponse("/approvals/waiting", status_code=303)


@router.post("/approvals/{request_id}/grant", include_in_schema=False)
def grant(
    request: Request,
    request_id: RequestId,
    instance: InstanceDep,
    signed: SignedDep,
    hours: Annotated[int | None, Form(ge=1, le=8760)] = None,
    comment: TextField = "",
) -> Response:
    decided = usecases.grant_access(
        instance.acting(signed.user.login), signed.user, request_id, hours=hours, comment=comment
    )
    return _decided(request, signed, decided)


@router.post("/approvals/{request_id}/refuse", include_in_schema=False)
def refuse(
    request: Request,
    request_id: RequestId,
    instance: InstanceDep,
    signed: SignedDep,
    comment: TextField = "",
) -> Response:
    decided = usecases.refuse_access(
        instance.acting(signed.user.login), signed.user, request_id, comment
    )
    return _decided(request, signed, decided)


def _ids(text: str) -> list[int]:
    """Media ids typed as ``12, 13`` (or 12，13: a Chinese comma)."""
    parts = [p.strip() for p in text.replace("，", ",").split(",") if p.strip()]
    if not all(p.isdigit() and 0 < int(p) <= LARGEST_ID for p in parts):
        raise ApprovalError("new", "记录编号须为数字，如 12,13 (media ids: 12,13)")
    return [int(p) for p in parts]


# ------------------------------------------------------------------------------------ API


class AccessRequestBody(BaseModel):
    action: Action = Field(description="view-proxy, view-original, download-original, export")
    reason: str = Field(max_length=usecases.MAX_TEXT, description="调阅事由: why")
    hours: int = Field(ge=1, le=8760, description="how long the grant should last")
    media: list[MediaId] = Field(default_factory=list, max_length=1000)
    case: str | None = Field(None, max_length=64, description="a case: its records as linked now")


class GrantBody(BaseModel):
    hours: int | None = Field(None, ge=1, le=8760, description="fewer hours than asked")
    comment: str = Field("", max_length=usecases.MAX_TEXT)


class RefuseBody(BaseModel):
    comment: str = Field(max_length=usecases.MAX_TEXT, description="why not")


@router.get("/api/v1/access/requests")
def api_list(instance: InstanceDep, signed: SignedDep, listing: Listing = Listing.MINE) -> Any:
    """Access requests: exactly what `evidence access list --mine|--waiting|--all --json`
    prints (``listing``: mine, waiting, all)."""
    return plain(list(usecases.list_requests(instance, signed.user, listing)))


@router.get("/api/v1/access/requests/{request_id}")
def api_show(request_id: RequestId, instance: InstanceDep, signed: SignedDep) -> Any:
    """One access request, for its requester and whoever may see it."""
    return plain(usecases.show_request(instance, signed.user, request_id))


@router.post("/api/v1/access/requests")
def api_request(instance: InstanceDep, signed: SignedDep, body: AccessRequestBody) -> Any:
    """Ask for approval: exactly what `evidence access request … --json` prints."""
    asked = usecases.request_access(
        instance.acting(signed.user.login),
        signed.user,
        action=body.action,
        reason=body.reason,
        hours=body.hours,
        media_ids=body.media,
        case=body.case,
    )
    return plain(asked)


@router.post("/api/v1/access/requests/{request_id}/grant")
def api_grant(
    request_id: RequestId, instance: InstanceDep, signed: SignedDep, body: GrantBody
) -> Any:
    """Grant a waiting request: exactly what `evidence access grant ID --json` prints."""
    user = signed.user
    done = usecases.grant_access(
        instance.acting(user.login), user, request_id, hours=body.hours, comment=body.comment
    )
    return plain(done)


@router.post("/api/v1/access/requests/{request_id}/refuse")
def api_refuse(
    request_id: RequestId, instance: InstanceDep, signed: SignedDep, body: RefuseBody
) -> Any:
    """Refuse a waiting request: exactly what `evidence access refuse ID --json` prints."""
    user = signed.user
    return plain(
        usecases.refuse_access(instance.acting(user.login), user, request_id, body.comment)
    )
