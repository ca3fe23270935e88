"""The case file page (案卷): its 15-day state and days left, the coverage of the action
window with its gaps, the linked records and what the rule still misses; for who may file
it, linking and unlinking records with a reason, concluding, and sealing."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from interfaces.web.deps import InstanceDep, SignedDep, render
from pipeline.accounts import usecases as accounts
from pipeline.models import plain

router = APIRouter()

ReasonField = Annotated[str, Form(max_length=500)]
MediaField = Annotated[int, Form(ge=1)]


@router.get("/cases/{number}", include_in_schema=False)
def case_page(request: Request, number: str, instance: InstanceDep, signed: SignedDep) -> Response:
    found = accounts.case_file(instance, signed.user, number)
    due = found.detail.case.due
    today = datetime.now(instance.settings.zone).date()
    context = {
        "user": signed.user,
        "detail": found.detail,
        "may_file": found.may_file,
        "timeline": found.timeline,
        "days_left": (due - today).days if due else None,
    }
    return render(request, "case.html", context)


@router.get("/api/v1/cases/{number}")
def api_case(number: str, instance: InstanceDep, signed: SignedDep) -> Any:
    """A case file: exactly what `evidence cases show NUMBER --json` prints."""
    return plain(accounts.case_file(instance, signed.user, number).detail)


def _back(number: str) -> RedirectResponse:
    return RedirectResponse(f"/cases/{quote(number, safe='')}", status_code=303)


@router.post("/cases/{number}/link", include_in_schema=False)
def link(
    number: str,
    instance: InstanceDep,
    signed: SignedDep,
    media_id: MediaField,
    reason: ReasonField = "",
) -> Response:
    accounts.link_to_case(instance, signed.user, number, media_id, reason)
    return _back(number)


@router.post("/cases/{number}/unlink", include_in_schema=False)
def unlink(
    number: str,
    instance: InstanceDep,
    signed: SignedDep,
    media_id: MediaField,
    reason: ReasonField = "",
) -> Response:
    accounts.unlink_from_case(instance, signed.user, number, media_id, reason)
    return _back(number)


@router.post("/cases/{number}/conclude", include_in_schema=False)
def conclude(number: str, instance: InstanceDep, signed: SignedDep) -> Response:
    accounts.conclude_case(instance, signed.user, number)
    return _back(number)


@router.post("/cases/{number}/seal", include_in_schema=False)
def seal(
    number: str, instance: InstanceDep, signed: SignedDep, reason: ReasonField = ""
) -> Response:
    accounts.seal_case(instance, signed.user, number, reason)
    return _back(number)
