"""Access supervision (调阅监督): every viewing of evidence names who and why, and is a custody
event; the audit trail lists that history.

Viewing means the browser proxy or the metadata (a VIEWED event), or a copy of the original
(a download: an EXPORTED event, as the copy leaves the archive). The event is committed before
the caller gets the path or the bytes: no view goes unrecorded.

Listings (media list, search, the audit trail) are not viewings: they withhold what names
people and places (:class:`Field`) unless the caller reveals it, with who and why, and then
one VIEWED event per page names the items shown and the fields revealed (:func:`reveal`).
The rule is here, not in an interface, so the CLI and the web application apply the same.

Where the access policy asks approval (``pipeline.approvals``: copying an original, another
department's items, a sealed case's…), a grant must cover the access of a user of the
catalog before anything is read; the event names the grant it used.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from pipeline.accounts.permissions import AuditReach
from pipeline.approvals import enforce
from pipeline.approvals.policy import Action, Policy
from pipeline.catalog import Catalog
from pipeline.catalog import cases as case_rows
from pipeline.catalog import media as media_db
from pipeline.catalog.reach import events_within
from pipeline.catalog.schema import custody_events
from pipeline.custody import log as custody
from pipeline.errors import AccessRefused, ChecksumMismatch, ExportError, NotFound
from pipeline.models import EventKind, MediaItem, MediaStatus
from pipeline.storage.hashing import ALGORITHM, copy_and_hash
from pipeline.storage.local import ArchiveStore


class View(enum.StrEnum):
    PROXY = "proxy"  # the browser proxy, played in place
    ORIGINAL = "original"  # a copy of the original (download)
    METADATA = "metadata"


#: The action of the access policy each view is (config/access-policy.toml): the metadata is
#: viewed as the proxy is, in place; a copy of the original is a copy (复制).
ACTION_OF_VIEW = {
    View.PROXY: Action.VIEW_PROXY,
    View.METADATA: Action.VIEW_PROXY,
    View.ORIGINAL: Action.DOWNLOAD_ORIGINAL,
}


class Field(enum.StrEnum):
    """What a listing withholds unless revealed: the text that names people and places."""

    DESCRIPTION = "description"  # 文字说明: the parties' names and ID numbers
    LOCATION = "location"  # GPS, and the free-text metadata tags recorders write it into
    TEXT_RECORD = "text_record"  # a text record's (笔录) type and signature


#: How a table shows a value it withholds.
WITHHELD = "（已隐去）"

#: The keys of ``ProbeResult.extra`` that describe the encoding, never the scene: shown in
#: listings. Every other key (title, comment, a recorder's own tags) may carry GPS or a name
#: and is withheld as LOCATION.
TECHNICAL_EXTRA = frozenset(
    {
        "format_profile",
        "brand",
        "writing_application",
        "encoder",
        "writing_library",
        "overall_bit_rate",
        "compliance",
        "recorded_date",
        "encoded_date",
        "creationdate",
        "rotation",
        "audio_channels",
        "audio_sampling_rate",
        "truncated",
    }
)

#: What a listing's VIEWED event calls itself in its details (``view``): a single item's
#: viewing says proxy, original or metadata (:class:`View`).
LISTING_VIEW = "listing"


@dataclass(frozen=True)
class ListedItem(MediaItem):
    """A media item in a listing; ``withheld`` names the fields it has that were left out
    (set to None) because they were not revealed."""

    withheld: tuple[Field, ...] = dataclasses.field(kw_only=True, default=())


def sensitive_fields(item: MediaItem) -> tuple[Field, ...]:
    """The fields of ``item`` a listing withholds, those it has values for."""
    found = []
    if item.description:
        found.append(Field.DESCRIPTION)
    probe = item.probe
    if (
        probe.latitude is not None
        or probe.longitude is not None
        or any(k not in TECHNICAL_EXTRA for k in probe.extra)
    ):
        found.append(Field.LOCATION)
    if item.record_type is not None or item.signature is not None:
        found.append(Field.TEXT_RECORD)
    return tuple(found)


def listed(item: MediaItem, *, revealed: bool) -> ListedItem:
    """``item`` as a listing shows it: whole when revealed, else without its sensitive
    fields, which ``withheld`` names."""
    fields = {f.name: getattr(item, f.name) for f in dataclasses.fields(MediaItem)}
    if revealed:
        return ListedItem(**fields)
    hidden = sensitive_fields(item)
    if Field.DESCRIPTION in hidden:
        fields["description"] = None
    if Field.LOCATION in hidden:
        probe = item.probe
        fields["probe"] = dataclasses.replace(
            probe,
            latitude=None,
            longitude=None,
            extra={k: v for k, v in probe.extra.items() if k in TECHNICAL_EXTRA},
        )
    if Field.TEXT_RECORD in hidden:
        fields["record_type"] = fields["signature"] = None
    return ListedItem(**fields, withheld=hidden)


def reveal(
    catalog: Catalog,
    *,
    actor: str | None,
    reason: str | None,
    subject: str,
    media_ids: Iterable[int],
    fields: Iterable[Field],
    now: datetime | None = None,
    **details: Any,
) -> custody.CustodyEvent:
    """Record that a page of a listing (``subject``: "media list", "search", "audit") was
    shown with its sensitive fields: one VIEWED event naming the items and the fields, who
    and why, committed before the caller shows anything. ``details`` adds what was asked
    (the query, the filters)."""
    who, why = purpose(subject, actor, reason)
    with catalog.begin() as conn:
        return custody.append(
            conn,
            EventKind.VIEWED,
            who,
            subject=subject,
            details={
                "view": LISTING_VIEW,
                "reason": why,
                "media": sorted(set(media_ids)),
                "fields": sorted({Field(f).value for f in fields}),
                **details,
            },
            now=now,
        )


def listing_names(event: custody.CustodyEvent, media_ids: set[int]) -> bool:
    """Whether ``event`` is a listing's VIEWED event that showed one of ``media_ids``."""
    shown = event.details.get("media") if event.details.get("view") == LISTING_VIEW else None
    return isinstance(shown, list) and not media_ids.isdisjoint(shown)


@dataclass(frozen=True)
class Access:
    item: MediaItem
    view: View
    path: Path | None  # the proxy, or the downloaded copy; None for metadata
    event: custody.CustodyEvent


def purpose(subject: str, actor: str | None, reason: str | None) -> tuple[str, str]:
    """Who and why, both required; blank is refused, naming what was asked for."""
    who, why = (actor or "").strip(), (reason or "").strip()
    if not who:
        raise AccessRefused(subject, "who is asking is required (--as)")
    if not why:
        raise AccessRefused(subject, "a reason is required (--reason)")
    return who, why


def open_media(
    catalog: Catalog,
    store: ArchiveStore | None,
    key: str,
    *,
    actor: str | None,
    reason: str | None,
    view: View = View.PROXY,
    download_to: Path | None = None,
    block_size: int = 4 << 20,
    now: datetime | None = None,
    recorded_to: str | None = None,
    policy: Policy | None = None,
    extra_details: Mapping[str, Any] | None = None,
) -> Access:
    """View one media item (by id or SHA-256 prefix), recorded as a VIEWED event; a copy of
    the original (a download) is an EXPORTED event: a verified copy leaves the archive.
    ``store`` may be None for the metadata, which the catalog alone holds. ``recorded_to``
    is where the event says the copy went (default: the path written; the web names the
    browser, not the staging file it streams from).

    With a ``policy`` (the use cases give the instance's), a user of the catalog acting
    needs a grant where the policy asks approval (ApprovalRequired, before anything is
    read or copied); the grant used is named in the event (``grant``). ``extra_details``
    goes into the event too (the web's viewing names the grant of an original it shows)."""
    with catalog.read() as conn:
        item = media_db.get(conn, key)
    who, why = purpose(f"media {item.id}", actor, reason)
    grants: dict[int, int] = {}
    if policy is not None:
        at = now or datetime.now(UTC)
        grants = enforce.require(catalog, policy, who, [item], ACTION_OF_VIEW[view], at)
    grant = grants.get(item.id)
    path: Path | None = None
    staged: Path | None = None
    if view is View.PROXY:
        if item.proxy_key is None:
            raise NotFound(
                "proxy",
                f"media {item.id} ({item.kind.value}, {item.status.value}) has none; "
                "open --view original or --view metadata",
            )
        path = _needs(store, view).derived_path(item.proxy_key)
    elif view is View.ORIGINAL:
        if item.status is MediaStatus.DISPOSED:  # issue 19: gone by an approved request
            raise NotFound("original", f"media {item.id} 已销毁 (disposed of): its tombstone stays")
        if download_to is None:
            raise AccessRefused(f"media {item.id}", "a download needs a destination (--out)")
        path, staged = _stage_download(_needs(store, view), item, download_to, block_size)
    to = recorded_to or (str(path) if path else None)
    kind = EventKind.EXPORTED if view is View.ORIGINAL else EventKind.VIEWED
    try:
        with catalog.begin() as conn:
            event = custody.append(
                conn,
                kind,
                who,
                media_id=item.id,
                station_id=item.station_id,
                subject=item.sha256,
                details={
                    "view": view.value,
                    "reason": why,
                    **({"to": to} if to else {}),
                    **({"grant": grant} if grant is not None else {}),
                    **(extra_details or {}),
                },
                now=now,
            )
        # The copy gets its name only once its event is committed.
        if staged is not None and path is not None:
            staged.rename(path)
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)
    return Access(item, view, path, event)


def _needs(store: ArchiveStore | None, view: View) -> ArchiveStore:
    if store is None:
        raise ValueError(f"viewing the {view.value} needs the store")
    return store


def _stage_download(
    store: ArchiveStore, item: MediaItem, target: Path, block_size: int
) -> tuple[Path, Path]:
    """Copy the original next to ``target``, hashing it as it goes: what is handed over is
    provably the original. Returns the target and the staged copy."""
    if target.is_dir():
        target = target / f"{item.id}_{item.original_name}"
    if target.exists():
        raise ExportError(target, "exists; a download never overwrites a file")
    part = target.with_name(f".{target.name}.part")
    try:
        with store.original_file(item.sha256) as source, part.open("xb") as out:
            digest = copy_and_hash(source, out, block_size)
        if digest.sha256 != item.sha256:
            raise ChecksumMismatch(target, ALGORITHM, item.sha256, digest.sha256)
        part.chmod(0o400)  # handed to one person: read-only, and theirs alone
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise ExportError(target, f"cannot write the download: {exc.strerror or exc}") from exc
    except BaseException:  # a bad copy, an unreadable original: leave nothing behind
        part.unlink(missing_ok=True)
        raise
    return target, part


def case_media(conn: Connection, number: str) -> list[int]:
    """The media items linked to a case now; NotFound for a case that does not exist."""
    if case_rows.get(conn, number) is None:
        raise NotFound("case", number)
    return [link.media_id for link in case_rows.links_of_case(conn, number)]


#: The details of a DESCRIBED event that hold the text set, and the field each one is.
DESCRIBED_DETAILS: Mapping[str, Field] = {
    "description": Field.DESCRIPTION,
    "record_type": Field.TEXT_RECORD,
    "signature": Field.TEXT_RECORD,
}


@dataclass(frozen=True)
class AuditedEvent(custody.CustodyEvent):
    """A custody event as the audit trail shows it. ``withheld`` names the fields whose
    values in ``details`` were left out (None) because they were not revealed: the event
    still says that a description changed, not to what. Its ``hash`` is of the whole event,
    so a withheld event does not hash to it; ``evidence verify`` and an export check the
    chain on the events themselves."""

    withheld: tuple[Field, ...] = dataclasses.field(kw_only=True, default=())


def audited(event: custody.CustodyEvent, *, revealed: bool) -> AuditedEvent:
    """``event`` as the audit trail shows it: whole when revealed, else without the text of
    a description or a text record's fields."""
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(custody.CustodyEvent)}
    if revealed or event.kind is not EventKind.DESCRIBED:
        return AuditedEvent(**fields)
    details = dict(event.details)
    hidden = [DESCRIBED_DETAILS[k] for k in details if k in DESCRIBED_DETAILS]
    for key in details.keys() & DESCRIBED_DETAILS.keys():
        details[key] = None
    fields["details"] = details
    return AuditedEvent(**fields, withheld=tuple(f for f in Field if f in hidden))


def audit(
    catalog: Catalog,
    *,
    media_key: str | None = None,
    actor: str | None = None,
    case: str | None = None,
    kinds: tuple[EventKind, ...] = (),
    limit: int = 1000,
    reveal: bool = False,
    viewer: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
    scope: AuditReach | None = None,
) -> list[AuditedEvent]:
    """The custody history that matches every filter given, the newest ``limit``, oldest
    first. An item's or a case's history holds the listings that showed its items too.
    Only the events ``scope`` holds when given (a signed-in user's
    ``permissions.audit_reach``; the CLI gives none and reads every event).

    The text of descriptions and text-record fields is withheld unless ``reveal``: that
    needs who (``viewer``; ``actor`` is the filter) and why (AccessRefused, before anything
    is read), and one VIEWED event naming the items whose history was shown is committed
    before the events are returned."""
    if reveal:
        purpose("audit", viewer, reason)
    query = select(custody_events)
    common = []
    if actor is not None:
        common.append(custody_events.c.actor == actor)
    if kinds:
        common.append(custody_events.c.kind.in_([k.value for k in kinds]))
    if scope is not None:
        common.append(events_within(scope))
    named: set[int] | None = None  # the items whose listings belong to this history
    with catalog.read() as conn:
        if case is not None:
            # A case's own events (changes, links, unlinks, sealing) name it as their subject;
            # with them comes everything that happened to the records linked to it now.
            linked = case_media(conn, case)
            query = query.where(
                or_(custody_events.c.subject == case, custody_events.c.media_id.in_(linked))
            )
            named = set(linked)
        if media_key is not None:
            item = media_db.get(conn, media_key)
            query = query.where(custody_events.c.media_id == item.id)
            named = {item.id} if named is None else named & {item.id}
        newest = query.where(*common).order_by(custody_events.c.seq.desc()).limit(limit)
        found = custody.query(conn, newest)
        if named and (not kinds or EventKind.VIEWED in kinds):
            found = _newest(found + _listings_naming(conn, named, common), limit)
    events = list(reversed(found))
    if reveal and events:
        reveal_page(catalog, events, viewer=viewer, reason=reason, now=now)
    return [audited(e, revealed=reveal) for e in events]


def reveal_page(
    catalog: Catalog,
    events: list[custody.CustodyEvent],
    *,
    viewer: str | None,
    reason: str | None,
    now: datetime | None,
) -> custody.CustodyEvent:
    """The VIEWED event of an audit page shown whole: it names the items of its events."""
    shown = {DESCRIBED_DETAILS[k] for e in events if e.kind is EventKind.DESCRIBED
             for k in e.details if k in DESCRIBED_DETAILS}  # fmt: skip
    return reveal(
        catalog,
        actor=viewer,
        reason=reason,
        subject="audit",
        media_ids=[e.media_id for e in events if e.media_id is not None],
        fields=shown,
        now=now,
    )


def _listings_naming(
    conn: Connection, media_ids: set[int], common: list[Any]
) -> list[custody.CustodyEvent]:
    """The listings' VIEWED events that showed one of ``media_ids``. They name their items
    in their details, which no index reaches: read every listing event, and keep those.
    Listings are revealed only with who and why, so there are few of them."""
    query = select(custody_events).where(
        and_(
            custody_events.c.kind == EventKind.VIEWED.value,
            custody_events.c.media_id.is_(None),
            *common,
        )
    )
    return [e for e in custody.query(conn, query) if listing_names(e, media_ids)]


def _newest(events: list[custody.CustodyEvent], limit: int) -> list[custody.CustodyEvent]:
    unique = {e.seq: e for e in events}
    return [unique[seq] for seq in sorted(unique, reverse=True)[:limit]]
