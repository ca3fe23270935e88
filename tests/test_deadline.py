"""The 15-day filing deadline: tables of dates against the real chinese_calendar package and
real override files in temporary folders. No mocks: the holidays are the State Council's."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
import pytest

from pipeline.cases.deadline import (
    CaseState,
    DaySource,
    Deadline,
    DeadlineMode,
    WorkCalendar,
    case_state,
    due_date,
)
from pipeline.errors import ConfigError

CALENDAR, WORKING = DeadlineMode.CALENDAR, DeadlineMode.WORKING
REPO = Path(__file__).resolve().parent.parent
D = date.fromisoformat


def package_knows(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 7, 1))
    except NotImplementedError:
        return False
    return True


def first_year_unknown_to_package() -> int:
    year = 2026
    while package_knows(year):
        year += 1
    return year


def write(tmp_path: Path, text: str, name: str = "holidays.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------ calendar mode


@pytest.mark.parametrize(
    ("action_end", "due"),
    [
        ("2026-01-20", "2026-02-04"),  # the end day is not counted: day 1 is 01-21
        ("2026-01-31", "2026-02-15"),  # month end
        ("2026-12-20", "2027-01-04"),  # year end
        ("2028-02-20", "2028-03-06"),  # leap year: 02-29 is a day of the period
        ("2027-02-20", "2027-03-07"),  # not a leap year
        ("2025-09-16", "2025-10-01"),  # no calendar given: no roll-over, even onto 国庆
    ],
)
def test_calendar_mode_is_date_arithmetic(action_end: str, due: str) -> None:
    assert due_date(D(action_end)) == Deadline(D(due), CALENDAR, False, ())


@pytest.mark.parametrize(
    ("action_end", "due"),
    [
        ("2026-01-20", "2026-02-04"),  # a Wednesday: stays
        ("2025-09-16", "2025-10-09"),  # 10-01 falls in 国庆 2025 (10-01..10-08): first day after
        ("2024-09-16", "2024-10-08"),  # 10-01 falls in 国庆 2024 (10-01..10-07)
        ("2026-02-01", "2026-02-24"),  # 02-16 falls in 春节 2026 (02-15..02-23)
        ("2024-09-27", "2024-10-12"),  # a Saturday, but a make-up working day (调休上班): stays
        ("2026-01-30", "2026-02-14"),  # a Saturday in 春节 week, but a make-up day: stays
        ("2026-03-07", "2026-03-23"),  # 03-22 is a plain Sunday: Monday
    ],
)
def test_calendar_mode_rolls_a_rest_day_to_the_next_working_day(action_end: str, due: str) -> None:
    deadline = due_date(D(action_end), calendar=WorkCalendar())
    assert deadline == Deadline(D(due), CALENDAR, False, ())


def test_roll_over_can_be_switched_off_or_on_explicitly() -> None:
    assert due_date(D("2025-09-16"), calendar=WorkCalendar(), roll_over_holidays=False).due == D(
        "2025-10-01"
    )
    # On without a calendar: the package alone decides.
    assert due_date(D("2025-09-16"), roll_over_holidays=True).due == D("2025-10-09")


# ------------------------------------------------------------------------- working mode


@pytest.mark.parametrize(
    ("action_end", "due"),
    [
        # 国庆 2024: off 10-01..10-07; make-up Sun 09-29 and Sat 10-12.
        ("2024-09-27", "2024-10-23"),
        # 国庆 + 中秋 2025: off 10-01..10-08; make-up Sun 09-28 and Sat 10-11.
        ("2025-09-26", "2025-10-23"),
        # 国庆 2026: off 10-01..10-07; make-up Sat 10-10 (and Sun 09-20, before the period).
        ("2026-09-30", "2026-10-27"),
        # 春节 2024: off 02-10..02-17; 02-09 (除夕) a working day; make-up Sun 02-18; leap 02-29.
        ("2024-02-08", "2024-03-06"),
        # 春节 2025: off 01-28..02-04; make-up Sun 01-26 and Sat 02-08.
        ("2025-01-24", "2025-02-20"),
        # 春节 2026: off 02-15..02-23; make-up Sat 02-14 and Sat 02-28.
        ("2026-02-10", "2026-03-09"),
        # No holiday: three plain weeks.
        ("2026-03-06", "2026-03-27"),
    ],
)
def test_working_mode_counts_working_days_of_the_real_calendar(action_end: str, due: str) -> None:
    deadline = due_date(D(action_end), mode=WORKING)
    assert deadline == Deadline(D(due), WORKING, False, ())


def test_working_mode_days_are_the_days_th_working_day_after_the_end() -> None:
    # 2025-09-26 (Fri): Sun 09-28 is a make-up day, so it is day 1; 09-29 and 09-30 are days
    # 2 and 3; 国庆 (10-01..10-08) counts for nothing; day 4 is 10-09.
    assert due_date(D("2025-09-26"), 1, WORKING).due == D("2025-09-28")
    assert due_date(D("2025-09-26"), 3, WORKING).due == D("2025-09-30")
    assert due_date(D("2025-09-26"), 4, WORKING).due == D("2025-10-09")


def test_the_working_day_counts_are_the_package_s_make_up_days() -> None:
    # The tables above assume these make-up days; hold them against the package itself.
    make_up = {d for d in chinese_calendar.workdays if 2024 <= d.year <= 2026}
    for day in ["2024-02-04", "2024-02-18", "2024-09-29", "2024-10-12", "2025-01-26"]:
        assert D(day) in make_up
    for day in ["2025-02-08", "2025-09-28", "2025-10-11", "2026-02-14", "2026-02-28"]:
        assert D(day) in make_up
    assert D("2026-10-10") in make_up


def test_a_period_shorter_than_one_day_is_refused() -> None:
    with pytest.raises(ValueError):
        due_date(D("2026-01-20"), 0)


# ------------------------------------------------------------- years the package lacks


DECEMBER_2027_OVERRIDE = """
[2027]
notice = "test data, not the official arrangement"
holidays = [2027-01-01]
"""


@pytest.mark.skipif(package_knows(2027), reason="chinesecalendar now ships 2027 tables")
def test_chinese_calendar_raises_for_2027() -> None:
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2027, 1, 4))
    assert WorkCalendar().source_of(2027) is DaySource.WEEKDAY
    assert WorkCalendar().source_of(2026) is DaySource.PACKAGE


@pytest.mark.skipif(package_knows(2027), reason="chinesecalendar now ships 2027 tables")
def test_december_2026_case_is_provisional_until_2027_is_given(tmp_path: Path) -> None:
    # 2026-12-20 (Sun): 9 working days in December, then January 2027 judged by weekday:
    # Fri 01-01 counts as day 10, so day 15 is Fri 01-08, a guess.
    guessed = due_date(D("2026-12-20"), mode=WORKING)
    assert guessed == Deadline(D("2027-01-08"), WORKING, True, (2027,))

    calendar = WorkCalendar.from_file(write(tmp_path, DECEMBER_2027_OVERRIDE))
    known = due_date(D("2026-12-20"), mode=WORKING, calendar=calendar)
    assert known == Deadline(D("2027-01-11"), WORKING, False, ())


@pytest.mark.skipif(package_knows(2027), reason="chinesecalendar now ships 2027 tables")
def test_calendar_mode_roll_over_into_2027_is_provisional(tmp_path: Path) -> None:
    # 2027-01-04 is a Monday by weekday alone: a guess, and said to be one.
    assert due_date(D("2026-12-20"), calendar=WorkCalendar()) == Deadline(
        D("2027-01-04"), CALENDAR, True, (2027,)
    )
    # Without roll-over the date is exact whatever the calendar says.
    assert due_date(D("2026-12-20")) == Deadline(D("2027-01-04"), CALENDAR, False, ())
    path = write(tmp_path, '[2027]\nholidays = ["2027-01-01..2027-01-04"]\n')
    assert due_date(D("2026-12-20"), calendar=WorkCalendar.from_file(path)) == Deadline(
        D("2027-01-05"), CALENDAR, False, ()
    )


def test_first_year_the_package_lacks_is_provisional_then_overridden(tmp_path: Path) -> None:
    # The same story as above, for whichever year the installed package lacks first, so it
    # keeps testing the fallback once the package learns 2027.
    year = first_year_unknown_to_package()
    end = date(year, 3, 1)
    guessed = due_date(end, mode=WORKING)
    assert guessed.provisional and guessed.missing_years == (year,)
    assert WorkCalendar().day(end + timedelta(days=1)).source is DaySource.WEEKDAY

    calendar = WorkCalendar.from_file(write(tmp_path, f"[{year}]\n"))
    known = due_date(end, mode=WORKING, calendar=calendar)
    assert known == Deadline(guessed.due, WORKING, False, ())


def test_years_before_the_package_are_provisional_too() -> None:
    deadline = due_date(D("2003-12-20"), mode=WORKING)
    assert deadline.missing_years == (2003,)
    assert deadline.provisional


def test_a_period_spanning_two_guessed_years_names_both() -> None:
    year = first_year_unknown_to_package()
    deadline = due_date(date(year, 12, 28), mode=WORKING)
    assert deadline.missing_years == (year, year + 1)


# ------------------------------------------------------------------------ override file


def test_override_takes_precedence_over_the_package_for_the_whole_year(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [2026]
        notice = "test data"
        holidays = ["2026-02-15..2026-02-24"]   # one day longer than the real 春节 2026
        workdays = [2026-02-14]
        """,
    )
    calendar = WorkCalendar.from_file(path)
    assert calendar.path == path
    assert calendar.override_years == (2026,)
    assert calendar.day(D("2026-02-24")).working is False
    assert calendar.day(D("2026-02-24")).source is DaySource.OVERRIDE
    assert calendar.day(D("2026-02-14")).working is True  # listed make-up day
    # The year is replaced, not patched: 国庆 and its make-up Saturday are not in this file.
    assert calendar.day(D("2026-10-01")).working is True
    assert calendar.day(D("2026-10-10")).working is False
    # Other years still come from the package.
    assert calendar.day(D("2025-10-01")).source is DaySource.PACKAGE
    assert not calendar.is_working_day(D("2025-10-01"))

    assert due_date(D("2026-02-01"), calendar=calendar).due == D("2026-02-25")
    assert due_date(D("2026-02-01"), calendar=WorkCalendar()).due == D("2026-02-24")


def test_the_shipped_example_is_refused_until_its_dates_are_made_real(tmp_path: Path) -> None:
    example = REPO / "config" / "holidays.example.toml"
    with pytest.raises(ConfigError, match="marked example") as caught:
        WorkCalendar.from_file(example)
    assert str(example) in str(caught.value)

    # With the marker gone the format itself is valid, ranges and all.
    text = "\n".join(
        line for line in example.read_text("utf-8").splitlines() if "example = true" not in line
    )
    calendar = WorkCalendar.from_file(write(tmp_path, text))
    assert calendar.override_years == (2027,)
    assert not calendar.is_working_day(D("2027-02-08"))  # inside a range, a Monday
    assert calendar.is_working_day(D("2027-02-20"))  # a listed make-up Saturday


def test_a_missing_file_is_an_error_unless_missing_ok(tmp_path: Path) -> None:
    path = tmp_path / "holidays.toml"
    with pytest.raises(ConfigError, match="not found") as caught:
        WorkCalendar.from_file(path)
    assert str(path) in str(caught.value)
    assert WorkCalendar.from_file(path, missing_ok=True).override_years == ()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[2027\nholidays = []\n", "not valid TOML"),
        ("[2027]\nholidays = [2026-12-31]\n", "2026-12-31 is not in 2027"),
        ('[2027]\nholidays = ["2027-12-30..2028-01-02"]\n', "is not in 2027"),
        (
            "[2027]\nholidays = [2027-02-20]\nworkdays = [2027-02-20]\n",
            "2027-02-20 is listed both as a holiday and as a working day",
        ),
        (
            '[2027]\nholidays = ["2027-02-18..2027-02-22"]\nworkdays = [2027-02-20]\n',
            "2027-02-20 is listed both",
        ),
        ("[2027]\nholiday = [2027-01-01]\n", "unknown key 'holiday'"),
        ('[2027]\nholidays = ["2027-13-01"]\n', "is not a date"),
        ('[2027]\nholidays = ["2027-10-07..2027-10-01"]\n', "ends before it starts"),
        ('[2027]\nholidays = ["2027-10-01..soon"]\n', "is not a range"),
        ("[2027]\nholidays = [2027-10-01T08:00:00]\n", "is not a date"),
        ("[2027]\nholidays = 2027-10-01\n", "expected a list of dates"),
        ("[next]\nholidays = []\n", "expected one table per year"),
        ("holidays = [2027-10-01]\n", "expected one table per year"),
        ("[2027]\nnotice = 7\n", "notice: expected a string"),
        ("[2027]\nexample = true\n", "marked example"),
    ],
)
def test_a_bad_override_file_names_the_file_and_the_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        WorkCalendar.from_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert problem in message


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "[2027]\nholidays = [2026-12-31]\nworkdays = [2028-01-01]\n")
    with pytest.raises(ConfigError) as caught:
        WorkCalendar.from_file(path)
    assert "2026-12-31 is not in 2027" in str(caught.value)
    assert "2028-01-01 is not in 2027" in str(caught.value)


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "holidays.toml"
    path.write_bytes("# 节假日\n".encode("gbk"))
    with pytest.raises(ConfigError, match="not valid TOML"):
        WorkCalendar.from_file(path)


# -------------------------------------------------------------------------- case state

DUE = D("2026-02-04")
END = D("2026-01-20")


@pytest.mark.parametrize(
    ("archived_on", "today", "state"),
    [
        (None, "2026-01-21", CaseState.OPEN),
        (None, "2026-01-31", CaseState.OPEN),  # 4 days before the due day
        (None, "2026-02-01", CaseState.DUE_SOON),  # due_soon_days (3) before
        (None, "2026-02-04", CaseState.DUE_SOON),  # the due day itself is still in time
        (None, "2026-02-05", CaseState.OVERDUE),  # the day after
        (None, "2027-02-05", CaseState.OVERDUE),
        ("2026-01-25", "2026-01-26", CaseState.ARCHIVED_ON_TIME),
        ("2026-02-04", "2026-02-04", CaseState.ARCHIVED_ON_TIME),  # on the due day: on time
        ("2026-02-04", "2026-03-01", CaseState.ARCHIVED_ON_TIME),  # stays so
        ("2026-02-05", "2026-02-05", CaseState.ARCHIVED_LATE),  # the day after: late
        ("2026-02-05", "2027-01-01", CaseState.ARCHIVED_LATE),
    ],
)
def test_case_state_at_each_boundary(archived_on: str | None, today: str, state: CaseState) -> None:
    archived = D(archived_on) if archived_on else None
    assert case_state(END, DUE, archived, D(today)) is state


def test_a_case_whose_act_has_not_ended_is_open() -> None:
    assert case_state(None, None, None, D("2030-01-01")) is CaseState.OPEN
    assert case_state(END, None, None, D("2030-01-01")) is CaseState.OPEN  # no deadline yet


def test_a_case_archived_before_any_deadline_ran_is_on_time() -> None:
    # As the SQL twin (pipeline.compliance.state_clause) has it: nothing could be late.
    assert case_state(None, None, D("2026-01-25"), D("2026-03-01")) is CaseState.ARCHIVED_ON_TIME


@pytest.mark.parametrize(
    ("days", "today", "state"),
    [
        (0, "2026-02-03", CaseState.OPEN),
        (0, "2026-02-04", CaseState.DUE_SOON),
        (7, "2026-01-27", CaseState.OPEN),
        (7, "2026-01-28", CaseState.DUE_SOON),
    ],
)
def test_due_soon_days_moves_the_due_soon_boundary(days: int, today: str, state: CaseState) -> None:
    assert case_state(END, DUE, None, D(today), due_soon_days=days) is state


def test_case_state_refuses_a_negative_due_soon_window() -> None:
    with pytest.raises(ValueError, match="due_soon_days"):
        case_state(END, DUE, None, D("2026-02-01"), due_soon_days=-1)


def test_states_and_modes_have_stable_values_and_chinese_labels() -> None:
    assert [(s.value, s.label_zh) for s in CaseState] == [
        ("open", "未到期"),
        ("due-soon", "即将到期"),
        ("overdue", "已逾期"),
        ("archived-on-time", "按时归档"),
        ("archived-late", "逾期归档"),
    ]
    assert [(m.value, m.label_zh) for m in DeadlineMode] == [
        ("calendar", "自然日"),
        ("working", "工作日"),
    ]


def test_a_deadline_is_a_frozen_value() -> None:
    deadline = due_date(END)
    with pytest.raises(AttributeError):
        deadline.due = DUE  # type: ignore[misc]
