"""Local time everywhere: times shown in devices.timezone and saying so, times typed in the
forms `search` takes in every command, JSON in ISO 8601 with its offset."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import typer
from typer.testing import CliRunner

from interfaces import output
from interfaces.cli import app
from interfaces.common import local_time, local_until
from pipeline.settings import Settings

NOV = datetime(2026, 10, 31, 16, tzinfo=UTC)  # 2026-11-01 00:00 in Shanghai
DEC = datetime(2026, 11, 30, 16, tzinfo=UTC)
JAN = datetime(2026, 12, 31, 16, tzinfo=UTC)


@pytest.mark.parametrize(
    ("typed", "start", "until"),
    [
        ("2026-11", NOV, DEC),
        ("2026-Q4", datetime(2026, 9, 30, 16, tzinfo=UTC), JAN),
        ("2026-11-01", NOV, datetime(2026, 11, 1, 16, tzinfo=UTC)),
        ("2026-11-27T08:00", datetime(2026, 11, 27, 0, tzinfo=UTC), None),
        ("2026-11-27T08:00+08:00", datetime(2026, 11, 27, 0, tzinfo=UTC), None),
        ("2026-11-27 08:00Z", datetime(2026, 11, 27, 8, tzinfo=UTC), None),
    ],
)
def test_every_command_reads_times_as_search_does(
    settings: Settings, typed: str, start: datetime, until: datetime | None
) -> None:
    assert local_time(settings, typed) == start
    end = local_until(settings, typed)
    assert end is not None and end > start
    if until is not None:
        assert end == until


def test_a_time_that_is_not_one_is_a_clean_usage_error(settings: Settings) -> None:
    with pytest.raises(typer.BadParameter, match="not a time"):
        local_time(settings, "27/11/2026")


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"{args}: {result.output}{result.exception!r}"
    return result.output


def test_compliance_takes_a_month_and_a_quarter(settings: Settings) -> None:
    out = _cli("compliance", "report", "--from", "2026-11", "--to", "2026-Q4", "--json")
    assert json.loads(out)["today"]


def test_an_assignment_entered_at_08_00_is_shown_at_08_00(settings: Settings) -> None:
    _cli("officers", "add", "1023", "--name", "张伟", "--cert", "110100", "--as", "A001")
    _cli("devices", "add", "BWC0017", "--as", "1023")
    _cli("devices", "assign", "BWC0017", "1023", "--from", "2026-11-27T08:00+08:00", "--as", "1023")
    shown = _cli("devices", "show", "BWC0017")
    assert "2026-11-27 08:00:00" in shown and "00:00:00+00:00" not in shown
    assert "times in Asia/Shanghai (+08:00)" in shown
    assert "1023 张伟" in shown, "the officer's name beside the id"
    (held,) = json.loads(_cli("devices", "show", "BWC0017", "--json"))["assignments"]
    assert datetime.fromisoformat(held["start"]) == datetime(2026, 11, 27, 0, tzinfo=UTC)
    assert held["start"].endswith("+00:00"), "JSON keeps ISO 8601 with the offset"
    officer = _cli("officers", "show", "1023")
    assert "2026-11-27 08:00:00" in officer and "Asia/Shanghai" in officer


def test_times_on_a_line_carry_their_offset() -> None:
    moment, zone = datetime(2026, 11, 30, 1, 25, tzinfo=UTC), ZoneInfo("Asia/Shanghai")
    assert output.when_zoned(moment, zone) == "2026-11-30 09:25:00 +08:00"
    assert output.when(moment, zone, seconds=False) == "2026-11-30 09:25"


def test_serve_names_the_zone_of_each_schedule(settings: Settings) -> None:
    from interfaces.commands.serve import schedules_line

    line = schedules_line(settings, 4, "http://127.0.0.1:4200")
    assert "compliance-sweep '0 6 * * *' (Asia/Shanghai)" in line
    assert "'0 3 1 * *' (full) (Asia/Shanghai)" in line and "every 15 min" in line
