"""Identifiers are data, never paths: a case number has a checked character set when a case is
made, and sealing or exporting never lets a number or a file name place a file elsewhere —
not even a number an older, unchecked catalog holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from docks.sweep import sweep_station
from interfaces import synth
from pipeline.cases import records as cases
from pipeline.cases.categories import load_categories
from pipeline.cases.seal import extract, seal_case, verify_sealed_bag
from pipeline.catalog import Catalog, open_catalog
from pipeline.catalog import cases as case_rows
from pipeline.catalog import jobs as jobs_db
from pipeline.custody import keys
from pipeline.custody.checkpoints import checkpointer
from pipeline.custody.export import export_bag
from pipeline.errors import CaseError
from pipeline.ingest.steps import IngestContext
from pipeline.models import Case, CaseStatus, Device, DeviceKind, Officer, Station
from pipeline.registry import records as registry
from pipeline.registry.stations import add_station
from pipeline.settings import Settings
from pipeline.storage.local import LocalStore
from tests.conftest import make_settings, put

T0 = datetime(2026, 11, 27, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "number",
    ["2026-0113", "市监罚〔2026〕0113号", "(2026)0113", "（2026）第12号", "[2026]7", "【2026】7",
     "A.1_b", "x" * 64],
)  # fmt: skip
def test_case_numbers_people_write_are_accepted(
    catalog: Catalog, settings: Settings, number: str
) -> None:
    case = Case(number, "查封某仓库", "seizure", "", CaseStatus.OPEN, ())
    with catalog.begin() as conn:
        assert (
            cases.save_case(conn, case, "A001", settings, load_categories(settings), T0) == "added"
        )
        assert cases.get_case(conn, number).number == number


@pytest.mark.parametrize(
    "number",
    ["../../x", "a/b", "a\\b", ".hidden", ".", "..", "", "a b", "a\x00b", "a\x1b[2Jb", "a\nb",
     "x" * 65],
)  # fmt: skip
def test_a_case_number_that_is_not_an_identifier_is_refused(
    catalog: Catalog, settings: Settings, number: str
) -> None:
    case = Case(number, "t", "seizure", "", CaseStatus.OPEN, ())
    with catalog.begin() as conn, pytest.raises(CaseError, match="a case number is 1-64") as err:
        cases.save_case(conn, case, "A001", settings, load_categories(settings), T0)
    assert str(err.value).startswith("case "), "the error names the case"
    with catalog.begin() as conn:
        assert case_rows.listing(conn) == []


# ----------------------------------------------------------------------- at the command line


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "PREFECT_API"))}
    env["EVIDENCE_HOME"] = str(tmp_path / "home")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "interfaces.cli", *args],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    assert run("init").returncode == 0  # a command on a home never initialised is refused
    return run


def test_cases_add_and_import_refuse_a_path_as_a_number_in_one_clean_line(
    cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    added = cli("cases", "add", "../../x", "--title", "t", "--category", "seizure")
    assert added.returncode == 2, added.stderr
    assert "case ../../x: a case number is" in added.stderr and "Traceback" not in added.stderr
    cases_file = tmp_path / "cases.yaml"
    cases_file.write_text(
        "cases:\n  - {number: 2026-0113, title: a, category: seizure}\n"
        "  - {number: ../../x, title: b, category: seizure}\n",
        encoding="utf-8",
    )
    imported = cli("cases", "import", str(cases_file))
    assert imported.returncode == 2, imported.stderr
    assert f"{cases_file}:3: cases: case ../../x: a case number is" in imported.stderr
    listed = cli("cases", "list", "--json")
    assert json.loads(listed.stdout) == [], "all or nothing: the good line is not kept either"


def test_a_record_file_of_the_wrong_kind_is_one_clean_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The record-file reader raises CaseError with one argument: it must not be a TypeError."""
    notes = tmp_path / "cases.txt"
    notes.write_text("2026-0113\n", encoding="utf-8")
    result = cli("cases", "import", str(notes))
    assert result.returncode == 2, result.stderr
    assert f"{notes}: give a .yaml, .yml or .csv file" in result.stderr
    assert "Traceback" not in result.stderr


# -------------------------------------------------------------------- sealing and exporting


@dataclass(frozen=True)
class Archive:
    settings: Settings
    catalog: Catalog
    ctx: IngestContext
    media_id: int


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    """One attributed, described recording, in an EVIDENCE_HOME a few folders down."""
    settings = make_settings(tmp_path / "a" / "b" / "home", devices={"unknown": "quarantine"})
    keys.create_instance_key(settings.home)
    catalog = open_catalog(settings.catalog_url)
    dock = tmp_path / "a" / "dock"
    clip = dock / "BWC0017" / "BWC0017_1023_20261127093000_0001.mp4"
    clip.parent.mkdir(parents=True)
    synth.make_video(clip, seconds=2.0, creation_time=T0)
    end = (T0 + timedelta(seconds=2)).timestamp()
    os.utime(clip, (end, end))
    station = add_station(catalog, "DOCK-01", dock, "A001")
    with catalog.begin() as conn:
        registry.save_officer(conn, Officer("1023", "张伟", "62010023001"), "A001")
        registry.save_device(conn, Device("BWC0017", DeviceKind.BODY_WORN), "A001")
        registry.save_assignment(conn, "BWC0017", "1023", T0 - timedelta(hours=1), None, "A001")
    ctx = IngestContext(catalog, LocalStore(settings.archive_dir), settings, jobs_db.new_owner())
    (media_id,) = [f.media_id for f in sweep_station(ctx, station).files]
    assert media_id is not None
    with catalog.begin() as conn:
        cases.describe(conn, media_id, "查封仓库全过程", "1023", T0)
    yield Archive(settings, catalog, ctx, media_id)
    catalog.dispose()


def test_a_legacy_case_number_that_climbs_out_is_sealed_inside_the_archive(
    archive: Archive, tmp_path: Path
) -> None:
    # Sealing works under EVIDENCE_HOME/work/<tmp>/: "case-.." then six ".." reach tmp_path.
    number = "../" * 7 + "escaped"
    due, provisional = cases.due_of(archive.settings, T0 + timedelta(seconds=2))
    legacy = Case(number, "查封某仓库", "seizure", "市场监管", CaseStatus.CONCLUDED, ("1023",),
                  action_start=T0, action_end=T0 + timedelta(seconds=2), due=due,
                  due_provisional=provisional)  # fmt: skip
    with archive.catalog.begin() as conn:
        case_rows.save(conn, legacy, T0)  # as an older catalog could hold it: never checked
        assert [m for _, m, _ in cases.autolink(conn, archive.settings, "system", T0)] == [
            archive.media_id
        ]
    around = sorted(tmp_path.iterdir())

    sealed = seal_case(
        archive.settings, number, "A001", "file complete", now=T0 + timedelta(days=3)
    )

    assert sorted(tmp_path.iterdir()) == around, "nothing written outside EVIDENCE_HOME"
    assert not list(tmp_path.rglob("escaped*"))
    assert sealed.items == 1
    bag = extract(archive.ctx.store, sealed.key, tmp_path / "a" / "check")
    assert bag.parent == tmp_path / "a" / "check" and bag.name.startswith("case-escaped-")
    assert verify_sealed_bag(bag, keys.pinned_keys(make_settings(archive.settings.home))) == []
    record = json.loads((bag / "data/case/case.json").read_text(encoding="utf-8"))
    assert record["case"]["number"] == number, "the number itself is kept, as data"
    with archive.catalog.begin() as conn:
        assert cases.get_case(conn, number).archive_key == sealed.key


def test_an_ordinary_case_keeps_its_readable_bag_name(archive: Archive, tmp_path: Path) -> None:
    with archive.catalog.begin() as conn:
        cats = load_categories(archive.settings)
        case = Case("2026-0113", "查封某仓库", "seizure", "", CaseStatus.OPEN, ("1023",),
                    action_start=T0, action_end=T0 + timedelta(seconds=2))  # fmt: skip
        cases.save_case(conn, case, "A001", archive.settings, cats, T0)
        cases.autolink(conn, archive.settings, "system", T0)
        cases.conclude(conn, "2026-0113", None, "A001", archive.settings, cats, T0)
    sealed = seal_case(archive.settings, "2026-0113", "A001", "done", now=T0 + timedelta(days=3))
    assert extract(archive.ctx.store, sealed.key, tmp_path / "x").name == "case-2026-0113"


def test_a_dock_file_with_the_longest_chinese_name_is_exported(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path], tmp_path: Path
) -> None:
    """255 bytes is the most a dock's file name holds; the bag's name adds "<id>_" to it."""
    name = "执法记录仪" * 16 + "执法记12.mp4"  # 255 bytes in UTF-8: as long as a name gets
    put(clips["video"], dock, f"BWC0017/{name}")
    (media_id,) = [f.media_id for f in sweep_station(ctx, station).files]
    keys.create_instance_key(ctx.settings.home)

    result = export_bag(ctx.catalog, ctx.store, checkpointer(ctx.settings),
                        media_keys=[str(media_id)], out=tmp_path / "usb", actor="A001",
                        reason="移送法院")  # fmt: skip

    (original,) = (result.path / "data/originals").iterdir()
    assert original.name.startswith(f"{media_id}_执法记录仪") and original.suffix == ".mp4"
    assert len(original.name.encode()) <= 255
    assert original.read_bytes() == clips["video"].read_bytes()
