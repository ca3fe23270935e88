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
    env.update(
        {
            "EVIDENCE_HOME": str(home),
            "EVIDENCE_WATCH__STABLE_S": "0",
            "EVIDENCE_TRANSCODE__MAX_HEIGHT": "144",
        }
    )

    def run(
        *args: str, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*EVIDENCE, *args], env={**env, **(extra_env or {})},
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    run.home = home  # type: ignore[attr-defined]
    assert run("init").returncode == 0  # a command on a home never initialised is refused
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
    assert listed == [
        {
            "id": "DOCK-01",
            "root": str(dock),
            "name": "一中队",
            "location": "",
            "preserves_mtimes": False,
            "pushes": False,
            "online": None,
            "last_seen": None,
            "software_version": "",
            "free_disk_bytes": None,
            "queue_length": None,
            "recorders": [],
            "receiving": 0,
            "waiting": 0,
            "tokens": 0,
        }
    ]


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
    for args in (
        # The first officer sets up the registry; every later change is made by one.
        ["officers", "add", "A001", "--name", "王芳", "--cert", "62010029001", "--as", "A001"],
        ["officers", "add", "1023", "--name", "张伟", "--cert", "62010023001", "--as", "A001"],
        ["devices", "add", "BWC-0017", "--kind", "body-worn", "--model", "DSJ-A9", "--as", "A001"],
        ["devices", "assign", "BWC-0017", "1023", "--from", "2026-05-01T08:00", "--as", "A001"],
    ):
        assert cli(*args).returncode == 0, args

    result = cli(
        "ingest", "--station", "D1", "--json", extra_env={"EVIDENCE_PREFECT__API_URL": prefect_api}
    )

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert sorted(f["outcome"] for f in summary["files"]) == ["archived", "quarantined"]
    listed = json.loads(cli("media", "list", "--json").stdout)
    assert {m["status"] for m in listed} == {"archived", "quarantined"}
    archived = next(m for m in listed if m["status"] == "archived")
    refused = cli("media", "show", archived["sha256"][:10])
    assert refused.returncode == 2 and "--as" in refused.stderr, "viewing needs who and why"
    shown = json.loads(
        cli(
            "media", "show", archived["sha256"][:10], "--reason", "复核", "--as", "A001", "--json"
        ).stdout
    )
    assert shown["item"]["original_name"] == video.name
    assert (shown["item"]["device_serial"], shown["item"]["officer_id"]) == ("BWC-0017", "1023")
    assert shown["derived"]["proxy"].endswith("proxy.mp4")
    assert shown["custody"][0]["kind"] == "ingested" and shown["custody"][-1]["kind"] == "viewed"
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


def test_registry_import_export_health_and_quarantine_release(
    cli,
    prefect_api: str,
    tmp_path: Path,
    clips: dict[str, Path],  # type: ignore[no-untyped-def]
) -> None:
    from tests.conftest import REPO

    dock = tmp_path / "DOCK-01"
    dock.mkdir()
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(
        (REPO / "config/registry.example.yaml")
        .read_text(encoding="utf-8")
        .replace("/srv/docks/DOCK-01", str(dock)),
        encoding="utf-8",
    )
    first = cli("devices", "import", str(registry_file), "--as", "A001", "--json")
    assert first.returncode == 0, first.stderr
    assert {c["action"] for c in json.loads(first.stdout)} == {"added"}
    anonymous = cli("devices", "import", str(registry_file), "--json")
    assert anonymous.returncode == 2 and "not a registered officer" in anonymous.stderr
    again = json.loads(
        cli("devices", "import", str(registry_file), "--as", "A001", "--json").stdout
    )
    assert {c["action"] for c in again} == {"unchanged"}
    bad = tmp_path / "bad.csv"
    bad.write_text("serial,kind\nX1,toaster\n", encoding="utf-8")
    refused = cli("devices", "import", str(bad))
    assert refused.returncode == 2 and f"{bad}:2: devices: 'toaster'" in refused.stderr

    put(clips["video2"], dock, "BWC0099/BWC0099_1023_20260505083000_0001.mp4")
    ingest = cli(
        "ingest",
        "--station",
        "DOCK-01",
        "--json",
        extra_env={"EVIDENCE_PREFECT__API_URL": prefect_api},
    )
    assert [f["reason"] for f in json.loads(ingest.stdout)["files"]] == [
        "device BWC0099 is not registered"
    ]
    health = json.loads(cli("devices", "health", "--json").stdout)
    assert health["stations"][0]["unregistered_serials"] == ["BWC0099"]
    assert {d["serial"] for d in health["devices"]} == {"BWC0017", "BWC0022", "REC0031"}

    kept = cli("quarantine", "release", "--device", "BWC0099", "--as", "A001", "--json")
    assert kept.returncode == 1 and "not registered" in json.loads(kept.stdout)[0]["error"]
    assert cli("devices", "add", "BWC0099", "--as", "A001").returncode == 0
    released = cli("quarantine", "release", "--device", "BWC0099", "--as", "A001", "--json")
    assert released.returncode == 0, released.stdout
    assert json.loads(released.stdout)[0]["status"] == "archived"

    exported = cli("devices", "export", "--format", "csv", "--out", str(tmp_path / "csv"))
    assert exported.returncode == 0
    assert "BWC0099,body-worn" in (tmp_path / "csv/devices.csv").read_text(encoding="utf-8")
