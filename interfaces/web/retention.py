"""The disposal pages (销毁审批): the queue of requests waiting for an approver, with each
item (name, kind, size, why it may go), and the approve and refuse forms (posted with the
CSRF token, as the approvals pages are); the history of requests. ``/api/v1/retention/…`` is
the JSON of ``evidence retention plan|requests --json``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from interfaces.web.deps import InstanceDep, SignedDep, render
from pipeline.accounts import permissions
from pipeline.models import plain
from pipeline.retention import disposal, plan
from pipeline.retention.disposal_queue import disposal_queue
from pipeline.retention.disposal_requests import DisposalListing

router = APIRouter()

LARGEST_ID = 2**31 - 1
RequestId = Annotated[int, Path(ge=1, le=LARGEST_ID)]
TextField = Annotated[str, Form(max_length=disposal.MAX_TEXT)]

#: The tabs of the page, and the listing each shows.
TABS = {
    "waiting": DisposalListing.WAITING,
    "mine": DisposalListing.MINE,
    "history": DisposalListing.ALL,
}


def _page(request: Request, instance: InstanceDep, signed: SignedDep, tab: str) -> Response:
    listing = TABS[tab]
    context = {
        "user": signed.user,
        "tab": tab,
        "queue": disposal_queue(instance, signed.user, listing),
        "approver": permissions.can_approve(signed.user),
        "deciding": listing is DisposalListing.WAITING,
        "waiting_disposals": disposal.waiting_disposals(instance, signed.user),
        "size": plan.readable_bytes,
    }
    return render(request, "disposals.html", context)


@router.get("/retention/disposals", include_in_schema=False)
def waiting(request: Request, instance: InstanceDep, signed: SignedDep) -> Response:
    return _page(request, instance, signed, "waiting")


@router.get("/retention/disposals/mine", include_in_schema=False)
def mine(request: Request, instance: InstanceDep, signed: SignedDep) -> Response:
    return _page(request, instance, signed, "mine")


@router.get("/retention/disposals/history", include_in_schema=False)
def history(request: Request, instance: InstanceDep, signed: SignedDep) -> Response:
    return _page(request, instance, signed, "history")


@router.post("/retention/disposals/{request_id}/approve", include_in_schema=False)
def approve(
    request_id: RequestId, instance: InstanceDep, signed: SignedDep, comment: TextField = ""
) -> Response:
    user = signed.user
    disposal.approve_disposal(instance.acting(user.login), user, request_id, comment)
    return RedirectResponse("/retention/disposals", status_code=303)


@router.post("/retention/disposals/{request_id}/refuse", include_in_schema=False)
def refuse(
    request_id: RequestId, instance: InstanceDep, signed: SignedDep, comment: TextField = ""
) -> Response:
    user = signed.user
    disposal.refuse_disposal(instance.acting(user.login), user, request_id, comment)
    return RedirectResponse("/retention/disposals", status_code=303)


# ------------------------------------------------------------------------------------ API


@router.get("/api/v1/retention/plan")
def api_plan(instance: InstanceDep, signed: SignedDep) -> Any:
    """The disposal plan and forecast: exactly what `evidence retention plan --json` prints
    (for those who read the dashboard: supervisors and the legal office)."""
    permissions.require(signed.user, permissions.can_read_dashboard, "retention plan")
    return plain(plan.retention_plan(instance))


@router.get("/api/v1/retention/disposals")
def api_list(
    instance: InstanceDep, signed: SignedDep, listing: DisposalListing = DisposalListing.MINE
) -> Any:
    """Disposal requests: exactly what `evidence retention requests --mine|--waiting|--all
    --json` prints."""
    return plain(list(disposal.list_disposals(instance, signed.user, listing)))


@router.get("/api/v1/retention/disposals/{request_id}")
def api_show(request_id: RequestId, instance: InstanceDep, signed: SignedDep) -> Any:
    return plain(disposal.show_disposal(instance, signed.user, request_id))
