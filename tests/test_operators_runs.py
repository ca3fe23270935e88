"""Runs that tell the truth: named and tagged for what they did; a file that hits a system
error ends its run Failed, with a log line naming the file and the reason; a fixity problem is
a clean Failed state and log lines, not a traceback."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.models import Outcome, Station
from pipeline.settings import Settings
from tests.conftest import put


@pytest.fixture
def flow_env(prefect_api: str, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("EVIDENCE_WATCH__STABLE_S", "0")
    monkeypatch.setenv("EVIDENCE_TRANSCODE__MAX_HEIGHT", "144")
    monkeypatch.setenv("EVIDENCE_DEVICES__UNKNOWN", "accept")
    return settings


def _runs_of(station_id: str, since: datetime) -> list[Any]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [
            r
            for r in client.read_flow_runs(limit=200)
            if r.parameters.get("station_id") == station_id and r.created and r.created >= since
        ]


def _logs(run_id: Any) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)  # the run's lines go in batches: send them all, now
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
    return [log.message for log in logs]


def test_a_sweep_that_finds_nothing_makes_no_run_and_one_that_does_is_named(
    flow_env: Settings,
    catalog,
    station: Station,
    dock: Path,
    clips: dict[str, Path],  # type: ignore[no-untyped-def]
) -> None:
    from flows.ingest import run_ingest
    from pipeline.ingest.queue import read_heartbeat

    started = datetime.now(UTC)
    assert run_ingest(flow_env, station.id).files == ()
    assert _runs_of(station.id, started) == []
    assert read_heartbeat(flow_env.home, station.id).idle_sweeps == 1

    put(clips["photo"], dock, "BWC-1/a.jpg")
    put(clips["pdf"], dock, "BWC-1/b.pdf")
    run_ingest(flow_env, station.id)
    (run,) = _runs_of(station.id, started)
    local = datetime.now(flow_env.zone)
    assert run.name.startswith(f"sweep {station.id} 2 files ")
    assert (
        abs(int(run.name[-5:-3]) * 60 + int(run.name[-2:]) - (local.hour * 60 + local.minute)) <= 1
    )
    assert set(run.tags) == {"evidence", "kind:sweep", f"station:{station.id}"}
    assert read_heartbeat(flow_env.home, station.id).idle_sweeps == 0
    # The run refreshed the queue view's table artifact.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        keys = {
            a.key
            for a in client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
            )
        }
    assert {"ingest-queue", "sweep-dock-01"} <= keys


def test_a_file_that_fails_makes_its_run_fail_with_a_line_naming_it(
    flow_env: Settings,
    catalog,  # type: ignore[no-untyped-def]
    station: Station,
    dock: Path,
    clips: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.ingest import run_ingest
    from flows.runs import FILES_FAILED

    monkeypatch.setenv("EVIDENCE_TRANSCODE__FFMPEG", "/nonexistent/ffmpeg")
    put(clips["video"], dock, "BWC-1/clip.mp4")
    started = datetime.now(UTC)

    report = run_ingest(flow_env, station.id)

    assert [f.outcome for f in report.files] == [Outcome.FAILED]
    (run,) = _runs_of(station.id, started)
    assert run.state.type.value == "FAILED" and run.state.name == FILES_FAILED
    assert "clip.mp4" in run.state.message and "ffmpeg" in run.state.message
    lines = _logs(run.id)
    (line,) = [m for m in lines if "clip.mp4 failed" in m]
    assert "configured ffmpeg not found" in line
    assert not any("Traceback" in m for m in lines)


def test_a_fixity_problem_is_a_clean_failed_state_naming_the_item(
    prefect_api: str,
    tmp_path_factory: pytest.TempPathFactory,
    clips: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.fixity import PROBLEMS_FOUND, fixity_check
    from tests.custody_helpers import EVERY, copy_archive, flip_byte, pins_of, template

    archive = copy_archive(template(tmp_path_factory, clips), tmp_path / "home")
    monkeypatch.setenv("EVIDENCE_HOME", str(archive.home))
    monkeypatch.setenv("EVIDENCE_CUSTODY__CHECKPOINT_EVERY_EVENTS", str(EVERY))
    monkeypatch.setenv("EVIDENCE_CUSTODY__PINNED_KEYS", json.dumps(pins_of(archive.home)))
    pdf = archive.items["pdf"]
    flip_byte(archive.store.original_path(pdf.sha256))

    state = fixity_check(sample=None, return_state=True)  # type: ignore[call-overload]

    assert state.is_failed() and state.name == PROBLEMS_FOUND
    assert "E-FIXITY-MISMATCH" in state.message and pdf.sha256[:12] in state.message
    lines = _logs(state.state_details.flow_run_id)
    assert any(m.startswith("E-FIXITY-MISMATCH ") for m in lines)
    assert not any("Traceback" in m or "FixityProblems" in m for m in lines)
    archive.catalog.dispose()


def test_progress_is_in_bytes_and_follows_ffmpeg_on_a_proxy(
    flow_env: Settings,
    catalog,
    station: Station,
    dock: Path,
    clips: dict[str, Path],  # type: ignore[no-untyped-def]
) -> None:
    from flows.ingest import IngestProgress, run_ingest

    sizes = [put(clips[k], dock, f"BWC-1/{n}").stat().st_size
             for k, n in (("video", "a.mp4"), ("photo", "b.jpg"))]  # fmt: skip
    planned: list[tuple[int, int]] = []
    stored: list[int] = []
    proxy: list[tuple[str, float]] = []
    ended: list[str] = []
    progress = IngestProgress(
        planned=lambda files, size: planned.append((files, size)),
        stored=stored.append,
        transcoding=lambda path, fraction: proxy.append((Path(path).name, fraction)),
        ended=lambda report: ended.append(Path(report.path).name),
    )

    run_ingest(flow_env, station.id, progress=progress)

    assert planned == [(2, sum(sizes))]
    assert sorted(stored) == sorted(sizes), "each file's bytes once copied and verified"
    # ffmpeg's -progress: fractions of the clip's duration, rising, ending at 1.0; a photo
    # gets a thumbnail, no proxy.
    fractions = [f for name, f in proxy if name == "a.mp4"]
    assert fractions and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {name for name, _ in proxy} == {"a.mp4"}
    assert sorted(ended) == ["a.mp4", "b.jpg"]
