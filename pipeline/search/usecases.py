"""The use cases of finding media items: search in the query language, and the plain listing.

Each takes the :class:`~pipeline.instance.Instance` first, reads through
``instance.catalog.read()`` (a lookup never takes SQLite's write lock, so it never queues
behind an ingest) and returns a frozen dataclass that ``plain()`` turns into the JSON of
``--json``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pipeline.catalog import media as media_db
from pipeline.instance import Instance
from pipeline.models import MediaItem, MediaStatus
from pipeline.search import run
from pipeline.search.query import ItemView, parse
from pipeline.settings import Settings


@dataclass(frozen=True)
class Hit(ItemView):
    """An item a search found, with where its thumbnail can be had: a file on this host
    (local store), an ``s3://bucket/key`` (S3 store), or None (no thumbnail, or its file is
    gone). ``thumbnail_key`` is the store's key itself."""

    thumbnail: str | None


@dataclass(frozen=True)
class SearchResult:
    query: str  # as given
    sort: str  # as ``Sort.parse`` reads it back: "-recorded", "size", …
    limit: int
    more: bool  # more items match than the limit let through
    items: tuple[Hit, ...]


def search(
    instance: Instance, text: str, *, sort: run.Sort = run.NEWEST_FIRST, limit: int = 50
) -> SearchResult:
    """The first ``limit`` items the query ``text`` selects (QueryError when it does not
    parse), in the sort's order. Times in the query are local (``devices.timezone``)."""
    query = parse(text, instance.settings.zone)
    with instance.catalog.read() as conn:
        found = run.search(conn, query, sort=sort, limit=limit)
    hits = tuple(_hit(instance.settings, v) for v in found.items)
    return SearchResult(text, str(sort), limit, found.more, hits)


def media_list(
    instance: Instance, *, status: MediaStatus | None = None, limit: int = 100
) -> tuple[MediaItem, ...]:
    """Media items, newest first; only those of ``status`` when given."""
    with instance.catalog.read() as conn:
        return tuple(media_db.listing(conn, status=status, limit=limit))


def _hit(settings: Settings, view: ItemView) -> Hit:
    fields = {f.name: getattr(view, f.name) for f in dataclasses.fields(view)}
    return Hit(**fields, thumbnail=derived_location(settings, view.thumbnail_key))


def derived_location(settings: Settings, key: str | None) -> str | None:
    """Where a derived object (proxy, thumbnail) of the store can be had, without opening the
    store (an S3 store would start a client and check its lock for every search): the file's
    path in a local archive, if it is there; the object's ``s3://`` address in a bucket, which
    has no local path until something downloads it."""
    if key is None:
        return None
    if settings.store.kind == "s3":
        return f"s3://{settings.store.s3.bucket}/{key}"
    path = settings.archive_dir / key
    return str(path) if path.is_file() else None
