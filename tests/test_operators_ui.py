"""The Prefect UI in a real browser (Debian's chromium, driven by Playwright): on a server that
had to take another port than the configured one, it shows this instance's named runs and a
failed run with its reason. Opt-in: EVIDENCE_TEST_SCREENSHOTS names the folder the
screenshots go to (it needs `chromium` on PATH and Playwright in the venv)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from flows.runtime import start_server, stop_server
from tests.conftest import make_settings, pin_instance_key

SHOTS = os.environ.get("EVIDENCE_TEST_SCREENSHOTS")
pytestmark = pytest.mark.skipif(
    not SHOTS or shutil.which("chromium") is None,
    reason="EVIDENCE_TEST_SCREENSHOTS unset, or no chromium",
)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_the_ui_shows_this_instances_named_runs_and_a_failed_one(
    tmp_path: Path, clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    assert SHOTS is not None
    shots = Path(SHOTS)
    shots.mkdir(parents=True, exist_ok=True)
    home, dock = tmp_path / "home", tmp_path / "dock"
    (dock / "BWC-0017").mkdir(parents=True)
    pin_instance_key(home, monkeypatch)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EVIDENCE_"))}
    env.update({"EVIDENCE_HOME": str(home), "EVIDENCE_TRANSCODE__MAX_HEIGHT": "144",
                "EVIDENCE_DEVICES__UNKNOWN": "accept", "EVIDENCE_WATCH__STABLE_S": "0",
                "EVIDENCE_CUSTODY__PINNED_KEYS": os.environ["EVIDENCE_CUSTODY__PINNED_KEYS"],
                "COLUMNS": "200"})  # fmt: skip

    def evidence(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "interfaces.cli", *args],
                              env={**env, **extra}, capture_output=True, text=True, timeout=300)  # fmt: skip

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = make_settings(home, prefect={"port": taken.getsockname()[1]})
        assert evidence("init").returncode == 0
        server = start_server(settings)
        try:
            assert evidence("stations", "add", "DOCK-01", "--root", str(dock)).returncode == 0
            for name in ("video", "photo", "pdf"):
                shutil.copyfile(clips[name], dock / "BWC-0017" / f"{name}{clips[name].suffix}")
            ok = evidence("ingest", "--station", "DOCK-01")
            assert ok.returncode == 0, ok.stderr
            shutil.copyfile(clips["video2"], dock / "BWC-0017" / "clip-0042.mp4")
            bad = evidence("ingest", "--station", "DOCK-01",
                           EVIDENCE_TRANSCODE__FFMPEG="/nonexistent/ffmpeg")  # fmt: skip
            assert bad.returncode == 1, bad.stderr

            with playwright.sync_playwright() as p:
                browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
                # The operator's clock: the UI shows times in the browser's zone.
                page = browser.new_page(
                    viewport={"width": 1600, "height": 1000},
                    timezone_id=settings.devices.timezone,
                )
                page.goto(f"{server.ui_url}/runs", wait_until="networkidle")
                page.get_by_text("sweep DOCK-01 3 files", exact=False).first.wait_for()
                page.get_by_text("FilesFailed", exact=False).first.wait_for()
                page.screenshot(path=str(shots / "prefect-ui-runs.png"), full_page=True)
                page.get_by_text("sweep DOCK-01 1 file ", exact=False).first.click()
                page.get_by_text("clip-0042.mp4", exact=False).first.wait_for()
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(shots / "prefect-ui-failed-run.png"), full_page=True)
                browser.close()
        finally:
            stop_server(settings)
    assert (shots / "prefect-ui-runs.png").stat().st_size > 10_000
