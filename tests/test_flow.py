"""The ingest-station flow under a real Prefect test server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.catalog import media as media_db
from pipeline.models import MediaStatus, Outcome, Station
from pipeline.settings import Settings
from tests.conftest import put


@pytest.fixture
def flow_env(prefect_api: str, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # The flow reads its settings from the environment, as a worker on another host would.
    monkeypatch.setenv("EVIDENCE_WATCH__STABLE_S", "0")
    monkeypatch.setenv("EVIDENCE_TRANSCODE__MAX_HEIGHT", "144")
    monkeypatch.setenv("EVIDENCE_DEVICES__UNKNOWN", "accept")
    return settings


def test_one_flow_run_ingests_a_whole_sweep(
    flow_env: Settings,
    catalog,
    station: Station,
    dock: Path,
    clips: dict[str, Path],  # type: ignore[no-untyped-def]
) -> None:
    from prefect.client.orchestration import get_client

    from flows.ingest import ingest_station, run_ingest

    put(clips["video"], dock, "BWC-1/a.mp4")
    put(clips["audio"], dock, "REC-1/b.m4a")
    put(clips["truncated"], dock, "BWC-1/cut.mp4")

    started = datetime.now(UTC)
    report = run_ingest(flow_env, station.id)

    assert sorted(f.outcome.value for f in report.files) == ["archived", "archived", "quarantined"]
    with catalog.begin() as conn:
        assert media_db.count(conn, MediaStatus.ARCHIVED) == 2
        assert media_db.count(conn, MediaStatus.QUARANTINED) == 1
    assert ingest_station.name == "ingest-station"

    with get_client(sync_client=True) as client:
        # The test server is shared by the session: count only this test's runs.
        runs = client.read_flow_runs()
        ours = [
            r
            for r in runs
            if r.parameters.get("station_id") == station.id and r.created and r.created >= started
        ]
        assert len(ours) == 1, "one flow run per sweep, not one per file"
        assert ours[0].state is not None and ours[0].state.is_completed()
        tasks = client.read_task_runs()
        file_tasks = [
            t for t in tasks if t.flow_run_id == ours[0].id and t.name.startswith("ingest-file")
        ]
        assert len(file_tasks) == 3


def test_the_flow_takes_only_the_given_paths(
    flow_env: Settings,
    catalog,
    station: Station,
    dock: Path,
    clips: dict[str, Path],  # type: ignore[no-untyped-def]
) -> None:
    from flows.ingest import run_ingest

    a = put(clips["photo"], dock, "BWC-1/a.jpg")
    b = put(clips["video2"], dock, "BWC-1/b.mp4")
    report = run_ingest(flow_env, station.id, [str(a)])
    assert [(Path(f.path).name, f.outcome) for f in report.files] == [("a.jpg", Outcome.ARCHIVED)]
    assert b.exists()


def test_files_are_chunked_a_few_chunks_per_worker() -> None:
    from flows.ingest import chunks

    parts = chunks(list(range(500)), workers=2)
    assert len(parts) == 8 and sorted(j for p in parts for j in p) == list(range(500))
    assert chunks([7, 8], workers=4) == [[7], [8]] and chunks([], workers=2) == []
