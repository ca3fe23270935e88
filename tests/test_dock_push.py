"""A station PC pushing to the archive server, every part a real process: `evidence web`
(uvicorn) receives, `evidence watch` ingests what lands in the intake, `evidence dock push`
uploads from a dump folder. Then the faults: the agent killed mid-upload, the server killed
mid-upload, a connection cut mid-stream, a corrupted chunk — each time nothing lost, nothing
published unverified, no local file released before the server said "verified"."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pipeline.catalog import open_catalog
from pipeline.catalog.schema import custody_events, media
from tests.conftest import REPO, free_port
from tests.faulty_proxy import Fault, FaultyProxy

EVIDENCE = [sys.executable, "-m", "interfaces.cli"]
STATION = "DOCK-07"
RECORDERS = {  # folder → what the station read from the recorder over USB
    "BWC-0017": {"serial": "BWC-0017", "officer_number": "1023", "unit_number": "CG01"},
    "BWC-0018": {"serial": "BWC-0018", "officer_number": "1024", "unit_number": "CG01"},
    "BWC-0019": {"serial": "BWC-0019", "officer_number": "1025", "unit_number": "CG02"},
}
CHUNK = 1 << 20  # the server's suggested chunk: the most a fault may make the agent resend


@dataclass
class Archive:
    home: Path
    env: dict[str, str]
    token_file: Path
    port: int
    web: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"sqlite:///{self.home / 'catalog.db'}"

    def start_web(self) -> None:
        self.web = subprocess.Popen(
            [*EVIDENCE, "web", "--port", str(self.port)], cwd=REPO, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                assert self.web.poll() is None, self.web.communicate()[0]
                time.sleep(0.1)
        pytest.fail("evidence web did not start")

    def kill_web(self) -> None:
        assert self.web is not None
        self.web.send_signal(signal.SIGKILL)
        self.web.wait(10)
        self.web = None

    def stop_web(self) -> None:
        if self.web is not None:
            self.web.terminate()
            try:
                self.web.wait(10)
            except subprocess.TimeoutExpired:
                self.web.kill()
            self.web = None

    def catalogued(self, *digests: str) -> dict[str, Any]:
        """The media rows of these digests, once all are catalogued. "verified" comes a
        moment before: it says the stored copy is verified, the catalogue follows."""
        found: dict[str, Any] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = self.archived()
            if all(d in found for d in digests):
                return found
            time.sleep(0.1)
        missing = [d for d in digests if d not in found]
        pytest.fail(f"{len(missing)} verified file(s) never catalogued")

    def archived(self) -> dict[str, Any]:
        cat = open_catalog(self.url, migrate=False)
        try:
            with cat.begin() as conn:
                return {r.sha256: r for r in conn.execute(select(media))}
        finally:
            cat.dispose()

    def alerts(self, code: str) -> int:
        cat = open_catalog(self.url, migrate=False)
        try:
            with cat.begin() as conn:
                rows = conn.execute(
                    select(custody_events.c.details).where(custody_events.c.kind == "alert")
                )
                return sum(1 for r in rows if r.details.get("code") == code)
        finally:
            cat.dispose()


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*EVIDENCE, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, prefect_api: str) -> Iterator[Archive]:
    """One archive server for the module: `evidence web` and `evidence watch` on a home with
    the push station registered and its token issued."""
    root = tmp_path_factory.mktemp("archive")
    home = root / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "PREFECT_API"))}
    env.update({
        "EVIDENCE_HOME": str(home), "EVIDENCE_PREFECT__API_URL": prefect_api,
        "EVIDENCE_WATCH__STABLE_S": "0.3", "EVIDENCE_WATCH__BATCH_WINDOW_S": "0.2",
        "EVIDENCE_WATCH__SWEEP_INTERVAL_S": "2", "EVIDENCE_TRANSCODE__MAX_HEIGHT": "144",
        "EVIDENCE_DEVICES__UNKNOWN": "accept", "EVIDENCE_DOCK__CHUNK_BYTES": str(CHUNK),
    })  # fmt: skip
    _run(env, "init")
    _run(env, "stations", "add", STATION, "--push", "--name", "城关中队采集站")
    token_file = root / "dock.token"
    token_file.write_text(_run(env, "stations", "token", STATION).stdout.strip() + "\n")
    token_file.chmod(0o600)
    found = Archive(home, env, token_file, free_port())
    found.start_web()
    watcher = subprocess.Popen([*EVIDENCE, "watch"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        yield found
    finally:
        watcher.send_signal(signal.SIGINT)
        try:
            watcher.wait(60)
        except subprocess.TimeoutExpired:
            watcher.kill()
        found.stop_web()


def _agent_env() -> dict[str, str]:
    # A station PC: no EVIDENCE_HOME, no catalog; its own stable time.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "PREFECT_"))}
    env["EVIDENCE_WATCH__STABLE_S"] = "0"
    return env


def _push(
    archive: Archive, folder: Path, *more: str, port: int | None = None, wait: int = 120
) -> subprocess.Popen[str]:
    command = [*EVIDENCE, "dock", "push", "--server", f"http://127.0.0.1:{port or archive.port}",
               "--token-file", str(archive.token_file), "--station", STATION, "--json",
               "--wait", str(wait), *more, str(folder)]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=REPO,
        env=_agent_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _summary(agent: subprocess.Popen[str], timeout: float = 180) -> dict[str, Any]:
    out, err = agent.communicate(timeout=timeout)
    assert agent.returncode == 0, f"agent exit {agent.returncode}: {err[-3000:]}\n{out[-2000:]}"
    summary: dict[str, Any] = json.loads(out)
    return summary


def _station_folder(root: Path, clip: Path, per_recorder: int) -> dict[str, str]:
    """Recorder folders the way a station fills them; each file distinct bytes (a real JPEG
    with a different trailer). Relative path → SHA-256."""
    made = {}
    base = clip.read_bytes()
    for n, (folder, said) in enumerate(RECORDERS.items()):
        (root / folder).mkdir(parents=True)
        (root / folder / "recorder.json").write_text(json.dumps(said))
        for i in range(per_recorder):
            name = f"{folder}_{said['officer_number']}_2026113009{n}{i:03d}_{i:04d}.jpg"
            data = base + f"trailer {folder} {i}".encode()
            (root / folder / name).write_bytes(data)
            made[f"{folder}/{name}"] = hashlib.sha256(data).hexdigest()
    return made


def test_thirty_files_from_three_recorders_are_archived_with_their_identity_and_never_sent_twice(
    archive: Archive, tmp_path: Path, clips: dict[str, Path]
) -> None:
    station = tmp_path / "station"
    made = _station_folder(station, clips["photo"], 10)

    summary = _summary(_push(archive, station))

    assert summary["uploaded"] == 30 and summary["released"] == 30, summary
    assert summary["held"] == 0 and summary["failed"] == 0
    archived = archive.catalogued(*made.values())
    for relative, digest in made.items():
        assert digest in archived, f"{relative} not archived"
        row = archived[digest]
        folder = relative.split("/")[0]
        assert (
            row.station_id == STATION
            and row.id_sources.get("station") == RECORDERS[folder]["serial"]
        )
        assert not (station / relative).exists() and (station / ".ingested" / relative).exists()

    # The same files on the station again (a recorder docked twice): nothing is sent.
    for relative in made:
        shutil.move(station / ".ingested" / relative, station / relative)
    sent_before = summary["bytes_sent"]
    again = _summary(_push(archive, station))
    assert again["uploaded"] == 0 and again["skipped_present"] == 30 and again["bytes_sent"] == 0, (
        again
    )
    assert again["released"] == 30 and sent_before > 0


def _note(fault: str, summary: dict[str, Any], size: int) -> None:
    """What resumption cost, printed for `pytest -s` (the closing note quotes these)."""
    print(f"\nresumption {fault}: file {size} B, sent {summary['bytes_sent']} B, "
          f"re-sent {summary['bytes_resent']} B")  # fmt: skip


def _big_file(station: Path, size: int) -> tuple[Path, str]:
    (station / "BWC-0017").mkdir(parents=True)
    (station / "BWC-0017" / "recorder.json").write_text(json.dumps(RECORDERS["BWC-0017"]))
    path = station / "BWC-0017" / "BWC-0017_1023_20261130100000_0001.mp4"
    data = os.urandom(size)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def _received_bytes(archive: Archive) -> int:
    return sum(p.stat().st_size for p in (archive.home / "uploads").glob("*.part"))


def _wait_for(check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_agent_killed_mid_upload_resumes_the_big_file_rather_than_restarting(
    archive: Archive, tmp_path: Path
) -> None:
    station = tmp_path / "station"
    size = 24 << 20
    path, digest = _big_file(station, size)
    agent = _push(archive, station, "--limit-rate", "6M")
    _wait_for(lambda: _received_bytes(archive) >= 6 << 20)
    agent.send_signal(signal.SIGKILL)
    agent.wait(10)
    kept = _received_bytes(archive)
    assert path.exists(), "nothing released before the server said verified"

    summary = _summary(_push(archive, station))
    _note(f"agent SIGKILL (server had {kept} B)", summary, size)

    assert digest in archive.catalogued(digest)
    assert summary["released"] == 1 and not path.exists()
    assert summary["bytes_sent"] <= size - kept + CHUNK, ("resumed, not restarted", summary, kept)
    assert summary["bytes_sent"] < size


def test_the_server_killed_mid_upload_and_restarted_loses_nothing(
    archive: Archive, tmp_path: Path
) -> None:
    station = tmp_path / "station"
    size = 24 << 20
    path, digest = _big_file(station, size)
    agent = _push(archive, station, "--limit-rate", "6M")
    try:
        _wait_for(lambda: _received_bytes(archive) >= 6 << 20)
        archive.kill_web()
        time.sleep(1.0)  # the agent meets a refused connection and retries
        assert path.exists()
        archive.start_web()
        summary = _summary(agent)
        _note("server SIGKILL", summary, size)
    finally:
        if archive.web is None:
            archive.start_web()
    assert digest in archive.catalogued(digest) and summary["released"] == 1
    assert not path.exists()
    assert summary["bytes_resent"] <= CHUNK + (1 << 20), summary


def test_a_connection_cut_mid_stream_is_resumed(archive: Archive, tmp_path: Path) -> None:
    station = tmp_path / "station"
    size = 8 << 20
    path, digest = _big_file(station, size)
    proxy = FaultyProxy(archive.port)
    try:
        fault = proxy.arm(Fault(cut_after=3 * CHUNK + CHUNK // 2))
        summary = _summary(_push(archive, station, port=proxy.port))
        _note("connection cut", summary, size)
    finally:
        proxy.close()
    assert fault.fired and fault.fired[0].startswith("cut after")
    assert digest in archive.catalogued(digest) and summary["released"] == 1
    assert not path.exists()
    assert summary["bytes_resent"] <= CHUNK, summary


def test_a_corrupted_chunk_is_refused_then_sent_again(archive: Archive, tmp_path: Path) -> None:
    station = tmp_path / "station"
    size = 8 << 20
    path, digest = _big_file(station, size)
    before = archive.alerts("checksum-mismatch")
    proxy = FaultyProxy(archive.port)
    try:
        fault = proxy.arm(Fault(flip_in_patch=(3, 1000)))  # inside the third chunk
        summary = _summary(_push(archive, station, port=proxy.port))
        _note("corrupted chunk", summary, size)
    finally:
        proxy.close()
    assert fault.fired and fault.fired[0].startswith("flipped")
    assert digest in archive.catalogued(digest), "the station's bytes, not the corrupted ones"
    assert summary["released"] == 1 and not path.exists()
    assert archive.alerts("checksum-mismatch") == before + 1
    assert 0 < summary["bytes_resent"] <= CHUNK + (64 << 10), summary
