"""The disposal queue (the approvers' page): each request with what its items are — name,
kind, when recorded, size — and why each may go now (its retention's reasons), read for the
requests :func:`pipeline.retention.disposal.list_disposals` shows the user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pipeline.accounts.users import User
from pipeline.catalog import media as media_db
from pipeline.instance import Instance
from pipeline.models import MediaKind
from pipeline.retention.derive import retentions_of
from pipeline.retention.disposal import list_disposals
from pipeline.retention.disposal_requests import DisposalListing, DisposalRequest, ItemState
from pipeline.retention.rules import rules_of


@dataclass(frozen=True)
class QueuedItem:
    media_id: int
    name: str
    kind: MediaKind
    recorded_start: datetime | None
    size: int
    state: ItemState
    note: str | None
    until: datetime | None  # its retention now (None: permanent)
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Queued:
    request: DisposalRequest
    items: tuple[QueuedItem, ...]


def disposal_queue(
    instance: Instance, user: User, listing: DisposalListing = DisposalListing.WAITING
) -> tuple[Queued, ...]:
    """The requests ``listing`` shows the user, each with its items described."""
    found = list_disposals(instance, user, listing)
    wanted = sorted({m for r in found for m in r.media})
    now, rules = instance.clock(), rules_of(instance.settings)
    with instance.catalog.read() as conn:
        items = {m: media_db.get(conn, m) for m in wanted}
        kept = retentions_of(conn, rules, wanted, now=now)
    return tuple(
        Queued(
            r,
            tuple(
                QueuedItem(
                    i.media_id,
                    items[i.media_id].original_name,
                    items[i.media_id].kind,
                    items[i.media_id].recorded_start,
                    i.size,
                    i.state,
                    i.note,
                    kept[i.media_id].until if i.media_id in kept else None,
                    kept[i.media_id].reasons if i.media_id in kept else (),
                )
                for i in r.items
            ),
        )
        for r in found
    )
