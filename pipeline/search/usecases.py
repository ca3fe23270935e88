"""The use cases of finding media items: search in the query language, and the plain listing.

Each takes the :class:`~pipeline.instance.Instance` first, reads through
``instance.catalog.read()`` (a lookup never takes SQLite's write lock, so it never queues
behind an ingest) and returns a frozen dataclass that ``plain()`` turns into the JSON of
``--json``.

What they find comes without the fields that name people and places (descriptions, GPS,
text-record fields: :class:`~pipeline.custody.access.Field`) unless the caller reveals them
with who and why (``reveal``, ``actor``, ``reason``); then one VIEWED custody event names
the page's items and is committed before the page is returned (access supervision, 调阅监督).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.accounts.permissions import Reach
from pipeline.cases.categories import load_categories
from pipeline.catalog import media as media_db
from pipeline.custody import access
from pipeline.custody.access import Field, ListedItem
from pipeline.errors import ConfigError
from pipeline.instance import Instance
from pipeline.models import MediaStatus
from pipeline.search import run
from pipeline.search.query import Field as QueryField
from pipeline.search.query import ItemView, Query, Value, parse
from pipeline.settings import Settings


@dataclass(frozen=True)
class Hit(ItemView):
    """An item a search found, with where its thumbnail can be had: a file on this host
    (local store), an ``s3://bucket/key`` (S3 store), or None (no thumbnail, or its file is
    gone). ``thumbnail_key`` is the store's key itself."""

    thumbnail: str | None
    #: The fields it has that were left out (None) because they were not revealed.
    withheld: tuple[Field, ...] = dataclasses.field(kw_only=True, default=())


@dataclass(frozen=True)
class SearchResult:
    query: str  # as given
    sort: str  # as ``Sort.parse`` reads it back: "-recorded", "size", …
    limit: int
    more: bool  # more items match than the limit let through
    items: tuple[Hit, ...]
    withheld: tuple[Field, ...] = ()  # left out of some item of the page: reveal to see them
    viewed: int | None = None  # the seq of the VIEWED event of a revealed page


def search(
    instance: Instance,
    text: str,
    *,
    sort: run.Sort = run.NEWEST_FIRST,
    limit: int = 50,
    reveal: bool = False,
    actor: str | None = None,
    reason: str | None = None,
    scope: Reach | None = None,
) -> SearchResult:
    """The first ``limit`` items the query ``text`` selects (QueryError when it does not
    parse), in the sort's order; of those ``scope`` holds when given (a signed-in user's
    ``permissions.reach``; the CLI on the server's shell gives none and sees every item).
    Times in the query are local (``devices.timezone``).
    Descriptions are withheld unless ``reveal``, which needs who and why (AccessRefused) and
    is recorded before the result is returned."""
    if reveal:
        access.purpose("search", actor, reason)  # refused before anything is read
    query = _category_ids(parse(text, instance.settings.zone), instance.settings)
    with instance.catalog.read() as conn:
        found = run.search(conn, query, sort=sort, limit=limit, scope=scope)
    hits = tuple(_hit(instance.settings, v, revealed=reveal) for v in found.items)
    viewed = None
    if reveal and hits:
        shown = {Field.DESCRIPTION} if any(h.description for h in hits) else set()
        event = access.reveal(
            instance.catalog,
            actor=actor,
            reason=reason,
            subject="search",
            media_ids=[h.id for h in hits],
            fields=shown,
            now=instance.clock(),
            query=text,
        )
        viewed = event.seq
    withheld = _union(h.withheld for h in hits)
    return SearchResult(text, str(sort), limit, found.more, hits, withheld, viewed)


def media_list(
    instance: Instance,
    *,
    status: MediaStatus | None = None,
    limit: int = 100,
    reveal: bool = False,
    actor: str | None = None,
    reason: str | None = None,
) -> tuple[ListedItem, ...]:
    """Media items, newest first; only those of ``status`` when given. Descriptions, GPS and
    text-record fields are withheld (each item's ``withheld`` names them) unless ``reveal``,
    which needs who and why (AccessRefused) and is recorded before the list is returned."""
    if reveal:
        access.purpose("media list", actor, reason)  # refused before anything is read
    with instance.catalog.read() as conn:
        found = media_db.listing(conn, status=status, limit=limit)
    if reveal and found:
        access.reveal(
            instance.catalog,
            actor=actor,
            reason=reason,
            subject="media list",
            media_ids=[m.id for m in found],
            fields=_union(access.sensitive_fields(m) for m in found),
            now=instance.clock(),
            **({"status": status.value} if status else {}),
        )
    return tuple(access.listed(m, revealed=reveal) for m in found)


def _category_ids(query: Query, settings: Settings) -> Query:
    """``category:查封扣押`` names a category as people say it (its zh-CN or English name, or
    a part of one zh-CN name); cases store its id. A name no category has is left as typed:
    it matches nothing, as an unknown id does."""
    if not any(t.field is QueryField.CATEGORY for t in query.terms):
        return query
    categories = load_categories(settings)

    def known(value: Value) -> Value:
        try:
            return categories.get(str(value)).id
        except ConfigError:
            return value

    return Query(
        tuple(
            dataclasses.replace(t, values=tuple(known(v) for v in t.values))
            if t.field is QueryField.CATEGORY
            else t
            for t in query.terms
        )
    )


def _hit(settings: Settings, view: ItemView, *, revealed: bool) -> Hit:
    fields = {f.name: getattr(view, f.name) for f in dataclasses.fields(view)}
    withheld: tuple[Field, ...] = ()
    if not revealed and view.description:
        fields["description"], withheld = None, (Field.DESCRIPTION,)
    return Hit(
        **fields, thumbnail=derived_location(settings, view.thumbnail_key), withheld=withheld
    )


def _union(groups: Iterable[Iterable[Field]]) -> tuple[Field, ...]:
    """The fields named in any group, in the order :class:`Field` declares them."""
    found = {f for group in groups for f in group}
    return tuple(f for f in Field if f in found)


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
