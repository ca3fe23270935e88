"""Access supervision (调阅监督): every viewing of evidence names who and why, and is a custody
event; the audit trail lists that history.

Viewing means the browser proxy, a copy of the original (download), or the metadata. The
event is committed before the caller gets the path or the bytes: no view goes unrecorded.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, or_, select

from pipeline.catalog import Catalog
from pipeline.catalog import cases as case_rows
from pipeline.catalog import media as media_db
from pipeline.catalog.schema import custody_events
from pipeline.custody import log as custody
from pipeline.errors import AccessRefused, ChecksumMismatch, ExportError, NotFound
from pipeline.models import EventKind, MediaItem
from pipeline.storage.hashing import ALGORITHM, copy_and_hash
from pipeline.storage.local import ArchiveStore


class View(enum.StrEnum):
    PROXY = "proxy"  # the browser proxy, played in place
    ORIGINAL = "original"  # a copy of the original (download)
    METADATA = "metadata"


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
) -> Access:
    """View one media item (by id or SHA-256 prefix), recorded as a VIEWED event.
    ``store`` may be None for the metadata, which the catalog alone holds."""
    with catalog.read() as conn:
        item = media_db.get(conn, key)
    who, why = purpose(f"media {item.id}", actor, reason)
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
        if download_to is None:
            raise AccessRefused(f"media {item.id}", "a download needs a destination (--out)")
        path, staged = _stage_download(_needs(store, view), item, download_to, block_size)
    try:
        with catalog.begin() as conn:
            event = custody.append(
                conn,
                EventKind.VIEWED,
                who,
                media_id=item.id,
                station_id=item.station_id,
                subject=item.sha256,
                details={"view": view.value, "reason": why, **({"to": str(path)} if path else {})},
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
        part.chmod(0o444)
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


def audit(
    catalog: Catalog,
    *,
    media_key: str | None = None,
    actor: str | None = None,
    case: str | None = None,
    kinds: tuple[EventKind, ...] = (),
    limit: int = 1000,
) -> list[custody.CustodyEvent]:
    """The custody history that matches every filter given, the newest ``limit``, oldest
    first."""
    query = select(custody_events)
    with catalog.read() as conn:
        if case is not None:
            # A case's own events (changes, links, unlinks, sealing) name it as their subject;
            # with them comes everything that happened to the records linked to it now.
            linked = case_media(conn, case)
            query = query.where(
                or_(custody_events.c.subject == case, custody_events.c.media_id.in_(linked))
            )
        if media_key is not None:
            item = media_db.get(conn, media_key)
            query = query.where(custody_events.c.media_id == item.id)
        if actor is not None:
            query = query.where(custody_events.c.actor == actor)
        if kinds:
            query = query.where(custody_events.c.kind.in_([k.value for k in kinds]))
        newest = query.order_by(custody_events.c.seq.desc()).limit(limit)
        return list(reversed(custody.query(conn, newest)))
