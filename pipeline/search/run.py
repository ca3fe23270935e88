"""Running a query: the media items it selects, sorted and cut to a limit, as views.

The WHERE clause comes from :mod:`pipeline.query`; this module adds the order and the limit,
and loads what a person sees of each item (officer, tags, linked cases) in a few batched
queries, never one per item. How the common queries stay fast at a million items:

- ``case:`` starts from ``links`` (index on case_number), ``tag:`` from ``media_tags``;
- ``officer:`` and ``device:`` with ``recorded:`` use the (officer_id | device_serial,
  recorded_start) indexes, which also give the default order (newest recording first);
- ``sha256:`` is a range on the unique index of sha256;
- ``officer:`` names are looked up in the registry first: the SQL then holds officer ids;
- text is looked up in an index when it matches few items, and tested item by item when it
  matches many: the sort's index then brings the newest items first and the limit fills
  early. SQLite counts the index's matches, up to ``BROAD``; PostgreSQL tests the newest
  ``SAMPLE`` documents (a count in a GIN index reads every match) and puts the ids its
  index finds into the query as one array (the planner's guess of how many items hold a
  Chinese phrase is no guide).

PostgreSQL's btree indexes give a descending order with nulls first, so ``ORDER BY … DESC
NULLS LAST`` cannot walk them: the planner fetched every match and sorted it (a scan of all of
media for broad text). :func:`search` therefore asks PostgreSQL for the items with a sort value
(``DESC``, which the index gives) and then, when the limit is not yet full, for those without.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Text,
    and_,
    case,
    column,
    func,
    select,
    table,
)

from pipeline.accounts.permissions import Reach
from pipeline.catalog.reach import media_within
from pipeline.catalog.schema import cases, links, media, media_tags, officers, search_text
from pipeline.models import MediaKind, MediaStatus
from pipeline.search.query import (
    TRIGRAM,
    Field,
    ItemView,
    LinkedCase,
    Lookups,
    Query,
    fts_phrase,
    fts_rowids,
    holds,
    postgres_indexed,
    where,
)


class SortKey(enum.StrEnum):
    RECORDED = "recorded"
    INGESTED = "ingested"
    DURATION = "duration"
    SIZE = "size"
    ID = "id"


_SORT_COLUMNS = {
    SortKey.RECORDED: media.c.recorded_start,
    SortKey.INGESTED: media.c.ingested_at,
    SortKey.DURATION: media.c.duration_s,
    SortKey.SIZE: media.c.size,
    SortKey.ID: media.c.id,
}


@dataclass(frozen=True)
class Sort:
    key: SortKey
    descending: bool = False

    @classmethod
    def parse(cls, text: str) -> Sort:
        """``recorded`` (ascending) or ``-recorded`` (descending); ValueError names the keys."""
        name = text.strip()
        descending = name.startswith("-")
        try:
            return cls(SortKey(name.removeprefix("-").lower()), descending)
        except ValueError:
            keys = ", ".join(SortKey)
            raise ValueError(f"cannot sort by {text!r} (by {keys}; -key for descending)") from None

    def __str__(self) -> str:
        return f"{'-' if self.descending else ''}{self.key.value}"


NEWEST_FIRST = Sort(SortKey.RECORDED, descending=True)


@dataclass(frozen=True)
class Results:
    items: list[ItemView]
    more: bool  # more items match than the limit let through


def search(
    conn: Connection,
    query: Query,
    *,
    sort: Sort = NEWEST_FIRST,
    limit: int = 50,
    scope: Reach | None = None,
) -> Results:
    """The first ``limit`` items the query selects, in the sort's order; only those ``scope``
    holds when given (a signed-in user's :func:`~pipeline.accounts.permissions.reach`)."""
    with _serial(conn):
        if conn.dialect.name == "postgresql" and sort.descending:
            ids = _postgres_descending(conn, query, sort, limit + 1, scope)
        else:
            query_ids = selection(conn, query, sort, scope).limit(limit + 1)
            ids = [r.id for r in conn.execute(query_ids)]
        return Results(views(conn, ids[:limit]), len(ids) > limit)


# What the search's statements run without, and as what (PostgreSQL's settings).
_SHORT = {"max_parallel_workers_per_gather": "0"}


@contextmanager
def _serial(conn: Connection) -> Iterator[None]:
    """PostgreSQL: no parallel workers for the search's statements (the setting as it was
    after them). Each statement reads a few thousand rows by index at most: starting workers
    cost 10-25 ms a statement on a busy machine. (JIT is off for every catalog session:
    ``pipeline.catalog.db``.)"""
    if conn.dialect.name != "postgresql":
        yield
        return
    before = [func.current_setting(name) for name in _SHORT]
    short = [func.set_config(name, value, True) for name, value in _SHORT.items()]
    was = conn.execute(select(*before, *short)).one()[: len(_SHORT)]
    try:
        yield
    finally:
        again = zip(_SHORT, was, strict=True)
        conn.execute(select(*(func.set_config(name, value, True) for name, value in again)))


def _scoped(clause: ColumnElement[bool], scope: Reach | None) -> ColumnElement[bool]:
    return clause if scope is None else and_(clause, media_within(scope))


def _postgres_descending(
    conn: Connection, query: Query, sort: Sort, limit: int, scope: Reach | None
) -> list[int]:
    """PostgreSQL: the first ``limit`` ids in :func:`selection`'s order, in up to two queries
    whose order an index gives (a backward scan yields ``DESC NULLS FIRST``, never ``NULLS
    LAST``): the items with a sort value, ``DESC``; then those without, by id."""
    col = _SORT_COLUMNS[sort.key]
    clause = _scoped(where(query, conn.dialect.name, look_up(conn, query)), scope)
    valued = (
        select(media.c.id)
        .where(clause, col.is_not(None))
        .order_by(col.desc(), media.c.id.desc())
        .limit(limit)
    )
    ids = [r.id for r in conn.execute(valued)]
    if len(ids) < limit and col.nullable:
        missing = (
            select(media.c.id)
            .where(clause, col.is_(None))
            .order_by(media.c.id.desc())
            .limit(limit - len(ids))
        )
        ids += [r.id for r in conn.execute(missing)]
    return ids


def selection(
    conn: Connection, query: Query, sort: Sort = NEWEST_FIRST, scope: Reach | None = None
) -> Select[Any]:
    """The ids the query selects (of those ``scope`` holds), in order (items without the sort
    value last)."""
    col = _SORT_COLUMNS[sort.key]
    direction = (col.desc(), media.c.id.desc()) if sort.descending else (col, media.c.id)
    order = (direction[0].nulls_last(), direction[1])
    clause = _scoped(where(query, conn.dialect.name, look_up(conn, query)), scope)
    return select(media.c.id).where(clause).order_by(*order)


# Where fetching and sorting every match (~5 µs each) costs what testing the candidates the
# sort's index brings does (~0.5 µs each, limit / share of them): near 2,500 matches at 1M items,
# measured on benchmarks/queries.py's catalog (SQLite).
BROAD = 2000
# PostgreSQL fetches a match from the heap for ~3-6 µs and tests a candidate the sort's index
# brings for ~3-6 µs (benchmark 4 at 1M items), so that the two cost the same near
# sqrt(limit × items) matches, 7,000 at 1M items: a share of ~0.7 %. Counting matches in a GIN
# index reads every one of them (30 ms for 130,000 at 1M), so the share is taken on the newest
# SAMPLE documents instead (~1 ms), which are those the sort's index brings first: from
# SAMPLE_BROAD of them on, text is broad, and tested item by item; below, it is looked up in
# the index, and its ids go into the query as the text of an array.
SAMPLE = 1000
SAMPLE_BROAD = 7

# SQLite's list of the FTS5 index's trigrams (migration 0005).
_vocab = table("search_fts_vocab", column("term"))


def look_up(conn: Connection, query: Query) -> Lookups:
    """What the query's SQL is built with: its officers' ids, and how each text value is
    found (:class:`~pipeline.search.query.Lookups`)."""
    text = _values(query, Field.TEXT)
    officer_ids = _officer_ids(conn, query)
    if conn.dialect.name == "sqlite":
        return Lookups(_fts_plan(conn, text), _sqlite_found(conn, text), officers=officer_ids)
    return Lookups(arrays=_postgres_arrays(conn, text), officers=officer_ids)


def _values(query: Query, field: Field) -> set[str]:
    return {v for t in query.terms if t.field is field for v in t.values if isinstance(v, str)}


def _officer_ids(conn: Connection, query: Query) -> dict[str, tuple[str, ...]]:
    """Each ``officer:`` value with the ids it stands for: itself (an id, registered or not),
    and the ids of the registered officers of that name; of those, the ones some item has
    (in one look at the index), so that a name comes to one id, whose index gives the
    order of the page, and a name nobody has to none."""
    values = _values(query, Field.OFFICER)
    named: dict[str, set[str]] = {v: {v} for v in values}
    if values:
        rows = select(officers.c.name, officers.c.id).where(officers.c.name.in_(sorted(values)))
        for r in conn.execute(rows):
            named[r.name].add(r.id)
    candidates = sorted({i for ids in named.values() for i in ids})
    present: set[str] = set()
    if candidates:
        some = select(media.c.officer_id).where(media.c.officer_id.in_(candidates))
        present.update(conn.execute(some.group_by(media.c.officer_id)).scalars())
    return {v: tuple(sorted(ids & present)) for v, ids in named.items()}


def _broad(conn: Connection, needle: str) -> bool:
    """Whether SAMPLE_BROAD or more of the newest SAMPLE documents hold the text."""
    return _count(conn, _held_by_newest(needle, conn.dialect.name)) >= SAMPLE_BROAD


def _held_by_newest(needle: str, dialect: str) -> Select[Any]:
    """Of the newest SAMPLE documents, up to SAMPLE_BROAD that hold the text."""
    newest = select(search_text.c.body).order_by(search_text.c.media_id.desc()).limit(SAMPLE)
    sample = newest.subquery()
    held = select(sample.c.body).where(holds(sample.c.body, needle, dialect))
    return held.limit(SAMPLE_BROAD)


def _postgres_arrays(conn: Connection, text: set[str]) -> dict[str, str]:
    """PostgreSQL: for each text value that is not broad, the ids of the items that may hold
    it, from the index of bigrams (migration 0014), as the text of an array."""
    arrays = {}
    for needle in text:
        # One statement: PostgreSQL runs the lookup (an init plan) only when the sample found
        # the text rare; NULL when it is broad.
        held = select(func.count()).select_from(_held_by_newest(needle, "postgresql").subquery())
        ids = func.array_agg(search_text.c.media_id).cast(Text)
        found = select(ids).where(postgres_indexed(needle)).scalar_subquery()
        rare = case((held.scalar_subquery() < SAMPLE_BROAD, func.coalesce(found, "{}")))
        array = conn.execute(select(rare)).scalar_one()
        if array is not None:
            arrays[needle] = array
    return arrays


def _fts_plan(conn: Connection, text: set[str]) -> dict[str, str]:
    """SQLite: for each text value of two characters or more that matches fewer than BROAD
    items, the FTS5 query that finds them ("" when none can match)."""
    plan = {}
    for needle in text:
        if len(needle) >= TRIGRAM:
            fts_query = fts_phrase(needle)
        elif len(needle) == TRIGRAM - 1:
            fts_query = " OR ".join(fts_phrase(t) for t in _trigrams_beginning(conn, needle))
        else:
            continue
        if not fts_query or _count(conn, fts_rowids(fts_query).limit(BROAD)) < BROAD:
            plan[needle] = fts_query
    return plan


def _sqlite_found(conn: Connection, text: set[str]) -> dict[str, tuple[int, ...]]:
    """SQLite: for each character (text of one) that is not broad, the ids of the items that
    hold it. It begins a trigram of the index wherever it stands but as the last character
    of a document (the last one of the last title of a linked case, before the final line
    break): the items linked to a case whose title holds it are added."""
    found = {}
    for needle in text:
        if len(needle) != 1 or _broad(conn, needle):
            continue
        ids: set[int] = set()
        beginning = _trigrams_beginning(conn, needle)
        if beginning:
            fts_query = " OR ".join(fts_phrase(t) for t in beginning)
            ids.update(conn.execute(fts_rowids(fts_query).limit(BROAD)).scalars())
        titled = select(cases.c.number).where(holds(cases.c.title, needle, "sqlite"))
        ends = select(links.c.media_id).where(
            links.c.removed_at.is_(None), links.c.case_number.in_(titled)
        )
        ids.update(conn.execute(ends.limit(BROAD)).scalars())
        if len(ids) < BROAD:
            found[needle] = tuple(sorted(ids))
    return found


def _trigrams_beginning(conn: Connection, text: str) -> list[str]:
    """The index's trigrams that begin with ``text`` (folded as the index folds Latin case)."""
    start = text.lower()
    after = start[:-1] + chr(ord(start[-1]) + 1)
    query = select(_vocab.c.term).where(_vocab.c.term >= start, _vocab.c.term < after)
    return [r.term for r in conn.execute(query)]


def _count(conn: Connection, rows: Select[Any]) -> int:
    return int(conn.execute(select(func.count()).select_from(rows.subquery())).scalar_one())


_VIEW_COLUMNS = (
    media.c.id,
    media.c.sha256,
    media.c.size,
    media.c.kind,
    media.c.status,
    media.c.original_name,
    media.c.station_id,
    media.c.ingested_at,
    media.c.device_serial,
    media.c.officer_id,
    media.c.recorded_start,
    media.c.recorded_end,
    media.c.duration_s,
    media.c.description,
    media.c.thumbnail_key,
    officers.c.name.label("officer_name"),
    officers.c.cert_no.label("officer_cert"),
    officers.c.department.label("officer_department"),
)
_CHUNK = 1000  # ids per IN list: well under every database's limit on bound parameters


def views(conn: Connection, ids: Sequence[int] | None = None) -> list[ItemView]:
    """Views of the items ``ids`` in that order, or of every item by id (for tests and tools)."""
    if ids is None:
        return [v for chunk in _all_id_chunks(conn) for v in _views(conn, chunk)]
    return [v for i in range(0, len(ids), _CHUNK) for v in _views(conn, ids[i : i + _CHUNK])]


def _all_id_chunks(conn: Connection) -> Iterator[list[int]]:
    ids = [r.id for r in conn.execute(select(media.c.id).order_by(media.c.id))]
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


def _views(conn: Connection, ids: Sequence[int]) -> list[ItemView]:
    if not ids:
        return []
    rows = conn.execute(
        select(*_VIEW_COLUMNS)
        .select_from(media.outerjoin(officers, officers.c.id == media.c.officer_id))
        .where(media.c.id.in_(ids))
    )
    tags: dict[int, list[str]] = {}
    for t in conn.execute(
        select(media_tags.c.media_id, media_tags.c.tag)
        .where(media_tags.c.media_id.in_(ids))
        .order_by(media_tags.c.tag)
    ):
        tags.setdefault(t.media_id, []).append(t.tag)
    linked: dict[int, list[LinkedCase]] = {}
    for c in conn.execute(
        select(
            links.c.media_id, cases.c.number, cases.c.title, cases.c.category, cases.c.department
        )
        .join(cases, cases.c.number == links.c.case_number)
        .where(links.c.media_id.in_(ids), links.c.removed_at.is_(None))
        .order_by(cases.c.number)
    ):
        linked.setdefault(c.media_id, []).append(
            LinkedCase(c.number, c.title, c.category, c.department)
        )
    by_id = {
        r.id: ItemView(
            id=r.id,
            sha256=r.sha256,
            size=r.size,
            kind=MediaKind(r.kind),
            status=MediaStatus(r.status),
            original_name=r.original_name,
            station_id=r.station_id,
            ingested_at=r.ingested_at,
            device_serial=r.device_serial,
            officer_id=r.officer_id,
            officer_name=r.officer_name,
            officer_cert=r.officer_cert,
            officer_department=r.officer_department,
            recorded_start=r.recorded_start,
            recorded_end=r.recorded_end,
            duration_s=r.duration_s,
            description=r.description,
            thumbnail_key=r.thumbnail_key,
            tags=tuple(tags.get(r.id, ())),
            cases=tuple(linked.get(r.id, ())),
        )
        for r in rows
    }
    return [by_id[i] for i in ids if i in by_id]
