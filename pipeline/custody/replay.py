"""Replaying the custody log against the catalog rows it recorded.

The chain and its signed checkpoints prove that no event was edited; this proves that the rows
of ``media``, ``media_tags``, ``links``, ``cases`` and ``case_officers`` are what those events
set. Each event that writes a row carries the values it wrote (``details["row"]``: column →
value as :func:`recorded` encodes it; the media row's ``extra`` as ``details["extra_sha256"]``);
replaying the events in sequence gives every field its last recorded value, and the catalog
must hold exactly that. An attacker who can write the database but cannot forge events is
caught by any edit, swap, insert or delete of those rows.

Events written before their kind carried ``row`` give what they always carried (INGESTED: the
SHA-256, size, kind, original name, device and officer; a description, a text record, a link,
an unlink, a tag, a seal: everything they set). **A field no event carries is not compared**:
an item ingested by an older version is checked on those fields only, until an event sets the
others. A media row's ``linked`` (kept by triggers from its links, migration 0013) is held to
its links, which are held to their events.

Values compare exactly as stored: times as UTC ISO 8601 with microseconds (the custody log's
canonical form, whatever zone a datetime came in), dates as ISO dates, floats as JSON numbers
(Python's JSON round-trip of a float is exact; NaN, which SQLite stores as NULL, is None).

The media rows are read in chunks of ids, each chunk with its events (ordered by media id, on
the index of ``custody_events.media_id``) and tags in one short snapshot, so memory does not
grow with the archive; the link events met on the way, the cases and the links are few and are
kept until the end, when they are compared in one last snapshot together with the link events
appended meanwhile.

A sealed case file cannot change: every link, unlink, change or second seal of a case after its
SEALED event is a problem (there is no event that unseals).

A disposed record stays disposed: its DISPOSED event sets the status ``disposed`` and clears
the proxy and thumbnail keys, so a row put back to ``archived`` is a mismatch (no event
undisposes); :mod:`pipeline.custody.tombstones` holds its tombstone to that event.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    String,
    and_,
    exists,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.exc import SQLAlchemyError

from pipeline.catalog import Catalog
from pipeline.catalog.db import READ_ONLY
from pipeline.catalog.schema import (
    case_officers,
    cases,
    custody_events,
    custody_head,
    links,
    media,
    media_tags,
)
from pipeline.custody.verify_bag import Problem
from pipeline.errors import CatalogError
from pipeline.models import EventKind, MediaStatus

MISMATCH = "E-RECORD-MISMATCH"
#: Columns whose values a verify report does not print: who may read them is supervised
#: (descriptions hold names and ID numbers; GPS places people). The mismatch is still named.
WITHHELD = frozenset(
    {"description", "latitude", "longitude", "record_type", "signature", "extra", "source_path"}
)
UNRECORDED = "E-RECORD-UNRECORDED"
MISSING = "E-RECORD-MISSING"
SEALED = "E-RECORD-SEALED"

#: Media rows per snapshot: with their events and tags, a few megabytes.
CHUNK = 2000

_LINK_KINDS = (EventKind.LINKED.value, EventKind.UNLINKED.value)
_CASE_KINDS = (EventKind.CASE_CHANGED.value, EventKind.SEALED.value)


@dataclass(frozen=True)
class Replay:
    """What replaying the log found: the problems, and how much was read."""

    problems: tuple[Problem, ...]
    events: int  # custody events read
    rows: int  # catalog rows compared (media, tags, links, cases, case officers)
    seconds: float


# ------------------------------------------------------------------------------ encoding


_AS_IS = frozenset({str, int, bool, type(None)})


def recorded(value: Any) -> Any:
    """A catalog value as custody events record it, and as the replay compares it."""
    if type(value) in _AS_IS:  # most values: checked first, the replay calls this per field
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        # SQLite stores NaN as NULL; the JSON of an event holds no NaN or infinity.
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {str(k): recorded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [recorded(v) for v in value]
    return value


def recorded_row(values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``row`` of an event: the columns it wrote and their values."""
    return {str(k): recorded(v) for k, v in values.items()}


def digest(value: Any) -> str:
    """SHA-256 of a JSON value in canonical form (the media row's ``extra``)."""
    text = json.dumps(recorded(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# ------------------------------------------------------------------------- what events set


@dataclass(frozen=True)
class _Event:
    seq: int
    at: datetime
    actor: str
    kind: str
    media_id: int | None
    subject: str
    details: Mapping[str, Any]


def _iso(at: datetime) -> str:
    return str(recorded(at))


def _media_sets(e: _Event) -> dict[str, Any]:
    """The media columns an event set, with the values it recorded."""
    d, kind = e.details, e.kind
    found: dict[str, Any] = {}
    if kind == EventKind.INGESTED:
        found["ingested_at"] = _iso(e.at)
        found.update((k, d[k]) for k in ("sha256", "size", "kind", "original_name") if k in d)
        if "device" in d:
            found["device_serial"] = d["device"]
        if "officer" in d:
            found["officer_id"] = d["officer"]
        if "extra_sha256" in d:
            found["extra"] = d["extra_sha256"]
    elif kind == EventKind.QUARANTINED:
        found["status"] = MediaStatus.QUARANTINED.value
        if "reason" in d:
            found["quarantine_reason"] = d["reason"]
    elif kind == EventKind.QUARANTINE_RELEASED:
        found.update(status=MediaStatus.ARCHIVED.value, quarantine_reason=None)
        if "device" in d:
            found["device_serial"] = d["device"]
        if "officer" in d:
            found["officer_id"] = d["officer"]
    elif kind == EventKind.PROXY_MADE and "key" in d:
        found["proxy_key"] = d["key"]
    elif kind == EventKind.THUMBNAIL_MADE and "key" in d:
        found["thumbnail_key"] = d["key"]
    elif kind == EventKind.DISPOSED:
        # Disposed by an approved request: never back to archived (its ``row`` says so too).
        found.update(status=MediaStatus.DISPOSED.value, proxy_key=None, thumbnail_key=None)
    elif kind == EventKind.DESCRIBED:
        if "description" in d:
            found.update(description=d["description"], described_at=_iso(e.at))
            found["described_by"] = e.actor
        found.update((k, d[k]) for k in ("record_type", "signature") if k in d)
    else:
        return found
    row = d.get("row")
    if isinstance(row, Mapping):
        found.update(row)
    return found


def _case_sets(e: _Event) -> dict[str, Any]:
    d = e.details
    found: dict[str, Any] = {"updated_at": _iso(e.at)}
    if e.kind == EventKind.SEALED:
        found.update(status="archived", archived_at=_iso(e.at))
        if "bag_sha256" in d:
            found["archive_key"] = d["bag_sha256"]
        if "archived_on" in d:
            found["archived_on"] = d["archived_on"]
        return found
    row = d.get("row")
    if isinstance(row, Mapping):
        found.update(row)
        return found
    # Written before CASE_CHANGED carried its row: what it did carry.
    found.update((k, d[k]) for k in ("category", "due", "status") if k in d)
    if "officers" in d:
        found["officers"] = sorted(d["officers"])
    for key in ("action_start", "action_end"):
        if key in d:  # isoformat() of the time as given, in any zone
            found[key] = None if d[key] is None else _iso(datetime.fromisoformat(d[key]))
    return found


# ------------------------------------------------------------------------------- the check


@dataclass
class _Findings:
    problems: list[Problem] = field(default_factory=list)
    events: int = 0
    rows: int = 0
    unrecorded: set[int] = field(default_factory=set)  # media rows no INGESTED event made

    def add(self, code: str, subject: str, message: str) -> None:
        self.problems.append(Problem(code, subject, message))

    def compare(
        self, table: str, key: object, expected: Mapping[str, tuple[Any, int]], row: Any
    ) -> None:
        for column, (value, seq) in expected.items():
            if column not in row:
                continue  # a key the event carries beyond the table's columns
            found = recorded(row[column])
            if found != value:
                if column in WITHHELD:  # read under supervision only (调阅监督): not here
                    shown = "a value that is not the one the custody log recorded"
                else:
                    shown = f"{found!r}, the custody log recorded {value!r}"
                self.add(
                    MISMATCH, f"{table} {key} {column}", f"the catalog holds {shown} (event {seq})"
                )


def check_records(catalog: Catalog, *, chunk: int = CHUNK) -> Replay:
    """Replay the custody log and compare the catalog's rows of media, tags, links, cases
    and case officers with it; every difference is a problem (module docstring)."""
    started = time.perf_counter()
    found = _Findings()
    with _snapshot(catalog) as conn:
        start_head = _head(conn)
    link_events: dict[int, _Event] = {}
    for batch in _media_chunks(catalog, chunk):
        _check_media(found, batch, link_events)
    with _snapshot(catalog) as conn:
        tail = _events(conn, custody_events.c.seq > start_head, custody_events.c.seq)
        link_events.update((e.seq, e) for e in tail if e.kind in _LINK_KINDS)
        found.events += len(tail)
        sealed = _check_cases(found, conn)
        _check_links(found, conn, sorted(link_events.values(), key=lambda e: e.seq), sealed)
        _check_linked(found, conn)
    return Replay(
        tuple(found.problems), found.events, found.rows, round(time.perf_counter() - started, 3)
    )


def _check_linked(found: _Findings, conn: Connection) -> None:
    """A media row's ``linked`` is kept by triggers from its links (migration 0013), and the
    links are held to their events (:func:`_check_links`): a flag its links do not give was
    written by other hands (the dashboard's link rate counts it)."""
    active = exists().where(links.c.media_id == media.c.id, links.c.removed_at.is_(None))
    wrong = or_(and_(media.c.linked.is_(True), ~active), and_(media.c.linked.is_(False), active))
    for media_id, flag in conn.execute(select(media.c.id, media.c.linked).where(wrong)):
        if media_id in found.unrecorded:
            continue  # a row of other hands as a whole: said once
        found.add(
            MISMATCH,
            f"media {media_id} linked",
            f"the catalog holds {bool(flag)!r}, its links say {not flag!r}",
        )


@contextmanager
def _snapshot(catalog: Catalog) -> Iterator[Connection]:
    """A read-only transaction that sees one moment: SQLite's deferred BEGIN in WAL mode
    does; PostgreSQL needs REPEATABLE READ for its statements to share a snapshot."""
    options: dict[str, Any] = {READ_ONLY: True}
    if catalog.engine.dialect.name == "postgresql":
        options["isolation_level"] = "REPEATABLE READ"
    try:
        with catalog.engine.connect().execution_options(**options) as conn, conn.begin():
            yield conn
    except SQLAlchemyError as exc:
        raise CatalogError(f"catalog {catalog.engine.url!r}: {exc}") from exc


def _head(conn: Connection) -> int:
    seq = conn.execute(select(custody_head.c.seq).where(custody_head.c.id == 1)).scalar()
    return int(seq or 0)


_EVENT_COLUMNS = (
    custody_events.c.seq,
    custody_events.c.at,
    custody_events.c.actor,
    custody_events.c.kind,
    custody_events.c.media_id,
    custody_events.c.subject,
    # Decoded only for the events that set a field: most (views, fixity) set none.
    type_coerce(custody_events.c.details, String).label("details"),
)
_SETTING = frozenset(
    k.value
    for k in (
        EventKind.INGESTED,
        EventKind.QUARANTINED,
        EventKind.QUARANTINE_RELEASED,
        EventKind.PROXY_MADE,
        EventKind.THUMBNAIL_MADE,
        EventKind.DESCRIBED,
        EventKind.TAGGED,
        EventKind.LINKED,
        EventKind.UNLINKED,
        EventKind.CASE_CHANGED,
        EventKind.SEALED,
        EventKind.DISPOSED,
    )
)


def _event(row: Row[Any]) -> _Event:
    details: Any = {}
    if row.kind in _SETTING:
        details = row.details
        if isinstance(details, str | bytes):
            details = json.loads(details)
    return _Event(row.seq, row.at, row.actor, row.kind, row.media_id, row.subject, details)


def _events(conn: Connection, where: Any, *order: Any) -> list[_Event]:
    query = select(*_EVENT_COLUMNS).where(where).order_by(*order)
    return [_event(r) for r in conn.execute(query).all()]


@dataclass(frozen=True)
class _MediaChunk:
    rows: Sequence[Row[Any]]
    events: list[_Event]  # ordered by (media_id, seq)
    tags: Sequence[Row[Any]]


def _media_chunks(catalog: Catalog, chunk: int) -> Iterator[_MediaChunk]:
    """Media rows by id, each chunk with the events and tags of its id range; the last
    range is open-ended, so events of ids beyond the last row are read too."""
    last: int | None = None
    while True:
        with _snapshot(catalog) as conn:
            query = select(media).order_by(media.c.id).limit(chunk)
            if last is not None:
                query = query.where(media.c.id > last)
            rows = conn.execute(query).all()
            final = len(rows) < chunk
            upper = None if final else int(rows[-1].id)
            ev, tg = custody_events.c.media_id, media_tags.c.media_id
            where_e: ColumnElement[bool] = ev.is_not(None)
            where_t: ColumnElement[bool] = tg.is_not(None)
            if last is not None:
                where_e, where_t = where_e & (ev > last), where_t & (tg > last)
            if upper is not None:
                where_e, where_t = where_e & (ev <= upper), where_t & (tg <= upper)
            events = _events(conn, where_e, ev, custody_events.c.seq)
            tags = conn.execute(select(media_tags).where(where_t)).all()
        yield _MediaChunk(rows, events, tags)
        if final:
            return
        last = upper


def _check_media(found: _Findings, batch: _MediaChunk, link_events: dict[int, _Event]) -> None:
    found.events += len(batch.events)
    found.rows += len(batch.rows) + len(batch.tags)
    by_item: dict[int, list[_Event]] = defaultdict(list)
    for e in batch.events:
        by_item[int(e.media_id or 0)].append(e)
    tags_of: dict[int, dict[str, Row[Any]]] = defaultdict(dict)
    for t in batch.tags:
        tags_of[int(t.media_id)][t.tag] = t
    rows = {int(r.id): r for r in batch.rows}
    for media_id in sorted(rows.keys() | by_item.keys() | tags_of.keys()):
        events, row = by_item.get(media_id, []), rows.get(media_id)
        link_events.update((e.seq, e) for e in events if e.kind in _LINK_KINDS)
        created = any(e.kind == EventKind.INGESTED for e in events)
        if row is None:
            if events:
                first = events[0]
                found.add(
                    MISSING,
                    f"media {media_id}",
                    f"the custody log records it (event {first.seq}, {first.kind}), "
                    "the catalog has no row",
                )
        elif not created:
            found.add(UNRECORDED, f"media {media_id}", "no INGESTED event records this row")
            found.unrecorded.add(media_id)
        else:
            expected: dict[str, tuple[Any, int]] = {}
            for e in events:
                expected.update((c, (v, e.seq)) for c, v in _media_sets(e).items())
            values: Mapping[Any, Any] = row._mapping
            if "extra" in expected:
                values = {**values, "extra": digest(row.extra or {})}
            found.compare("media", media_id, expected, values)
        _check_tags(found, media_id, events, tags_of.get(media_id, {}))


def _check_tags(
    found: _Findings, media_id: int, events: list[_Event], rows: Mapping[str, Row[Any]]
) -> None:
    expected: dict[str, tuple[dict[str, tuple[Any, int]], int]] = {}
    for e in events:
        if e.kind != EventKind.TAGGED:
            continue
        for tag in e.details.get("added", ()):
            values = {"created_at": (_iso(e.at), e.seq), "created_by": (e.actor, e.seq)}
            expected[tag] = (values, e.seq)
        for tag in e.details.get("removed", ()):
            expected.pop(tag, None)
    for tag in sorted(expected.keys() | rows.keys()):
        subject = f"media_tags {media_id} {tag}"
        if tag not in rows:
            seq = expected[tag][1]
            found.add(MISSING, subject, f"tagged by event {seq}, the catalog has no row")
        elif tag not in expected:
            found.add(UNRECORDED, subject, "no TAGGED event adds this tag (or it was removed)")
        else:
            found.compare("media_tags", f"{media_id} {tag}", expected[tag][0], rows[tag]._mapping)


def _check_cases(found: _Findings, conn: Connection) -> dict[str, int]:
    """Compare cases and their officers; returns the seq of each case's first SEALED event."""
    events = _events(
        conn,
        custody_events.c.media_id.is_(None) & custody_events.c.kind.in_(_CASE_KINDS),
        custody_events.c.seq,
    )
    found.events += len(events)
    sealed: dict[str, int] = {}
    expected: dict[str, dict[str, tuple[Any, int]]] = defaultdict(dict)
    for e in events:
        number = e.subject
        if number in sealed:
            found.add(
                SEALED,
                f"cases {number}",
                f"event {e.seq} ({e.kind}) changed the case file after it was sealed "
                f"(event {sealed[number]}); nothing unseals a case",
            )
        if e.kind == EventKind.SEALED:
            sealed.setdefault(number, e.seq)
        expected[number].update((c, (v, e.seq)) for c, v in _case_sets(e).items())
    rows = {r.number: r for r in conn.execute(select(cases))}
    officers: dict[str, list[str]] = defaultdict(list)
    for number, officer in conn.execute(
        select(case_officers.c.case_number, case_officers.c.officer_id)
    ):
        officers[number].append(officer)
    found.rows += len(rows) + sum(len(v) for v in officers.values())
    for number in sorted(expected.keys() | rows.keys() | officers.keys()):
        row = rows.get(number)
        if row is None:
            if number in expected:
                found.add(MISSING, f"cases {number}", "the custody log records it, no row")
            if officers.get(number):
                found.add(UNRECORDED, f"case_officers {number}", "officers of no case")
            continue
        if number not in expected:
            found.add(UNRECORDED, f"cases {number}", "no CASE_CHANGED event records this row")
            continue
        wanted = dict(expected[number])
        if "officers" in wanted:
            value, seq = wanted.pop("officers")
            listed = sorted(officers.get(number, []))
            if listed != value:
                found.add(
                    MISMATCH,
                    f"case_officers {number} officer_id",
                    f"the catalog holds {listed!r}, the custody log recorded {value!r} "
                    f"(event {seq})",
                )
        found.compare("cases", number, wanted, row._mapping)
    return sealed


def _check_links(
    found: _Findings, conn: Connection, events: Iterable[_Event], sealed: Mapping[str, int]
) -> None:
    """Compare the links with the LINKED and UNLINKED events. A link is known by the id its
    event records; one linked by an older version, by its case and record and its order."""
    by_id: dict[int, dict[str, tuple[Any, int]]] = {}
    legacy: dict[tuple[str, int], list[dict[str, tuple[Any, int]]]] = defaultdict(list)
    active: dict[tuple[str, int], list[dict[str, tuple[Any, int]]]] = defaultdict(list)
    for e in events:
        d, media_id = e.details, int(e.media_id or 0)
        number = str(d.get("case", e.subject))
        if number in sealed and e.seq > sealed[number]:
            found.add(
                SEALED,
                f"cases {number}",
                f"event {e.seq} ({e.kind} media {media_id}) changed the case file after it "
                f"was sealed (event {sealed[number]}); nothing unseals a case",
            )
        if e.kind == EventKind.LINKED:
            rule = d.get("rule") if d.get("method") == "rule" else d.get("reason")
            values: dict[str, Any] = {
                "case_number": number,
                "media_id": media_id,
                "method": d.get("method"),
                "rule": rule,
                "actor": e.actor,
                "created_at": _iso(e.at),
                "removed_at": None,
                "removed_by": None,
                "removed_reason": None,
            }
            values.update(d.get("row") or {})
            link = {c: (v, e.seq) for c, v in values.items()}
            if "link" in d:
                by_id[int(d["link"])] = link
            else:
                legacy[number, media_id].append(link)
            active[number, media_id].append(link)
        else:
            removed = {
                "removed_at": _iso(e.at),
                "removed_by": e.actor,
                "removed_reason": d.get("reason"),
                **(d.get("row") or {}),
            }
            ids = d.get("links")
            ended = [by_id.get(int(i)) for i in ids] if ids is not None else None
            kept = []
            for link in active.pop((number, media_id), []):
                if ended is None or any(link is other for other in ended):
                    link.update((c, (v, e.seq)) for c, v in removed.items())
                else:
                    kept.append(link)
            if kept:
                active[number, media_id] = kept
    rows = conn.execute(select(links).order_by(links.c.id)).all()
    found.rows += len(rows)
    unclaimed: dict[tuple[str, int], list[Row[Any]]] = defaultdict(list)
    for row in rows:
        if int(row.id) in by_id:
            found.compare("links", row.id, by_id.pop(int(row.id)), row._mapping)
        else:
            unclaimed[row.case_number, int(row.media_id)].append(row)
    for key in sorted(legacy.keys() | unclaimed.keys()):
        recorded_links, found_rows = legacy.get(key, []), unclaimed.get(key, [])
        for link, row in zip(recorded_links, found_rows, strict=False):
            found.compare("links", row.id, link, row._mapping)
        for row in found_rows[len(recorded_links) :]:
            found.add(UNRECORDED, f"links {row.id}", "no LINKED event records this row")
        for link in recorded_links[len(found_rows) :]:
            found.add(MISSING, f"links of case {key[0]} media {key[1]}", _gone(link))
    for link_id, link in sorted(by_id.items()):
        found.add(MISSING, f"links {link_id}", _gone(link))


def _gone(link: Mapping[str, tuple[Any, int]]) -> str:
    return f"the custody log records it (event {link['created_at'][1]}), the catalog has no row"
