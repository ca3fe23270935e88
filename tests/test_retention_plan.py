"""The disposal plan and the storage forecast (pipeline.retention.plan): pure functions of a
small fixture and an injected ``now``, every number asserted; and the synthetic county."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pipeline.retention.plan import Entry, Going, Plan, make_plan, readable_bytes
from pipeline.retention.plan_county import county_forecast
from pipeline.retention.rules import Period

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 08:00 in Beijing
UNLINKED = "未关联案件的记录"
INSPECTION = "案件：现场检查"


def _local(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZONE)


ENTRIES = [
    Entry(1, 100, NOW - timedelta(days=1), False, UNLINKED),  # due now
    Entry(2, 200, _local(2027, 1, 15), False, UNLINKED),
    Entry(3, 300, _local(2027, 1, 20), False, INSPECTION),
    Entry(4, 400, _local(2027, 3, 2), False, UNLINKED),
    Entry(5, 1000, None, False, INSPECTION),  # permanent
    Entry(6, 500, _local(2027, 1, 10), True, UNLINKED),  # held: its date does not count
    Entry(7, 50, _local(2028, 1, 1), False, UNLINKED),  # beyond the 12 months
]


def _plan(**changes: object) -> Plan:
    """The plan of ENTRIES: 2550 bytes stored, 300 ingested over the last 30 days (10 a day),
    450 disposed of so far, new footage kept six months."""
    given: dict[str, Any] = {
        "now": NOW,
        "until": None,
        "stored": 2550,
        "intake": 300,
        "intake_days": 30,
        "disposed_bytes": 450,
        "new_period": Period(months=6),
        "zone": ZONE,
    }
    given.update(changes)
    entries = given.pop("entries", ENTRIES)
    return make_plan(entries, **given)


def test_what_would_go_when_by_category_and_month() -> None:
    plan = _plan()
    assert plan.until == _local(2027, 12, 1, 8)
    assert (plan.due_items, plan.due_bytes) == (1, 100)
    assert (plan.permanent_items, plan.permanent_bytes) == (1, 1000)
    assert (plan.held_items, plan.held_bytes) == (1, 500)
    assert plan.going == (
        Going("2027-01", UNLINKED, 1, 200),  # categories in code-point order
        Going("2027-01", INSPECTION, 1, 300),
        Going("2027-03", UNLINKED, 1, 400),
    )
    assert plan.bytes_by_category() == {INSPECTION: 300, UNLINKED: 600}
    assert plan.intake_per_day == 10.0
    assert plan.kept_share == 0.5  # (1000 permanent + 500 held) of 3000 ever archived

    later = _plan(until=_local(2028, 2, 1))
    assert later.going[-1] == Going("2028-01", UNLINKED, 1, 50)


def test_the_forecast_takes_the_intake_rate_and_what_disposal_frees() -> None:
    plan = _plan()
    rows = [(m.month, m.intake, m.freed, m.stored) for m in plan.forecast]
    assert rows == [
        # 31 days at 10 a day; the item due now goes in the first month
        ("2026-12", 310, 100, 2760),
        ("2027-01", 310, 500, 2570),  # items 2 and 3 (the held one stays)
        ("2027-02", 280, 0, 2850),
        ("2027-03", 310, 400, 2760),  # item 4
        ("2027-04", 300, 0, 3060),
        ("2027-05", 310, 0, 3370),
        # December's intake, six months on, half of it (the share not kept for good)
        ("2027-06", 300, 155, 3515),
        ("2027-07", 310, 155, 3670),
        ("2027-08", 310, 140, 3840),  # February had 28 days of intake
        ("2027-09", 300, 155, 3985),  # 03-31 + 6 months = 09-30
        ("2027-10", 310, 150, 4145),
        ("2027-11", 300, 155, 4290),
    ]
    assert plan.forecast[0].start == _local(2026, 12, 1, 8)
    assert plan.forecast[-1].end == _local(2027, 12, 1, 8)


def test_an_empty_archive_plans_nothing() -> None:
    plan = _plan(entries=[], stored=0, intake=0, disposed_bytes=0)
    assert plan.going == () and plan.kept_share == 0.0
    assert {m.stored for m in plan.forecast} == {0}


def test_bytes_read_as_disks_are_sold() -> None:
    assert readable_bytes(999) == "999 B"
    assert readable_bytes(1500) == "1.5 kB"
    assert readable_bytes(274e9) == "274.0 GB"
    assert readable_bytes(100e12) == "100.0 TB"
    assert readable_bytes(2.5e15) == "2500.0 TB"


def test_a_county_of_200_recorders_at_100_tb_a_year() -> None:
    """Steady state after years of running with disposal keeping up: what is stored is the
    permanent share of every year so far plus six months of the rest."""
    found = county_forecast(recorders=200, tb_per_year=100.0, kept_share=0.1, years=3, now=NOW)
    per_day = 100e12 / 365
    assert abs(found.intake_per_day - per_day) < 1
    first, last = found.forecast[0], found.forecast[-1]
    # Intake of a 31-day month; freed: the footage of six months ago, less what was kept.
    assert abs(first.intake - 31 * per_day) < 1e6
    # (that of 06-02..06-30 passes its six months in December; 06-01's passes right now,
    # and counts as gone already)
    assert abs(first.freed - 29 * per_day * 0.9) < 1e6
    # Three years of 10 % kept, plus the last six months of footage: 30 + 45 TB, about.
    assert 70e12 < found.stored_bytes < 80e12
    # A year on, one more year of the permanent share: about 10 TB more.
    assert 8e12 < last.stored - found.stored_bytes < 12e12
