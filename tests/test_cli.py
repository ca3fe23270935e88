"""The `evidence` command, invoked as a user would, then the catalog reopened to check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.catalog import media as media_db
from pipeline.catalog import open_catalog
from pipeline.models import MediaStatus
from tests.conftest import put

EVIDENCE = [sys.executable, "-m", "interfaces.cli"]


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "PREFECT_API"))}
    env.update({"EVIDENCE_HOME": str(home), "EVIDENCE_WATCH__STABLE_S": "0",
                "EVIDENCE_TRANSCODE__MAX_HEIGHT": "144"})  # fmt: skip

    def run(
        *args: str, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*EVIDENCE, *args], env={**env, **(extra_env or {})},
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    run.home = home  # type: ignore[attr-defined]
    return run


def test_init_and_stations(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    init = cli("init", "--json")
    assert init.returncode == 0, init.stderr
    assert json.loads(init.stdout)["home"] == str(cli.home)
    dock = tmp_path / "dock"
    dock.mkdir()
    assert (
        cli("stations", "add", "DOCK-01", "--root", str(dock), "--name", "一中队").returncode == 0
    )
    listed = json.loads(cli("stations", "list", "--json").stdout)
    assert listed == [{"id": "DOCK-01", "root": str(dock), "name": "一中队", "location": ""}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["stations", "add", "D2", "--root", "/no/such/folder"], "does not exist"),
        (["stations", "add", "bad id!", "--root", "/tmp"], "id must be"),
        (["ingest", "--station", "NOPE"], "station not found: NOPE"),
        (["media", "show", "123456abcdef"], "media item not found"),
    ],
)
def test_bad_input_is_one_clean_line_and_exit_2(cli, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_ingest_then_list_show_and_quarantine(
    cli,
    prefect_api: str,
    tmp_path: Path,
    clips: dict[str, Path],  # type: ignore[no-untyped-def]
) -> None:
    dock = tmp_path / "dock"
    video = put(clips["video"], dock, "BWC-0017/BWC0017_1023_20260505083000_0001.mp4")
    put(clips["truncated"], dock, "BWC-0017/cut.mp4")
    assert cli("stations", "add", "D1", "--root", str(dock)).returncode == 0

    result = cli(
        "ingest", "--station", "D1", "--json", extra_env={"EVIDENCE_PREFECT__API_URL": prefect_api}
    )

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert sorted(f["outcome"] for f in summary["files"]) == ["archived", "quarantined"]
    listed = json.loads(cli("media", "list", "--json").stdout)
    assert {m["status"] for m in listed} == {"archived", "quarantined"}
    archived = next(m for m in listed if m["status"] == "archived")
    shown = json.loads(cli("media", "show", archived["sha256"][:10], "--json").stdout)
    assert shown["item"]["original_name"] == video.name
    assert Path(shown["paths"]["proxy"]).is_file()
    assert shown["custody"][0]["kind"] == "ingested"
    entries = json.loads(cli("quarantine", "list", "--json").stdout)
    assert [Path(e["source_path"]).name for e in entries] == ["cut.mp4"] and entries[0]["reason"]

    cat = open_catalog(f"sqlite:///{cli.home / 'catalog.db'}")
    with cat.begin() as conn:
        assert media_db.count(conn, MediaStatus.ARCHIVED) == 1
        assert media_db.count(conn, MediaStatus.QUARANTINED) == 1
    cat.dispose()


def test_server_status_says_not_running(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("server", "status")
    assert result.returncode == 1 and "not running" in result.stdout
