"""What people read says what is so: `media show` complete, officers by name, categories by
id or zh name, plurals, one line per add, help that lists what exists, wide output in pipes,
zh-CN bags with the case record, and a demo that says where its data is."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docks.sweep import sweep_station
from interfaces.cli import app
from interfaces.demo import DemoHomeTaken, demo_home
from pipeline.catalog import Catalog
from pipeline.catalog import cases as case_rows
from pipeline.ingest.steps import IngestContext
from pipeline.models import Station
from pipeline.settings import Settings
from tests.conftest import put


def _cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, f"{args}: {result.output}{result.exception!r}"
    return result.output


@dataclass(frozen=True)
class Filed:
    video: int
    photo: int


@pytest.fixture
def filed(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path], settings: Settings
) -> Filed:
    """A recording by officer 1023 (张伟) on BWC0017, in case 2026-0113, described and tagged;
    and a photo of the same device, taken when nobody held it."""
    _cli("officers", "add", "1023", "--name", "张伟", "--cert", "110100", "--as", "A001")
    _cli("devices", "add", "BWC0017", "--as", "1023")
    _cli(
        "devices", "assign", "BWC0017", "1023", "--from", "2026-05-05", "--to", "2026-05-06",
        "--as", "1023",
    )  # fmt: skip
    put(clips["video"], dock, "BWC0017/v.mp4")
    put(clips["photo"], dock, "BWC0017/IMG_20261130_093500.jpg")
    ids = {Path(f.path).suffix: f.media_id for f in sweep_station(ctx, station).files}
    video, photo = ids[".mp4"], ids[".jpg"]
    assert video is not None and photo is not None
    added = _cli(
        "cases", "add", "2026-0113", "--title", "查封某仓库", "--category", "查封",
        "--officer", "1023", "--start", "2026-05-05T16:00", "--end", "2026-05-05T17:00",
        "--as", "1023",
    )  # fmt: skip
    assert "1 record linked by rule" in added, added
    _cli("media", "describe", str(video), "查封现场，当事人在场", "--as", "1023")
    _cli("media", "tag", str(video), "+待复核", "--as", "1023")
    return Filed(video, photo)


def test_media_show_shows_what_its_help_promises(filed: Filed) -> None:
    out = _cli("media", "show", str(filed.video), "--as", "1023", "--reason", "复核 2026-0113")
    for expected in (
        "BWC0017",
        "1023 张伟",
        "查封现场，当事人在场",
        "待复核",
        "2026-0113 查封某仓库",
        "2026-05-05 16:30:00",
        "from the file's metadata",
        "times in Asia/Shanghai",
    ):
        assert expected in out, f"{expected!r} not in:\n{out}"
    assert "{'" not in out, "extra is JSON, not a Python dict"
    photo = _cli("media", "show", str(filed.photo), "--as", "1023", "--reason", "复核")
    assert "flag unattributed" in photo and "no officer held the device at 2026-11-30" in photo
    assert "from the file name" in photo and "(in no case)" in photo


def test_lists_name_officers_and_count_in_words(filed: Filed) -> None:
    listed = _cli("cases", "list")
    assert "1 case (案件)" in listed and "1023 张伟" in listed and "1 cases" not in listed
    assert "1 recording in no case" in _cli("media", "unlinked")
    assert "1023 张伟" in _cli("media", "list")


def test_search_takes_a_category_by_its_zh_name_too(filed: Filed) -> None:
    def found(query: str) -> list[int]:
        result = CliRunner().invoke(app, ["search", query, "--json"])
        assert result.exit_code == 0, result.output
        return [h["id"] for h in json.loads(result.stdout)["items"]]

    assert found("category:seizure") == [filed.video]
    for named in ("category:查封扣押", "category:查封", "category:Seizure"):
        assert found(named) == [filed.video], named
    assert found("category:停车") == []


def test_categories_by_id_or_zh_name(settings: Settings, catalog: Catalog) -> None:
    listed = _cli("categories", "list")
    assert "seizure" in listed and "查封扣押" in listed and "强制拆除" in listed
    _cli("cases", "add", "2026-0200", "--title", "拆除违建", "--category", "强制拆除", "--as", "A1")
    with catalog.read() as conn:
        case = case_rows.get(conn, "2026-0200")
    assert case is not None and case.category == "forced-demolition", "the id is kept"
    refused = CliRunner().invoke(app, ["cases", "add", "2026-0201", "--title", "x",
                                       "--category", "停车", "--as", "A1"])  # fmt: skip
    assert refused.exit_code != 0


def test_an_add_says_it_once_and_help_lists_what_exists(settings: Settings) -> None:
    out = _cli("officers", "add", "1088", "--name", "李娜", "--cert", "110200", "--as", "A001")
    assert out.strip().splitlines() == ["added officer 1088"]
    helped = _cli("compliance", "--help")
    assert "report" in helped and "and sweep" not in helped


def test_output_to_a_pipe_folds_no_path(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / ("采集站-一中队-" + "d" * 90)
    root.mkdir()
    _cli("stations", "add", "DOCK-09", "--root", str(root), "--as", "A001")
    assert str(root) in _cli("stations", "list"), "one line, however long"


def test_a_case_export_holds_the_case_record_and_reads_in_chinese(
    filed: Filed, tmp_path: Path
) -> None:
    bag = tmp_path / "bag"
    out = _cli(
        "export", "--case", "2026-0113", "--out", str(bag), "--reason", "移送法院", "--as", "1023"
    )
    assert "exported 1 item" in out
    record = json.loads((bag / "data" / "case" / "case.json").read_text("utf-8"))
    assert record["case"]["number"] == "2026-0113" and record["reason"] == "移送法院"
    assert [link["media_id"] for link in record["links"]] == [filed.video]
    readme = (bag / "README.txt").read_text("utf-8")
    assert readme.startswith("电子证据导出") and "校验方法" in readme and "HOW TO VERIFY" in readme
    assert "data/case/case.json" in readme
    info = (bag / "bag-info.txt").read_text("utf-8")
    assert "执法音视频电子证据导出，共 1 件（案件 2026-0113）" in info
    assert "Evidence export of 1 media item of case 2026-0113" in info


def test_the_demo_honours_evidence_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVIDENCE_HOME", str(tmp_path / "mine"))
    assert demo_home(None) == (tmp_path / "mine").resolve()
    assert demo_home(tmp_path / "given") == (tmp_path / "given").resolve(), "--home first"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "catalog.db").write_bytes(b"")
    with pytest.raises(DemoHomeTaken, match="not empty"):
        demo_home(None)
    monkeypatch.delenv("EVIDENCE_HOME")
    temporary = demo_home(None)
    assert temporary.is_dir() and os.listdir(temporary) == []
    temporary.rmdir()
