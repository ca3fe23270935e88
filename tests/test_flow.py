"""The ingest-station flow under a real Prefect test server."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from pipeline.catalog import Catalog
from pipeline.catalog import media as media_db
from pipeline.models import MediaStatus, Outcome, Station, SweepReport
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
        stages = [t.name.rsplit("-", 1)[0] for t in tasks if t.flow_run_id == ours[0].id]
        # 3 files, 2 workers: 3 chunks of one file, each through the three stages.
        for stage in ("store-files", "catalogue-files", "derive-files"):
            assert stages.count(stage) == 3, stages


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


def test_intake_catalogues_at_once_and_derive_finishes_later(
    flow_env: Settings,
    catalog,
    station: Station,
    dock: Path,
    clips: dict[str, Path],  # type: ignore[no-untyped-def]
) -> None:
    from flows.ingest import run_derive, run_ingest, run_intake
    from pipeline.catalog.jobs import new_owner

    video = put(clips["video"], dock, "BWC-1/a.mp4")
    cut = put(clips["truncated"], dock, "BWC-1/cut.mp4")
    owner = new_owner()

    intake = run_intake(flow_env, station.id, [str(video), str(cut)], owner)

    # The truncated file ended at intake; the video is catalogued, its proxy still to come.
    assert [(Path(f.path).name, f.outcome) for f in intake.report.files] == [
        ("cut.mp4", Outcome.QUARANTINED)
    ]
    assert len(intake.to_derive) == 1
    with catalog.begin() as conn:
        item = media_db.by_sha256(conn, sha256_of(video))
    assert item is not None and item.status is MediaStatus.ARCHIVED and item.proxy_key is None
    assert video.exists(), "the source stays on the dock until its job is done"

    # Another sweep meanwhile leaves the watcher's job alone: it is claimed by a live owner.
    sweep = run_ingest(flow_env, station.id)
    assert [(Path(f.path).name, f.outcome) for f in sweep.files] == [("a.mp4", Outcome.WAITING)]

    derived = run_derive(flow_env, station.id, list(intake.to_derive), owner)

    assert [(Path(f.path).name, f.outcome) for f in derived.files] == [("a.mp4", Outcome.ARCHIVED)]
    with catalog.begin() as conn:
        item = media_db.get(conn, item.id)
    assert item.proxy_key is not None and item.thumbnail_key is not None
    assert not video.exists(), "released once derived"


def test_the_watcher_catalogues_before_any_run_and_the_intake_run_records_it(
    flow_env: Settings,
    catalog,
    station: Station,
    dock: Path,
    clips: dict[str, Path],  # type: ignore[no-untyped-def]
) -> None:
    from prefect.client.orchestration import get_client

    from flows.ingest import catalogue_now, record_intake
    from pipeline.ingest.steps import open_context

    video = put(clips["video"], dock, "BWC-1/a.mp4")
    cut = put(clips["truncated"], dock, "BWC-1/cut.mp4")
    started = datetime.now(UTC)
    ctx = open_context(flow_env)

    def station_runs() -> list[Any]:
        with get_client(sync_client=True) as client:
            return [
                r
                for r in client.read_flow_runs()
                if r.parameters.get("station_id") == station.id
                and r.created
                and r.created >= started
            ]

    try:
        done = catalogue_now(ctx, station.id, [str(video), str(cut)], check_crashed=False)
    finally:
        ctx.catalog.dispose()

    # Catalogued, and the truncated file quarantined, before any flow run exists.
    assert [(Path(f.path).name, f.outcome) for f in done.report.files] == [
        ("cut.mp4", Outcome.QUARANTINED)
    ]
    assert len(done.job_ids) == 2 and len(done.to_derive) == 1
    with catalog.begin() as conn:
        item = media_db.by_sha256(conn, sha256_of(video))
    assert item is not None and item.status is MediaStatus.ARCHIVED
    assert station_runs() == []

    # The run that records the batch shows both files, as when it did the work itself.
    intake = record_intake(flow_env, station.id, list(done.job_ids), ctx.owner)

    assert intake.to_derive == done.to_derive
    assert [(Path(f.path).name, f.outcome) for f in intake.report.files] == [
        ("cut.mp4", Outcome.QUARANTINED)
    ]
    runs = station_runs()
    assert [r.name.split()[:4] for r in runs] == [["intake", station.id, "2", "files"]]
    assert runs[0].state is not None and runs[0].state.is_completed()


def test_evidence_watch_catalogues_each_batch_and_derives_behind_it(
    flow_env: Settings,
    catalog,
    station: Station,
    dock: Path,
    clips: dict[str, Path],  # type: ignore[no-untyped-def]
) -> None:
    from prefect.client.orchestration import get_client

    from docks.watcher import StationWatcher
    from flows.ingest import Intake
    from flows.watch import WatchIngest

    intakes: list[Intake] = []
    derived: list[SweepReport] = []
    started = datetime.now(UTC)
    with WatchIngest(flow_env, intakes.append, derived.append) as ingest:
        watcher = StationWatcher([station], flow_env.watch, flow_env.ingest.ignore, ingest.on_batch)
        with watcher:
            landed = [put(clips[k], dock, f"BWC-1/{k}.mp4") for k in ("video", "video2")]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and sum(len(i.to_derive) for i in intakes) < 2:
                time.sleep(0.05)
            assert ingest.wait_idle(60)

    assert sum(len(i.to_derive) for i in intakes) == 2
    assert sorted(Path(f.path).name for r in derived for f in r.files) == [
        "video.mp4",
        "video2.mp4",
    ]
    assert all(f.outcome is Outcome.ARCHIVED for r in derived for f in r.files)
    assert not any(p.exists() for p in landed)
    with catalog.begin() as conn:
        assert media_db.count(conn, MediaStatus.ARCHIVED) == 2
    with get_client(sync_client=True) as client:
        names = {
            client.read_flow(r.flow_id).name
            for r in client.read_flow_runs()
            if r.parameters.get("station_id") == station.id and r.created and r.created >= started
        }
    assert names == {"intake-station", "derive-station"}


def _dead_pid() -> int:
    """The pid of a process of this host that has exited (and been reaped)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(done.stdout)


def test_a_sweep_marks_the_runs_of_a_killed_sweep_crashed(
    flow_env: Settings, catalog: Catalog, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled, Running

    from flows.ingest import derive_station, ingest_station, intake_station, run_ingest

    here, dead = socket.gethostname(), _dead_pid()
    started = datetime.now(UTC)
    with get_client(sync_client=True) as client:

        def running(flow: Any, station_id: str, owner: str) -> UUID:
            # What a SIGKILLed `evidence ingest` or `evidence watch` leaves on the server.
            parameters = {"station_id": station_id, "owner": owner}
            return client.create_flow_run(flow, parameters=parameters, state=Running()).id

        killed = {
            running(ingest_station, station.id, f"{here}:{dead}:killed01"),
            running(intake_station, station.id, f"{here}:{dead}:watch001"),
            running(derive_station, station.id, f"{here}:{dead}:watch001"),
        }
        left = {
            # this process still lives: a run of it may well be going on
            running(ingest_station, station.id, f"{here}:{os.getpid()}:alive001"),
            # another host's process: nothing here can tell whether it lives
            running(ingest_station, station.id, f"elsewhere:{dead}:remote01"),
            # another station's: not this sweep's to judge
            running(ingest_station, "DOCK-99", f"{here}:{dead}:other001"),
            # a deployment's, run by a worker, which reports its end itself
            client.create_flow_run(
                ingest_station, parameters={"station_id": station.id}, state=Running()
            ).id,
        }
        put(clips["photo"], dock, "BWC-1/a.jpg")  # a sweep with a file to take makes a run
        try:
            report = run_ingest(flow_env, station.id)
            assert report.ok
            states = {r: client.read_flow_run(r).state for r in killed | left}
            crashed = {r for r, s in states.items() if s is not None and s.is_crashed()}
            assert crashed == killed
            assert {r for r, s in states.items() if s and s.type is StateType.RUNNING} == left
            message = str(states[next(iter(killed))].message)  # type: ignore[union-attr]
            assert f":{dead}:" in message and "gone" in message
            # The sweep's own run names its owner, for the next sweep to judge it by.
            (own,) = [
                r
                for r in client.read_flow_runs()
                if r.parameters.get("station_id") == station.id and r.id not in killed | left
                and r.created and r.created >= started
            ]  # fmt: skip
            assert own.state is not None and own.state.is_completed()
            assert own.parameters["owner"].split(":")[:2] == [here, str(os.getpid())]
        finally:  # the server is the session's: leave no run of ours RUNNING for others
            for r in left:
                client.set_flow_run_state(r, Cancelled(), force=True)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_runs_in_one_process_each_see_only_their_own_files(
    flow_env: Settings,
    catalog: Catalog,
    station: Station,
    dock: Path,
    tmp_path: Path,
    clips: dict[str, Path],
) -> None:
    """The progress callback was a process-wide list: a web server running two sweeps at once
    would have shown each one the other's files."""
    import threading

    from flows.ingest import run_ingest
    from pipeline.registry.stations import save_station

    other_dock = tmp_path / "dock2"
    other_dock.mkdir()
    with catalog.begin() as conn:
        save_station(conn, Station("DOCK-02", other_dock), "tester")
    put(clips["video"], dock, "BWC-1/a.mp4")
    put(clips["audio"], dock, "REC-1/b.m4a")
    put(clips["photo"], other_dock, "BWC-2/c.jpg")
    seen: dict[str, list[str]] = {"DOCK-01": [], "DOCK-02": []}

    def sweep(station_id: str) -> None:
        run_ingest(
            flow_env, station_id, on_file=lambda r: seen[station_id].append(Path(r.path).name)
        )

    threads = [threading.Thread(target=sweep, args=(s,)) for s in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)

    assert sorted(seen["DOCK-01"]) == ["a.mp4", "b.m4a"]
    assert seen["DOCK-02"] == ["c.jpg"]
