"""Rows and queries of the supervision dashboard (统计分析).

Two kinds of reading, for the two forms of each figure (``pipeline.supervision.figures``):

* the **SQL form**, the query the dashboard runs: :func:`tally` sums clauses over a base of
  rows, grouped, in the database; :func:`coverage_per_case` finds the uncovered stretches of
  each case's action window with window functions;
* the **rows** the Python form's predicates read: :func:`case_rows`, :func:`media_rows`,
  :func:`device_rows` — plain reads of the tables, joined in Python, with no rule in them.

Elapsed time between two columns is the one thing SQLite and PostgreSQL spell differently:
:class:`seconds_between` is compiled for each, to the millisecond.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    FromClause,
    Select,
    and_,
    case,
    delete,
    func,
    select,
    type_coerce,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from pipeline.catalog.schema import (
    UTCDateTime,
    assignments,
    case_officers,
    cases,
    clock_reports,
    department_summaries,
    devices,
    dock_uploads,
    links,
    media,
    officers,
)

# ------------------------------------------------------------------------ SQL helpers


class seconds_between(FunctionElement[float]):
    """Seconds from the first datetime expression to the second, rounded to the millisecond
    (SQLite's julianday is a double: its error is far below a millisecond, so rounding makes
    both databases give the same number for times kept to the millisecond)."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"ROUND((julianday({end}) - julianday({start})) * 86400.0, 3)"


@compiles(seconds_between, "postgresql")
def _seconds_postgresql(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(ROUND(EXTRACT(EPOCH FROM ({end}) - ({start})), 3) AS DOUBLE PRECISION)"


class has_flag(FunctionElement[bool]):
    """Whether a media row's ``flags`` (a JSON array of ``{"code", "message"}``) holds one
    with the code given (a literal)."""

    inherit_cache = True
    name = "has_flag"


@compiles(has_flag, "sqlite")
def _flag_sqlite(element: has_flag, compiler: SQLCompiler, **kw: Any) -> str:
    column, code = (compiler.process(c, **kw) for c in element.clauses)
    # A row without flags ('[]', nearly every row) is answered without opening the JSON.
    return (
        f"({column} != '[]' AND EXISTS (SELECT 1 FROM json_each({column}) AS f "
        f"WHERE json_extract(f.value, '$.code') = {code}))"
    )


@compiles(has_flag, "postgresql")
def _flag_postgresql(element: has_flag, compiler: SQLCompiler, **kw: Any) -> str:
    column, code = (compiler.process(c, **kw) for c in element.clauses)
    # As on SQLite: a row without flags is answered without parsing its JSON (a subplan per
    # row otherwise, a quarter of the recordings figure's time at an agency's month).
    return (
        f"(CAST({column} AS TEXT) <> '[]' AND EXISTS (SELECT 1 FROM "
        f"json_array_elements({column}) AS f(v) WHERE f.v ->> 'code' = {code}))"
    )


def not_an_index(column: ColumnElement[str]) -> ColumnElement[str]:
    """``column`` as an expression no index answers: for a filter that holds for nearly
    every row (``media.status`` is ``archived`` for all but a few), which SQLite, having no
    statistics, would otherwise walk its index for instead of the selective one (the
    period's, on the recording time)."""
    return column.concat("")


def count_if(clause: ColumnElement[bool]) -> ColumnElement[int]:
    """How many rows of the group ``clause`` holds for."""
    return func.sum(case((clause, 1), else_=0))


def sum_if(clause: ColumnElement[bool], value: ColumnElement[Any]) -> ColumnElement[float]:
    """The sum of ``value`` over the rows of the group ``clause`` holds for."""
    return func.sum(case((clause, value), else_=0.0))


def docked_at() -> ColumnElement[datetime]:
    """When a media row's bytes reached a docking station, as its row keeps it (migration
    0013: the earliest docking time its station's uploads reported, else its ingest)."""
    return type_coerce(func.coalesce(media.c.docked_at, media.c.ingested_at), UTCDateTime)


def is_linked() -> ColumnElement[bool]:
    """A media row belongs to a case (an active link), as the triggers on ``links`` keep its
    ``linked`` (migration 0013)."""
    return media.c.linked.is_(True)


def linked_count(
    conn: Connection, where: ColumnElement[bool], clause: ColumnElement[bool]
) -> dict[str, tuple[str, int]]:
    """Per case of ``where`` (on ``cases``) that has any: its department and how many of
    its linked records ``clause`` (on ``media``) holds for. Counted case by case (a scalar
    subquery): a join would let the planner start from all the media."""
    count = (
        select(func.count())
        .select_from(links.join(media, media.c.id == links.c.media_id))
        .where(links.c.case_number == cases.c.number, links.c.removed_at.is_(None), clause)
        .scalar_subquery()
    )
    query = select(cases.c.number, cases.c.department, count).where(where)
    return {number: (department, int(n)) for number, department, n in conn.execute(query) if n}


def crews(conn: Connection, numbers: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Case number -> its officers."""
    wanted = sorted(set(numbers))
    found: dict[str, list[str]] = {}
    for at in range(0, len(wanted), 500):
        query = select(case_officers.c.case_number, case_officers.c.officer_id).where(
            case_officers.c.case_number.in_(wanted[at : at + 500])
        )
        for number, officer in conn.execute(query):
            found.setdefault(number, []).append(officer)
    return {n: tuple(sorted(o)) for n, o in found.items()}


#: Cases joined to their officers: a case counts once for each of them.
CASES_WITH_OFFICERS = cases.join(case_officers, case_officers.c.case_number == cases.c.number)


def tally(
    conn: Connection,
    source: FromClause,
    where: ColumnElement[bool],
    keys: Sequence[ColumnElement[Any]],
    sums: Mapping[str, ColumnElement[Any]],
) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """``SELECT keys, SUM(…) … FROM source WHERE where GROUP BY keys``: per group its key
    values and the sums by name (a group's empty sums are 0)."""
    # Grouped by the keys' labels: PostgreSQL takes a key with bound parameters (a CASE) in
    # GROUP BY as another expression than the same key in the select list.
    labels = [f"key_{i}" for i in range(len(keys))]
    query: Select[Any] = (
        select(
            *(k.label(n) for k, n in zip(keys, labels, strict=True)),
            *(expr.label(name) for name, expr in sums.items()),
        )
        .select_from(source)
        .where(where)
        .group_by(*labels)
    )
    found = []
    for row in conn.execute(query):
        values = tuple(row[: len(keys)])
        found.append((values, {n: row[len(keys) + i] or 0 for i, n in enumerate(sums)}))
    return found


def coverage_per_case(
    base: ColumnElement[bool], av_kinds: Sequence[str], tolerance_s: float
) -> FromClause:
    """Per case of ``base`` (a clause on ``cases``): ``number``, ``department``,
    ``recordings`` (linked A/V recordings meeting the action window), ``failed`` (1: no
    window, no recording, or a stretch longer than ``tolerance_s`` uncovered) and
    ``uncovered_s`` (the seconds of those stretches).

    The twin of ``pipeline.cases.coverage.coverage``: recordings clipped to the window and
    sorted by start; the stretch before each is its start less the furthest end of those
    before it (or the window's start); the stretch after the last, the window's end less the
    furthest end of all."""
    window = (
        select(
            cases.c.number,
            cases.c.department,
            cases.c.action_start.label("ws"),
            cases.c.action_end.label("we"),
        )
        .where(base)
        .cte("cov_window")
    )
    start, end = media.c.recorded_start, media.c.recorded_end
    clipped = (
        select(
            window.c.number,
            window.c.ws,
            type_coerce(case((start > window.c.ws, start), else_=window.c.ws), UTCDateTime).label(
                "s"
            ),
            type_coerce(case((end < window.c.we, end), else_=window.c.we), UTCDateTime).label("e"),
        )
        .select_from(
            window.join(
                links,
                and_(links.c.case_number == window.c.number, links.c.removed_at.is_(None)),
            ).join(media, media.c.id == links.c.media_id)
        )
        .where(
            media.c.kind.in_(av_kinds),
            start.is_not(None),
            end.is_not(None),
            end > window.c.ws,
            start < window.c.we,
        )
        .cte("cov_clipped")
    )
    reach = func.max(clipped.c.e).over(
        partition_by=clipped.c.number, order_by=(clipped.c.s, clipped.c.e), rows=(None, -1)
    )
    ordered = select(
        clipped.c.number, clipped.c.ws, clipped.c.s, clipped.c.e, reach.label("reach")
    ).cte("cov_ordered")
    before = seconds_between(func.coalesce(ordered.c.reach, ordered.c.ws), ordered.c.s)
    per_case = (
        select(
            ordered.c.number,
            func.count().label("n"),
            sum_if(before > tolerance_s, before).label("inner_s"),
            type_coerce(func.max(ordered.c.e), UTCDateTime).label("last_end"),
        )
        .group_by(ordered.c.number)
        .cte("cov_per_case")
    )
    tail = seconds_between(per_case.c.last_end, window.c.we)
    whole = seconds_between(window.c.ws, window.c.we)
    tail_gap = case((tail > tolerance_s, tail), else_=0.0)
    uncovered = case(
        (window.c.ws.is_(None), 0.0),
        (per_case.c.n.is_(None), case((whole > tolerance_s, whole), else_=0.0)),
        else_=per_case.c.inner_s + tail_gap,
    )
    failed = case(
        (window.c.ws.is_(None), 1),
        (per_case.c.n.is_(None), 1),
        (per_case.c.inner_s > 0, 1),
        (tail > tolerance_s, 1),
        else_=0,
    )
    return (
        select(
            window.c.number,
            window.c.department,
            func.coalesce(per_case.c.n, 0).label("recordings"),
            failed.label("failed"),
            type_coerce(uncovered, Float).label("uncovered_s"),
        )
        .select_from(window.outerjoin(per_case, per_case.c.number == window.c.number))
        .subquery("coverage")
    )


def docked_since(conn: Connection, since: datetime) -> dict[str, datetime]:
    """Devices a file of which was ingested since ``since``, and when the last was (the
    index on ingest time answers it; a dock that offers only bytes already archived brings
    no footage in)."""
    # Grouped by an expression: SQLite would otherwise walk the whole index on the device
    # (for its order) rather than the few days of the index on ingest time.
    serial = not_an_index(media.c.device_serial).label("serial")
    query = (
        select(serial, func.max(media.c.ingested_at))
        .where(media.c.ingested_at >= since, media.c.device_serial.is_not(None))
        .group_by(serial)
    )
    return dict(conn.execute(query).all())


def last_docked(conn: Connection, serials: Iterable[str]) -> dict[str, datetime]:
    """When a file of each device was last ingested."""
    wanted = sorted(set(serials))
    found: dict[str, datetime] = {}
    for at in range(0, len(wanted), 500):
        query = (
            select(media.c.device_serial, func.max(media.c.ingested_at))
            .where(media.c.device_serial.in_(wanted[at : at + 500]))
            .group_by(media.c.device_serial)
        )
        found.update({serial: seen for serial, seen in conn.execute(query) if seen is not None})
    return found


def open_holders() -> FromClause:
    """Devices joined to the officer of their open assignment (if any) and that officer."""
    held = assignments.c.end.is_(None)
    return devices.outerjoin(
        assignments, and_(assignments.c.device_serial == devices.c.serial, held)
    ).outerjoin(officers, officers.c.id == assignments.c.officer_id)


def holders(conn: Connection, serials: Iterable[str]) -> dict[str, tuple[str | None, str, str]]:
    """Device serial -> (the officer holding it now, their department, its status)."""
    wanted = sorted(set(serials))
    found: dict[str, tuple[str | None, str, str]] = {}
    for at in range(0, len(wanted), 500):
        query = (
            select(
                devices.c.serial,
                assignments.c.officer_id,
                officers.c.department,
                devices.c.status,
            )
            .select_from(open_holders())
            .where(devices.c.serial.in_(wanted[at : at + 500]))
        )
        for serial, holder, department, status in conn.execute(query):
            found[serial] = (holder, department or "", status)
    return found


# ------------------------------------------------------------------ rows, read plainly


@dataclass(frozen=True)
class LinkedRecord:
    """A record linked to a case, as the case's rules read it."""

    media_id: int
    kind: str
    signature: str | None
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class CaseRow:
    number: str
    department: str
    category: str
    officers: tuple[str, ...]
    action_start: datetime | None
    action_end: datetime | None
    due: Any  # date | None
    archived_on: Any  # date | None
    linked: tuple[LinkedRecord, ...]


def case_rows(conn: Connection) -> list[CaseRow]:
    """Every case with its officers and its linked records."""
    crew: dict[str, list[str]] = {}
    for number, officer in conn.execute(select(case_officers)):
        crew.setdefault(number, []).append(officer)
    linked: dict[str, list[LinkedRecord]] = {}
    query = (
        select(
            links.c.case_number,
            media.c.id,
            media.c.kind,
            media.c.signature,
            media.c.recorded_start,
            media.c.recorded_end,
        )
        .select_from(links.join(media, media.c.id == links.c.media_id))
        .where(links.c.removed_at.is_(None))
    )
    for number, *rest in conn.execute(query):
        linked.setdefault(number, []).append(LinkedRecord(*rest))
    return [
        CaseRow(
            r.number,
            r.department,
            r.category,
            tuple(sorted(crew.get(r.number, ()))),
            r.action_start,
            r.action_end,
            r.due,
            r.archived_on,
            tuple(linked.get(r.number, ())),
        )
        for r in conn.execute(select(cases))
    ]


@dataclass(frozen=True)
class MediaRow:
    id: int
    kind: str
    status: str
    officer_id: str | None
    department: str | None  # the officer's
    device_serial: str | None
    recorded_start: datetime | None
    recorded_end: datetime | None
    duration_s: float | None
    ingested_at: datetime
    reported_docked: tuple[datetime, ...]  # docked_at of the station's uploads of its bytes
    description: str | None
    linked: bool
    flag_codes: tuple[str, ...]


def media_rows(conn: Connection) -> list[MediaRow]:
    """Every media item, with its officer's department, its uploads' docking times and
    whether it is linked."""
    unit = departments(conn)
    reported: dict[tuple[str, str], list[datetime]] = {}
    for station, sha, at in conn.execute(
        select(dock_uploads.c.station_id, dock_uploads.c.sha256, dock_uploads.c.docked_at)
    ):
        if at is not None:
            reported.setdefault((station, sha), []).append(at)
    linked = set(
        conn.execute(select(links.c.media_id).where(links.c.removed_at.is_(None))).scalars()
    )
    return [
        MediaRow(
            r.id,
            r.kind,
            r.status,
            r.officer_id,
            unit.get(r.officer_id) if r.officer_id else None,
            r.device_serial,
            r.recorded_start,
            r.recorded_end,
            r.duration_s,
            r.ingested_at,
            tuple(sorted(reported.get((r.station_id, r.sha256), ()))),
            r.description,
            r.id in linked,
            tuple(f.get("code", "") for f in r.flags or ()),
        )
        for r in conn.execute(select(media))
    ]


@dataclass(frozen=True)
class DeviceRow:
    serial: str
    kind: str
    status: str
    holder: str | None  # the officer of the open assignment
    department: str | None  # the holder's
    ingests: tuple[datetime, ...]  # when each file of it was ingested


def device_rows(conn: Connection) -> list[DeviceRow]:
    """Every registered device with its holder and when its files were ingested."""
    unit = departments(conn)
    holders = dict(
        conn.execute(
            select(assignments.c.device_serial, assignments.c.officer_id).where(
                assignments.c.end.is_(None)
            )
        ).all()
    )
    seen: dict[str, list[datetime]] = {}
    for serial, at in conn.execute(select(media.c.device_serial, media.c.ingested_at)):
        if serial is not None:
            seen.setdefault(serial, []).append(at)
    return [
        DeviceRow(
            r.serial,
            r.kind,
            r.status,
            holders.get(r.serial),
            unit.get(holders[r.serial]) if r.serial in holders else None,
            tuple(sorted(seen.get(r.serial, ()))),
        )
        for r in conn.execute(select(devices))
    ]


def clock_report_rows(conn: Connection) -> list[tuple[str, float, datetime]]:
    """Every clock report: (serial as the station read it, offset in seconds, observed)."""
    query = select(
        clock_reports.c.device_serial, clock_reports.c.offset_s, clock_reports.c.observed_at
    )
    return [(r[0], r[1], r[2]) for r in conn.execute(query)]


def departments(conn: Connection) -> dict[str, str]:
    """Officer id -> department (a recording's unit is its officer's)."""
    return dict(conn.execute(select(officers.c.id, officers.c.department)).all())


def names(conn: Connection, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Officer id -> (name, department)."""
    wanted = sorted(set(ids))
    found: dict[str, tuple[str, str]] = {}
    for at in range(0, len(wanted), 500):
        query = select(officers.c.id, officers.c.name, officers.c.department).where(
            officers.c.id.in_(wanted[at : at + 500])
        )
        found.update({r.id: (r.name, r.department) for r in conn.execute(query)})
    return found


# ------------------------------------------------------------- the daily summary, kept


def keep_summary(
    conn: Connection, day: date, computed_at: datetime, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Keep the summary per department the sweep of local day ``day`` found (a later run the
    same day replaces it)."""
    conn.execute(delete(department_summaries).where(department_summaries.c.day == day))
    conn.execute(
        department_summaries.insert().values(day=day, computed_at=computed_at, summary=list(rows))
    )


def latest_summary(conn: Connection) -> tuple[date, datetime, list[dict[str, Any]]] | None:
    """The newest summary kept: its day, when it was computed, its rows."""
    row = conn.execute(
        select(department_summaries).order_by(department_summaries.c.day.desc()).limit(1)
    ).one_or_none()
    return None if row is None else (row.day, row.computed_at, list(row.summary))
