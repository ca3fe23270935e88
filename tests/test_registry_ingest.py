"""The registry at work during ingest: every recording tied to its device and to the officer
who held it; unknown, lost and retired devices quarantined (bytes kept, hash recorded, alert
raised) and released once registered; disagreements and clock drift flagged; health."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from docks.sweep import sweep_station
from interfaces import synth
from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import media as media_db
from pipeline.custody import log as custody
from pipeline.errors import QuarantineError
from pipeline.ingest.quarantine import release
from pipeline.ingest.steps import IngestContext
from pipeline.models import (
    Device,
    DeviceKind,
    DeviceStatus,
    EventKind,
    MediaStatus,
    Officer,
    Outcome,
    Station,
)
from pipeline.registry import health
from pipeline.registry import records as registry
from pipeline.storage.local import LocalStore
from tests.conftest import make_settings

START = datetime(2026, 11, 27, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai


@pytest.fixture
def rctx(catalog, tmp_path: Path) -> IngestContext:  # type: ignore[no-untyped-def]
    """Production behaviour: unknown devices are quarantined."""
    settings = make_settings(tmp_path / "home", devices={"unknown": "quarantine"})
    return IngestContext(catalog, LocalStore(settings.archive_dir), settings, jobs_db.new_owner())


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-second clip stamped at START, as recorder BWC0017 writes it."""
    d = tmp_path_factory.mktemp("rec")
    return synth.make_video(d / "clip.mp4", seconds=2.0, creation_time=START)


def _dock(
    recording: Path, dock: Path, relative: str, *, tail: bytes = b"", end: datetime | None = None
) -> Path:
    """Put a recording on the dock with the file time a dock gives it (the recording's end)."""
    target = dock / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(recording.read_bytes() + tail)
    when = (end or START + timedelta(seconds=2)).timestamp()
    os.utime(target, (when, when))
    return target


def _register(
    ctx: IngestContext, serial: str = "BWC0017", status: DeviceStatus = DeviceStatus.ACTIVE
) -> None:
    with ctx.catalog.begin() as conn:
        registry.save_officer(conn, Officer("1023", "张伟", "62010023001"), "A001")
        registry.save_officer(conn, Officer("1088", "李娜", "62010023017"), "A001")
        registry.save_device(conn, Device(serial, DeviceKind.BODY_WORN, status), "A001")


def test_a_recording_is_attributed_to_the_officer_holding_the_device(
    rctx: IngestContext, station: Station, dock: Path, recording: Path
) -> None:
    _register(rctx)
    with rctx.catalog.begin() as conn:
        registry.save_assignment(conn, "BWC0017", "1023", START - timedelta(hours=1), None, "A001")
    _dock(recording, dock, "BWC0017/BWC0017_1023_20261127093000_0001.mp4")

    (f,) = sweep_station(rctx, station).files

    assert f.outcome is Outcome.ARCHIVED
    with rctx.catalog.begin() as conn:
        item = media_db.get(conn, f.sha256 or "")
    assert (item.device_serial, item.officer_id, item.time_source) == (
        "BWC0017",
        "1023",
        "metadata",
    )
    assert item.recorded_start == START and item.recorded_end == START + timedelta(seconds=2)
    assert item.id_sources == {"filename": "BWC0017", "layout": "BWC0017"}
    assert item.flags == ()


def test_a_recording_across_a_hand_over_is_unattributed_and_flagged(
    rctx: IngestContext, station: Station, dock: Path, recording: Path
) -> None:
    _register(rctx)
    handover = START + timedelta(seconds=1)  # mid-recording
    with rctx.catalog.begin() as conn:
        registry.save_assignment(
            conn, "BWC0017", "1023", START - timedelta(hours=1), handover, "A001"
        )
        registry.save_assignment(conn, "BWC0017", "1088", handover, None, "A001")
    _dock(recording, dock, "BWC0017/a.mp4")
    (f,) = sweep_station(rctx, station).files
    with rctx.catalog.begin() as conn:
        item = media_db.get(conn, f.sha256 or "")
    assert f.outcome is Outcome.ARCHIVED and item.officer_id is None
    assert [fl.code for fl in item.flags] == ["spans-assignments"]
    assert "1023, 1088" in item.flags[0].message


def test_an_unknown_device_is_quarantined_then_released_after_registration(
    rctx: IngestContext, station: Station, dock: Path, recording: Path
) -> None:
    src = _dock(recording, dock, "BWC0099/BWC0099_1023_20261127093000_0001.mp4")
    sha = hashlib.sha256(src.read_bytes()).hexdigest()

    (f,) = sweep_station(rctx, station).files

    assert f.outcome is Outcome.QUARANTINED and f.reason == "device BWC0099 is not registered"
    with rctx.catalog.begin() as conn:
        (entry,) = media_db.quarantine_entries(conn)
        item = media_db.get(conn, sha)
        alerts = [e for e in custody.events(conn, media_id=item.id) if e.kind is EventKind.ALERT]
    assert entry.code == "unknown-device" and entry.sha256 == sha and item.sha256 == sha
    assert rctx.store.verify_original(sha).sha256 == sha, "bytes preserved and hashed"
    assert item.proxy_key is None, "no proxy for a quarantined file"
    assert [a.details["code"] for a in alerts] == ["unknown-device"]

    with pytest.raises(QuarantineError, match="BWC0099 is not registered"):
        release(rctx, entry.id, "A001")

    _register(rctx, "BWC0099")
    with rctx.catalog.begin() as conn:
        registry.save_assignment(conn, "BWC0099", "1023", START - timedelta(days=1), None, "A001")
    released = release(rctx, entry.id, "A001")

    assert released.status is MediaStatus.ARCHIVED and released.officer_id == "1023"
    assert released.proxy_key and rctx.store.derived_path(released.proxy_key).exists()
    with rctx.catalog.begin() as conn:
        assert media_db.quarantine_entries(conn) == []
        (done,) = media_db.quarantine_entries(conn, include_resolved=True)
        ev = [
            e
            for e in custody.events(conn, media_id=item.id)
            if e.kind is EventKind.QUARANTINE_RELEASED
        ]
        assert custody.broken_links(conn) == []
    assert done.resolved_by == "A001" and [e.actor for e in ev] == ["A001"]
    with pytest.raises(QuarantineError, match="already released by A001"):
        release(rctx, entry.id, "A001")


@pytest.mark.parametrize(
    ("status", "code"),
    [(DeviceStatus.LOST, "device-lost"), (DeviceStatus.RETIRED, "device-retired")],
)
def test_lost_and_retired_devices_are_quarantined(
    rctx: IngestContext,
    station: Station,
    dock: Path,
    recording: Path,
    status: DeviceStatus,
    code: str,
) -> None:
    _register(rctx, status=status)
    _dock(recording, dock, "BWC0017/a.mp4")
    (f,) = sweep_station(rctx, station).files
    assert f.outcome is Outcome.QUARANTINED
    with rctx.catalog.begin() as conn:
        (entry,) = media_db.quarantine_entries(conn)
    assert entry.code == code


def test_a_file_the_media_itself_ruins_cannot_be_released(
    rctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    target = dock / "BWC0017" / "cut.mp4"
    target.parent.mkdir(parents=True)
    target.write_bytes(clips["truncated"].read_bytes())
    sweep_station(rctx, station)
    with rctx.catalog.begin() as conn:
        (entry,) = media_db.quarantine_entries(conn)
    with pytest.raises(QuarantineError, match="about the file itself"):
        release(rctx, entry.id, "A001")


def test_disagreeing_serials_and_clock_drift_are_flagged_not_resolved(
    rctx: IngestContext, station: Station, dock: Path, tmp_path: Path
) -> None:
    _register(rctx)
    _register(rctx, "BWC0099")
    clip = synth.make_video(
        tmp_path / "tagged.mp4", creation_time=START, tags={"serial_number": "BWC0099"}
    )
    # Filed under BWC0017's folder, tagged BWC0099 inside; written 2 h after it says it ended.
    _dock(clip, dock, "BWC0017/x.mp4", end=START + timedelta(hours=2))
    # A station that keeps the recorder's mtimes: the file's time is a clock to check against.
    (f,) = sweep_station(rctx, replace(station, preserves_mtimes=True)).files
    with rctx.catalog.begin() as conn:
        item = media_db.get(conn, f.sha256 or "")
    codes = [fl.code for fl in item.flags]
    assert item.device_serial == "BWC0099", "metadata wins by the default precedence"
    assert codes == ["device-disagreement", "clock-drift", "unattributed"]


def test_documents_are_not_tied_to_a_device(
    rctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    target = dock / "SCAN" / "现场笔录.pdf"
    target.parent.mkdir(parents=True)
    target.write_bytes(clips["pdf"].read_bytes())
    (f,) = sweep_station(rctx, station).files
    assert f.outcome is Outcome.ARCHIVED


def test_health_reports_docking_drift_and_quarantine(
    rctx: IngestContext, station: Station, dock: Path, recording: Path
) -> None:
    _register(rctx)
    _register(rctx, "BWC0050")  # registered, never docked
    for i in range(2):  # two drifted recordings: "repeated"
        _dock(recording, dock, f"BWC0017/d{i}.mp4", tail=bytes([i]), end=START + timedelta(hours=3))
    _dock(recording, dock, "BWC0099/u.mp4", tail=b"u")
    sweep_station(rctx, replace(station, preserves_mtimes=True))

    report = health.report(rctx.catalog, rctx.settings.devices, datetime.now(UTC))

    by = {d.serial: d for d in report.devices}
    assert by["BWC0017"].drifted_files == 2 and by["BWC0017"].last_docked is not None
    assert by["BWC0017"].files_per_day == pytest.approx(2 / 7)
    assert "repeated clock drift (2 files)" in by["BWC0017"].problems
    assert by["BWC0050"].last_docked is None and "not docked in 3 days" in by["BWC0050"].problems
    (st,) = report.stations
    assert st.quarantined == 1 and st.unregistered_serials == ("BWC0099",)
