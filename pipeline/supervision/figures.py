"""The figures of the supervision dashboard (统计分析), each rule twice.

Every figure is one function with the clock injected (``today``, ``now``): its **SQL form**
(``case_files``, ``coverage_figures``, ``recordings``, ``device_figures``) is the query the
dashboard runs, the rules as clauses summed in the database; its **Python form** (the same
name ending ``_of``) applies the twin predicates to plain rows (``pipeline.catalog.
supervision``: ``case_rows``, ``media_rows``, ``device_rows``). A test holds each pair
together on a generated catalog, as the 15-day rule's ``state_clause`` and ``case_state``
are held (tests/test_supervision_figures.py).

What belongs where:

* a **case** belongs to its department (``cases.department``) and to each of its officers;
  it is in a period when its act ended in it (as in the compliance report);
* a **recording** (video, audio or photo, archived) belongs to its officer and that
  officer's department, and to its device; it is in a period when it started in it. An
  unattributed recording is in no department: it shows only in the whole agency's view;
* a **device** (active) belongs to the department of the officer holding it now.

A department is a tree: ``县公安局/治安大队`` holds ``县公安局/治安大队/一中队`` (never
``县公安局/治安大队二``), the rule of ``pipeline.catalog.reach.in_tree``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from typing import Any, Generic, Self, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    exists,
    func,
    literal,
    not_,
    select,
)

from pipeline.cases.compliance import state_clause
from pipeline.cases.coverage import coverage
from pipeline.cases.deadline import CaseState, case_state
from pipeline.catalog import supervision as q
from pipeline.catalog.reach import in_tree as in_tree_clause
from pipeline.catalog.schema import (
    assignments,
    case_officers,
    cases,
    clock_reports,
    devices,
    media,
    officers,
)
from pipeline.catalog.supervision import CaseRow, DeviceRow, LinkedRecord, MediaRow
from pipeline.models import DeviceStatus, MediaKind, MediaStatus, Signature

AV_KINDS = (MediaKind.VIDEO.value, MediaKind.AUDIO.value)
#: What a recorder makes: the recordings the upload, link and device figures count.
RECORDING_KINDS = (*AV_KINDS, MediaKind.PHOTO.value)
DRIFT = "clock-drift"

# ------------------------------------------------------------------- period and scope


@dataclass(frozen=True)
class Period:
    """Local days from ``start`` to ``end``, both included."""

    start: date
    end: date

    def bounds(self, zone: tzinfo) -> Bounds:
        lo = datetime.combine(self.start, time(), zone).astimezone(UTC)
        hi = datetime.combine(self.end + timedelta(days=1), time(), zone).astimezone(UTC)
        return Bounds(lo, hi)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class Bounds:
    """Moments from ``lo`` (included) to ``hi`` (excluded); None: open on that side."""

    lo: datetime | None = None
    hi: datetime | None = None

    def clause(self, column: Any) -> ColumnElement[bool]:
        found = [column.is_not(None)]
        if self.lo is not None:
            found.append(column >= self.lo)
        if self.hi is not None:
            found.append(column < self.hi)
        return and_(*found)

    def holds(self, moment: datetime | None) -> bool:
        if moment is None:
            return False
        return (self.lo is None or moment >= self.lo) and (self.hi is None or moment < self.hi)


EVER = Bounds()


@dataclass(frozen=True)
class Scope:
    """Whose figures: a department tree (None: every unit) and, within it, one officer."""

    department: str | None = None
    officer: str | None = None


def in_tree(value: str | None, tree: str) -> bool:
    """The Python twin of ``pipeline.catalog.reach.in_tree``, on the stored text."""
    return value is not None and (value == tree or value.startswith(tree + "/"))


def rate(part: float, whole: float) -> float | None:
    """``part`` of ``whole`` as a share, four decimals; None when there is nothing to share."""
    return round(part / whole, 4) if whole else None


# -------------------------------------------------------------------------- counts


class Counts:
    """Counts that add up field by field (a department's are the sum of its groups')."""

    def __add__(self, other: Self) -> Self:
        values = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}  # type: ignore[arg-type]
        return type(self)(**values)


C = TypeVar("C", bound=Counts)


@dataclass(frozen=True)
class Breakdown(Generic[C]):
    """A figure's counts in all, and by unit (department, "" for none), officer and device
    (None: nobody, no device)."""

    total: C
    by_unit: Mapping[str, C]
    by_officer: Mapping[str | None, C]
    by_device: Mapping[str | None, C] = field(default_factory=dict)


def _add(into: dict[Any, C], key: Any, counts: C) -> None:
    into[key] = into[key] + counts if key in into else counts


def _breakdown(
    zero: C,
    units: Iterable[tuple[str, C]],
    people: Iterable[tuple[str | None, C]],
    kit: Iterable[tuple[str | None, C]] = (),
) -> Breakdown[C]:
    by_unit: dict[str, C] = {}
    by_officer: dict[str | None, C] = {}
    by_device: dict[str | None, C] = {}
    for key, c in units:
        _add(by_unit, key, c)
    for who, c in people:
        _add(by_officer, who, c)
    for serial, c in kit:
        _add(by_device, serial, c)
    total = zero
    for c in by_unit.values():
        total = total + c
    return Breakdown(total, by_unit, by_officer, by_device)


def _counts(cls: type[C], sums: Mapping[str, Any]) -> C:
    """A group's sums as counts; a sum of an empty group, or a PostgreSQL numeric, made the
    field's own type."""
    found = fields(cls)  # type: ignore[arg-type]
    made = {
        f.name: float(sums.get(f.name, 0)) if f.type == "float" else int(sums.get(f.name, 0))
        for f in found
    }
    return cls(**made)


# ------------------------------------------------------------------------ case files


@dataclass(frozen=True)
class CaseCounts(Counts):
    """Case files whose act ended in the period, by their 15-day state today."""

    concluded: int = 0  # the act ended (the 15 days run from its end)
    archived_on_time: int = 0
    archived_late: int = 0
    overdue: int = 0  # not archived, past the deadline
    due_soon: int = 0  # not archived, the deadline within cases.due_soon_days
    open: int = 0  # not archived, the deadline further off
    unsigned_records: int = 0  # linked text records neither signed nor the refusal noted

    @property
    def decided(self) -> int:
        """Files whose outcome is known: archived, or past the deadline."""
        return self.archived_on_time + self.archived_late + self.overdue

    @property
    def on_time_rate(self) -> float | None:
        """按时归档率: archived on time, of the files whose outcome is known."""
        return rate(self.archived_on_time, self.decided)


_STATE_FIELDS = {
    CaseState.ARCHIVED_ON_TIME: "archived_on_time",
    CaseState.ARCHIVED_LATE: "archived_late",
    CaseState.OVERDUE: "overdue",
    CaseState.DUE_SOON: "due_soon",
    CaseState.OPEN: "open",
}


def case_base_clause(
    scope: Scope, bounds: Bounds, pending_only: bool = False
) -> ColumnElement[bool]:
    """Which rows of ``cases`` a case figure counts: the act ended within ``bounds``, the
    case of the scope; ``pending_only``: not archived yet."""
    found = [bounds.clause(cases.c.action_end)]
    if scope.department is not None:
        found.append(in_tree_clause(cases.c.department, scope.department))
    if scope.officer is not None:
        crew = case_officers.alias("crew")  # not the one a by-officer tally joins
        found.append(
            exists().where(crew.c.case_number == cases.c.number, crew.c.officer_id == scope.officer)
        )
    if pending_only:
        found.append(cases.c.archived_on.is_(None))
    return and_(*found)


def case_in_base(row: CaseRow, scope: Scope, bounds: Bounds, pending_only: bool = False) -> bool:
    """The Python twin of :func:`case_base_clause`."""
    return (
        bounds.holds(row.action_end)
        and (scope.department is None or in_tree(row.department, scope.department))
        and (scope.officer is None or scope.officer in row.officers)
        and not (pending_only and row.archived_on is not None)
    )


def unsigned_clause() -> ColumnElement[bool]:
    """A text record (笔录) neither signed nor with the refusal noted, as the compliance
    sweep finds it: a document whose signature is ``missing``."""
    return and_(
        media.c.kind == MediaKind.DOCUMENT.value, media.c.signature == Signature.MISSING.value
    )


def unsigned(record: LinkedRecord) -> bool:
    """The Python twin of :func:`unsigned_clause`."""
    return record.kind == MediaKind.DOCUMENT.value and record.signature == Signature.MISSING.value


def _case_sums(today: date, due_soon_days: int) -> dict[str, ColumnElement[Any]]:
    """The states' sums (the unsigned records are counted apart, once per case)."""
    sums: dict[str, ColumnElement[Any]] = {"concluded": func.count()}
    for state, name in _STATE_FIELDS.items():
        sums[name] = q.count_if(state_clause(state, today, due_soon_days))
    return sums


def case_files(
    conn: Connection,
    scope: Scope,
    bounds: Bounds,
    today: date,
    due_soon_days: int,
    *,
    pending_only: bool = False,
    states_only: bool = False,
) -> Breakdown[CaseCounts]:
    """Case files (案卷): concluded, archived on time, late, overdue now, due soon, still
    open; linked text records unsigned; by department and officer. SQL form.
    ``states_only``: the states by department alone (the daily summary's)."""
    where = case_base_clause(scope, bounds, pending_only)
    sums = _case_sums(today, due_soon_days)
    units = [
        (k[0], _counts(CaseCounts, s))
        for k, s in q.tally(conn, cases, where, [cases.c.department], sums)
    ]
    if states_only:
        return _breakdown(CaseCounts(), units, ())
    people = [
        (k[0], _counts(CaseCounts, s))
        for k, s in q.tally(conn, q.CASES_WITH_OFFICERS, where, [case_officers.c.officer_id], sums)
    ]
    # The records of each case read once, for the unit and the officers alike.
    unsigned = q.linked_count(conn, where, unsigned_clause())
    crews = q.crews(conn, unsigned)
    for number, (department, count) in unsigned.items():
        units.append((department, CaseCounts(unsigned_records=count)))
        people += [(o, CaseCounts(unsigned_records=count)) for o in crews.get(number, ())]
    return _breakdown(CaseCounts(), units, people)


def case_counts_of(row: CaseRow, today: date, due_soon_days: int) -> CaseCounts:
    """One case's counts: the Python twin of the sums of :func:`case_files`."""
    state = case_state(
        row.action_end.date() if row.action_end else None,
        row.due,
        row.archived_on,
        today,
        due_soon_days,
    )
    return CaseCounts(
        concluded=1,
        unsigned_records=sum(unsigned(r) for r in row.linked),
        **{_STATE_FIELDS[state]: 1},
    )


def case_files_of(
    rows: Iterable[CaseRow],
    scope: Scope,
    bounds: Bounds,
    today: date,
    due_soon_days: int,
    *,
    pending_only: bool = False,
) -> Breakdown[CaseCounts]:
    """:func:`case_files`, Python form."""
    chosen = [
        (r, case_counts_of(r, today, due_soon_days))
        for r in rows
        if case_in_base(r, scope, bounds, pending_only)
    ]
    return _breakdown(
        CaseCounts(),
        ((r.department, c) for r, c in chosen),
        ((o, c) for r, c in chosen for o in r.officers),
    )


# -------------------------------------------------------------------------- coverage


@dataclass(frozen=True)
class CoverageCounts(Counts):
    """Whole-process coverage (全过程音像记录) of the cases of mandatory categories."""

    mandatory: int = 0  # cases whose category asks for whole-process A/V
    failed: int = 0  # no action window, no recording, or a stretch left uncovered
    uncovered_s: float = 0.0  # the uncovered stretches, in all

    @property
    def uncovered_minutes(self) -> float:
        return round(self.uncovered_s / 60, 1)


def _coverage_table(
    scope: Scope, bounds: Bounds, mandatory: Sequence[str], tolerance_s: float, pending_only: bool
) -> Any:
    base = and_(
        case_base_clause(scope, bounds, pending_only), cases.c.category.in_(tuple(mandatory))
    )
    return q.coverage_per_case(base, AV_KINDS, tolerance_s)


@dataclass(frozen=True)
class CoverageCase:
    """One mandatory case's coverage, as the query finds it."""

    number: str
    department: str
    failed: bool
    uncovered_s: float


def coverage_cases(
    conn: Connection,
    scope: Scope,
    bounds: Bounds,
    mandatory: Sequence[str],
    tolerance_s: float,
    *,
    pending_only: bool = False,
) -> list[CoverageCase]:
    """Each case of the ``mandatory`` categories of the scope and period: whether its
    coverage fails, and its uncovered time. SQL form (window functions)."""
    per_case = _coverage_table(scope, bounds, mandatory, tolerance_s, pending_only)
    query = select(
        per_case.c.number, per_case.c.department, per_case.c.failed, per_case.c.uncovered_s
    ).order_by(per_case.c.number)
    return [
        CoverageCase(n, d, bool(failed), float(uncovered or 0.0))
        for n, d, failed, uncovered in conn.execute(query)
    ]


def coverage_figures(
    conn: Connection,
    scope: Scope,
    bounds: Bounds,
    mandatory: Sequence[str],
    tolerance_s: float,
    *,
    pending_only: bool = False,
) -> Breakdown[CoverageCounts]:
    """Cases of the ``mandatory`` categories with gaps, and the uncovered time, by
    department and officer. SQL form: :func:`coverage_cases`, summed."""
    found = coverage_cases(conn, scope, bounds, mandatory, tolerance_s, pending_only=pending_only)
    return coverage_breakdown(found, q.crews(conn, (c.number for c in found)))


def coverage_breakdown(
    found: Iterable[CoverageCase], crews: Mapping[str, Sequence[str]]
) -> Breakdown[CoverageCounts]:
    """The cases' coverage by department and by officer (``crews``: case -> officers)."""
    chosen = [(c, CoverageCounts(1, int(c.failed), c.uncovered_s)) for c in found]
    return _breakdown(
        CoverageCounts(),
        ((c.department, k) for c, k in chosen),
        ((o, k) for c, k in chosen for o in crews.get(c.number, ())),
    )


def coverage_of_case(row: CaseRow, tolerance_s: float) -> CoverageCounts:
    """One mandatory case's coverage, by :func:`pipeline.cases.coverage.coverage` itself."""
    if row.action_start is None or row.action_end is None:
        return CoverageCounts(1, 1, 0.0)
    found = coverage(
        row.action_start,
        row.action_end,
        [(r.start, r.end) for r in row.linked if r.kind in AV_KINDS and r.start and r.end],
        tolerance_s,
    )
    return CoverageCounts(1, int(not found.complete), sum(g.seconds for g in found.gaps))


def coverage_figures_of(
    rows: Iterable[CaseRow],
    scope: Scope,
    bounds: Bounds,
    mandatory: Sequence[str],
    tolerance_s: float,
    *,
    pending_only: bool = False,
) -> Breakdown[CoverageCounts]:
    """:func:`coverage_figures`, Python form."""
    chosen = [
        (r, coverage_of_case(r, tolerance_s))
        for r in rows
        if case_in_base(r, scope, bounds, pending_only) and r.category in mandatory
    ]
    return _breakdown(
        CoverageCounts(),
        ((r.department, c) for r, c in chosen),
        ((o, c) for r, c in chosen for o in r.officers),
    )


# ------------------------------------------------------------------------ recordings


@dataclass(frozen=True)
class RecordingCounts(Counts):
    """Recordings (video, audio, photo) that started in the period."""

    recordings: int = 0
    av: int = 0  # of which video or audio
    seconds: float = 0.0  # their length, A/V only
    undescribed: int = 0  # A/V without a written description (文字说明)
    linked: int = 0  # in a case
    on_time: int = 0  # docked within cases.upload_limit_hours after they ended
    drifted: int = 0  # flagged clock-drift

    @property
    def hours(self) -> float:
        return round(self.seconds / 3600, 4)

    @property
    def late(self) -> int:
        return self.recordings - self.on_time

    @property
    def unlinked(self) -> int:
        return self.recordings - self.linked

    @property
    def upload_timeliness(self) -> float | None:
        """上传及时率."""
        return rate(self.on_time, self.recordings)

    @property
    def link_rate(self) -> float | None:
        """关联率."""
        return rate(self.linked, self.recordings)

    @property
    def description_rate(self) -> float | None:
        """文字说明率: A/V recordings that have one."""
        return rate(self.av - self.undescribed, self.av)


def recording_base_clause(scope: Scope, bounds: Bounds) -> ColumnElement[bool]:
    """Which media rows (joined to their officer) a recording figure counts."""
    found = [
        q.not_an_index(media.c.status) == MediaStatus.ARCHIVED.value,
        media.c.kind.in_(RECORDING_KINDS),
        bounds.clause(media.c.recorded_start),
    ]
    if scope.department is not None:
        of_tree = select(officers.c.id).where(
            in_tree_clause(officers.c.department, scope.department)
        )
        found.append(media.c.officer_id.in_(of_tree))
    if scope.officer is not None:
        found.append(media.c.officer_id == scope.officer)
    return and_(*found)


def recording_in_base(row: MediaRow, scope: Scope, bounds: Bounds) -> bool:
    """The Python twin of :func:`recording_base_clause`."""
    return (
        row.status == MediaStatus.ARCHIVED.value
        and row.kind in RECORDING_KINDS
        and bounds.holds(row.recorded_start)
        and (scope.department is None or in_tree(row.department, scope.department))
        and (scope.officer is None or row.officer_id == scope.officer)
    )


def described_clause() -> ColumnElement[bool]:
    """It has a written description (as the search's ``described:yes``)."""
    return and_(media.c.description.is_not(None), media.c.description != "")


def described(row: MediaRow) -> bool:
    return bool(row.description)


def on_time_clause(limit_s: float) -> ColumnElement[bool]:
    """Docked within ``limit_s`` after the recording ended (a photo: was taken): the delay
    its row keeps from its ingest (``pipeline.catalog.media.docking``)."""
    return media.c.dock_delay_s <= limit_s


def docked(row: MediaRow) -> datetime:
    """When its bytes reached a dock: the earliest docking its uploads reported, else its
    ingest (the rule the row's ``docked_at`` was kept by, read here from the uploads)."""
    return min(row.reported_docked) if row.reported_docked else row.ingested_at


def on_time(row: MediaRow, limit_s: float) -> bool:
    """The Python twin of :func:`on_time_clause`."""
    ended = row.recorded_end or row.recorded_start
    assert ended is not None  # the base holds only recordings with a start
    return round((docked(row) - ended).total_seconds(), 3) <= limit_s


def _recording_sums(limit_s: float) -> dict[str, ColumnElement[Any]]:
    av = media.c.kind.in_(AV_KINDS)
    return {
        "recordings": func.count(),
        "av": q.count_if(av),
        "seconds": q.sum_if(av, func.coalesce(media.c.duration_s, 0.0)),
        "undescribed": q.count_if(and_(av, not_(described_clause()))),
        "linked": q.count_if(q.is_linked()),
        "on_time": q.count_if(on_time_clause(limit_s)),
        "drifted": q.count_if(q.has_flag(media.c.flags, literal(DRIFT))),
    }


def recording_counts_of(row: MediaRow, limit_s: float) -> RecordingCounts:
    """One recording's counts: the Python twin of the sums of :func:`recordings`."""
    av = row.kind in AV_KINDS
    return RecordingCounts(
        recordings=1,
        av=int(av),
        seconds=float(row.duration_s or 0.0) if av else 0.0,
        undescribed=int(av and not described(row)),
        linked=int(row.linked),
        on_time=int(on_time(row, limit_s)),
        drifted=int(DRIFT in row.flag_codes),
    )


def recordings(
    conn: Connection, scope: Scope, bounds: Bounds, limit_s: float
) -> Breakdown[RecordingCounts]:
    """Recordings, hours, undescribed, linked (关联率), docked on time (上传及时率) and
    flagged for clock drift, by unit, officer and device. SQL form: summed by officer and
    device in the database, the officers' units then looked up."""
    keys = [media.c.officer_id, media.c.device_serial]
    found = [
        (k, _counts(RecordingCounts, s))
        for k, s in q.tally(
            conn, media, recording_base_clause(scope, bounds), keys, _recording_sums(limit_s)
        )
    ]
    unit = q.departments(conn)
    return _breakdown(
        RecordingCounts(),
        ((unit.get(k[0], "") if k[0] else "", c) for k, c in found),
        ((k[0], c) for k, c in found),
        ((k[1], c) for k, c in found),
    )


def recordings_of(
    rows: Iterable[MediaRow], scope: Scope, bounds: Bounds, limit_s: float
) -> Breakdown[RecordingCounts]:
    """:func:`recordings`, Python form."""
    chosen = [
        (r, recording_counts_of(r, limit_s)) for r in rows if recording_in_base(r, scope, bounds)
    ]
    return _breakdown(
        RecordingCounts(),
        ((r.department or "", c) for r, c in chosen),
        ((r.officer_id, c) for r, c in chosen),
        ((r.device_serial, c) for r, c in chosen),
    )


# --------------------------------------------------------------------------- devices


@dataclass(frozen=True)
class DeviceFigures:
    """The scope's active devices, those not docked for ``devices.not_docked_days``, and
    those whose clock a station found off by more than ``devices.drift_tolerance_s`` in the
    period (serial -> the largest offset reported, seconds, + fast)."""

    active: tuple[str, ...]
    not_docked: tuple[str, ...]
    drift_reported: Mapping[str, float]
    last_docked: Mapping[str, datetime]  # of the active devices a dock ever offered a file of


def device_scope_clause(scope: Scope) -> ColumnElement[bool]:
    """Active devices held (open assignment) by an officer of the scope."""
    found = [devices.c.status == DeviceStatus.ACTIVE.value]
    if scope.department is not None:
        found.append(in_tree_clause(officers.c.department, scope.department))
    if scope.officer is not None:
        found.append(assignments.c.officer_id == scope.officer)
    return and_(*found)


def device_in_scope(row: DeviceRow, scope: Scope) -> bool:
    """The Python twin of :func:`device_scope_clause`."""
    return (
        row.status == DeviceStatus.ACTIVE.value
        and (scope.department is None or in_tree(row.department, scope.department))
        and (scope.officer is None or row.holder == scope.officer)
    )


def docked_cutoff(now: datetime, not_docked_days: int) -> datetime:
    return now - timedelta(days=not_docked_days)


def device_figures(
    conn: Connection,
    scope: Scope,
    now: datetime,
    not_docked_days: int,
    bounds: Bounds,
    tolerance_s: float,
) -> DeviceFigures:
    """Devices in use, not docked in N days (no file of theirs ingested since), and clocks
    reported off. SQL form."""
    in_scope = (
        select(devices.c.serial).select_from(q.open_holders()).where(device_scope_clause(scope))
    )
    active = sorted(set(conn.execute(in_scope).scalars()))
    recent = q.docked_since(conn, docked_cutoff(now, not_docked_days))
    offset = func.max(func.abs(clock_reports.c.offset_s))
    reported = (
        select(clock_reports.c.device_serial, offset)
        .where(
            bounds.clause(clock_reports.c.observed_at),
            clock_reports.c.device_serial.in_(in_scope),
        )
        .group_by(clock_reports.c.device_serial)
        .having(offset > tolerance_s)
    )
    signed = _signed_offsets(conn, dict(conn.execute(reported).all()), bounds)
    idle = tuple(s for s in active if s not in recent)
    last = {s: recent[s] for s in active if s in recent} | q.last_docked(conn, idle)
    return DeviceFigures(
        tuple(active), idle, dict(sorted(signed.items())), dict(sorted(last.items()))
    )


def _signed_offsets(
    conn: Connection, largest: Mapping[str, float], bounds: Bounds
) -> dict[str, float]:
    """The offsets with their sign (fast +, slow -): the report of the largest size."""
    if not largest:
        return {}
    rows = conn.execute(
        select(clock_reports.c.device_serial, clock_reports.c.offset_s).where(
            bounds.clause(clock_reports.c.observed_at),
            clock_reports.c.device_serial.in_(sorted(largest)),
        )
    )
    return _largest_signed(rows, largest)


def _largest_signed(
    rows: Iterable[tuple[str, float]], wanted: Iterable[str] | None = None
) -> dict[str, float]:
    keep = None if wanted is None else set(wanted)
    found: dict[str, float] = {}
    for serial, value in rows:
        if keep is not None and serial not in keep:
            continue
        if (
            serial not in found
            or abs(value) > abs(found[serial])
            or (abs(value) == abs(found[serial]) and value > found[serial])
        ):
            found[serial] = float(value)
    return found


def device_figures_of(
    rows: Iterable[DeviceRow],
    reports: Iterable[tuple[str, float, datetime]],
    scope: Scope,
    now: datetime,
    not_docked_days: int,
    bounds: Bounds,
    tolerance_s: float,
) -> DeviceFigures:
    """:func:`device_figures`, Python form."""
    cutoff = docked_cutoff(now, not_docked_days)
    chosen = sorted((r for r in rows if device_in_scope(r, scope)), key=lambda r: r.serial)
    active = tuple(r.serial for r in chosen)
    idle = tuple(r.serial for r in chosen if not any(s >= cutoff for s in r.ingests))
    within = [(s, o) for s, o, at in reports if s in set(active) and bounds.holds(at)]
    signed = {s: o for s, o in _largest_signed(within).items() if abs(o) > tolerance_s}
    last = {r.serial: max(r.ingests) for r in chosen if r.ingests}
    return DeviceFigures(active, idle, dict(sorted(signed.items())), last)


# ---------------------------------------------------------------------------- trends


WEEKS, WEEK_DAYS = 8, 7
MONTHS, MONTH_DAYS = 2, 30


def trend_periods(end: date) -> tuple[tuple[Period, ...], tuple[Period, ...]]:
    """The weeks (8 × 7 days) and months (2 × 30 days) that end on ``end``, oldest first:
    week over week is the last against the one before, month over month the same."""
    weeks = tuple(
        Period(
            end - timedelta(days=WEEK_DAYS * (WEEKS - k) - 1),
            end - timedelta(days=WEEK_DAYS * (WEEKS - 1 - k)),
        )
        for k in range(WEEKS)
    )
    months = tuple(
        Period(
            end - timedelta(days=MONTH_DAYS * (MONTHS - k) - 1),
            end - timedelta(days=MONTH_DAYS * (MONTHS - 1 - k)),
        )
        for k in range(MONTHS)
    )
    return weeks, months


def _edges(periods: Sequence[Period], zone: tzinfo) -> list[datetime]:
    found = [p.bounds(zone) for p in periods]
    return [b.lo for b in found if b.lo is not None] + [found[-1].hi]  # type: ignore[list-item]


def bucket_of(moment: datetime, edges: Sequence[datetime]) -> int:
    """Which of the buckets ``[edges[i], edges[i+1])`` ``moment`` is in; -1 outside."""
    for i in range(len(edges) - 1):
        if edges[i] <= moment < edges[i + 1]:
            return i
    return -1


@dataclass(frozen=True)
class Trend:
    """One week or month: its case files (by the day their act ended) and recordings."""

    period: Period
    cases: CaseCounts
    recordings: RecordingCounts


@dataclass(frozen=True)
class Trends:
    weeks: tuple[Trend, ...]
    months: tuple[Trend, ...]


def _trends(
    weeks: Sequence[Period],
    months: Sequence[Period],
    case_groups: Iterable[tuple[int, int, CaseCounts]],
    media_groups: Iterable[tuple[int, int, RecordingCounts]],
) -> Trends:
    by_week_c: dict[int, CaseCounts] = {}
    by_month_c: dict[int, CaseCounts] = {}
    by_week_r: dict[int, RecordingCounts] = {}
    by_month_r: dict[int, RecordingCounts] = {}
    for w, m, cc in case_groups:
        _add(by_week_c, w, cc)
        _add(by_month_c, m, cc)
    for w, m, rc in media_groups:
        _add(by_week_r, w, rc)
        _add(by_month_r, m, rc)
    return Trends(
        tuple(
            Trend(p, by_week_c.get(i, CaseCounts()), by_week_r.get(i, RecordingCounts()))
            for i, p in enumerate(weeks)
        ),
        tuple(
            Trend(p, by_month_c.get(i, CaseCounts()), by_month_r.get(i, RecordingCounts()))
            for i, p in enumerate(months)
        ),
    )


def _trend_span(weeks: Sequence[Period], months: Sequence[Period], zone: tzinfo) -> Bounds:
    first = min(weeks[0].start, months[0].start)
    return Period(first, weeks[-1].end).bounds(zone)


def trends(
    conn: Connection,
    scope: Scope,
    end: date,
    zone: tzinfo,
    today: date,
    due_soon_days: int,
    limit_s: float,
) -> Trends:
    """Week over week and month over month, ending on ``end``: case files by the day their
    act ended, recordings by the day they started. SQL form.

    Each stretch between two consecutive edges (of the weeks or of the months) lies in one
    week and one month: it is summed over its range of the index without a GROUP BY, which
    at a year of an agency costs a third less than grouping every row of the two months by
    two bucket expressions (benchmark 9)."""
    weeks, months = trend_periods(end)
    week_edges, month_edges = _edges(weeks, zone), _edges(months, zone)
    case_sums = _case_sums(today, due_soon_days)
    media_sums = {k: v for k, v in _recording_sums(limit_s).items() if k in TREND_SUMS}
    case_rows, media_rows = [], []
    for lo, hi in pairwise(sorted({*week_edges, *month_edges})):
        week, month, part = bucket_of(lo, week_edges), bucket_of(lo, month_edges), Bounds(lo, hi)
        for _, sums in q.tally(conn, cases, case_base_clause(scope, part), [], case_sums):
            case_rows.append((week, month, _counts(CaseCounts, sums)))
        for _, sums in q.tally(conn, media, recording_base_clause(scope, part), [], media_sums):
            media_rows.append((week, month, _counts(RecordingCounts, sums)))
    return _trends(weeks, months, case_rows, media_rows)


#: What the trends count of recordings (their rates' parts): the rest stays 0.
TREND_SUMS = ("recordings", "av", "undescribed", "linked", "on_time")


def _trend_counts(counts: RecordingCounts) -> RecordingCounts:
    return replace(counts, seconds=0.0, drifted=0)


def _trend_case_counts(counts: CaseCounts) -> CaseCounts:
    return replace(counts, unsigned_records=0)


def trends_of(
    case_rows: Iterable[CaseRow],
    media_rows: Iterable[MediaRow],
    scope: Scope,
    end: date,
    zone: tzinfo,
    today: date,
    due_soon_days: int,
    limit_s: float,
) -> Trends:
    """:func:`trends`, Python form."""
    weeks, months = trend_periods(end)
    week_edges, month_edges = _edges(weeks, zone), _edges(months, zone)
    span = _trend_span(weeks, months, zone)

    def where(moment: datetime | None) -> tuple[int, int]:
        assert moment is not None
        return bucket_of(moment, week_edges), bucket_of(moment, month_edges)

    return _trends(
        weeks,
        months,
        (
            (*where(r.action_end), _trend_case_counts(case_counts_of(r, today, due_soon_days)))
            for r in case_rows
            if case_in_base(r, scope, span)
        ),
        (
            (*where(r.recorded_start), _trend_counts(recording_counts_of(r, limit_s)))
            for r in media_rows
            if recording_in_base(r, scope, span)
        ),
    )


# ----------------------------------------------------------------- of one officer


def problem_items(
    conn: Connection, scope: Scope, bounds: Bounds, limit_s: float, limit: int
) -> list[tuple[Any, ...]]:
    """The scope's recordings of the period that need a person: without a description (A/V),
    in no case, docked late or flagged for clock drift — newest first, at most ``limit``.
    Rows of (id, kind, device, start, end, docked, undescribed, linked, on time, drifted)."""
    av = media.c.kind.in_(AV_KINDS)
    undescribed = and_(av, not_(described_clause()))
    linked, timely = q.is_linked(), on_time_clause(limit_s)
    drifted = q.has_flag(media.c.flags, literal(DRIFT))
    query = (
        select(
            media.c.id,
            media.c.kind,
            media.c.device_serial,
            media.c.recorded_start,
            media.c.recorded_end,
            q.docked_at(),
            undescribed,
            linked,
            timely,
            drifted,
        )
        .where(
            recording_base_clause(scope, bounds),
            undescribed | not_(linked) | not_(timely) | drifted,
        )
        .order_by(media.c.recorded_start.desc(), media.c.id.desc())
        .limit(limit)
    )
    return [tuple(r) for r in conn.execute(query)]


def cases_needing_action(
    conn: Connection, scope: Scope, today: date, due_soon_days: int, limit: int
) -> list[str]:
    """The scope's case files not archived that are overdue or due soon, soonest due first
    (the overdue before them), at most ``limit``."""
    late_or_soon = state_clause(CaseState.OVERDUE, today, due_soon_days) | state_clause(
        CaseState.DUE_SOON, today, due_soon_days
    )
    query = (
        select(cases.c.number)
        .where(case_base_clause(scope, EVER, pending_only=True), late_or_soon)
        .order_by(cases.c.due, cases.c.number)
        .limit(limit)
    )
    return list(conn.execute(query).scalars())
