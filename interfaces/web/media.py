"""The media item page and playback: a reason first, recorded as a VIEWED event before any
byte of the item is sent; then the metadata, and the proxy in a ``<video>``/``<audio>``
element served with HTTP Range (206) so that seeking works."""

from __future__ import annotations

import mimetypes
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from interfaces.web.deps import InstanceDep, SignedDep, render
from pipeline.accounts import usecases as accounts
from pipeline.models import plain

router = APIRouter()

#: How a proxy is labelled to the browser, by the proxy's file suffix.
PROXY_TYPES = {".mp4": "video/mp4", ".m4a": "audio/mp4", ".mp3": "audio/mpeg"}


class ViewRequest(BaseModel):
    reason: str = Field(max_length=500, description="调阅事由: why the item is viewed")


@router.get("/media/{media_id}", include_in_schema=False)
def item_page(
    request: Request, media_id: int, instance: InstanceDep, signed: SignedDep
) -> Response:
    page = accounts.item_page(instance, signed.user, media_id)
    return render(request, "media.html", {"user": signed.user, "page": page, "media_id": media_id})


@router.post("/media/{media_id}/view", include_in_schema=False)
def view(
    request: Request,
    media_id: int,
    instance: InstanceDep,
    signed: SignedDep,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    accounts.view_item(instance, signed.user, media_id, reason)
    return RedirectResponse(f"/media/{media_id}", status_code=303)


@router.post("/media/{media_id}/describe", include_in_schema=False)
def describe(
    request: Request,
    media_id: int,
    instance: InstanceDep,
    signed: SignedDep,
    description: Annotated[str, Form(max_length=20000)] = "",
) -> Response:
    accounts.describe_item(instance, signed.user, media_id, description)
    return RedirectResponse(f"/media/{media_id}", status_code=303)


@router.get("/media/{media_id}/proxy", include_in_schema=False)
def proxy(media_id: int, instance: InstanceDep, signed: SignedDep) -> Response:
    """The proxy's bytes, Range requests answered 206: only under a viewing that holds."""
    played = accounts.playback(instance, signed.user, media_id)
    kind = PROXY_TYPES.get(played.path.suffix.lower()) or mimetypes.guess_type(played.path.name)[0]
    return FileResponse(played.path, media_type=kind or "application/octet-stream")


@router.post("/api/v1/media/{media_id}/view")
def api_view(media_id: int, instance: InstanceDep, signed: SignedDep, body: ViewRequest) -> Any:
    """View an item with a reason (调阅事由): the VIEWED event is committed before the item
    is returned; then its proxy plays at ``/media/{id}/proxy`` while the reason holds."""
    return plain(accounts.view_item(instance, signed.user, media_id, body.reason))
