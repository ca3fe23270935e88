"""Clock drift judged against trustworthy clocks only, said in words; photo and recorder names
timed by the built-in file-name patterns, the time source recorded."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from docks.sweep import sweep_station
from interfaces.cli import app
from pipeline.catalog import Catalog
from pipeline.catalog import media as media_db
from pipeline.ingest.identify import drift_flags, drift_words, match_filename, name_patterns
from pipeline.ingest.steps import IngestContext
from pipeline.models import IdSource, SourceFile, Station
from pipeline.registry import stations as station_rows
from pipeline.settings import DevicesSettings, Settings
from tests.conftest import put

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 30, 1, 35, tzinfo=UTC)  # 09:35 in Shanghai


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (-113920, "31 h 38 min slow"),  # the "-113920 s off"
        (40, "40 s fast"),
        (-3600, "1 h slow"),
        (125, "2 min 5 s fast"),
        (3 * 86400 + 7200 + 59, "3 d 2 h fast"),
        (0, "0 s"),
    ],
)
def test_drift_in_words(seconds: float, words: str) -> None:
    assert drift_words(seconds) == words


def _docked(at: datetime) -> SourceFile:
    ns = int(at.timestamp() * 1e9)
    return SourceFile("DOCK-01", Path("/dock/BWC0017/x.mp4"), 1, ns)


def test_a_file_docked_a_day_later_is_no_drift_unless_the_station_keeps_mtimes() -> None:
    end = T0 + timedelta(minutes=1)
    docked = _docked(end + timedelta(seconds=113920))
    now = end + timedelta(days=2)
    copying_dock = drift_flags(T0, end, IdSource.METADATA, docked, now, 300)
    assert copying_dock == [], "a dock that stamps its copies says nothing about the recorder"
    keeping = drift_flags(
        T0, end, IdSource.METADATA, docked, now, 300, preserves_mtimes=True, tz=SH
    )
    assert [f.code for f in keeping] == ["clock-drift"]
    assert "31 h 38 min slow" in keeping[0].message
    # The pipeline's own clock is always trusted: a start after ingest is a fast clock.
    ahead = drift_flags(
        now + timedelta(hours=2), now + timedelta(hours=3), IdSource.FILENAME, docked, now, 300,
        tz=SH,
    )  # fmt: skip
    assert "in the future" in ahead[0].message and "at least 2 h fast" in ahead[0].message
    assert "+08:00" in ahead[0].message, "the time is local, with its offset"


BUILTIN = name_patterns(DevicesSettings(filename_patterns=[]))


@pytest.mark.parametrize(
    ("name", "pattern", "device", "officer"),
    [
        ("IMG_20261130_093500.jpg", "img-datetime", None, None),
        ("IMG_20261130_093500_123.jpg", "img-datetime", None, None),
        ("VID_20261130_093500.mp4", "vid-datetime", None, None),
        ("20261130_093500.mp4", "datetime", None, None),
        ("BWC0017_1023_20261130093500_0001.mp4", "ga-t-947", "BWC0017", "1023"),
    ],
)
def test_builtin_patterns(name: str, pattern: str, device: str | None, officer: str | None) -> None:
    """Built in: they hold with no configured pattern at all."""
    m = match_filename(name, BUILTIN, SH)
    assert m is not None
    assert (m.pattern, m.device, m.officer, m.started) == (pattern, device, officer, T0)


def test_a_photo_is_timed_by_its_name_and_media_list_shows_it_locally(
    ctx: IngestContext,
    catalog: Catalog,
    station: Station,
    dock: Path,
    clips: dict[str, Path],
    settings: Settings,
) -> None:
    put(clips["photo"], dock, "BWC0017/IMG_20261130_093500.jpg")
    (f,) = sweep_station(ctx, station).files
    with catalog.read() as conn:
        item = media_db.get(conn, f.sha256 or "")
    assert item.recorded_start == T0 and item.time_source == IdSource.FILENAME.value
    assert not [fl for fl in item.flags if fl.code == "clock-drift"]
    out = CliRunner().invoke(app, ["media", "list"])
    assert out.exit_code == 0, out.output
    assert "2026-11-30 09:35:00" in out.output and "times in Asia/Shanghai (+08:00)" in out.output


def test_the_station_setting_is_kept_in_the_registry(
    catalog: Catalog, settings: Settings, dock: Path
) -> None:
    other = dock.parent / "dock-rsync"
    other.mkdir()
    with catalog.begin() as conn:
        station_rows.save_station(conn, Station("RSYNC", other, preserves_mtimes=True), "tester")
    got = station_rows.get_station(catalog, "RSYNC")
    assert got.preserves_mtimes and replace(got, preserves_mtimes=False) != got
    listed = CliRunner().invoke(app, ["stations", "list"])
    assert "keeps mtimes" in listed.output and "yes" in listed.output


def test_a_registry_file_sets_the_station_setting(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "rsync-dock"
    root.mkdir()
    registry = tmp_path / "registry.csv"
    registry.write_text(f"id,root,preserves_mtimes\nRSYNC,{root},yes\n", encoding="utf-8")
    out = CliRunner().invoke(app, ["devices", "import", str(registry), "--as", "A001"])
    assert out.exit_code == 0, out.output
    listed = CliRunner().invoke(app, ["stations", "list", "--json"])
    assert [s["preserves_mtimes"] for s in json.loads(listed.output)] == [True]


def test_a_catalog_made_before_the_setting_gains_it_unset(tmp_path: Path) -> None:
    """Migration 0008: stations registered before it do not keep mtimes until told so."""
    from alembic import command
    from sqlalchemy import create_engine, text

    from pipeline.catalog import open_catalog
    from pipeline.catalog.db import _alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0007")
        conn.execute(
            text(
                "INSERT INTO stations (id, name, root, location, created_at) "
                "VALUES ('OLD', '', :root, '', '2026-01-01 00:00:00')"
            ),
            {"root": str(tmp_path)},
        )
    engine.dispose()
    catalog = open_catalog(url)
    try:
        assert station_rows.get_station(catalog, "OLD").preserves_mtimes is False
    finally:
        catalog.dispose()


def test_an_operator_says_a_station_keeps_mtimes(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "dock-7"
    root.mkdir()
    runner = CliRunner()
    assert (
        runner.invoke(app, ["stations", "add", "D7", "--root", str(root), "--as", "A1"]).exit_code
        == 0
    )
    done = runner.invoke(app, ["stations", "set", "D7", "--preserves-mtimes", "--as", "A1"])
    assert done.exit_code == 0 and done.output.strip() == "changed station D7", done.output
    again = runner.invoke(app, ["stations", "set", "D7", "--preserves-mtimes", "--as", "A1"])
    assert again.output.strip() == "unchanged station D7"
    listed = runner.invoke(app, ["stations", "list", "--json"])
    assert json.loads(listed.output)[0]["preserves_mtimes"] is True
