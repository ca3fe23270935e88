"""The archivists' query language: parsed into terms, compiled to SQL, matched in Python.

Grammar (modelled on beets' ``dbcore/queryparse.py``)::

    query   := term*                       terms are separated by whitespace; all must hold
    term    := ["-"] field ":" values      "-" negates the term
             | ["-"] values                no field: text (bare words, quoted phrases)
    values  := value ("," value)*          any one of the values may hold (OR)
    value   := bound | [bound] ".." [bound]   a range, ends inclusive, one of them may be open
    bound   := (char | '"' any-but-quote* '"')+

Whitespace and commas inside double quotes are kept (``"查封 仓库"``, ``officer:"Zhang Wei"``);
the quotes themselves are dropped, so a value cannot hold a double quote. ``name:`` is a field
only when ``name`` starts with a letter, so ``10:30`` is a bare word; an unknown field name
is an error. Ranges are taken by time, number and size fields; elsewhere ``..`` is an ordinary
character.

Fields (a media item matches when…):

    case        it is linked to that case (案件编号); removed links do not count
    officer     its officer's id or name is that (执法人员)
    cert        its officer's enforcement certificate number is that (执法证号)
    device      it was recorded by that device serial
    station     it came through that docking station
    department  its department is that: its officer's, or that of a case it is linked to
    category    a case it is linked to is of that category (seizure, demolition, …)
    kind        video | audio | photo | document | other (or 视频, 音频, 照片, 文书, 其他)
    status      archived | quarantined | disposed (or 已归档, 已隔离, 已销毁)
    recorded    its recording started within the time (range)
    ingested    it was ingested within the time (range)
    duration    its duration is that, or in the range: 90, 90s, 5m, 1h30m, 1.5h
    size        its size in bytes is that, or in the range: 2048, 500K, 10MB, 1.5GB (K = 1024)
    id          its id is that, or in the range
    sha256      its SHA-256 starts with these hex digits
    tag         it carries that tag (tags are compared in lower case)
    linked      yes: it is linked to a case; no: it is not
    described   yes: it has a written description (文字说明); no: it has none
    text        its text holds that substring (what a bare word means)

Times are local (``devices.timezone``, Asia/Shanghai) unless they carry a zone (``Z``,
``+08:00``), and a value stands for its whole period: ``2026``, ``2026-Q2``, ``2026-05``,
``2026-05-05``, ``2026-05-05T08``, ``2026-05-05T08:30``, ``2026-05-05T08:30:15``. So
``recorded:2026-05-05`` is that local day, and ``recorded:2026-05-01..2026-05-07`` runs to the
end of the 7th. Yes/no values: yes, no, true, false, y, n, 是, 否.

Text is a substring, compared without regard to the case of Latin letters, of the item's file
name, description, tags and the titles of the cases it is linked to; Chinese needs no word
breaks (``扣押`` finds 依法扣押物品). Every part of the item is one line of its search document
(``search_text``, kept by triggers), and a match never spans two parts.

How text is looked up: first in an index, for the items that hold it, when they are few;
when they are many (``pipeline.search.run.BROAD`` or more), item by item over the same
document, which the sort's index brings newest first, so that the page fills early.

- SQLite splits documents into trigrams (FTS5, every three characters). Text of three
  characters or more is a phrase of trigrams (``MATCH``). Two characters (two Chinese
  characters are a common search) are looked up as the trigrams they begin (every document
  ends in a line break, so every two characters of it begin one), listed by the index's
  vocabulary. One character is the trigrams it begins, and the items linked to a case whose
  title holds it (the last character of a document begins no trigram), unless the newest
  documents (``pipeline.search.run.SAMPLE``) find it broad. Item by item: ``LIKE``.
- PostgreSQL looks text up in its index of bigrams (every two characters, migration 0014):
  text of two characters or more is all of its bigrams, one character the bigrams it
  begins; each document found is then tested for the text itself, once the sort's order
  reaches it. Whether text is broad is
  judged first on the newest documents (``pipeline.search.run.SAMPLE``): counting in a GIN
  index reads every match. The ids found go into the query as one array; the item-by-item
  test (``strpos`` of the lower-cased text, which is what ILIKE does) is one no index
  serves, so that the planner walks the sort's index.

``officer:`` values are looked up in the registry first (a name stands for the ids of the
officers of that name), so that the SQL compares ``media.officer_id`` with a list of ids,
which its index serves, whatever the planner thinks of the names.

A term that does not hold on an item's missing value (``device:X`` on an item of no device) is
false; its negation is true. The SQL (:func:`where`) and the Python predicate (:func:`matches`)
follow the same rules; tests/test_search.py holds one against the other on a generated catalog.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    and_,
    any_,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    table,
    true,
)
from sqlalchemy import column as sql_column

from pipeline.catalog.schema import cases, links, media, media_tags, officers, search_text
from pipeline.errors import QueryError
from pipeline.models import MediaKind, MediaStatus
from pipeline.search.tags import normalize as normalize_tag


class Field(enum.StrEnum):
    CASE = "case"
    OFFICER = "officer"
    CERT = "cert"
    DEVICE = "device"
    STATION = "station"
    DEPARTMENT = "department"
    CATEGORY = "category"
    KIND = "kind"
    STATUS = "status"
    RECORDED = "recorded"
    INGESTED = "ingested"
    DURATION = "duration"
    SIZE = "size"
    ID = "id"
    SHA256 = "sha256"
    TAG = "tag"
    LINKED = "linked"
    DESCRIBED = "described"
    TEXT = "text"


@dataclass(frozen=True)
class Span:
    """A stretch of time, [start, end), in UTC; None is open."""

    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class Between:
    """Numbers from ``low`` to ``high``, both inclusive; None is open."""

    low: float | None
    high: float | None


Value = str | bool | Span | Between


@dataclass(frozen=True)
class Term:
    """One term: any of ``values`` holds on ``field`` (none does, when negated)."""

    field: Field
    values: tuple[Value, ...]
    negated: bool = False
    source: str = dataclasses.field(default="", compare=False)  # as typed
    column: int = dataclasses.field(default=0, compare=False)  # where it starts, from 1


@dataclass(frozen=True)
class Query:
    terms: tuple[Term, ...]


# ------------------------------------------------------------------------------------ parsing


class _Bad(Exception):
    """A problem with one term; :func:`parse` adds where the term is."""


_FIELD_PREFIX = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):")


def parse(text: str, tz: tzinfo) -> Query:
    """Parse a query; ``tz`` is the zone of times typed without one."""
    terms = []
    for index, (raw, column) in enumerate(_split_terms(text), 1):
        try:
            terms.append(_term(raw, column, tz))
        except _Bad as exc:
            raise QueryError(raw, index, column, str(exc)) from None
    return Query(tuple(terms))


def _split_terms(text: str) -> Iterator[tuple[str, int]]:
    """Each term with its 1-based column: runs of non-space, quotes keeping spaces."""
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        start, quoted = i, False
        while i < len(text) and (quoted or not text[i].isspace()):
            quoted ^= text[i] == '"'
            i += 1
        yield text[start:i], start + 1


def _term(raw: str, column: int, tz: tzinfo) -> Term:
    negated = raw.startswith("-")
    body = raw[1:] if negated else raw
    if not body:
        raise _Bad("nothing after '-'")
    if any(not ch.isprintable() and not ch.isspace() for ch in body):
        # A NUL or another control character reaches no text a person typed, and FTS5 takes
        # a NUL as the end of its string ("unterminated string"): refused here, by name.
        raise _Bad("含不可见控制字符 a control character (such as NUL) is not searchable text")
    prefix = _FIELD_PREFIX.match(body)
    if prefix is None:
        field, rest = Field.TEXT, body
    else:
        name = prefix.group(1).lower()
        if name not in Field.__members__.values():
            raise _Bad(f"unknown field {name!r} (fields: {', '.join(Field)})")
        field, rest = Field(name), body[prefix.end() :]
    words = _split_values(rest)
    values = tuple(_value(field, word, tz, several=len(words) > 1) for word in words)
    return Term(field, values, negated, raw, column)


def _split_values(text: str) -> list[str]:
    """Values separated by commas outside quotes, quotes removed."""
    if text.count('"') % 2:
        raise _Bad("a quote is not closed")
    values: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            values.append("".join(current))
            current = []
        else:
            current.append(char)
    values.append("".join(current))
    if any(not v for v in values):
        raise _Bad("a value is empty")
    return values


def _value(field: Field, text: str, tz: tzinfo, *, several: bool) -> Value:
    spec = _SPECS[field]
    try:
        if spec.bound is not None and ".." in text:
            low, _, high = text.partition("..")
            if not low and not high:
                raise _Bad("a range needs at least one end")
            return spec.bound(low or None, high or None, tz)
        return spec.one(text, tz)
    except _Bad as exc:
        # With several values, say which one is wrong.
        raise _Bad(f"{text}: {exc}" if several else str(exc)) from None


# Dates: 2026, 2026-Q2, 2026-05, 2026-05-05, then T (or a space) and hh, hh:mm, hh:mm:ss.
_TIME = re.compile(
    r"(?P<y>\d{4})(?:-(?:[Qq](?P<q>[1-4])|(?P<mo>\d{1,2})(?:-(?P<d>\d{1,2})"
    r"(?:[T ](?P<h>\d{1,2})(?::(?P<mi>\d{2})(?::(?P<s>\d{2}))?)?)?)?))?"
    r"(?P<zone>Z|[+-]\d{2}:?\d{2})?"
)


# The first and last moments a datetime holds. A period at either end of the calendar can
# run past them once in UTC (0001-01-01 in +08:00 starts in year 0): that end is then open,
# since no stored time lies beyond it, and a period wholly beyond them holds nothing.
_FIRST = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)


def _period(text: str, tz: tzinfo) -> tuple[datetime | None, datetime | None]:
    """The UTC [start, end) that a typed date or time stands for (None: open, past the end
    of the calendar)."""
    m = _TIME.fullmatch(text)
    if m is None:
        raise _Bad("not a date")
    n = {k: int(v) for k, v in m.groupdict().items() if v is not None and k != "zone"}
    try:
        zone = (
            tz if m["zone"] is None else datetime.fromisoformat(f"2000-01-01T00{m['zone']}").tzinfo
        )
        if "q" in n:
            start = datetime(n["y"], 3 * n["q"] - 2, 1, tzinfo=zone)
        else:
            start = datetime(
                n["y"], n.get("mo", 1), n.get("d", 1), n.get("h", 0), n.get("mi", 0),
                n.get("s", 0), tzinfo=zone,
            )  # fmt: skip
    except ValueError:
        raise _Bad("not a date") from None
    try:
        if "q" in n:
            end: datetime | None = _add_months(start, 3)
        elif "mo" not in n:
            end = start.replace(year=start.year + 1)
        elif "d" not in n:
            end = _add_months(start, 1)
        else:
            end = start + next(unit for k, unit in _UNITS if k in n)
    except (ValueError, OverflowError):
        end = None  # after year 9999
    low, high = _utc(start), _utc(end) if end is not None else None
    if low is None and start.year == MAXYEAR:
        return _LAST, _LAST  # begins after the last moment: empty
    if end is not None and high is None and end.year == MINYEAR:
        return _FIRST, _FIRST  # ends before the first moment: empty
    return low, high


def period(text: str, tz: tzinfo) -> tuple[datetime | None, datetime | None]:
    """The UTC ``[start, end)`` a typed time stands for, in the forms ``recorded:`` takes
    (``2026``, ``2026-Q2``, ``2026-05``, ``2026-05-05``, ``2026-05-05T08:30``, each with or
    without a zone; local time in ``tz`` without one): the one parser of times people type,
    in queries and in command options alike. None: open, past the end of the calendar.
    ValueError when ``text`` is none of these."""
    try:
        return _period(text.strip(), tz)
    except _Bad:
        raise ValueError(
            f"{text!r} is not a time: give a year, 2026-Q2, a month 2026-11, a day 2026-11-27 "
            "or a time 2026-11-27T09:00 (local unless it ends in a zone like +08:00)"
        ) from None


def _utc(moment: datetime) -> datetime | None:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None


_UNITS = (
    ("s", timedelta(seconds=1)),
    ("mi", timedelta(minutes=1)),
    ("h", timedelta(hours=1)),
    ("d", timedelta(days=1)),
)


def _add_months(moment: datetime, months: int) -> datetime:
    years, month = divmod(moment.month - 1 + months, 12)
    return moment.replace(year=moment.year + years, month=month + 1)


def _time_one(text: str, tz: tzinfo) -> Span:
    return Span(*_period(text, tz))


def _time_range(low: str | None, high: str | None, tz: tzinfo) -> Span:
    return Span(
        _period(low, tz)[0] if low else None,
        _period(high, tz)[1] if high else None,
    )


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|min|m|s)")
_DURATION_UNIT = {"h": 3600, "min": 60, "m": 60, "s": 1}


def _seconds(text: str) -> float:
    text = text.lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise _Bad("not a duration (like 90, 90s, 5m, 1h30m)")
    return sum(float(n) * _DURATION_UNIT[u] for n, u in parts)


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:([kmgt])i?)?b?", re.IGNORECASE)
_SIZE_UNIT = {None: 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _bytes(text: str) -> float:
    m = _SIZE.fullmatch(text)
    if m is None:
        raise _Bad("not a size (like 2048, 500K, 10MB, 1.5GB)")
    unit = m.group(2).lower() if m.group(2) else None
    size = float(m.group(1)) * _SIZE_UNIT[unit]
    if not math.isfinite(size):
        raise _Bad("not a size (like 2048, 500K, 10MB, 1.5GB)")
    return float(round(size))


def _integer(text: str) -> float:
    if not text.isdigit():
        raise _Bad("not a whole number")
    return float(text)


def _numbers(convert: Callable[[str], float]) -> tuple[Callable[..., Value], Callable[..., Value]]:
    def one(text: str, _tz: tzinfo) -> Between:
        n = convert(text)
        return Between(n, n)

    def bound(low: str | None, high: str | None, _tz: tzinfo) -> Between:
        return Between(convert(low) if low else None, convert(high) if high else None)

    return one, bound


_YES = {"yes", "y", "true", "是"}
_NO = {"no", "n", "false", "否"}


def _yes_no(text: str, _tz: tzinfo) -> bool:
    if text.lower() in _YES | _NO:
        return text.lower() in _YES
    raise _Bad("not yes or no")


def _kind(text: str, _tz: tzinfo) -> str:
    for kind in MediaKind:
        if text.lower() == kind.value or text == kind.label_zh:
            return kind.value
    raise _Bad(f"not a kind ({', '.join(MediaKind)})")


def _status(text: str, _tz: tzinfo) -> str:
    for status in MediaStatus:
        if text.lower() == status.value or text == status.label_zh:
            return status.value
    raise _Bad(f"not a status ({', '.join(MediaStatus)})")


def _sha256(text: str, _tz: tzinfo) -> str:
    if len(text) > 64 or not re.fullmatch(r"[0-9a-fA-F]+", text):
        raise _Bad("not a SHA-256 prefix (hex digits)")
    return text.lower()


def _tag(text: str, _tz: tzinfo) -> str:
    return normalize_tag(text)


def _text(text: str, _tz: tzinfo) -> str:
    # The search document keeps each part on a line of its own (see the module docstring).
    if "\n" in text or "\r" in text:
        raise _Bad("a text value cannot span lines")
    return text


def _word(text: str, _tz: tzinfo) -> str:
    return text


@dataclass(frozen=True)
class _Spec:
    one: Callable[[str, tzinfo], Value]
    bound: Callable[[str | None, str | None, tzinfo], Value] | None = None  # takes a range


_duration_one, _duration_range = _numbers(_seconds)
_size_one, _size_range = _numbers(_bytes)
_id_one, _id_range = _numbers(_integer)

_SPECS: dict[Field, _Spec] = {
    Field.CASE: _Spec(_word),
    Field.OFFICER: _Spec(_word),
    Field.CERT: _Spec(_word),
    Field.DEVICE: _Spec(_word),
    Field.STATION: _Spec(_word),
    Field.DEPARTMENT: _Spec(_word),
    Field.CATEGORY: _Spec(_word),
    Field.KIND: _Spec(_kind),
    Field.STATUS: _Spec(_status),
    Field.RECORDED: _Spec(_time_one, _time_range),
    Field.INGESTED: _Spec(_time_one, _time_range),
    Field.DURATION: _Spec(_duration_one, _duration_range),
    Field.SIZE: _Spec(_size_one, _size_range),
    Field.ID: _Spec(_id_one, _id_range),
    Field.SHA256: _Spec(_sha256),
    Field.TAG: _Spec(_tag),
    Field.LINKED: _Spec(_yes_no),
    Field.DESCRIBED: _Spec(_yes_no),
    Field.TEXT: _Spec(_text),
}


# ------------------------------------------------------------------------- what a query sees


@dataclass(frozen=True)
class LinkedCase:
    number: str
    title: str
    category: str
    department: str


@dataclass(frozen=True)
class ItemView:
    """A media item as a query sees it: its row, its officer, its tags and the cases it is
    linked to (active links only). ``pipeline.search.views`` loads them."""

    id: int
    sha256: str
    size: int
    kind: MediaKind
    status: MediaStatus
    original_name: str
    station_id: str
    ingested_at: datetime
    device_serial: str | None
    officer_id: str | None
    officer_name: str | None
    officer_cert: str | None
    officer_department: str | None
    recorded_start: datetime | None
    recorded_end: datetime | None
    duration_s: float | None
    description: str | None
    thumbnail_key: str | None
    tags: tuple[str, ...]
    cases: tuple[LinkedCase, ...]

    @property
    def text_parts(self) -> tuple[str, ...]:
        """What text searches, part by part: the lines of its search document."""
        titles = tuple(c.title for c in self.cases)
        return (self.original_name, self.description or "", *self.tags, *titles)


def matches(query: Query, item: ItemView) -> bool:
    """Whether the query selects the item: the Python twin of :func:`where`."""
    return all(
        any(_RULES[t.field].match(v, item) for v in t.values) != t.negated for t in query.terms
    )


@dataclass(frozen=True)
class Lookups:
    """What :mod:`pipeline.search.run` looked up before the SQL is built; the items selected
    are the same with or without each of them, only the plan differs.

    ``fts`` (SQLite) maps text values to the FTS5 query that finds their items ("": none has
    it); ``found`` maps text values to the ids of every item that holds them, and
    ``arrays`` (PostgreSQL) to the ids of the index's candidates, as the text of an array
    (``{3,17}``), which goes back into the query unparsed. Text values in none of them are tested
    item by item. ``officers`` maps ``officer:`` values to
    the ids they stand for (the value as an id, and the ids of the officers of that name);
    None: not looked up, the SQL asks the registry itself."""

    fts: Mapping[str, str] = dataclasses.field(default_factory=dict)
    found: Mapping[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)
    arrays: Mapping[str, str] = dataclasses.field(default_factory=dict)
    officers: Mapping[str, tuple[str, ...]] | None = None


def where(query: Query, dialect: str, lookups: Lookups | None = None) -> ColumnElement[bool]:
    """The query as a WHERE clause on ``media``, for the dialect (``sqlite``, ``postgresql``),
    with what was looked up before (:class:`Lookups`)."""
    target = _Target(dialect, lookups or Lookups())
    clauses = []
    for t in query.terms:
        clause = _RULES[t.field].sql(t.values, target)
        clauses.append(not_(clause) if t.negated else clause)
    return and_(true(), *clauses)


# ----------------------------------------------------------------- each field, in SQL and Python
#
# Every SQL clause is two-valued: a missing value makes it false, never NULL, so that NOT gives
# what the Python predicate gives (true).


@dataclass(frozen=True)
class _Target:
    dialect: str
    lookups: Lookups


@dataclass(frozen=True)
class _Rule:
    sql: Callable[[tuple[Any, ...], _Target], ColumnElement[bool]]
    match: Callable[[Any, ItemView], bool]


def _equals(col: Any, attr: str) -> _Rule:
    return _Rule(
        lambda vs, _t: and_(col.is_not(None), col.in_(vs)),
        lambda v, item: getattr(item, attr) == v,
    )


def _within(col: Any, attr: str) -> _Rule:
    """Span (half-open) or Between (inclusive) values."""

    def one(v: Span | Between) -> ColumnElement[bool]:
        low, high = (v.start, v.end) if isinstance(v, Span) else (v.low, v.high)
        parts = [col.is_not(None)]
        if low is not None:
            parts.append(col >= low)
        if high is not None:
            parts.append(col < high if isinstance(v, Span) else col <= high)
        return and_(*parts)

    def match(v: Span | Between, item: ItemView) -> bool:
        x = getattr(item, attr)
        if x is None:
            return False
        if isinstance(v, Span):
            return (v.start is None or x >= v.start) and (v.end is None or x < v.end)
        return (v.low is None or x >= v.low) and (v.high is None or x <= v.high)

    return _Rule(lambda vs, _t: or_(*[one(v) for v in vs]), match)


_active = links.c.removed_at.is_(None)


def _linked_to(*where_cases: ColumnElement[bool]) -> ColumnElement[bool]:
    """media.id is linked (actively) to a case that meets the conditions."""
    linked = select(links.c.media_id).join(cases, cases.c.number == links.c.case_number)
    return media.c.id.in_(linked.where(_active, *where_cases))


def _officer_where(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """media's officer is a registered officer who meets the condition."""
    return and_(
        media.c.officer_id.is_not(None),
        media.c.officer_id.in_(select(officers.c.id).where(condition)),
    )


def _case_sql(vs: tuple[Any, ...], _t: _Target) -> ColumnElement[bool]:
    # Straight from links (its case_number index), without joining cases.
    return media.c.id.in_(select(links.c.media_id).where(_active, links.c.case_number.in_(vs)))


def _officer_sql(vs: tuple[Any, ...], t: _Target) -> ColumnElement[bool]:
    known = t.lookups.officers
    if known is not None:
        ids = sorted({i for v in vs for i in known.get(v, (v,))})
        if not ids:
            return false()
        return and_(media.c.officer_id.is_not(None), media.c.officer_id.in_(ids))
    return or_(
        and_(media.c.officer_id.is_not(None), media.c.officer_id.in_(vs)),
        _officer_where(officers.c.name.in_(vs)),
    )


def _department_sql(vs: tuple[Any, ...], _t: _Target) -> ColumnElement[bool]:
    return or_(
        _officer_where(officers.c.department.in_(vs)), _linked_to(cases.c.department.in_(vs))
    )


def _sha256_sql(vs: tuple[Any, ...], _t: _Target) -> ColumnElement[bool]:
    return or_(*[_prefix(media.c.sha256, v) for v in vs])


def _prefix(col: Any, prefix: str) -> ColumnElement[bool]:
    """A range on the column's index; LIKE would not use it on SQLite (it folds case)."""
    after = _hex_after(prefix)
    return and_(col >= prefix, col < after) if after is not None else col >= prefix


def _hex_after(prefix: str) -> str | None:
    """The least hex string above every one that starts with the prefix (None for f…f): hex
    digits only, so that every collation orders the bounds alike."""
    digits = "0123456789abcdef"
    stem = prefix.rstrip("f")
    if not stem:
        return None
    return stem[:-1] + digits[digits.index(stem[-1]) + 1]


def _linked_sql(vs: tuple[Any, ...], _t: _Target) -> ColumnElement[bool]:
    any_link = media.c.id.in_(select(links.c.media_id).where(_active))
    return or_(*[any_link if v else not_(any_link) for v in vs])


def _described_sql(vs: tuple[Any, ...], _t: _Target) -> ColumnElement[bool]:
    described = and_(media.c.description.is_not(None), media.c.description != "")
    return or_(*[described if v else not_(described) for v in vs])


# SQLite's FTS5 index of search_text, not declared in the schema (see UNDECLARED there).
_fts = table("search_fts", sql_column("rowid"), sql_column("body"))

TRIGRAM = 3  # characters per token of the trigram indexes


def _text_sql(vs: tuple[Any, ...], t: _Target) -> ColumnElement[bool]:
    return or_(*[_text_one(v, t) for v in vs])


def _text_one(needle: str, t: _Target) -> ColumnElement[bool]:
    """The items an index found (``fts``, ``found``, ``arrays``); otherwise each candidate's
    document tested (:func:`holds`)."""
    fts, found = t.lookups.fts, t.lookups.found
    if t.dialect == "sqlite" and needle in fts:
        return media.c.id.in_(fts_rowids(fts[needle])) if fts[needle] else false()
    if needle in found:
        return media.c.id.in_(found[needle]) if found[needle] else false()
    tested = exists().where(
        search_text.c.media_id == media.c.id, holds(search_text.c.body, needle, t.dialect)
    )
    if needle in t.lookups.arrays:
        # The candidates of the index, each confirmed once it is among them (the test of an
        # id is one probe of a hash table; only the candidates' documents are read).
        return and_(media.c.id == any_(_id_array(t.lookups.arrays[needle])), tested)
    return tested


def _id_array(ids: str) -> ColumnElement[Any]:
    """PostgreSQL: an array of ids written into the statement: a constant, which the
    planner counts and hashes (as a parameter it is neither, and each row would search the
    array from its start). Only the text of an array of integers is taken."""
    if not re.fullmatch(r"\{[0-9,]*\}", ids):
        raise ValueError(f"not an array of ids: {ids[:40]!r}")
    return literal_column(f"'{ids}'::integer[]")


def holds(body: Any, needle: str, dialect: str) -> ColumnElement[bool]:
    """The document ``body`` holds the text, tested as it stands: LIKE on SQLite (which folds
    Latin case); on PostgreSQL ``strpos`` of both lower-cased, which is what ILIKE does, in a
    form no index serves (so that the planner walks the sort's index instead of fetching
    every match)."""
    if dialect == "sqlite":
        return body.like(_like_pattern(needle), escape="\\")
    return func.strpos(func.lower(body), func.lower(literal(needle, Text))) > 0


def _like_pattern(needle: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", needle) + "%"


def postgres_indexed(needle: str) -> ColumnElement[bool]:
    """PostgreSQL: the search_text rows that may hold the text, looked up in migration
    0014's index of bigrams: those with all of its bigrams (two characters or more), or with
    one it begins (one character), and those too long to be split. Exact for one and two
    characters but for the last; a phrase needs confirming (:func:`holds`)."""
    body = search_text.c.body
    return func.search_grams(body).op("@@")(func.search_grams_query(literal(needle, Text)))


def fts_phrase(text: str) -> str:
    """An FTS5 query for the text as a substring (with the trigram tokenizer)."""
    return '"' + text.replace('"', '""') + '"'


def fts_rowids(fts_query: str) -> Select[Any]:
    """SQLite: the ids of the items the FTS5 query finds."""
    return select(_fts.c.rowid).where(_fts.c.body.op("MATCH")(literal(fts_query)))


def _text_match(needle: str, item: ItemView) -> bool:
    needle = needle.lower()
    return any(needle in part.lower() for part in item.text_parts)


_RULES: dict[Field, _Rule] = {
    Field.CASE: _Rule(_case_sql, lambda v, item: any(c.number == v for c in item.cases)),
    Field.OFFICER: _Rule(
        _officer_sql,
        lambda v, item: item.officer_id is not None and v in (item.officer_id, item.officer_name),
    ),
    Field.CERT: _Rule(
        lambda vs, _t: _officer_where(officers.c.cert_no.in_(vs)),
        lambda v, item: item.officer_cert == v,
    ),
    Field.DEVICE: _equals(media.c.device_serial, "device_serial"),
    Field.STATION: _equals(media.c.station_id, "station_id"),
    Field.DEPARTMENT: _Rule(
        _department_sql,
        lambda v, item: item.officer_department == v or any(c.department == v for c in item.cases),
    ),
    Field.CATEGORY: _Rule(
        lambda vs, _t: _linked_to(cases.c.category.in_(vs)),
        lambda v, item: any(c.category == v for c in item.cases),
    ),
    Field.KIND: _equals(media.c.kind, "kind"),
    Field.STATUS: _equals(media.c.status, "status"),
    Field.RECORDED: _within(media.c.recorded_start, "recorded_start"),
    Field.INGESTED: _within(media.c.ingested_at, "ingested_at"),
    Field.DURATION: _within(media.c.duration_s, "duration_s"),
    Field.SIZE: _within(media.c.size, "size"),
    Field.ID: _within(media.c.id, "id"),
    Field.SHA256: _Rule(_sha256_sql, lambda v, item: item.sha256.startswith(v)),
    Field.TAG: _Rule(
        lambda vs, _t: media.c.id.in_(
            select(media_tags.c.media_id).where(media_tags.c.tag.in_(vs))
        ),
        lambda v, item: v in item.tags,
    ),
    Field.LINKED: _Rule(_linked_sql, lambda v, item: bool(item.cases) == v),
    Field.DESCRIBED: _Rule(_described_sql, lambda v, item: bool(item.description) == v),
    Field.TEXT: _Rule(_text_sql, _text_match),
}
