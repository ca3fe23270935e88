"""The holds page (法律保全): the holds in force (``?all=1``: released ones too), with who
placed them, why and until when; a supervisor or the legal office releases one with a reason.
``/api/v1/holds`` is the JSON of ``evidence hold list --json``. Holds are placed with
``evidence hold add`` (docs/retention.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from interfaces.web.deps import InstanceDep, SignedDep, render
from pipeline.models import plain
from pipeline.retention import holds

router = APIRouter()


@router.get("/holds", include_in_schema=False)
def holds_page(
    request: Request, instance: InstanceDep, signed: SignedDep, all: bool = False
) -> Response:
    found = holds.list_holds(instance, signed.user, everything=all)
    context = {
        "user": signed.user,
        "holds": found,
        "everything": all,
        "may_release": holds.can_hold(signed.user),
    }
    return render(request, "holds.html", context)


@router.post("/holds/{hold_id}/release", include_in_schema=False)
def release(
    hold_id: int,
    instance: InstanceDep,
    signed: SignedDep,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    holds.release_hold(instance.acting(signed.user.login), signed.user, hold_id, reason)
    return RedirectResponse("/holds?all=1", status_code=303)


@router.get("/api/v1/holds")
def api_holds(instance: InstanceDep, signed: SignedDep, all: bool = False) -> Any:
    """The holds: exactly what `evidence hold list [--all] --json` prints."""
    return plain(list(holds.list_holds(instance, signed.user, everything=all)))
