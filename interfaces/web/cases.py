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
from pipeline.retention import usecases as retention_usecases

router = APIRouter()

ReasonField = Annotated[str, Form(max_length=500)]
MediaField = Annotated[int, Form(ge=1)]


@router.get("/cases/{number}", include_in_schema=False)
def case_page(request: Request, number: str, instance: InstanceDep, signed: SignedDep) -> Response:
    return _case_page(request, number, instance, signed)


def _case_page(
    request: Request,
    number: str,
    instance: InstanceDep,
    signed: SignedDep,
    verification: Any = None,
) -> Response:
    found = accounts.case_file(instance, signed.user, number)
    due = found.detail.case.due
    today = datetime.now(instance.settings.zone).date()
    context = {
        "user": signed.user,
        "detail": found.detail,
        "may_file": found.may_file,
        "timeline": found.timeline,
        "days_left": (due - today).days if due else None,
        "verification": verification,
        # How long its records are kept, and the holds on it (issue 19).
        "retention": retention_usecases.case_retention(instance, number),
    }
    return render(request, "case.html", context)


@router.post("/cases/{number}/verify", include_in_schema=False)
def verify(request: Request, number: str, instance: InstanceDep, signed: SignedDep) -> Response:
    """Verify the sealed bag now (it is read and hashed whole: a button, not every view)."""
    checked = accounts.verify_case_file(instance, signed.user, number)
    return _case_page(request, number, instance, signed, verification=checked)


@router.get("/api/v1/cases/{number}/verification")
def api_verify(number: str, instance: InstanceDep, signed: SignedDep) -> Any:
    """A sealed case file verified: exactly what `evidence cases verify NUMBER --json` prints."""
    return plain(accounts.verify_case_file(instance, signed.user, number))


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
