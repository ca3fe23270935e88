"""What supervisors and the legal office read (统计分析), one function per reading.

Each takes the :class:`~pipeline.instance.Instance`, reads in one transaction and returns a
frozen dataclass; ``plain()`` of it is the JSON of ``evidence compliance dashboard --json``
and of ``/api/v1/dashboard``. With ``user`` given (the web), who may read what is checked
first (``permissions.can_read_dashboard``): a supervisor their department tree, the legal
office everything; a refusal is a REFUSED custody event. Without it (the CLI on the
server's shell) nothing is scoped, as everywhere on that shell.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import NoReturn

from sqlalchemy import Connection

from pipeline.accounts.permissions import can_read_dashboard
from pipeline.accounts.users import User, UserRole, normal_department, within
from pipeline.cases import compliance
from pipeline.cases.categories import Categories, load_categories
from pipeline.catalog import cases as case_rows
from pipeline.catalog import registry as registry_rows
from pipeline.catalog import supervision as q
from pipeline.custody import log as custody
from pipeline.errors import NotFound, PermissionDenied
from pipeline.instance import Instance
from pipeline.models import Case, EventKind
from pipeline.settings import Settings
from pipeline.supervision import alerts
from pipeline.supervision import figures as f
from pipeline.supervision.dashboard import (
    CaseAction,
    CaseLine,
    Dashboard,
    DeviceUse,
    Figures,
    ItemLine,
    OfficerFigures,
    OfficerRow,
    Trends,
    UnitRow,
    change,
    labels,
    measures,
    trend_row,
    weakest,
)
from pipeline.supervision.figures import (
    Bounds,
    Breakdown,
    CaseCounts,
    CoverageCounts,
    DeviceFigures,
    Period,
    RecordingCounts,
    Scope,
)

#: The period a dashboard shows when none is asked for: the last 30 days, today included.
DEFAULT_DAYS = 30
#: Cases listed as needing action, and an officer's recordings listed, at most.
CASES_SHOWN = 50
ITEMS_SHOWN = 200


def today_of(instance: Instance) -> date:
    """The users' local date (deadlines and periods count in local days)."""
    return instance.clock().astimezone(instance.settings.zone).date()


def default_period(instance: Instance) -> Period:
    """The last :data:`DEFAULT_DAYS` days, today included."""
    today = today_of(instance)
    return Period(today - timedelta(days=DEFAULT_DAYS - 1), today)


def days_of(
    instance: Instance, since: datetime | None, until: datetime | None
) -> tuple[date, date]:
    """The local days of the moments ``[since, until)`` (a command's --from and --to):
    without ``until`` up to today (or 30 days from ``since``), without ``since`` the 30 days
    up to the end."""
    zone, days = instance.settings.zone, timedelta(days=DEFAULT_DAYS - 1)
    start = since.astimezone(zone).date() if since else None
    end = (until - timedelta(microseconds=1)).astimezone(zone).date() if until else None
    if end is None:
        end = start + days if start else today_of(instance)
    return (start or end - days), end


def _period(start: date, end: date) -> Period:
    if start > end:
        raise ValueError(f"the period starts ({start}) after it ends ({end})")
    return Period(start, end)


# ---------------------------------------------------------------------- who may read


def _refuse(instance: Instance, user: User, subject: str, asked: dict[str, str | None]) -> NoReturn:
    with instance.catalog.begin() as conn:
        custody.append(
            conn,
            EventKind.REFUSED,
            user.login,
            subject=subject,
            details={
                "action": "dashboard",
                "roles": [r.value for r in user.roles],
                "department": user.department,
                **asked,
            },
            now=instance.clock(),
        )
    raise PermissionDenied(
        subject,
        "无权查看该部门的统计 (the dashboard of this unit is outside your roles and department)",
    )


def readable_department(
    instance: Instance, user: User | None, department: str | None
) -> str | None:
    """The department tree the dashboard shows: the one asked for (None: every unit), if
    ``user`` may read it; a supervisor who asks for none gets their own tree."""
    wanted = normal_department(department) if department else None
    wanted = wanted or None
    if user is None:
        return wanted
    if not can_read_dashboard(user):
        _refuse(instance, user, f"dashboard {wanted or '*'}", {"asked": wanted})
    if user.has(UserRole.LEGAL_REVIEWER):
        return wanted
    own = normal_department(user.department)
    if own and wanted is None:
        return own
    if own and wanted is not None and within(wanted, own):
        return wanted
    return _refuse(instance, user, f"dashboard {wanted or '*'}", {"asked": wanted})


def _may_read_officer(
    instance: Instance, user: User | None, officer_id: str, department: str
) -> None:
    if user is None or (can_read_dashboard(user) and user.has(UserRole.LEGAL_REVIEWER)):
        return
    if can_read_dashboard(user) and within(department, user.department):
        return
    _refuse(
        instance,
        user,
        f"dashboard officer {officer_id}",
        {"officer": officer_id, "officer_department": department},
    )


# ------------------------------------------------------------------------ the reading


def _mandatory(categories: Categories) -> list[str]:
    return [c.id for c in categories.listing() if c.mandatory_av]


def _read(
    conn: Connection,
    settings: Settings,
    categories: Categories,
    scope: Scope,
    bounds: Bounds,
    end: date,
    now: datetime,
) -> tuple[
    Breakdown[CaseCounts],
    Breakdown[CoverageCounts],
    Breakdown[RecordingCounts],
    DeviceFigures,
    f.Trends,
]:
    cs, ds, zone = settings.cases, settings.devices, settings.zone
    today, limit_s = now.astimezone(zone).date(), cs.upload_limit_hours * 3600
    return (
        f.case_files(conn, scope, bounds, today, cs.due_soon_days),
        f.coverage_figures(conn, scope, bounds, _mandatory(categories), cs.coverage_gap_s),
        f.recordings(conn, scope, bounds, limit_s),
        f.device_figures(conn, scope, now, ds.not_docked_days, bounds, ds.drift_tolerance_s),
        f.trends(conn, scope, end, zone, today, cs.due_soon_days, limit_s),
    )


def _figures(
    cf: CaseCounts, cov: CoverageCounts, rec: RecordingCounts, dev: DeviceFigures
) -> Figures:
    return Figures(
        **measures(cf, cov, rec),
        devices_active=len(dev.active),
        devices_not_docked=len(dev.not_docked),
        devices_drift_reported=len(dev.drift_reported),
    )


def _trends(found: f.Trends) -> Trends:
    weeks = tuple(trend_row(t) for t in found.weeks)
    months = tuple(trend_row(t) for t in found.months)
    return Trends(weeks, months, change(weeks[-2], weeks[-1]), change(months[-2], months[-1]))


def _devices(
    conn: Connection, rec: Breakdown[RecordingCounts], dev: DeviceFigures
) -> tuple[DeviceUse, ...]:
    """The devices of the scope and those its recordings were made with."""
    serials = {s for s in rec.by_device if s is not None} | set(dev.active)
    held = q.holders(conn, serials)
    last = dict(dev.last_docked) | q.last_docked(conn, serials - set(dev.last_docked))
    rows = []
    for serial in sorted(
        serials | ({None} if None in rec.by_device else set()), key=lambda s: (s is None, s or "")
    ):
        counts = rec.by_device.get(serial, RecordingCounts())
        holder, department, status = held.get(serial, (None, "", "")) if serial else (None, "", "")
        rows.append(
            DeviceUse(
                serial,
                holder,
                department or "",
                status,
                counts.recordings,
                counts.av,
                counts.hours,
                counts.drifted,
                last.get(serial) if serial else None,
                serial in dev.not_docked,
                dev.drift_reported.get(serial) if serial else None,
            )
        )
    return tuple(rows)


def _units(
    cf: Breakdown[CaseCounts], cov: Breakdown[CoverageCounts], rec: Breakdown[RecordingCounts]
) -> tuple[UnitRow, ...]:
    keys = sorted({*cf.by_unit, *cov.by_unit, *rec.by_unit})
    return tuple(
        UnitRow(
            department=k,
            **measures(
                cf.by_unit.get(k, CaseCounts()),
                cov.by_unit.get(k, CoverageCounts()),
                rec.by_unit.get(k, RecordingCounts()),
            ),
        )
        for k in keys
    )


def _officers(
    conn: Connection,
    cf: Breakdown[CaseCounts],
    cov: Breakdown[CoverageCounts],
    rec: Breakdown[RecordingCounts],
) -> tuple[OfficerRow, ...]:
    keys = {*cf.by_officer, *cov.by_officer, *rec.by_officer}
    named = q.names(conn, (k for k in keys if k is not None))
    found = []
    for k in keys:
        name, department = named.get(k, (k, "")) if k is not None else ("未归属 unattributed", "")
        found.append(
            OfficerRow(
                officer_id=k,
                name=name,
                department=department,
                **measures(
                    cf.by_officer.get(k, CaseCounts()),
                    cov.by_officer.get(k, CoverageCounts()),
                    rec.by_officer.get(k, RecordingCounts()),
                ),
            )
        )
    return tuple(
        sorted(found, key=lambda r: (r.officer_id is None, r.department, r.officer_id or ""))
    )


def _needing_action(
    conn: Connection,
    scope: Scope,
    settings: Settings,
    categories: Categories,
    today: date,
) -> tuple[CaseAction, ...]:
    """The case files overdue or due soon, then those whose coverage fails, at most
    CASES_SHOWN (the coverage is read only when the first leave room)."""
    cs = settings.cases
    numbers = f.cases_needing_action(conn, scope, today, cs.due_soon_days, CASES_SHOWN)
    if len(numbers) < CASES_SHOWN:
        covered = f.coverage_cases(
            conn, scope, f.EVER, _mandatory(categories), cs.coverage_gap_s, pending_only=True
        )
        failed = [c.number for c in covered if c.failed and c.number not in numbers]
        numbers += failed[: CASES_SHOWN - len(numbers)]
    return tuple(
        CaseAction(
            c.number,
            c.title,
            c.department,
            found.state.value,
            c.due,
            found.coverage_failed,
            tuple(found.problems()),
        )
        for c, found in _evaluated(conn, numbers, settings, categories, today)
    )


def _evaluated(
    conn: Connection,
    numbers: Iterable[str],
    settings: Settings,
    categories: Categories,
    today: date,
) -> list[tuple[Case, compliance.Finding]]:
    found = []
    for number in numbers:
        case = case_rows.get(conn, number)
        if case is not None:
            found.append((case, compliance.evaluate(conn, case, settings, categories, today)))
    return found


def dashboard(
    instance: Instance,
    department: str | None,
    start: date,
    end: date,
    *,
    user: User | None = None,
) -> Dashboard:
    """The compliance dashboard of ``department`` (a tree; None: every unit) for the local
    days ``start`` to ``end``: every figure in all, by unit and by officer, the devices, the
    trends to ``end``, the weakest units and officers, today's summary per department, and
    the case files that need action now."""
    settings, now = instance.settings, instance.clock()
    tree = readable_department(instance, user, department)
    period = _period(start, end)
    today = now.astimezone(settings.zone).date()
    categories = load_categories(settings)
    scope = Scope(tree)
    with instance.catalog.read() as conn:
        cf, cov, rec, dev, found = _read(
            conn, settings, categories, scope, period.bounds(settings.zone), end, now
        )
        kept = alerts.published(conn, scope)
        summary, as_of = (kept.rows, kept.computed_at) if kept else (None, None)
        if summary is None:  # no sweep yet: computed now
            summary = alerts.summaries(conn, scope, settings, categories, now)
        action = _needing_action(conn, scope, settings, categories, today)
        devices = _devices(conn, rec, dev)
        people = _officers(conn, cf, cov, rec)
    units = _units(cf, cov, rec)
    return Dashboard(
        department=tree,
        start=period.start,
        end=period.end,
        today=today,
        upload_limit_hours=settings.cases.upload_limit_hours,
        due_soon_days=settings.cases.due_soon_days,
        not_docked_days=settings.devices.not_docked_days,
        figures=_figures(cf.total, cov.total, rec.total, dev),
        alerts=summary,
        alerts_as_of=as_of,
        units=units,
        officers=people,
        devices=devices,
        trends=_trends(found),
        weakest=weakest(units, people),
        needing_action=action,
        labels=labels(),
    )


def period_figures(instance: Instance, department: str | None, start: date, end: date) -> Figures:
    """Only the dashboard's figures in all (no rows, trends or summaries), for the
    compliance report and its spreadsheet: the same numbers as ``dashboard().figures``."""
    settings, now = instance.settings, instance.clock()
    period = _period(start, end)
    with instance.catalog.read() as conn:
        cf, cov, rec, dev, _found = _read(
            conn, settings, load_categories(settings), Scope(department),
            period.bounds(settings.zone), end, now,
        )  # fmt: skip
    return _figures(cf.total, cov.total, rec.total, dev)


def officer_figures(
    instance: Instance,
    officer_id: str,
    start: date,
    end: date,
    *,
    user: User | None = None,
) -> OfficerFigures:
    """One officer's figures for the local days ``start`` to ``end`` (their cases, their
    recordings, the devices they hold), each of their cases with its problems, and their
    recordings that need a person (newest first)."""
    settings, now = instance.settings, instance.clock()
    period = _period(start, end)
    today = now.astimezone(settings.zone).date()
    categories = load_categories(settings)
    scope = Scope(officer=officer_id)
    bounds = period.bounds(settings.zone)
    with instance.catalog.read() as conn:
        officer = registry_rows.officer(conn, officer_id)
        if officer is None:
            raise NotFound("officer", officer_id)
    _may_read_officer(instance, user, officer_id, officer.department)
    with instance.catalog.read() as conn:
        cf, cov, rec, dev, found = _read(conn, settings, categories, scope, bounds, end, now)
        devices = _devices(conn, rec, dev)
        listed = case_rows.listing(conn, f.case_base_clause(scope, bounds))
        cases = tuple(
            CaseLine(
                c.number,
                c.title,
                c.category,
                c.department,
                e.state.value,
                c.due,
                e.coverage_failed,
                tuple(e.problems()),
            )
            for c, e in _evaluated(conn, (c.number for c in listed), settings, categories, today)
        )
        problems = f.problem_items(
            conn, scope, bounds, settings.cases.upload_limit_hours * 3600, ITEMS_SHOWN + 1
        )
    return OfficerFigures(
        officer_id=officer.id,
        name=officer.name,
        department=officer.department,
        start=period.start,
        end=period.end,
        today=today,
        upload_limit_hours=settings.cases.upload_limit_hours,
        figures=_figures(cf.total, cov.total, rec.total, dev),
        devices=devices,
        trends=_trends(found),
        cases=cases,
        items=tuple(_item(row) for row in problems[:ITEMS_SHOWN]),
        more_items=len(problems) > ITEMS_SHOWN,
        labels=labels(),
    )


def _item(row: tuple[object, ...]) -> ItemLine:
    media_id, kind, device, start, end, docked, undescribed, linked, timely, drifted = row
    problems = [
        name
        for name, holds in (
            ("undescribed", undescribed),
            ("unlinked", not linked),
            ("late-upload", not timely),
            ("clock-drift", drifted),
        )
        if holds
    ]
    return ItemLine(int(media_id), str(kind), device, start, end, docked, tuple(problems))  # type: ignore[arg-type, call-overload]


def department_summaries(
    instance: Instance, department: str | None = None, *, user: User | None = None
) -> tuple[alerts.DepartmentSummary, ...]:
    """Today's summary per department (due soon, overdue, coverage failures, late uploads)
    of ``department``'s tree (None: every unit), computed now."""
    tree = readable_department(instance, user, department)
    settings = instance.settings
    with instance.catalog.read() as conn:
        return alerts.summaries(
            conn, Scope(tree), settings, load_categories(settings), instance.clock()
        )


def publish_department_summaries(instance: Instance) -> tuple[alerts.DepartmentSummary, ...]:
    """The daily sweep's summary of every unit, computed and kept for the dashboard's top."""
    settings, now = instance.settings, instance.clock()
    with instance.catalog.begin() as conn:
        found = alerts.summaries(conn, Scope(None), settings, load_categories(settings), now)
        alerts.publish(conn, found, now, now.astimezone(settings.zone).date())
    return found
