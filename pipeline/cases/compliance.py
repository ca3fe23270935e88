"""Compliance of cases with the full-process recording rule, and the report on it.

Per case: the 15-day filing state (open, due soon, overdue, archived on time or late), the
whole-process A/V coverage of mandatory categories, recordings without a written description
(文字说明), and text records neither signed nor with the refusal noted. The state rule exists
twice — :func:`pipeline.deadline.case_state` in Python and :func:`state_clause` in SQL — and a
test holds one against the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, and_, or_, select

from pipeline.cases.categories import Categories
from pipeline.cases.coverage import Coverage, coverage
from pipeline.cases.deadline import CaseState, case_state
from pipeline.catalog import cases as case_rows
from pipeline.catalog.schema import cases, links, media, officers
from pipeline.custody import log as custody
from pipeline.models import Case, EventKind, MediaKind, MediaStatus, Signature
from pipeline.settings import Settings

AV_KINDS = (MediaKind.VIDEO.value, MediaKind.AUDIO.value)


def state_clause(state: CaseState, today: date, due_soon_days: int) -> ColumnElement[bool]:
    """The SQL twin of ``case_state``: which rows of ``cases`` are in ``state`` on ``today``."""
    soon = today + timedelta(days=due_soon_days)
    pending = cases.c.archived_on.is_(None)
    if state is CaseState.ARCHIVED_ON_TIME:
        return and_(
            cases.c.archived_on.is_not(None),
            or_(cases.c.due.is_(None), cases.c.archived_on <= cases.c.due),
        )
    if state is CaseState.ARCHIVED_LATE:
        return and_(cases.c.archived_on.is_not(None), cases.c.archived_on > cases.c.due)
    if state is CaseState.OVERDUE:
        return and_(pending, cases.c.due < today)
    if state is CaseState.DUE_SOON:
        return and_(pending, cases.c.due >= today, cases.c.due <= soon)
    return and_(pending, or_(cases.c.due.is_(None), cases.c.due > soon))


def state_of(case: Case, today: date, due_soon_days: int) -> CaseState:
    return case_state(
        case.action_end.date() if case.action_end else None,
        case.due,
        case.archived_on,
        today,
        due_soon_days,
    )


@dataclass(frozen=True)
class LinkedItem:
    media_id: int
    kind: str
    device: str | None
    officer: str | None
    start: datetime | None
    end: datetime | None
    described: bool
    signature: str | None


@dataclass(frozen=True)
class Finding:
    """What the compliance sweep found about one case."""

    case: Case
    state: CaseState
    mandatory_av: bool
    coverage: Coverage | None
    undescribed: tuple[int, ...]  # linked A/V recordings without a written description
    unsigned: tuple[int, ...]  # linked text records neither signed nor refusal noted
    items: tuple[LinkedItem, ...] = field(repr=False, default=())
    timezone: str = "UTC"  # how times in problems() are shown: the users' local time

    @property
    def coverage_failed(self) -> bool:
        return self.mandatory_av and (self.coverage is None or not self.coverage.complete)

    @property
    def complete(self) -> bool:
        """Everything the rule asks of the file is there: it may be sealed."""
        return not self.coverage_failed and not self.undescribed and not self.unsigned

    def problems(self) -> list[str]:
        tz = ZoneInfo(self.timezone)
        out = []
        if self.state in (CaseState.OVERDUE, CaseState.DUE_SOON, CaseState.ARCHIVED_LATE):
            out.append(f"{self.state.value}: due {self.case.due}")
        if self.case.due_provisional:
            out.append("deadline provisional: the holiday calendar lacks a year")
        if self.mandatory_av:
            cov = self.coverage
            if cov is None:
                out.append("mandatory A/V: the action window is not set")
            elif cov.recordings == 0:
                out.append("mandatory A/V: no recording at all")
            for gap in cov.gaps if cov else ():
                out.append(
                    f"coverage gap {gap.start.astimezone(tz):%Y-%m-%d %H:%M:%S}–"
                    f"{gap.end.astimezone(tz):%H:%M:%S} {self.timezone}, "
                    f"{gap.seconds:.0f} s"
                )
        if self.undescribed:
            out.append(
                f"{len(self.undescribed)} recording(s) without description: "
                f"{list(self.undescribed)}"
            )
        if self.unsigned:
            out.append(f"{len(self.unsigned)} text record(s) unsigned, refusal not noted")
        return out


def linked_items(conn: Connection, number: str) -> list[LinkedItem]:
    query = (
        select(
            media.c.id,
            media.c.kind,
            media.c.device_serial,
            media.c.officer_id,
            media.c.recorded_start,
            media.c.recorded_end,
            media.c.description,
            media.c.signature,
        )
        .join(links, links.c.media_id == media.c.id)
        .where(links.c.case_number == number, links.c.removed_at.is_(None))
        .order_by(media.c.recorded_start)
    )
    return [
        LinkedItem(
            r.id,
            r.kind,
            r.device_serial,
            r.officer_id,
            r.recorded_start,
            r.recorded_end,
            bool(r.description and r.description.strip()),
            r.signature,
        )
        for r in conn.execute(query)
    ]


def evaluate(
    conn: Connection, case: Case, settings: Settings, categories: Categories, today: date
) -> Finding:
    category = categories.get(case.category)
    items = linked_items(conn, case.number)
    av = [i for i in items if i.kind in AV_KINDS]
    cov = None
    if category.mandatory_av and case.action_start and case.action_end:
        cov = coverage(
            case.action_start,
            case.action_end,
            [(i.start, i.end) for i in av if i.start and i.end],
            settings.cases.coverage_gap_s,
        )
    return Finding(
        case=case,
        state=state_of(case, today, settings.cases.due_soon_days),
        mandatory_av=category.mandatory_av,
        coverage=cov,
        undescribed=tuple(i.media_id for i in av if not i.described),
        unsigned=tuple(
            i.media_id
            for i in items
            if i.kind == MediaKind.DOCUMENT.value and i.signature == Signature.MISSING.value
        ),
        items=tuple(items),
        timezone=settings.devices.timezone,
    )


def evaluate_all(
    conn: Connection, settings: Settings, categories: Categories, today: date, where: Any = None
) -> list[Finding]:
    return [evaluate(conn, c, settings, categories, today) for c in case_rows.listing(conn, where)]


def period_clause(
    department: str | None, since: datetime | None, until: datetime | None
) -> ColumnElement[bool] | None:
    """Which rows of ``cases`` a report covers: one department's tree (else all: the units
    below it are its own, as a supervisor's reach is), acts ending from ``since`` and
    before ``until`` (either open); None: every case."""
    clauses = []
    if department:
        clauses.append(in_tree(cases.c.department, department))
    if since:
        clauses.append(cases.c.action_end >= since)
    if until:
        clauses.append(cases.c.action_end < until)
    return and_(*clauses) if clauses else None


@dataclass(frozen=True)
class UnlinkedMedia:
    """An archived recording in no case."""

    id: int
    original_name: str
    kind: str
    device_serial: str | None
    officer_id: str | None
    recorded_start: datetime | None


def in_tree(column: Any, department: str) -> ColumnElement[bool]:
    """``column`` names ``department`` or a unit below it (``县局/治安大队`` holds
    ``县局/治安大队/一中队``); LIKE's wildcards in a name are escaped."""
    return or_(column == department, column.startswith(department + "/", autoescape=True))


def unlinked_media(
    conn: Connection,
    since: datetime | None = None,
    until: datetime | None = None,
    department: str | None = None,
) -> list[UnlinkedMedia]:
    """Archived recordings in no case: listed for an archivist to review. For a department,
    those of its officers only: a department's report must not list other units' officers."""
    linked = select(links.c.media_id).where(links.c.removed_at.is_(None))
    query = select(
        media.c.id,
        media.c.original_name,
        media.c.kind,
        media.c.device_serial,
        media.c.officer_id,
        media.c.recorded_start,
    ).where(
        media.c.status == MediaStatus.ARCHIVED.value,
        media.c.kind.in_((*AV_KINDS, MediaKind.PHOTO.value)),
        media.c.id.notin_(linked),
    )
    if since is not None:
        query = query.where(media.c.recorded_start >= since)
    if until is not None:
        query = query.where(media.c.recorded_start < until)
    if department:
        theirs = select(officers.c.id).where(in_tree(officers.c.department, department))
        query = query.where(media.c.officer_id.in_(theirs))
    return [UnlinkedMedia(*row) for row in conn.execute(query.order_by(media.c.recorded_start))]


# ---------------------------------------------------------------------------------- report


@dataclass
class Tally:
    """One line of the report: a department, an officer or a device."""

    cases_concluded: int = 0
    archived_on_time: int = 0
    archived_late: int = 0
    overdue_now: int = 0
    coverage_failures: int = 0
    without_description: int = 0
    unlinked_media: int = 0


@dataclass(frozen=True)
class Report:
    today: date
    departments: dict[str, Tally]
    officers: dict[str, Tally]
    devices: dict[str, Tally]
    findings: tuple[Finding, ...]


def report(findings: Iterable[Finding], unlinked: Iterable[UnlinkedMedia], today: date) -> Report:
    found = tuple(findings)
    by: dict[str, dict[str, Tally]] = {"department": {}, "officer": {}, "device": {}}

    def tallies(f: Finding) -> list[Tally]:
        keys = [("department", f.case.department or "(none)")]
        keys += [("officer", o) for o in f.case.officers]
        keys += [("device", d) for d in sorted({i.device for i in f.items if i.device})]
        return [by[k].setdefault(v, Tally()) for k, v in keys]

    for f in found:
        for t in tallies(f):
            t.cases_concluded += f.case.action_end is not None
            t.archived_on_time += f.state is CaseState.ARCHIVED_ON_TIME
            t.archived_late += f.state is CaseState.ARCHIVED_LATE
            t.overdue_now += f.state is CaseState.OVERDUE
            t.coverage_failures += f.coverage_failed
        for i in f.items:
            if i.media_id in f.undescribed:
                for key, value in (("officer", i.officer), ("device", i.device)):
                    if value:
                        by[key].setdefault(value, Tally()).without_description += 1
                by["department"].setdefault(
                    f.case.department or "(none)", Tally()
                ).without_description += 1
    for row in unlinked:
        for key, value in (("officer", row.officer_id), ("device", row.device_serial)):
            if value:
                by[key].setdefault(value, Tally()).unlinked_media += 1
    return Report(today, by["department"], by["officer"], by["device"], found)


def raise_alerts(conn: Connection, findings: Iterable[Finding], actor: str, now: datetime) -> int:
    """One ALERT custody event per case with something to act on; how many were raised."""
    raised = 0
    for f in findings:
        if f.state in (CaseState.ARCHIVED_ON_TIME, CaseState.ARCHIVED_LATE):
            continue
        problems = f.problems()
        if problems:
            custody.append(
                conn,
                EventKind.ALERT,
                actor,
                subject=f.case.number,
                details={
                    "code": "case-compliance",
                    "case": f.case.number,
                    "state": f.state.value,
                    "problems": problems,
                },
                now=now,
            )
            raised += 1
    return raised
