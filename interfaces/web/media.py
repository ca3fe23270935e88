"""The media item page and playback: a reason first, recorded as a VIEWED event before any
byte of the item is sent; then the metadata, the proxy in a ``<video>``/``<audio>`` element
served with HTTP Range (206) so that seeking works, the thumbnail, a photo or a PDF shown in
place; and a verified copy of the original, downloaded with a reason of its own (an EXPORTED
event). Every route takes an id the catalog knows: no URL names a file."""

from __future__ import annotations

import contextlib
import mimetypes
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from interfaces.web.deps import InstanceDep, SignedDep, render
from pipeline.accounts import files
from pipeline.accounts import usecases as accounts
from pipeline.instance import Instance
from pipeline.models import plain
from pipeline.retention import usecases as retention_usecases
from pipeline.retention.disposal import tombstone_of
from pipeline.storage.local import scratch_folder

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
    inline = files.inline_type(page.viewing.item) if page.viewing is not None else None
    context = {"user": signed.user, "page": page, "media_id": media_id, "inline": inline}
    context["tombstone"] = tombstone_of(instance, media_id)  # disposed (issue 19): what stays
    if page.viewing is not None:  # retention (issue 19), shown once the viewing holds
        kept = retention_usecases.retention(instance, media_id)
        context.update(retention=kept.said(instance.settings.zone), held=kept.held)
    return render(request, "media.html", context)


@router.post("/media/{media_id}/mark", include_in_schema=False)
def mark(
    media_id: int,
    instance: InstanceDep,
    signed: SignedDep,
    reason: Annotated[str, Form(max_length=500)] = "",
    clear: Annotated[bool, Form()] = False,
) -> Response:
    """Set or clear the important-file mark (重点文件), with a reason (issue 19)."""
    retention_usecases.mark_item(instance, signed.user, media_id, reason, clear=clear)
    return RedirectResponse(f"/media/{media_id}", status_code=303)


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


def content_disposition(kind: str, name: str) -> str:
    """``inline`` or ``attachment`` with the file's name: an ASCII fallback, and the UTF-8
    name as RFC 5987 says (``filename*``), which every current browser prefers: recorders and
    people name files in Chinese."""
    fallback = "".join(c if 0x20 < ord(c) < 0x7F and c not in '"\\;%' else "_" for c in name)
    return f"{kind}; filename=\"{fallback or 'download'}\"; filename*=UTF-8''{quote(name, safe='')}"


@router.get("/media/{media_id}/thumbnail", include_in_schema=False)
def thumbnail(media_id: int, instance: InstanceDep, signed: SignedDep) -> Response:
    """The thumbnail (a frame shows people: only under a viewing that holds)."""
    shown = files.thumbnail(instance, signed.user, media_id)
    assert shown.path is not None
    return FileResponse(shown.path, media_type=shown.content_type)


def _original_blocks(instance: Instance, sha256: str) -> Iterator[bytes]:
    with instance.store.original_file(sha256) as path, path.open("rb") as original:
        while block := original.read(instance.settings.ingest.block_size):
            yield block


@router.get("/media/{media_id}/inline", include_in_schema=False)
def inline(media_id: int, instance: InstanceDep, signed: SignedDep) -> Response:
    """A photo or a PDF itself, shown in the page, under a viewing that holds."""
    shown = files.in_place(instance, signed.user, media_id)
    item = shown.item
    return StreamingResponse(
        _original_blocks(instance, item.sha256),
        media_type=shown.content_type,
        headers={"Content-Disposition": content_disposition("inline", files.file_name(item))},
    )


@router.post("/media/{media_id}/original", include_in_schema=False)
def download(
    media_id: int,
    instance: InstanceDep,
    signed: SignedDep,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """A verified copy of the original, as an attachment: copied and checked against its
    SHA-256 into a scratch folder, its EXPORTED event committed, then streamed; the folder
    goes once the response is sent (or at the next download, if the server died)."""
    scratch = contextlib.ExitStack()
    try:
        staging = scratch.enter_context(
            scratch_folder(instance.settings.home / "work", ".download")
        )
        copy = files.download_original(instance, signed.user, media_id, reason, staging)
    except BaseException:
        scratch.close()
        raise
    return FileResponse(
        copy.path,
        media_type="application/octet-stream",
        headers={"Content-Disposition": content_disposition("attachment", copy.filename)},
        background=BackgroundTask(scratch.close),
    )
