"""Scale-out end to end: a Prefect server on PostgreSQL, `evidence deploy`, a process worker,
`evidence watch` submitting to the deployment — and the files dropped on the dock end up
archived in SeaweedFS (S3, Object Lock) with the catalog in PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import select

from pipeline.catalog import open_catalog
from pipeline.catalog.schema import media
from pipeline.storage.s3 import original_key
from tests.conftest import free_port
from tests.seaweed import running_seaweed

EVIDENCE = [sys.executable, "-m", "interfaces.cli"]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _released(dock: Path) -> list[str]:
    """The recordings moved to the dock's ``.ingested`` folder, as a station's release does."""
    folder = dock / ".ingested" / "BWC0017"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture(scope="module")
def prefect_on_postgres(
    pg_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    """A real Prefect server whose database is PostgreSQL (as the deployment guide sets up)."""
    name = f"prefect_test_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EVIDENCE_"))}
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}",
        }
    )
    log = (home / "server.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while not _healthy(url):
        assert server.poll() is None and time.monotonic() < deadline, (
            home / "server.log"
        ).read_text()[-2000:]
        time.sleep(0.3)
    try:
        yield url, {"PREFECT_HOME": str(home)}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_watcher_server_worker_s3_and_postgres(
    prefect_on_postgres: tuple[str, dict[str, str]],
    pg_url: str,
    tmp_path: Path,
    clips: dict[str, Path],
) -> None:
    api, prefect_env = prefect_on_postgres
    dock = tmp_path / "dock"
    (dock / "BWC0017").mkdir(parents=True)
    with running_seaweed(tmp_path / "s3") as s3:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EVIDENCE_"))}
        env.update(
            {
                **prefect_env,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_WORKER_QUERY_SECONDS": "1",
                "EVIDENCE_HOME": str(tmp_path / "home"),
                "EVIDENCE_CATALOG__URL": pg_url,
                "EVIDENCE_STORE__KIND": "s3",
                "EVIDENCE_STORE__S3__ENDPOINT_URL": s3.endpoint_url,
                "EVIDENCE_STORE__S3__ACCESS_KEY": s3.access_key,
                "EVIDENCE_STORE__S3__SECRET_KEY": s3.secret_key,
                "EVIDENCE_STORE__S3__BUCKET": "evidence-scaleout",
                "EVIDENCE_PREFECT__API_URL": api,
                "EVIDENCE_PREFECT__DEPLOYMENTS": "true",
                "EVIDENCE_PREFECT__TRANSCODE_LIMIT": "2",
                "EVIDENCE_DEVICES__UNKNOWN": "accept",
                "EVIDENCE_WATCH__STABLE_S": "0.3",
                "EVIDENCE_WATCH__BATCH_WINDOW_S": "0.3",
                "EVIDENCE_TRANSCODE__MAX_HEIGHT": "144",
            }
        )

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            done = subprocess.run(
                [*EVIDENCE, *args], env=env, capture_output=True, text=True, timeout=300
            )
            assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
            return done

        run("init")
        run("stations", "add", "D1", "--root", str(dock))
        deployed = run("deploy", "--json").stdout
        assert "ingest-station/station" in deployed and "compliance-sweep/daily" in deployed
        logs = tmp_path / "logs"
        logs.mkdir()
        worker = subprocess.Popen(
            [*EVIDENCE, "worker"],
            env=env,
            stdout=(logs / "worker.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        watcher = subprocess.Popen(
            [*EVIDENCE, "watch"],
            env=env,
            stdout=(logs / "watch.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            time.sleep(2)
            shutil.copyfile(clips["video"], dock / "BWC0017" / "a.mp4")
            shutil.copyfile(clips["audio"], dock / "BWC0017" / "b.m4a")
            catalog = open_catalog(pg_url, migrate=False)
            deadline = time.monotonic() + 180
            rows: list = []
            while time.monotonic() < deadline:
                with catalog.begin() as conn:
                    rows = conn.execute(
                        select(media.c.original_name, media.c.sha256, media.c.proxy_key)
                    ).all()
                # Done when the dock's copies are released too: that step comes after the
                # proxy, and a busy machine can leave it undone when the worker is stopped.
                if len(rows) == 2 and all(r.proxy_key for r in rows) and len(_released(dock)) == 2:
                    break
                time.sleep(0.5)
            catalog.dispose()
            assert sorted(r.original_name for r in rows) == ["a.mp4", "b.m4a"], (
                logs / "worker.log"
            ).read_text()[-3000:]
        finally:
            watcher.send_signal(signal.SIGINT)
            os.killpg(worker.pid, signal.SIGTERM)
            watcher.wait(timeout=30)
            worker.wait(timeout=30)
        for r in rows:
            head = s3.client.head_object(
                Bucket="evidence-scaleout", Key=original_key(r.sha256), ChecksumMode="ENABLED"
            )
            assert head["ObjectLockMode"] == "COMPLIANCE"
        assert "submitted" in (logs / "watch.log").read_text()
        assert _released(dock) == ["a.mp4", "b.m4a"]
