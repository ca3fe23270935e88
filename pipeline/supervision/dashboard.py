"""What the dashboard shows, as flat frozen dataclasses: ``plain()`` of :class:`Dashboard` is
the JSON of ``evidence compliance dashboard --json`` and ``/api/v1/dashboard``, one stable
shape that spreadsheets are written from (every figure a number under its key, every table a
list of rows with the same keys).

The figures' keys, with their zh-CN and English labels, are :data:`LABELS`; how each is
counted is in ``pipeline.supervision.figures`` and docs/web.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pipeline.supervision.alerts import DepartmentSummary
from pipeline.supervision.figures import CaseCounts, CoverageCounts, RecordingCounts, Trend

#: Each figure's key: (zh-CN, English). The order is the dashboard's.
LABELS: dict[str, tuple[str, str]] = {
    "cases_concluded": ("办结案件", "cases concluded"),
    "cases_archived_on_time": ("按时归档", "archived on time"),
    "cases_archived_late": ("逾期归档", "archived late"),
    "cases_overdue": ("已逾期未归档", "overdue now"),
    "cases_due_soon": ("即将到期", "due soon"),
    "cases_open": ("未到期", "open, not yet due"),
    "on_time_rate": ("按时归档率", "on-time rate"),
    "mandatory_cases": ("须全程录像案件", "cases needing whole-process A/V"),
    "coverage_failures": ("覆盖不全案件", "cases with coverage gaps"),
    "uncovered_minutes": ("未覆盖时长（分钟）", "uncovered minutes"),
    "undescribed_recordings": ("缺文字说明", "recordings without a description"),
    "unsigned_records": ("笔录未签字且未注明", "text records unsigned, refusal not noted"),
    "recordings": ("记录数", "recordings"),
    "av_recordings": ("音视频", "audio and video"),
    "recorded_hours": ("录制时长（小时）", "hours recorded"),
    "uploads_on_time": ("按时上传", "docked on time"),
    "uploads_late": ("逾期上传", "docked late"),
    "upload_timeliness": ("上传及时率", "upload timeliness"),
    "linked_recordings": ("已关联案件", "linked to a case"),
    "unlinked_recordings": ("未关联案件", "in no case"),
    "link_rate": ("关联率", "link rate"),
    "description_rate": ("文字说明率", "description rate"),
    "drift_flagged": ("时钟偏差记录", "recordings flagged clock-drift"),
    "devices_active": ("在用设备", "devices in use"),
    "devices_not_docked": ("未按期接入设备", "devices not docked"),
    "devices_drift_reported": ("采集站报告时钟偏差设备", "devices with a clock reported off"),
}


@dataclass(frozen=True, kw_only=True)
class Measures:
    """The figures of a unit, an officer or the whole scope (keys of :data:`LABELS`)."""

    cases_concluded: int
    cases_archived_on_time: int
    cases_archived_late: int
    cases_overdue: int
    cases_due_soon: int
    cases_open: int
    on_time_rate: float | None
    mandatory_cases: int
    coverage_failures: int
    uncovered_minutes: float
    undescribed_recordings: int
    unsigned_records: int
    recordings: int
    av_recordings: int
    recorded_hours: float
    uploads_on_time: int
    uploads_late: int
    upload_timeliness: float | None
    linked_recordings: int
    unlinked_recordings: int
    link_rate: float | None
    description_rate: float | None
    drift_flagged: int


def measures(cases: CaseCounts, cov: CoverageCounts, rec: RecordingCounts) -> dict[str, Any]:
    """The :class:`Measures` fields of these counts."""
    return {
        "cases_concluded": cases.concluded,
        "cases_archived_on_time": cases.archived_on_time,
        "cases_archived_late": cases.archived_late,
        "cases_overdue": cases.overdue,
        "cases_due_soon": cases.due_soon,
        "cases_open": cases.open,
        "on_time_rate": cases.on_time_rate,
        "mandatory_cases": cov.mandatory,
        "coverage_failures": cov.failed,
        "uncovered_minutes": cov.uncovered_minutes,
        "undescribed_recordings": rec.undescribed,
        "unsigned_records": cases.unsigned_records,
        "recordings": rec.recordings,
        "av_recordings": rec.av,
        "recorded_hours": rec.hours,
        "uploads_on_time": rec.on_time,
        "uploads_late": rec.late,
        "upload_timeliness": rec.upload_timeliness,
        "linked_recordings": rec.linked,
        "unlinked_recordings": rec.unlinked,
        "link_rate": rec.link_rate,
        "description_rate": rec.description_rate,
        "drift_flagged": rec.drifted,
    }


@dataclass(frozen=True, kw_only=True)
class DeviceTotals:
    devices_active: int
    devices_not_docked: int
    devices_drift_reported: int


# A dataclass lists the fields of its last base first: the key columns, then the measures.
@dataclass(frozen=True, kw_only=True)
class Figures(DeviceTotals, Measures):
    """The whole scope's figures: the measures, then the devices'."""


@dataclass(frozen=True, kw_only=True)
class UnitKey:
    department: str  # "" for cases and recordings of no department


@dataclass(frozen=True, kw_only=True)
class UnitRow(Measures, UnitKey):
    """One department's figures (exactly that unit)."""


@dataclass(frozen=True, kw_only=True)
class OfficerKey:
    officer_id: str | None  # None: recordings attributed to nobody
    name: str
    department: str


@dataclass(frozen=True, kw_only=True)
class OfficerRow(Measures, OfficerKey):
    """One officer's figures: their cases and their recordings."""


@dataclass(frozen=True)
class DeviceUse:
    """A device's use in the period, and whether it docks."""

    serial: str | None  # None: recordings of no known device
    holder: str | None  # the officer holding it now
    department: str  # the holder's
    status: str  # the registry's (active, repair, lost, retired); "" not registered
    recordings: int
    av_recordings: int
    recorded_hours: float
    drift_flagged: int
    last_docked: datetime | None  # the latest file a dock offered of it
    not_docked: bool  # active, and no file docked for devices.not_docked_days
    reported_offset_s: float | None  # the largest clock offset a station reported (+ fast)


@dataclass(frozen=True)
class TrendRow:
    """One week or month of the trends."""

    start: date
    end: date
    cases_concluded: int
    cases_archived_on_time: int
    cases_archived_late: int
    cases_overdue: int
    on_time_rate: float | None
    recordings: int
    uploads_on_time: int
    upload_timeliness: float | None
    linked_recordings: int
    link_rate: float | None
    av_recordings: int
    undescribed_recordings: int
    description_rate: float | None


def trend_row(t: Trend) -> TrendRow:
    c, r = t.cases, t.recordings
    return TrendRow(
        t.period.start,
        t.period.end,
        c.concluded,
        c.archived_on_time,
        c.archived_late,
        c.overdue,
        c.on_time_rate,
        r.recordings,
        r.on_time,
        r.upload_timeliness,
        r.linked,
        r.link_rate,
        r.av,
        r.undescribed,
        r.description_rate,
    )


#: What the trends compare, week over week and month over month.
TREND_KEYS = (
    "recordings",
    "upload_timeliness",
    "link_rate",
    "description_rate",
    "cases_concluded",
    "on_time_rate",
)


@dataclass(frozen=True)
class Change:
    """The last period less the one before: counts, and rates in shares (0.05 = 5 points);
    None where either has no rate."""

    recordings: int
    upload_timeliness: float | None
    link_rate: float | None
    description_rate: float | None
    cases_concluded: int
    on_time_rate: float | None


def change(before: TrendRow, after: TrendRow) -> Change:
    def diff(key: str) -> Any:
        a, b = getattr(after, key), getattr(before, key)
        if a is None or b is None:
            return None
        return round(a - b, 4) if isinstance(a, float) or isinstance(b, float) else a - b

    return Change(*(diff(k) for k in TREND_KEYS))


@dataclass(frozen=True)
class Trends:
    weeks: tuple[TrendRow, ...]  # 8 weeks of 7 days ending on the period's last day
    months: tuple[TrendRow, ...]  # 2 months of 30 days ending on it
    week_over_week: Change
    month_over_month: Change


@dataclass(frozen=True)
class Weakest:
    """A unit or officer among the weakest by one measure: where to look first."""

    measure: str  # a key of LABELS
    level: str  # "unit" or "officer"
    key: str | None  # the department, or the officer id
    name: str  # the department, or the officer's name
    value: float  # the rate, or the count
    of: int  # of how many (cases, recordings)


#: The measures ranked, and what each is out of; a rate ranks lowest first, a count highest.
RANKED: tuple[tuple[str, str, bool], ...] = (
    ("on_time_rate", "_decided", True),
    ("upload_timeliness", "recordings", True),
    ("link_rate", "recordings", True),
    ("description_rate", "av_recordings", True),
    ("coverage_failures", "mandatory_cases", False),
    ("cases_overdue", "cases_concluded", False),
)
WEAKEST_PER_MEASURE = 3


def _of(row: Measures, key: str) -> int:
    if key == "_decided":
        return row.cases_archived_on_time + row.cases_archived_late + row.cases_overdue
    return int(getattr(row, key))


def weakest(units: Iterable[UnitRow], people: Iterable[OfficerRow]) -> tuple[Weakest, ...]:
    """Per measure, the units and the officers that do worst (at most three each): a rate
    below 100 % lowest first, then the larger base; a count above 0, highest first."""
    found: list[Weakest] = []
    unit_rows, officer_rows = list(units), [p for p in people if p.officer_id is not None]
    for measure, base, is_rate in RANKED:
        for level, rows in (("unit", unit_rows), ("officer", officer_rows)):
            ranked = []
            for row in rows:
                value, of = getattr(row, measure), _of(row, base)
                if value is None or of == 0 or (value >= 1 if is_rate else value <= 0):
                    continue
                key = row.department if isinstance(row, UnitRow) else row.officer_id
                name = row.department if isinstance(row, UnitRow) else row.name
                ranked.append(Weakest(measure, level, key, name, float(value), of))
            ranked.sort(key=lambda w: (w.value if is_rate else -w.value, -w.of, w.key or ""))
            found += ranked[:WEAKEST_PER_MEASURE]
    return tuple(found)


@dataclass(frozen=True)
class CaseAction:
    """A case file of the scope that needs action now."""

    number: str
    title: str
    department: str
    state: str  # its 15-day state (CaseState value)
    due: date | None
    coverage_failed: bool
    problems: tuple[str, ...]


@dataclass(frozen=True)
class Dashboard:
    """The compliance dashboard (统计分析) of a department tree (None: the whole agency) for
    the local days ``start`` to ``end``, as it stood on ``today``."""

    department: str | None
    start: date
    end: date
    today: date
    upload_limit_hours: float
    due_soon_days: int
    not_docked_days: int
    figures: Figures
    alerts: tuple[DepartmentSummary, ...]  # the daily summary, at the top
    alerts_as_of: datetime | None  # when the sweep computed it (None: computed now)
    units: tuple[UnitRow, ...]
    officers: tuple[OfficerRow, ...]
    devices: tuple[DeviceUse, ...]
    trends: Trends
    weakest: tuple[Weakest, ...]
    needing_action: tuple[CaseAction, ...]
    labels: Mapping[str, Mapping[str, str]]


def labels() -> dict[str, dict[str, str]]:
    return {k: {"zh": zh, "en": en} for k, (zh, en) in LABELS.items()}


@dataclass(frozen=True)
class CaseLine:
    """One of an officer's cases in the period."""

    number: str
    title: str
    category: str
    department: str
    state: str
    due: date | None
    coverage_failed: bool
    problems: tuple[str, ...]


#: What can be wrong with a recording, as the officer's page lists it.
ITEM_PROBLEMS: dict[str, tuple[str, str]] = {
    "undescribed": ("缺文字说明", "no written description"),
    "unlinked": ("未关联案件", "in no case"),
    "late-upload": ("逾期上传", "docked late"),
    "clock-drift": ("时钟偏差", "clock drift"),
}


@dataclass(frozen=True)
class ItemLine:
    """One of an officer's recordings that needs a person."""

    media_id: int
    kind: str
    device: str | None
    recorded_start: datetime | None
    recorded_end: datetime | None
    docked_at: datetime | None
    problems: tuple[str, ...]  # keys of ITEM_PROBLEMS


@dataclass(frozen=True)
class OfficerFigures:
    """One officer's figures for the period, their cases, and their recordings to look at."""

    officer_id: str
    name: str
    department: str
    start: date
    end: date
    today: date
    upload_limit_hours: float
    figures: Figures
    devices: tuple[DeviceUse, ...]
    trends: Trends
    cases: tuple[CaseLine, ...]
    items: tuple[ItemLine, ...]  # newest first, at most ITEMS_SHOWN
    more_items: bool
    labels: Mapping[str, Mapping[str, str]]
