"""An item's own bytes in the browser under access supervision (调阅监督): its thumbnail, a
photo or a PDF shown in place, and a verified copy of the original.

Showing the thumbnail or the original in place belongs to the viewing the item page opened:
the user's VIEWED event whose reason still holds (:func:`~pipeline.accounts.usecases.item_page`,
``web.reason_minutes``), as the proxy's playing does; no byte flows before it. A copy of the
original leaves the archive: it needs a reason of its own and is an EXPORTED event, committed
before the copy exists, through the use case of ``evidence media open --view original``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePath

from pipeline.accounts.usecases import Viewing, approach_item, item_page, reason_given
from pipeline.accounts.users import User
from pipeline.approvals import enforce
from pipeline.approvals.policy import Action, policy_of
from pipeline.custody import usecases as custody_usecases
from pipeline.custody.access import View
from pipeline.errors import AccessRefused, NotFound
from pipeline.instance import Instance
from pipeline.models import MediaItem, MediaKind

#: The photos a browser shows in place, by their suffix; others are downloaded.
INLINE_IMAGES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
PDF = "application/pdf"
#: Where the event of a web download says the copy went (the staging file is the server's).
WEB_DOWNLOAD = "web download"


def file_name(item: MediaItem) -> str:
    """The name a browser saves or shows the original as: its original file name."""
    return PurePath(item.original_name).name or f"media-{item.id}"


def inline_type(item: MediaItem) -> str | None:
    """The content type the original of ``item`` is shown in place as (a photo, a PDF), or
    None for an item that is played (its proxy) or only downloaded."""
    suffix = PurePath(item.original_name).suffix.lower()
    if item.kind is MediaKind.PHOTO:
        return INLINE_IMAGES.get(suffix)
    if item.kind is MediaKind.DOCUMENT and suffix == ".pdf":
        return PDF
    return None


@dataclass(frozen=True)
class Shown:
    """Bytes of an item shown under a viewing that holds: a derived file (``path``), or the
    original itself (``path`` None: read it from the store by ``item.sha256``)."""

    viewing: Viewing
    content_type: str
    path: Path | None = None

    @property
    def item(self) -> MediaItem:
        return self.viewing.item


def _holding(instance: Instance, user: User, media_id: int) -> Viewing:
    """The user's viewing of the item that holds (REFUSED and PermissionDenied for a user
    who may not view it; AccessRefused while no reason holds)."""
    viewing = item_page(instance, user, media_id).viewing
    if viewing is None:
        raise AccessRefused(
            f"media {media_id}", "请先说明调阅事由 (give a reason for viewing first)"
        )
    return viewing


def thumbnail(instance: Instance, user: User, media_id: int) -> Shown:
    """The item's thumbnail (JPEG), under a viewing that holds: a thumbnail of a photo or
    a video frame shows the scene and its people, so it is a viewing, never a listing's."""
    viewing = _holding(instance, user, media_id)
    key = viewing.item.thumbnail_key
    if key is None:
        raise NotFound("thumbnail", f"media {media_id} has none")
    return Shown(viewing, "image/jpeg", instance.store.derived_path(key))


def in_place(instance: Instance, user: User, media_id: int) -> Shown:
    """The original of a photo or a PDF, to show in the page, under a viewing that holds;
    where the access policy asks approval for it (``view-original``), under the grant the
    viewing named (ApprovalRequired without one)."""
    viewing = _holding(instance, user, media_id)
    kind = inline_type(viewing.item)
    if kind is None:
        raise NotFound(
            "inline view",
            f"media {media_id} ({viewing.item.kind.value}) is not shown in place; "
            "play its proxy or download the original",
        )
    _original_approved(instance, user, viewing)
    return Shown(viewing, kind)


def _original_approved(instance: Instance, user: User, viewing: Viewing) -> None:
    """An original shown in place is the policy's ``view-original``: free, or under a grant
    that the viewing's VIEWED event names, so that the use of the grant is on record (a
    grant given after the viewing began needs the reason given again)."""
    policy, now = policy_of(instance.settings), instance.clock()
    with instance.catalog.read() as conn:
        found = enforce.permits(conn, policy, user, viewing.item, [Action.VIEW_ORIGINAL], now)
    original = found[Action.VIEW_ORIGINAL]
    if original.free or viewing.original_grant in original.grants:
        return
    if original.needed:
        enforce.refuse(instance.catalog, user, [(viewing.item, original)], now)
    raise AccessRefused(
        f"media {viewing.item.id}",
        "请重新说明调阅事由以使用审批 (give the reason again: the viewing began before the grant)",
    )


@dataclass(frozen=True)
class Download:
    """A verified copy of the original, staged for one user: its EXPORTED event is
    committed; ``path`` is the copy (checked against the item's SHA-256 as it was made)."""

    item: MediaItem
    path: Path
    filename: str  # what the browser saves it as: the original's name
    event: int


def download_original(
    instance: Instance, user: User, media_id: int, reason: str | None, staging: Path
) -> Download:
    """Copy the original of ``media_id`` into the folder ``staging`` for ``user``, with
    ``reason``: refused (REFUSED, PermissionDenied) when their roles do not reach it,
    AccessRefused for no reason; else the same use case as ``evidence media open --view
    original`` copies and verifies it and commits the EXPORTED event before the copy has
    its name (ApprovalRequired first, when the access policy asks approval and no grant
    covers the copy)."""
    item, _ = approach_item(instance, user, media_id, Action.DOWNLOAD_ORIGINAL)
    why = reason_given(f"media {item.id}", reason)
    opened = custody_usecases.view_media(
        instance.acting(user.login),
        item.sha256,
        actor=user.login,
        reason=why,
        view=View.ORIGINAL,
        out=staging / "original",
        recorded_to=WEB_DOWNLOAD,
    )
    assert opened.path is not None
    return Download(item, opened.path, file_name(item), opened.event)
