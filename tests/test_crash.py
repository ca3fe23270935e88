"""SIGKILL the ingest process in the middle of a sweep, run it again, and find every file
archived exactly once, nothing lost, and no source released without a verified copy."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pipeline.catalog import open_catalog
from pipeline.catalog.schema import ingest_jobs, media
from pipeline.custody import log as custody
from pipeline.models import JobState
from tests.conftest import RECORDED

EVIDENCE = [sys.executable, "-m", "interfaces.cli"]
FILES = 14


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Distinct recordings: one real clip with a different trailing tail each (players
    ignore trailing bytes; the hashes differ, so each is its own media item)."""
    from interfaces import synth

    d = tmp_path_factory.mktemp("recordings")
    base = synth.make_video(
        d / "base.mp4", seconds=1.0, width=320, height=240, creation_time=RECORDED
    )
    out = []
    for i in range(FILES):
        p = d / f"BWC0017_1023_2026050508{i:02d}00_{i:04d}.mp4"
        p.write_bytes(base.read_bytes() + f"tail {i}".encode())
        out.append(p)
    return out


def _env(home: Path, api: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "PREFECT_API"))}
    env.update(
        {
            "EVIDENCE_HOME": str(home),
            "EVIDENCE_PREFECT__API_URL": api,
            "EVIDENCE_WATCH__STABLE_S": "0",
            "EVIDENCE_INGEST__WORKERS": "1",
            "EVIDENCE_TRANSCODE__MAX_HEIGHT": "144",
            "EVIDENCE_DEVICES__UNKNOWN": "accept",
        }
    )
    return env


def _states(url: str) -> dict[str, int]:
    cat = open_catalog(url, migrate=False)
    try:
        with cat.begin() as conn:
            rows = conn.execute(
                select(ingest_jobs.c.state, func.count()).group_by(ingest_jobs.c.state)
            )
            return {state: n for state, n in rows}
    except Exception:
        return {}  # the child has not created the catalog yet
    finally:
        cat.dispose()


@pytest.mark.parametrize("kill_when", ["first-stored", "half-done"])
def test_sigkill_mid_sweep_then_rerun_loses_nothing(
    kill_when: str, prefect_api: str, recordings: list[Path], tmp_path: Path
) -> None:
    home, dock = tmp_path / "home", tmp_path / "dock"
    env = _env(home, prefect_api)
    for p in recordings:
        (dock / "BWC-0017").mkdir(parents=True, exist_ok=True)
        (dock / "BWC-0017" / p.name).write_bytes(p.read_bytes())
    expected = {_sha(p) for p in recordings}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*EVIDENCE, *args], env=env, capture_output=True, text=True, timeout=300
        )

    assert run("init").returncode == 0
    assert run("stations", "add", "D1", "--root", str(dock)).returncode == 0
    url = f"sqlite:///{home / 'catalog.db'}"

    child = subprocess.Popen(
        [*EVIDENCE, "ingest", "--station", "D1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        states = _states(url)
        done = states.get(JobState.DONE.value, 0)
        if (kill_when == "first-stored" and states.get(JobState.STORED.value)) or (
            kill_when == "half-done" and done >= FILES // 2
        ):
            break
        time.sleep(0.02)
    assert child.poll() is None, "the sweep finished before it could be killed"
    os.killpg(child.pid, signal.SIGKILL)  # the CLI and any ffmpeg it runs
    child.wait()

    states = _states(url)
    assert states.get(JobState.DONE.value, 0) < FILES, f"killed mid-sweep: {states}"
    archive = home / "archive" / "originals"
    released = list((dock / ".ingested").rglob("*.mp4")) if (dock / ".ingested").exists() else []
    for path in released:  # invariant 2 held at the moment of the kill
        sha = _sha(path)
        stored = archive / sha[:2] / sha[2:4] / sha
        assert stored.exists() and _sha(stored) == sha, f"{path.name} released unverified"

    again = run("ingest", "--station", "D1", "--json")
    assert again.returncode == 0, again.stderr

    cat = open_catalog(url)
    with cat.begin() as conn:
        shas = [r.sha256 for r in conn.execute(select(media.c.sha256))]
        states_after = {
            s: n
            for s, n in conn.execute(
                select(ingest_jobs.c.state, func.count()).group_by(ingest_jobs.c.state)
            )
        }
        assert custody.broken_links(conn) == []
    cat.dispose()
    assert sorted(shas) == sorted(expected), "every recording archived exactly once"
    assert states_after == {JobState.DONE.value: FILES}
    assert list((dock / "BWC-0017").iterdir()) == [], "every source released"
    released = list((dock / ".ingested").rglob("*.mp4"))
    assert {_sha(p) for p in released} == expected, "released sources are the originals, unmodified"
    for stored in archive.rglob("*"):
        if stored.is_file():
            assert _sha(stored) == stored.name, "only verified bytes under originals/"
