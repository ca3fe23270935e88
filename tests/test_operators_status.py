"""The queue view: what waits at each station, from the catalog, the docks and the sweep
heartbeats; `evidence status` prints it, and says when a job is failing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from docks.sweep import plan_sweep, settling
from pipeline.catalog import Catalog
from pipeline.catalog import jobs as jobs_db
from pipeline.ingest import usecases
from pipeline.ingest.queue import record_sweep
from pipeline.ingest.steps import IngestContext, catalogue_job, store_job
from pipeline.instance import open_instance
from pipeline.models import JobState, SourceFile, Station
from tests.conftest import put

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def test_the_queue_shows_settling_files_jobs_failures_and_the_derive_backlog(
    ctx: IngestContext, catalog: Catalog, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    put(clips["video"], dock, "BWC-1/a.mp4")  # catalogued, its proxy still to come
    plan = plan_sweep(ctx, station)
    (job_id,) = plan.job_ids
    assert store_job(ctx, station, job_id) is None and catalogue_job(ctx, station, job_id) is None
    # A job whose last attempt hit a system error, and a file still being written.
    broken = put(clips["photo"], dock, "BWC-1/b.jpg")
    st = broken.stat()
    with catalog.begin() as conn:
        failed = jobs_db.find_or_create(
            conn, SourceFile.seen(station.id, broken, st, str(broken)), NOW
        )
        jobs_db.fail(conn, failed.id, "archive unwritable: disk full", NOW)
    (dock / "BWC-1" / "c.mp4").write_bytes(b"\0" * 1000)
    record_sweep(ctx.settings.home, station.id, NOW, files=0, waiting=1, ok=True)

    slow = ctx.settings.model_copy(
        update={"watch": ctx.settings.watch.model_copy(update={"stable_s": 3600.0})}
    )
    found = {station.id: [f for f in settling(slow, station) if f.path.name == "c.mp4"]}
    view = usecases.queue_status(open_instance(ctx.settings, clock=lambda: NOW), found)

    (queue,) = view.stations
    assert queue.station_id == station.id and view.at == NOW
    assert (queue.settling, queue.settling_bytes) == (1, 1000)
    assert queue.jobs == {JobState.CATALOGUED.value: 1, JobState.PENDING.value: 1}
    assert [(f.path, f.reason) for f in queue.failed] == [
        (str(broken), "archive unwritable: disk full")
    ]
    assert queue.derive_backlog == 1 and 0 < queue.derive_hours <= 0.01  # a 1 s clip
    assert queue.oldest_waiting is not None and queue.oldest_waiting.endswith("a.mp4")
    assert queue.last_sweep == queue.last_ok_sweep == NOW and queue.idle_sweeps == 1

    # The command: the same view as JSON, exit 1 while a job is failing; a table otherwise.
    env = {**os.environ, "EVIDENCE_HOME": str(ctx.settings.home), "COLUMNS": "200"}
    command = [sys.executable, "-m", "interfaces.cli", "status"]
    started = time.monotonic()
    done = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    (shown,) = json.loads(done.stdout)["stations"]
    assert shown["jobs"] == {"catalogued": 1, "pending": 1}
    assert shown["failed"][0]["reason"] == "archive unwritable: disk full"
    assert shown["last_sweep"] == NOW.isoformat()
    table = subprocess.run(command, env=env, capture_output=True, text=True)
    assert "Ingest queue" in table.stdout and "disk full" in table.stdout
    assert "Asia/Shanghai" in table.stdout and "14:00" in table.stdout  # 06:00 UTC, local
    assert time.monotonic() - started < 30


def test_a_home_never_initialised_is_refused_and_left_uncreated(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_")}
    typo = tmp_path / "evidnce"
    for args in (["status"], ["media", "list"], ["stations", "add", "D1", "--root", "/tmp"]):
        done = subprocess.run(
            [sys.executable, "-m", "interfaces.cli", "--home", str(typo), *args],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 2, (args, done.stderr)
        assert "never initialised" in done.stderr and f"--home {typo} init" in done.stderr
        assert "Traceback" not in done.stderr
    assert not typo.exists(), "no empty catalog made for a mistyped home"
