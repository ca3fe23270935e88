"""The quarantine page (隔离区): the entries with their codes (zh-CN labels) and reasons, and
releasing them with a reason (archivists and administrators); ``/api/v1/quarantine`` is the
JSON of ``evidence quarantine list --json``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from interfaces.web.deps import InstanceDep, SignedDep, render
from pipeline.accounts import quarantine as accounts_quarantine
from pipeline.ingest.quarantine import code_label
from pipeline.models import plain

router = APIRouter()


def _page(request: Request, instance: InstanceDep, signed: SignedDep, **more: Any) -> Response:
    page = accounts_quarantine.quarantine_page(instance, signed.user)
    context = {"user": signed.user, "page": page, "label": code_label, **more}
    return render(request, "quarantine.html", context)


@router.get("/quarantine", include_in_schema=False)
def quarantine_page(request: Request, instance: InstanceDep, signed: SignedDep) -> Response:
    return _page(request, instance, signed)


@router.post("/quarantine/release", include_in_schema=False)
def release(
    request: Request,
    instance: InstanceDep,
    signed: SignedDep,
    entry: Annotated[list[int], Form()],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Release the entries ticked, with a reason; the page again, with how each went."""
    results = accounts_quarantine.release(instance, signed.user, entry, reason)
    return _page(request, instance, signed, results=results)


@router.get("/api/v1/quarantine")
def api_quarantine(instance: InstanceDep, signed: SignedDep) -> Any:
    """The open quarantine entries: exactly what `evidence quarantine list --json` prints."""
    return plain(list(accounts_quarantine.quarantine_page(instance, signed.user).entries))
