"""Every stored text is data, never markup: "[/]" in a name, a title, a reason, a tag or a
file's metadata, and terminal escape codes anywhere, are shown as typed by every listing.

The catalog is filled the way a hostile dock and careless people fill it: a recorder file with
markup and ESC in its name and in its container tags, a registry and a case typed with
brackets, reasons and tags with closing tags, and rows an older, unvalidated database could
hold. Then the real `evidence` commands list it all.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docks.sweep import sweep_station
from interfaces import output, synth
from interfaces.cli import app
from pipeline.cases import records as cases
from pipeline.cases.categories import load_categories
from pipeline.catalog import cases as case_rows
from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import open_catalog
from pipeline.catalog import registry as registry_rows
from pipeline.custody import keys
from pipeline.ingest.steps import IngestContext
from pipeline.models import Case, CaseStatus, Device, DeviceKind, Officer
from pipeline.registry import records as registry
from pipeline.registry.stations import add_station
from pipeline.search import tags
from pipeline.storage.local import LocalStore
from tests.conftest import make_settings

T0 = datetime(2026, 11, 27, 1, 30, tzinfo=UTC)
ESC = "\x1b[2J\x07"  # clear the screen, ring the bell
ESC_SHOWN = "\\x1b[2J\\x07"  # what the reader sees instead

OFFICER_NAME = f"张伟[/]{ESC}"
DEPARTMENT = "[bold]大队\x9b31m"  # 0x9b: a CSI on its own (C1)
VENDOR, MODEL = "[link=file:///etc/passwd]ZFJLY", "DSJ[/]"
STATION_NAME, STATION_PLACE = "[/red]一中队", f"楼{ESC}"
RECORDER_MODEL = "A9[/]\u202e"  # the container tag the recorder wrote; RLO reorders
BAD_FILE = f"[bold]{ESC}cut.mp4"  # a name cannot hold "/", but an unclosed tag hides
NUMBER = "〔2026〕[b]0113"  # a valid case number that looks like a tag
TITLE, CASE_DEPARTMENT = f"[bold]查封[/]{ESC}", "[/red]执法大队"
REASON = f"[/red]复核{ESC}"
DESCRIPTION = f"现场{ESC}[/]"
TAG = "[/]"
LEGACY_NUMBER = f"[/]{ESC}"  # a row an older database could hold, never validated
LEGACY_SERIAL = "BWC[/]9"
PHOTO = f"[bold]IMG{ESC}.jpg"

OFFICER_SHOWN, DEPARTMENT_SHOWN = "张伟[/]\\x1b[2J\\x07", "[bold]大队\\x9b31m"
BAD_FILE_SHOWN, PHOTO_SHOWN = "[bold]\\x1b[2J\\x07cut.mp4", "[bold]IMG\\x1b[2J\\x07.jpg"
TITLE_SHOWN, REASON_SHOWN = "[bold]查封[/]\\x1b[2J\\x07", "[/red]复核\\x1b[2J\\x07"
LEGACY_SHOWN = "[/]\\x1b[2J\\x07"
ACTED_ON = "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"


@dataclass(frozen=True)
class Hostile:
    home: Path
    video_id: int

    def env(self) -> dict[str, str]:
        # Wide enough that no cell of interest is folded across lines.
        return {"EVIDENCE_HOME": str(self.home), "COLUMNS": "250"}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    root = tmp_path_factory.mktemp("hostile")
    settings = make_settings(root / "home")
    keys.create_instance_key(settings.home)
    catalog = open_catalog(settings.catalog_url)
    dock = root / "dock"
    dock.mkdir()
    station = add_station(
        catalog, "DOCK-01", dock, "A001", name=STATION_NAME, location=STATION_PLACE
    )
    with catalog.begin() as conn:
        officer = Officer("1023", OFFICER_NAME, "62010023001", DEPARTMENT)
        registry.save_officer(conn, officer, "A001")
        registry.save_officer(conn, Officer("1024", "王五\\", "62010023002"), "A001")
        device = Device("BWC0017", DeviceKind.BODY_WORN, vendor=VENDOR, model=MODEL)
        registry.save_device(conn, device, "A001")
        registry.save_assignment(conn, "BWC0017", "1023", T0 - timedelta(hours=1), None, "A001")
        registry_rows.save_device(conn, Device(LEGACY_SERIAL, DeviceKind.BODY_WORN), T0)
    video = dock / "BWC0017" / "BWC0017_1023_20261127093000_0001.mp4"
    video.parent.mkdir()
    synth.make_video(video, seconds=1.0, creation_time=T0, make="ZFJLY", model=RECORDER_MODEL)
    (dock / "BWC0017" / BAD_FILE).write_bytes(video.read_bytes()[:3000])  # cut short
    synth.make_photo(dock / "BWC0017" / PHOTO)
    ctx = IngestContext(catalog, LocalStore(settings.archive_dir), settings, jobs_db.new_owner())
    report = sweep_station(ctx, station)
    (video_id,) = [f.media_id for f in report.files if f.path.endswith("_0001.mp4")]
    categories = load_categories(settings)
    case = Case(NUMBER, TITLE, "seizure", CASE_DEPARTMENT, CaseStatus.OPEN, ())
    legacy = Case(LEGACY_NUMBER, "[/]旧案", "seizure", "", CaseStatus.OPEN, ())
    with catalog.begin() as conn:
        cases.save_case(conn, case, "A001", settings, categories, T0)
        cases.link(conn, NUMBER, video_id, "A001", REASON, T0)
        cases.describe(conn, video_id, DESCRIPTION, "1023", T0)
        tags.change(conn, video_id, [TAG, "[bold]"], [], "A001", T0)
        case_rows.save(conn, legacy, T0)
    catalog.dispose()
    yield Hostile(settings.home, video_id)


def _run(hostile: Hostile, *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env=hostile.env())
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args}: {result.exception!r}\n{result.output}"
    )
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.output}"
    return result.output


def _assert_inert(out: str) -> None:
    """Nothing a terminal acts on: no ESC, BEL, C1 control or bidi override; shown instead."""
    acted_on = sorted({c for c in out if re.match(ACTED_ON, c)})
    assert not acted_on, f"raw control characters {acted_on!r} in:\n{out}"


LISTINGS = {
    "audit": (["audit"], [REASON_SHOWN, '"added": ["[/]", "[bold]"]']),
    "audit-case": (["audit", "--case", NUMBER], [REASON_SHOWN]),
    "cases-list": (["cases", "list"], [NUMBER, TITLE_SHOWN, LEGACY_SHOWN]),
    "cases-show": (["cases", "show", NUMBER], [NUMBER, TITLE_SHOWN, CASE_DEPARTMENT]),
    "cases-show-legacy": (["cases", "show", LEGACY_NUMBER], [LEGACY_SHOWN, "[/]旧案"]),
    "media-list": (["media", "list"], [BAD_FILE_SHOWN, PHOTO_SHOWN]),
    "media-unlinked": (["media", "unlinked"], [PHOTO_SHOWN]),
    "search": (["search"], [OFFICER_SHOWN, f"{NUMBER} [bold]查封[/]"]),
    "search-markup": (["search", "[/]"], ["1 media item: [/]"]),
    "search-tag": (["search", "tag:[bold]"], ["tag:[bold]"]),
    "devices-list": (["devices", "list"], [VENDOR, MODEL, LEGACY_SERIAL]),
    "devices-show": (["devices", "show", "BWC0017"], [VENDOR, MODEL, BAD_FILE_SHOWN]),
    "devices-show-legacy": (["devices", "show", LEGACY_SERIAL], [LEGACY_SERIAL]),
    "devices-health": (["devices", "health"], [LEGACY_SERIAL]),
    "officers-list": (["officers", "list"], [OFFICER_SHOWN, DEPARTMENT_SHOWN]),
    "officers-show": (["officers", "show", "1023"], [OFFICER_SHOWN, DEPARTMENT_SHOWN]),
    "officers-show-backslash": (["officers", "show", "1024"], ["1024 王五\\ — 执法证号"]),
    "quarantine-list": (["quarantine", "list"], [BAD_FILE_SHOWN]),
    "stations-list": (["stations", "list"], [STATION_NAME, "楼\\x1b[2J\\x07"]),
    "stations-show": (["stations", "show", "DOCK-01"], [STATION_NAME]),
    "compliance-report": (["compliance", "report"], [CASE_DEPARTMENT]),
}


@pytest.mark.parametrize(("args", "expected"), LISTINGS.values(), ids=LISTINGS.keys())
def test_listings_show_stored_text_as_typed(
    hostile: Hostile, args: list[str], expected: list[str]
) -> None:
    out = _run(hostile, *args)
    _assert_inert(out)
    for literal in expected:
        assert literal in out, f"{literal!r} not shown by {args}:\n{out}"


def test_viewing_metadata_shows_the_recorders_tags_as_written(hostile: Hostile) -> None:
    seen = "A9[/]\\u202e"
    for view in (
        ["media", "show", str(hostile.video_id)],
        ["media", "open", str(hostile.video_id), "--view", "metadata"],
    ):
        out = _run(hostile, *view, "--reason", f"[/]复核{ESC}", "--as", "A001")
        _assert_inert(out)
        assert seen in out, out
    # The viewing's reason is itself stored text the supervisors' audit then lists.
    audit = _run(hostile, "audit", "--media", str(hostile.video_id), "--kind", "viewed")
    _assert_inert(audit)
    assert "[/]复核\\x1b[2J\\x07" in audit


def test_tag_changes_are_echoed_as_typed(hostile: Hostile) -> None:
    out = _run(hostile, "media", "tag", str(hostile.video_id), "+[/i]", "--as", "A001")
    _assert_inert(out)
    assert "added [/i];" in out


def test_json_keeps_every_value_exact_and_no_raw_control_character(hostile: Hostile) -> None:
    out = _run(hostile, "officers", "list", "--json")
    _assert_inert(out)
    officer = next(o for o in json.loads(out) if o["id"] == "1023")
    assert (officer["name"], officer["department"]) == (OFFICER_NAME, DEPARTMENT)


def test_an_error_naming_stored_text_is_one_inert_line(hostile: Hostile) -> None:
    """Through the real entry point (main), which turns domain errors into one line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "FORCE_COLOR"))}
    result = subprocess.run(
        [sys.executable, "-m", "interfaces.cli", "cases", "show", f"[/]x{ESC}"],
        env={**env, **hostile.env()}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    _assert_inert(result.stderr)
    assert "[/]x\\x1b[2J\\x07" in result.stderr and "Traceback" not in result.stderr


def test_log_lines_show_control_characters_of_what_they_quote() -> None:
    record = logging.LogRecord("pipeline.ingest.steps", logging.ERROR, __file__, 1,
                               "internal error ingesting %s", (f"/dock/{BAD_FILE}",), None)  # fmt: skip
    line = output.InertFormatter("%(levelname)s %(message)s").format(record)
    assert line == f"ERROR internal error ingesting /dock/{BAD_FILE_SHOWN}"
