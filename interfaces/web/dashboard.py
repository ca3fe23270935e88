"""The compliance dashboard (统计分析): ``/dashboard`` for a department and a period, with its
charts drawn by the server as SVG, and the drill-down department → officer
(``/dashboard/officers/{id}``) → case file or item; ``/api/v1/dashboard`` is exactly what
`evidence compliance dashboard --json` prints. Who may read which department is the use
case's rule (``pipeline.supervision.usecases``): a supervisor their tree, the legal office
every unit; anyone else gets 403 and a REFUSED custody event."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from interfaces.web import charts
from interfaces.web.deps import InstanceDep, SignedDep, render
from interfaces.web.errors import BadRequest
from pipeline.cases.deadline import CaseState
from pipeline.instance import Instance
from pipeline.models import plain
from pipeline.supervision import usecases
from pipeline.supervision.dashboard import (
    ITEM_PROBLEMS,
    LABELS,
    RANKED,
    Dashboard,
    OfficerFigures,
    Trends,
)

router = APIRouter()

STATE_LABELS = {s.value: s.label_zh for s in CaseState}
RANKED_MEASURES = tuple(measure for measure, _, _ in RANKED)

DepartmentParam = Annotated[str | None, Query(max_length=200)]
DayParam = Annotated[str | None, Query(max_length=10)]
#: The longest period a page may ask for (a range of years reads every row of them).
LONGEST = timedelta(days=3 * 366)


def period(instance: Instance, start: str | None, until: str | None) -> tuple[date, date]:
    """The days asked for (``YYYY-MM-DD``; an empty field is none): by default the last 30
    days; with only one end, 30 days from or up to it."""
    first, last = _day(start, "from"), _day(until, "until")
    days = timedelta(days=usecases.DEFAULT_DAYS - 1)
    if last is None:
        last = first + days if first else usecases.today_of(instance)
    if first is None:
        first = last - days
    if first > last:
        raise BadRequest(f"from {first} is after until {last} (起始日期晚于截止日期)")
    if last - first > LONGEST:
        raise BadRequest("a period of at most three years (统计期间最长三年)")
    return first, last


def _day(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(
            f"{name}: {text!r} is not a date YYYY-MM-DD (日期格式应为 YYYY-MM-DD)"
        ) from None


def _dashboard(
    instance: InstanceDep,
    signed: SignedDep,
    department: str | None,
    start: str | None,
    until: str | None,
) -> Dashboard:
    first, last = period(instance, start, until)
    return usecases.dashboard(instance, department, first, last, user=signed.user)


def _officer(
    instance: InstanceDep, signed: SignedDep, officer_id: str, start: str | None, until: str | None
) -> OfficerFigures:
    first, last = period(instance, start, until)
    return usecases.officer_figures(instance, officer_id, first, last, user=signed.user)


@router.get("/dashboard", include_in_schema=False)
def dashboard_page(
    request: Request,
    instance: InstanceDep,
    signed: SignedDep,
    department: DepartmentParam = None,
    start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    until: DayParam = None,
) -> Response:
    found = _dashboard(instance, signed, department, start, until)
    context = {
        "user": signed.user,
        "d": found,
        "f": found.figures,
        "labels": LABELS,
        "states": _states(found),
        "units_chart": _units_chart(found),
        "trend_chart": _trend_chart(found.trends),
        "weekly_chart": _weekly_chart(found.trends),
        "device_chart": _device_chart(found),
        "officer_chart": _officer_chart(found),
        "link": _links(found.start, found.end),
        "tree": found.department or "",
        "ranked": RANKED_MEASURES,
        "state_labels": STATE_LABELS,
    }
    return render(request, "dashboard.html", context)


@router.get("/dashboard/officers/{officer_id}", include_in_schema=False)
def officer_page(
    request: Request,
    instance: InstanceDep,
    signed: SignedDep,
    officer_id: str,
    start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    until: DayParam = None,
) -> Response:
    found = _officer(instance, signed, officer_id, start, until)
    context = {
        "user": signed.user,
        "o": found,
        "f": found.figures,
        "labels": LABELS,
        "problems": ITEM_PROBLEMS,
        "trend_chart": _trend_chart(found.trends),
        "link": _links(found.start, found.end),
        "state_labels": STATE_LABELS,
    }
    return render(request, "dashboard_officer.html", context)


@router.get("/api/v1/dashboard")
def api_dashboard(
    instance: InstanceDep,
    signed: SignedDep,
    department: DepartmentParam = None,
    start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    until: DayParam = None,
) -> Any:
    """The compliance dashboard: exactly what `evidence compliance dashboard --json` prints
    (``from`` and ``until`` are local days, both included; by default the last 30 days)."""
    return plain(_dashboard(instance, signed, department, start, until))


@router.get("/api/v1/dashboard/officers/{officer_id}")
def api_officer(
    instance: InstanceDep,
    signed: SignedDep,
    officer_id: str,
    start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    until: DayParam = None,
) -> Any:
    """One officer's figures, cases and recordings to look at: exactly what `evidence
    compliance dashboard --officer ID --json` prints."""
    return plain(_officer(instance, signed, officer_id, start, until))


# ------------------------------------------------------------------------ what is drawn


class _Links:
    """The drill-down links, the period kept."""

    def __init__(self, start: date, end: date) -> None:
        self.period = {"from": start.isoformat(), "until": end.isoformat()}

    def unit(self, department: str | None) -> str:
        return "/dashboard?" + urlencode({"department": department or "", **self.period})

    def officer(self, officer_id: str) -> str:
        return f"/dashboard/officers/{quote(officer_id, safe='')}?" + urlencode(self.period)


def _links(start: date, end: date) -> _Links:
    return _Links(start, end)


def _states(d: Dashboard) -> tuple[charts.Segment, ...]:
    f = d.figures
    return charts.stacked(
        [
            ("按时归档 archived on time", f.cases_archived_on_time, charts.GOOD),
            ("逾期归档 archived late", f.cases_archived_late, charts.LATE),
            ("已逾期 overdue", f.cases_overdue, charts.BAD),
            ("即将到期 due soon", f.cases_due_soon, charts.SOON),
            ("未到期 open", f.cases_open, charts.IDLE),
        ]
    )


RATES = ("on_time_rate", "upload_timeliness", "link_rate", "description_rate")


def _rate_names() -> list[str]:
    return [f"{LABELS[k][0]} {LABELS[k][1]}" for k in RATES]


def _units_chart(d: Dashboard) -> charts.BarChart:
    links = _links(d.start, d.end)
    rows = [
        (
            u.department or "（无部门 no unit）",
            links.unit(u.department) if u.department else None,
            [getattr(u, k) for k in RATES],
        )
        for u in d.units
    ]
    return charts.bars(rows, _rate_names(), rates=True)


def _trend_chart(t: Trends) -> charts.LineChart:
    periods = [f"{w.start:%m-%d}–{w.end:%m-%d}" for w in t.weeks]
    return charts.lines(
        periods,
        [(n, [getattr(w, k) for w in t.weeks]) for n, k in zip(_rate_names(), RATES, strict=True)],
    )


def _weekly_chart(t: Trends) -> charts.BarChart:
    rows = [
        (f"{w.start:%m-%d}–{w.end:%m-%d}", None, [w.recordings, w.cases_concluded]) for w in t.weeks
    ]
    return charts.bars(
        rows, ["记录数 recordings", "办结案件 cases concluded"], rates=False, bar_h=9
    )


TOP = 15


def _device_chart(d: Dashboard) -> charts.BarChart:
    used = sorted(
        (x for x in d.devices if x.serial),
        key=lambda x: (-x.recorded_hours, -x.recordings, x.serial or ""),
    )[:TOP]
    rows = [(x.serial or "", None, [x.recorded_hours, x.recordings]) for x in used]
    return charts.bars(rows, ["录制时长（小时）hours", "记录数 recordings"], rates=False, bar_h=9)


def _officer_chart(d: Dashboard) -> charts.BarChart:
    links = _links(d.start, d.end)
    people = sorted(
        (o for o in d.officers if o.officer_id), key=lambda o: (-o.recordings, o.officer_id or "")
    )[:TOP]
    rows = [
        (
            f"{o.officer_id} {o.name}",
            links.officer(o.officer_id or ""),
            [o.recorded_hours, o.recordings, o.unlinked_recordings],
        )
        for o in people
    ]
    return charts.bars(
        rows,
        ["录制时长（小时）hours", "记录数 recordings", "未关联 unlinked"],
        rates=False,
        bar_h=9,
    )
