"""`evidence watch` end to end: files dropped into a station folder, the way docks drop them,
are archived without anyone running a command; Ctrl-C stops it cleanly."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.catalog import open_catalog
from pipeline.catalog.schema import media

EVIDENCE = [sys.executable, "-m", "interfaces.cli"]


def _names(url: str) -> set[str]:
    cat = open_catalog(url, migrate=False)
    try:
        with cat.begin() as conn:
            return {r.original_name for r in conn.execute(select(media.c.original_name))}
    finally:
        cat.dispose()


def test_watch_ingests_what_lands_and_stops_on_ctrl_c(
    prefect_api: str, tmp_path: Path, clips: dict[str, Path]
) -> None:
    home, dock, outside = tmp_path / "home", tmp_path / "dock", tmp_path / "outside"
    (dock / "BWC-0017").mkdir(parents=True)
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "PREFECT_API"))}
    env.update({
        "EVIDENCE_HOME": str(home), "EVIDENCE_PREFECT__API_URL": prefect_api,
        "EVIDENCE_WATCH__STABLE_S": "0.3", "EVIDENCE_WATCH__BATCH_WINDOW_S": "0.2",
        "EVIDENCE_TRANSCODE__MAX_HEIGHT": "144",
        "EVIDENCE_DEVICES__UNKNOWN": "accept",
    })  # fmt: skip
    # Already on the dock before the watcher starts: the start-up sweep must take it.
    shutil.copyfile(clips["photo"], dock / "BWC-0017" / "before.jpg")
    old = time.time() - 60
    os.utime(dock / "BWC-0017" / "before.jpg", (old, old))
    init = subprocess.run([*EVIDENCE, "init"], env=env, capture_output=True, text=True, timeout=60)
    assert init.returncode == 0, init.stderr
    add = subprocess.run([*EVIDENCE, "stations", "add", "D1", "--root", str(dock)], env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert add.returncode == 0, add.stderr

    watcher = subprocess.Popen([*EVIDENCE, "watch"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        url = f"sqlite:///{home / 'catalog.db'}"
        time.sleep(1.0)
        shutil.copyfile(clips["video"], dock / "BWC-0017" / "copied.mp4")  # cp: closed event
        partial = dock / "BWC-0017" / "renamed.m4a.part"  # upload then rename: moved event
        shutil.copyfile(clips["audio"], partial)
        partial.rename(dock / "BWC-0017" / "renamed.m4a")
        shutil.copyfile(clips["pdf"], outside / "moved.pdf")  # mv from elsewhere: created only
        (outside / "moved.pdf").rename(dock / "BWC-0017" / "moved.pdf")

        wanted = {"before.jpg", "copied.mp4", "renamed.m4a", "moved.pdf"}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _names(url) != wanted:
            time.sleep(0.2)
        if _names(url) != wanted:
            watcher.send_signal(signal.SIGINT)
            pytest.fail(f"not catalogued: {wanted - _names(url)}; {watcher.communicate()[0]}")
        # Catalogued first; proxies and the release from the dock follow in derive runs.
        left = lambda: sorted(p.name for p in (dock / "BWC-0017").iterdir())  # noqa: E731
        while time.monotonic() < deadline and left():
            time.sleep(0.2)
        assert left() == [], "all released"

        # A station registered while it watches is watched too, within seconds.
        second = tmp_path / "dock2"
        (second / "BWC-0018").mkdir(parents=True)
        add = subprocess.run([*EVIDENCE, "stations", "add", "D2", "--root", str(second)],
                             env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert add.returncode == 0, add.stderr
        shutil.copyfile(clips["video2"], second / "BWC-0018" / "later.mp4")
        while time.monotonic() < deadline + 30 and "later.mp4" not in _names(url):
            time.sleep(0.2)
    finally:
        watcher.send_signal(signal.SIGINT)
        out, _ = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, out
    assert "Traceback" not in out
    assert "archived" in out and "renamed.m4a" in out
    assert "watching D2 too" in out and "later.mp4" in _names(url), out
    assert "Warning" not in out
