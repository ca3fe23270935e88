"""The 15-day filing deadline of the full-process recording rule (执法全过程记录制度).

All text and A/V records of an enforcement act are filed into the case file "within 15 days of
the end of the enforcement act" (执法行为终结之日起15日内). This module turns that sentence into
dates. It is pure: "today" is a parameter, and the only file it reads is the holiday override
file it is handed.

Counting convention (why ``action_end + 15``):

* The day the act ends is not counted; day 1 is the next day. Chinese law counts every period
  by days this way: 民法典 art. 201 ("开始的当日不计入，自下一日开始计算") and 民事诉讼法 on 期间
  (art. 85 of the 2021 text, art. 82 before: "期间开始的时和日，不计算在期间内"). So an act that
  ends on 2026-01-20 must be filed by 2026-02-04.
* The 15 days are calendar days by default. Administrative statutes say so when they mean
  working days, and only for short periods: 行政处罚法 (2021) art. 85 makes its 2/3/5/7-day
  periods working days, 行政强制法 art. 69 its periods of up to ten days. A 15-day period is
  neither, so :attr:`DeadlineMode.WORKING` is a local policy option, not the default.
* If the last day is a rest day, the deadline is the first working day after it: 民法典
  art. 203 ("期间的最后一日是法定休假日的，以法定休假日结束的次日为期间的最后一日") and 民事诉讼法
  ("以法定休假日后的第一日为期间届满的日期"). Weekends count as rest days and a make-up working
  day (调休上班) does not, as the Supreme People's Court applies it (actual rest days, 实际休假日).
  Holidays inside the period are not skipped. ``roll_over_holidays`` switches this on; it is on
  by default whenever a :class:`WorkCalendar` is given.
* In working mode the deadline is the ``days``-th working day after the end day, counted from
  the next day too. No roll-over is needed: that day is a working day by construction.

Which days are working days comes from, in order: the administrator's override file (copied
each autumn from the State Council's notice on next year's holidays, 国务院办公厅关于…部分节假日
安排的通知), then the ``chinese_calendar`` package, then Monday–Friday alone. A date answered by
the last is *provisional*: the :class:`Deadline` says so and names the years it had to guess.
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import chinese_calendar

from pipeline.errors import ConfigError
from pipeline.models import Labelled

ONE_DAY = timedelta(days=1)


class DeadlineMode(Labelled):
    """How the days of the period are counted."""

    CALENDAR = "calendar", "自然日"  # the default, see the module docstring
    WORKING = "working", "工作日"  # a local policy option


@dataclass(frozen=True)
class Deadline:
    """When a case's records must be filed. ``provisional`` is true when a day that decided
    ``due`` was judged by weekday alone, for want of a calendar of the ``missing_years``."""

    due: date
    mode: DeadlineMode
    provisional: bool = False
    missing_years: tuple[int, ...] = ()


class DaySource(enum.StrEnum):
    """Which source answered whether a date is a working day, most trusted first."""

    OVERRIDE = "override"  # the administrator's holiday file
    PACKAGE = "chinese-calendar"  # the chinese_calendar package's tables
    WEEKDAY = "weekday"  # Monday–Friday alone: a guess, hence provisional


@dataclass(frozen=True)
class CalendarDay:
    """Whether ``day`` is a working day, and who said so."""

    day: date
    working: bool
    source: DaySource

    @property
    def provisional(self) -> bool:
        return self.source is DaySource.WEEKDAY


@dataclass(frozen=True)
class YearOverride:
    """One year as the State Council published it: official holidays (放假, weekends within
    them may be listed or not) and make-up working days (调休上班). Every other date is a
    working day from Monday to Friday."""

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]
    notice: str = ""  # the notice it was copied from, e.g. 国办发明电〔2025〕7号

    def is_working(self, day: date) -> bool:
        return day in self.workdays or (day.weekday() < 5 and day not in self.holidays)


class WorkCalendar:
    """Answers "is this date a working day" from the override years, else the
    ``chinese_calendar`` package, else weekdays alone (provisional).

    A year in the override file replaces the package for that whole year rather than patching
    it day by day: the State Council's notice is a complete statement of the year, and a
    half-merged year could keep a package holiday the administrator meant to correct.
    """

    def __init__(
        self, overrides: Mapping[int, YearOverride] | None = None, *, path: Path | None = None
    ) -> None:
        self._overrides = dict(overrides or {})
        self.path = path  # the override file, for messages; None when there is none

    @classmethod
    def from_file(cls, path: Path, *, missing_ok: bool = False) -> WorkCalendar:
        """Read an override file (format: ``config/holidays.example.toml``). A missing file is
        an error unless ``missing_ok`` (the default location, EVIDENCE_HOME/holidays.toml, is
        optional; a path a person configured is not). Every problem is reported at once, in
        one :class:`ConfigError` that names the file."""
        try:
            with path.open("rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            if missing_ok:
                return cls()
            raise ConfigError(f"{path}: holiday override file not found") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read holiday override file: {exc}") from exc
        except ValueError as exc:  # TOMLDecodeError, or bytes that are not UTF-8
            raise ConfigError(f"{path}: holiday override file is not valid TOML: {exc}") from exc
        overrides, problems = _parse_overrides(data)
        if problems:
            raise ConfigError(f"{path}: invalid holiday override file: " + "; ".join(problems))
        return cls(overrides, path=path)

    @property
    def override_years(self) -> tuple[int, ...]:
        return tuple(sorted(self._overrides))

    def day(self, day: date) -> CalendarDay:
        override = self._overrides.get(day.year)
        if override is not None:
            return CalendarDay(day, override.is_working(day), DaySource.OVERRIDE)
        try:
            working = bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            # chinese_calendar raises this outside the years it has tables for (2004–2026 in
            # 1.11.0); next year's tables only ship after the State Council's autumn notice.
            return CalendarDay(day, day.weekday() < 5, DaySource.WEEKDAY)
        return CalendarDay(day, working, DaySource.PACKAGE)

    def is_working_day(self, day: date) -> bool:
        return self.day(day).working

    def source_of(self, year: int) -> DaySource:
        """Which source answers for ``year``: lets a daily check warn, each autumn, that next
        year's calendar is still missing before any deadline falls in it."""
        return self.day(date(year, 7, 1)).source


def due_date(
    action_end: date,
    days: int = 15,
    mode: DeadlineMode = DeadlineMode.CALENDAR,
    calendar: WorkCalendar | None = None,
    *,
    roll_over_holidays: bool | None = None,
) -> Deadline:
    """The last day on which the records of an act that ended on ``action_end`` may be filed.

    Calendar mode: ``action_end + days``; then, if ``roll_over_holidays`` (default: whether a
    ``calendar`` was given), a rest day moves it to the next working day (民法典 art. 203).
    Working mode: the ``days``-th working day after ``action_end``. The end day never counts
    (民法典 art. 201). Where a calendar is needed and none is given, the ``chinese_calendar``
    package alone is used. Days judged by weekday alone make the result provisional.
    """
    if days < 1:
        raise ValueError(f"a filing period of {days} days makes no sense")
    if roll_over_holidays is None:
        roll_over_holidays = calendar is not None
    cal = calendar if calendar is not None else WorkCalendar()
    consulted: list[CalendarDay] = []
    if mode is DeadlineMode.CALENDAR:
        due = action_end + timedelta(days=days)
        if roll_over_holidays:
            consulted.append(cal.day(due))
            while not consulted[-1].working:
                due += ONE_DAY
                consulted.append(cal.day(due))
    else:
        due, left = action_end, days
        while left:
            due += ONE_DAY
            consulted.append(cal.day(due))
            if consulted[-1].working:
                left -= 1
    missing = tuple(sorted({c.day.year for c in consulted if c.provisional}))
    return Deadline(due, mode, provisional=bool(missing), missing_years=missing)


class CaseState(Labelled):
    """Where a case stands against its filing deadline."""

    OPEN = "open", "未到期"
    DUE_SOON = "due-soon", "即将到期"
    OVERDUE = "overdue", "已逾期"
    ARCHIVED_ON_TIME = "archived-on-time", "按时归档"
    ARCHIVED_LATE = "archived-late", "逾期归档"


def case_state(
    action_end: date | None,
    due: date | None,
    archived_on: date | None,
    today: date,
    due_soon_days: int = 3,
) -> CaseState:
    """The state of a case on ``today``.

    Archived on or before ``due``: on time, since the period runs to the end of its last day
    (民法典 art. 203, second paragraph); after it: late; with no deadline running (no ``due``),
    on time, as nothing could be late. Not archived and no action end (or no ``due``) yet:
    open, the 15 days have not started. Otherwise overdue from the day after ``due``, due soon
    from ``due_soon_days`` before ``due`` up to ``due`` itself, open before that.
    """
    if due_soon_days < 0:
        raise ValueError(f"due_soon_days must be >= 0, not {due_soon_days}")
    if archived_on is not None:
        late = due is not None and archived_on > due
        return CaseState.ARCHIVED_LATE if late else CaseState.ARCHIVED_ON_TIME
    if action_end is None or due is None:
        return CaseState.OPEN
    if today > due:
        return CaseState.OVERDUE
    if (due - today).days <= due_soon_days:
        return CaseState.DUE_SOON
    return CaseState.OPEN


# ----------------------------------------------------------------------- override file


_YEAR_KEYS = ("holidays", "workdays", "notice", "example")


def _parse_overrides(data: dict[str, Any]) -> tuple[dict[int, YearOverride], list[str]]:
    """Years and every problem found, so that one error lists them all."""
    overrides: dict[int, YearOverride] = {}
    problems: list[str] = []
    for key, table in data.items():
        if not (key.isdigit() and len(key) == 4 and isinstance(table, dict)):
            problems.append(f"{key!r}: expected one table per year, e.g. [2027]")
            continue
        year = int(key)
        for unknown in sorted(set(table) - set(_YEAR_KEYS)):
            problems.append(f"[{year}] unknown key {unknown!r} (known: {', '.join(_YEAR_KEYS)})")
        if table.get("example", False) is not False:
            # The shipped example carries sample dates; copying it verbatim must not make
            # them count as the State Council's.
            problems.append(
                f"[{year}] is marked example: copy the dates from the State Council's "
                "notice, then remove the 'example' line"
            )
        notice = table.get("notice", "")
        if not isinstance(notice, str):
            problems.append(f"[{year}] notice: expected a string")
            notice = ""
        holidays = _dates(year, "holidays", table.get("holidays", []), problems)
        workdays = _dates(year, "workdays", table.get("workdays", []), problems)
        for both in sorted(holidays & workdays):
            problems.append(f"[{year}] {both} is listed both as a holiday and as a working day")
        overrides[year] = YearOverride(year, frozenset(holidays), frozenset(workdays), notice)
    return overrides, problems


def _dates(year: int, name: str, items: object, problems: list[str]) -> set[date]:
    """Dates of one list: TOML dates (2027-10-01) or ranges ("2027-10-01..2027-10-07")."""
    where = f"[{year}] {name}"
    if not isinstance(items, list):
        problems.append(f"{where}: expected a list of dates")
        return set()
    found: set[date] = set()
    for item in items:
        if isinstance(item, date) and not isinstance(item, datetime):
            first = last = item
        elif isinstance(item, str) and ".." in item:
            try:
                first, last = (date.fromisoformat(p.strip()) for p in item.split("..", 1))
            except ValueError:
                problems.append(f"{where}: {item!r} is not a range YYYY-MM-DD..YYYY-MM-DD")
                continue
            if last < first:
                problems.append(f"{where}: range {item!r} ends before it starts")
                continue
        else:
            problems.append(f"{where}: {item!r} is not a date (write 2027-10-01, unquoted)")
            continue
        if first.year != year or last.year != year:
            problems.append(f"{where}: {item} is not in {year}")
            continue
        while first <= last:
            found.add(first)
            first += ONE_DAY
    return found
