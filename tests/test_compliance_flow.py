"""The compliance-sweep flow under the Prefect test server: alerts for overdue and
incomplete cases, a table artifact for operators, and auto-sealing of complete cases."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from docks.sweep import sweep_station
from interfaces import synth
from pipeline.cases import records as cases
from pipeline.cases.categories import load_categories
from pipeline.catalog import jobs as jobs_db
from pipeline.custody import keys
from pipeline.custody import log as custody
from pipeline.ingest.steps import IngestContext
from pipeline.models import Case, CaseStatus, Device, DeviceKind, EventKind, Officer, Station
from pipeline.registry import records as registry
from pipeline.settings import Settings
from pipeline.storage.local import LocalStore

T0 = datetime(2026, 11, 2, 1, 30, tzinfo=UTC)


def test_sweep_alerts_publishes_and_auto_seals(
    prefect_api: str,
    settings: Settings,
    catalog,
    station: Station,
    dock: Path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    from prefect.client.orchestration import get_client

    from flows.compliance import compliance_sweep

    monkeypatch.setenv("EVIDENCE_CASES__AUTO_SEAL", "true")
    keys.create_instance_key(settings.home)
    ctx = IngestContext(catalog, LocalStore(settings.archive_dir), settings, jobs_db.new_owner())
    with catalog.begin() as conn:
        registry.save_officer(conn, Officer("1023", "张伟", "62010023001"), "A001")
        registry.save_device(conn, Device("BWC0017", DeviceKind.BODY_WORN), "A001")
        registry.save_assignment(conn, "BWC0017", "1023", T0 - timedelta(hours=1), None, "A001")
    (dock / "BWC0017").mkdir()
    clip = synth.make_video(dock / "BWC0017" / "a.mp4", seconds=2.0, creation_time=T0)
    os.utime(clip, ((T0 + timedelta(seconds=2)).timestamp(),) * 2)
    (media_id,) = [f.media_id for f in sweep_station(ctx, station).files]
    cats = load_categories(settings)
    with catalog.begin() as conn:
        cases.describe(conn, media_id or 0, "查封全过程", "1023", T0)
        # Complete and concluded: auto-sealed. Ended a month ago with nothing linked: overdue.
        cases.save_case(
            conn,
            Case(
                "OK-1",
                "查封",
                "seizure",
                "市场监管",
                CaseStatus.CONCLUDED,
                ("1023",),
                action_start=T0,
                action_end=T0 + timedelta(seconds=2),
            ),
            "A001",
            settings,
            cats,
            T0,
        )
        cases.save_case(
            conn,
            Case(
                "LATE-1",
                "拆除",
                "forced-demolition",
                "城管",
                CaseStatus.CONCLUDED,
                (),
                action_start=T0,
                action_end=T0 + timedelta(hours=1),
            ),
            "A001",
            settings,
            cats,
            T0,
        )

    result = compliance_sweep()

    assert result["cases"] == 2 and result["sealed"] == ["OK-1"] and result["linked"] == 1
    with catalog.begin() as conn:
        alerts = [e for e in custody.events(conn) if e.kind is EventKind.ALERT]
        assert cases.get_case(conn, "OK-1").status is CaseStatus.ARCHIVED
    (alert,) = [a for a in alerts if a.subject == "LATE-1"]
    assert alert.details["state"] == "overdue"
    assert any("no recording at all" in p for p in alert.details["problems"])
    # The summary per department the dashboard shows at its top: the demolition's unit has
    # an overdue case whose whole-process recording is missing; the sealed seizure's, nothing.
    assert result["departments_needing_action"] == ["城管"]
    with get_client(sync_client=True) as client:
        artifact = client.read_latest_artifacts()
        assert any(a.key == "compliance" for a in artifact)
        (summary,) = [a for a in artifact if a.key == "department-summary"]
        assert json.loads(str(summary.data)) == [
            {
                "department": "城管",
                "due_soon": 0,
                "overdue": 1,
                "coverage_failures": 1,
                "late_uploads": 0,
            }
        ]
    # … and kept in the catalog, which the dashboard shows at its top as of the sweep.
    from pipeline.catalog.supervision import latest_summary

    with catalog.read() as conn:
        kept = latest_summary(conn)
    assert kept is not None and kept[2] == json.loads(str(summary.data))


def test_the_daily_schedule_comes_from_settings(tmp_path: Path) -> None:
    from flows.compliance import deployments
    from pipeline.errors import ConfigError
    from tests.conftest import make_settings

    (daily,) = deployments(make_settings(tmp_path, cases={"compliance_cron": "15 7 * * *"}))
    assert daily.name == "daily"
    (schedule,) = daily.schedules
    assert schedule.schedule.cron == "15 7 * * *" and schedule.schedule.timezone == "Asia/Shanghai"
    with pytest.raises(ConfigError, match="invalid compliance schedule"):
        deployments(make_settings(tmp_path, cases={"compliance_cron": "every morning"}))
