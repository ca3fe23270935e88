"""Reports to take away (issue 18): the audit trail (CSV, PDF), the case-file inventory (PDF)
and the compliance report (XLSX, PDF), made on a real catalog with real ingested clips.

The PDFs are checked as a reader gets them: turned into images by poppler's pdftoppm (a page
exists and is not blank) and their text extracted by pypdf (the Chinese is there, the pages
are numbered), with every font embedded. The workbook is read back with openpyxl and holds
the numbers of `evidence compliance report --json`. Making a report of evidence metadata is
a custody event with its reason; a reader the audit is not open to is refused.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pypdf
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from docks.sweep import sweep_station
from interfaces.cli import main
from interfaces.web.app import create_app
from interfaces.web.security import CSRF_COOKIE
from pipeline.accounts import passwords
from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import UserRole
from pipeline.cases import usecases as cases_usecases
from pipeline.catalog import Catalog
from pipeline.catalog import media as media_db
from pipeline.catalog import registry as registry_rows
from pipeline.custody import log as custody
from pipeline.custody import usecases as custody_usecases
from pipeline.custody.keys import describe
from pipeline.errors import AccessRefused, PermissionDenied
from pipeline.ingest.steps import IngestContext
from pipeline.instance import Instance
from pipeline.models import Device, DeviceKind, EventKind, MediaItem, Officer, Station, plain
from pipeline.settings import Settings
from pipeline.supervision.reports import audit_trail, compliance_report, inventory, tables, xlsx
from pipeline.supervision.reports.pdf import FontMissing
from pipeline.supervision.reports.reader import Reader, signed
from tests.conftest import RECORDED, make_settings, put

PASSWORD = "correct horse 电池"
NUMBER = "2026-0113"
DESCRIPTION = "执法人员表明身份，告知事由"
OTHER_DESCRIPTION = "李娜现场询问当事人王某"
FORMULA = '=HYPERLINK("http://evil.example","复核")'

USERS = [
    ("fazhi", "9000", UserRole.LEGAL_REVIEWER, None),
    ("zhang.wei", "1023", UserRole.ARCHIVIST, None),  # the case's unit: no audit
    ("kao", "1023", UserRole.OFFICER, None),  # an officer of the case
    ("lingdao", "9000", UserRole.SUPERVISOR, "县公安局/治安大队"),
]


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def instance(
    settings: Settings, catalog: Catalog, ctx: IngestContext, station: Station, clips: Any
) -> Instance:
    """Case 2026-0113 (seizure, 县公安局/治安大队, officer 1023 张伟) with its officer's clip
    linked by rule and described, and a clip of officer 2001 李娜 (another unit) linked by
    hand."""
    now = datetime.now(UTC)
    with catalog.begin() as conn:
        registry_rows.save_officer(
            conn, Officer("1023", "张伟", "11010012345", "县公安局/治安大队"), now
        )
        registry_rows.save_officer(
            conn, Officer("2001", "李娜", "11010054321", "县公安局/交警大队"), now
        )
        registry_rows.save_officer(conn, Officer("9000", "法制", "11010099999", "县公安局"), now)
        for serial, officer in (("BWC-1", "1023"), ("BWC-2", "2001")):
            registry_rows.save_device(conn, Device(serial, DeviceKind.BODY_WORN), now)
            registry_rows.add_assignment(
                conn, serial, officer, datetime(2026, 1, 1, tzinfo=UTC), None
            )
    put(clips["video"], station.root, "BWC-1/a.mp4")
    put(clips["video2"], station.root, "BWC-2/b.mp4")
    assert sweep_station(ctx, station).ok
    inst = Instance(settings, catalog, actor="1023")
    saved = cases_usecases.add_case(
        inst,
        NUMBER,
        title="查封某仓库",
        category="seizure",
        department="县公安局/治安大队",
        officers=["1023"],
        action_start=RECORDED - timedelta(minutes=1),
        action_end=RECORDED + timedelta(minutes=5),
    )
    assert len(saved.linked) == 1, "the rule linked officer 1023's clip"
    own, other = _items(catalog)
    cases_usecases.describe_media(inst, own.id, DESCRIPTION)
    cases_usecases.describe_media(inst, other.id, OTHER_DESCRIPTION)
    cases_usecases.link_media(inst, NUMBER, other.id, "李娜协助现场")
    for login, officer, role, department in USERS:
        accounts.add_user(
            inst,
            login,
            officer_id=officer,
            roles=[role],
            password=PASSWORD,
            department=department,
        )
    custody_usecases.media_detail(inst, str(own.id), actor="fazhi", reason="复核 2026-0113")
    custody_usecases.media_detail(inst, str(own.id), actor="fazhi", reason=FORMULA)
    return inst


def _items(catalog: Catalog) -> tuple[MediaItem, MediaItem]:
    """Officer 1023's clip, then officer 2001's."""
    with catalog.read() as conn:
        found = {i.officer_id: i for i in media_db.listing(conn)}
    return found["1023"], found["2001"]


def _reader(instance: Instance, login: str) -> Reader:
    (user,) = [u for u in accounts.list_users(instance) if u.login == login]
    return signed(user)


def _events(instance: Instance) -> list[custody.CustodyEvent]:
    with instance.catalog.read() as conn:
        return list(custody.events(conn))


# ------------------------------------------------------------------------------ PDF tools


def _pdftoppm() -> str:
    found = shutil.which("pdftoppm")
    if found is None:
        pytest.fail(
            "pdftoppm is missing: the PDF reports are checked as images; "
            "apt-get install poppler-utils (as .ci/run does)"
        )
    return found


def _images(pdf: bytes, folder: Path) -> list[Path]:
    """Every page as a PNG at 50 dpi, by pdftoppm."""
    source = folder / "report.pdf"
    source.write_bytes(pdf)
    subprocess.run(
        [_pdftoppm(), "-r", "50", "-png", str(source), str(folder / "page")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return sorted(folder.glob("page-*.png"))


def _not_blank(png: Path) -> None:
    with Image.open(png) as image:
        gray = image.convert("L")
        dark = sum(gray.histogram()[:128])  # pixels darker than mid-grey: text, rules
        assert gray.width > 100 and gray.height > 100
    assert dark > 500, f"{png.name} looks blank ({dark} dark pixels)"


def _texts(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def _fonts_embedded(pdf: bytes) -> None:
    """Every font of every page carries its glyphs (a TrueType subset: /FontFile2)."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    for n, page in enumerate(reader.pages, 1):
        resources = page["/Resources"].get_object()
        assert isinstance(resources, pypdf.generic.DictionaryObject)
        fonts = resources["/Font"].get_object()
        assert isinstance(fonts, pypdf.generic.DictionaryObject) and fonts, f"page {n}: no font"
        for name, ref in fonts.items():
            font = ref.get_object()
            descriptor = font["/FontDescriptor"].get_object()
            assert "/FontFile2" in descriptor, f"page {n}: font {name} is not embedded"
            assert str(font["/BaseFont"]).split("+", 1)[0].isupper(), "a subset (ABCDEF+Name)"


def _checked(pdf: bytes, folder: Path) -> list[str]:
    """The PDF rendered (each page an image, not blank) and read back: its pages' text."""
    assert pdf.startswith(b"%PDF-")
    folder.mkdir(parents=True, exist_ok=True)
    images = _images(pdf, folder)
    texts = _texts(pdf)
    assert len(images) == len(texts) >= 1
    for png in images:
        _not_blank(png)
    _fonts_embedded(pdf)
    for n, text in enumerate(texts, 1):
        assert f"第 {n} 页 / 共 {len(texts)} 页" in text
        assert "Asia/Shanghai" in text, "the generated-at time names its zone"
    return texts


# ------------------------------------------------------------------------------------ CLI


def _cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    umask = os.umask(0o077)
    os.umask(umask)
    monkeypatch.setattr(sys, "argv", ["evidence", *args])
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    try:
        with pytest.raises(SystemExit) as done:
            main()
    finally:
        os.umask(umask)
    printed = capsys.readouterr()
    return int(done.value.code or 0), printed.out, printed.err


def _cli_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> Any:
    code, out, err = _cli(monkeypatch, capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


# ----------------------------------------------------------------------------- inventory


def test_the_inventory_prints_every_record_with_chinese_embedded(
    instance: Instance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    own, other = _items(instance.catalog)
    out = tmp_path / "inventory.pdf"
    written = _cli_json(
        monkeypatch,
        capsys,
        "reports",
        "inventory",
        NUMBER,
        "-o",
        str(out),
        "--reason",
        "案卷评查",
        "--as",
        "fazhi",
    )
    data = out.read_bytes()
    assert written["path"] == str(out) and written["bytes"] == len(data)
    assert written["sha256"] == hashlib.sha256(data).hexdigest()
    texts = _checked(data, tmp_path / "pages")
    assert written["pages"] == len(texts)
    text = "".join(texts)
    for expected in (
        "卷内目录",
        NUMBER,
        "查封某仓库",
        "查封扣押",
        "县公安局/治安大队",
        "1023 张伟",
        "2001 李娜",
        DESCRIPTION,
        OTHER_DESCRIPTION,
        "李娜协助现场",
        "未归档",
    ):
        assert expected in text, expected
    flat = text.replace("\n", "")
    assert own.sha256 in flat and other.sha256 in flat, "digests are printed whole"
    assert flat.index(own.sha256) < flat.index(other.sha256) or (
        (other.recorded_start or other.ingested_at) < (own.recorded_start or own.ingested_at)
    ), "ordered by time"
    # Printing it was a viewing of both records' descriptions, with the reason, recorded first.
    event = _events(instance)[-1]
    assert event.seq == written["event"]
    assert (event.kind, event.actor, event.subject) == (EventKind.VIEWED, "fazhi", NUMBER)
    assert event.details["reason"] == "案卷评查"
    assert event.details["report"] == "inventory" and event.details["to"] == str(out.resolve())
    assert event.details["media"] == sorted([own.id, other.id])
    assert event.details["fields"] == ["description"]
    # And each record's own history shows it.
    trail = custody_usecases.audit(instance, media_key=str(other.id))
    assert trail[-1].seq == event.seq


def test_the_inventory_withholds_what_the_reader_may_not_view(
    instance: Instance, tmp_path: Path
) -> None:
    """Officer 1023 reads their case, but not 李娜's recording filed into it."""
    _, other = _items(instance.catalog)
    made = inventory.inventory_report(
        instance, _reader(instance, "kao"), NUMBER, reason="核对卷宗", to="test"
    )
    text = "".join(_checked(made.data, tmp_path))
    assert DESCRIPTION in text and OTHER_DESCRIPTION not in text
    assert "（已隐去）" in text
    event = _events(instance)[-1]
    assert event.details["withheld"] == [other.id] and event.actor == "kao"


def test_a_long_description_is_printed_whole_below_the_table(
    instance: Instance, tmp_path: Path
) -> None:
    own, _ = _items(instance.catalog)
    long = "".join(f"第{n}段：执法人员出示证件，告知当事人权利义务。" for n in range(120))
    cases_usecases.describe_media(instance, own.id, long)
    made = inventory.inventory_report(
        instance, _reader(instance, "fazhi"), NUMBER, reason="案卷评查", to="test"
    )
    texts = _checked(made.data, tmp_path)
    # Each page's header and footer are drawn last: its text ends with them.
    decoration = f"卷内目录 Case-file inventory {NUMBER}"
    whole = "".join(t.rsplit(decoration, 1)[0].strip() for t in texts).replace("\n", "")
    assert "文字说明全文" in whole and "全文见附录" in whole
    assert long in whole, "every character of it, over the pages it needs"
    assert len(texts) >= 2


def test_the_inventory_prints_what_the_access_policy_lets_the_reader_view(
    instance: Instance, tmp_path: Path
) -> None:
    """A policy asking approval for every viewing: the descriptions are withheld until a
    grant covers the record, and the inventory names the grant it used."""
    from pipeline.approvals import usecases as approvals
    from pipeline.approvals.policy import Action

    policy = tmp_path / "policy.toml"
    policy.write_text('[[rule]]\nid = "all-views"\nname_zh = "调阅"\nactions = ["view-proxy"]\n')
    settings = make_settings(
        instance.settings.home,
        approvals={"policy_file": str(policy)},
        custody={"pinned_keys": [describe(instance.settings.home).key_id]},
    )
    strict = Instance(settings, instance.catalog)
    own, other = _items(instance.catalog)
    fazhi = _reader(strict, "fazhi")
    made = inventory.inventory_report(strict, fazhi, NUMBER, reason="案卷评查", to="test")
    text = "".join(_checked(made.data, tmp_path / "a"))
    assert DESCRIPTION not in text and OTHER_DESCRIPTION not in text and "须经审批" in text
    assert fazhi.user is not None
    asked = approvals.request_access(
        strict, fazhi.user, action=Action.VIEW_PROXY, reason="案卷评查", hours=1, media_ids=[own.id]
    )
    lingdao = _reader(strict, "lingdao").user
    assert lingdao is not None
    approvals.grant_access(strict, lingdao, asked.id)
    made = inventory.inventory_report(strict, fazhi, NUMBER, reason="案卷评查", to="test")
    text = "".join(_checked(made.data, tmp_path / "b"))
    assert DESCRIPTION in text and OTHER_DESCRIPTION not in text
    event = _events(strict)[-1]
    assert event.details["grants"] == {str(own.id): asked.id}
    assert event.details["withheld"] == [other.id]


def test_an_inventory_of_a_case_the_reader_may_not_read_is_refused(instance: Instance) -> None:
    accounts.add_user(
        instance, "li.na", officer_id="2001", roles=[UserRole.ARCHIVIST], password=PASSWORD
    )
    before = len(_events(instance))
    with pytest.raises(PermissionDenied):
        inventory.inventory_report(
            instance, _reader(instance, "li.na"), NUMBER, reason="看看", to="test"
        )
    (refused,) = _events(instance)[before:]
    assert refused.kind is EventKind.REFUSED and refused.details["action"] == "view-case"


def test_a_report_needs_a_reason_and_records_nothing_without_one(instance: Instance) -> None:
    before = len(_events(instance))
    with pytest.raises(AccessRefused, match="事由"):
        inventory.inventory_report(
            instance, _reader(instance, "fazhi"), NUMBER, reason=" x ", to="test"
        )
    with pytest.raises(AccessRefused):
        audit_trail.audit_report(
            instance,
            _reader(instance, "fazhi"),
            audit_trail.Trail(case=NUMBER),
            fmt="csv",
            reason="",
            to="test",
        )
    assert len(_events(instance)) == before


def test_without_a_font_the_report_is_refused_naming_what_to_install(
    instance: Instance, tmp_path: Path
) -> None:
    settings = make_settings(
        instance.settings.home,
        reports={"font_file": str(tmp_path / "none.ttf")},
        custody={"pinned_keys": [describe(instance.settings.home).key_id]},
    )
    fontless = Instance(settings, instance.catalog)
    before = len(_events(instance))
    with pytest.raises(FontMissing, match="apt-get install fonts-wqy-microhei"):
        inventory.inventory_report(
            fontless, _reader(instance, "fazhi"), NUMBER, reason="案卷评查", to="test"
        )
    assert len(_events(instance)) == before, "no report, no event"


# --------------------------------------------------------------------------- audit trail


def test_the_audit_trail_csv_has_every_row_the_reasons_and_the_verification(
    instance: Instance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    own, _ = _items(instance.catalog)
    out = tmp_path / "trail.csv"
    written = _cli_json(
        monkeypatch,
        capsys,
        "reports",
        "audit",
        "--media",
        str(own.id),
        "--format",
        "csv",
        "--reason",
        "移送法院",
        "-o",
        str(out),
        "--as",
        "fazhi",
    )
    raw = out.read_bytes()
    assert raw.startswith("\ufeff".encode()) and written["pages"] is None
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    header, *rest = rows
    assert header[1] == "时间 time（Asia/Shanghai）" and header[5] == "事由 why"
    events = rest[: rest.index([])]
    history = custody_usecases.audit(instance, media_key=str(own.id))
    assert [int(r[0]) for r in events] == [e.seq for e in history]
    reasons = [r[5] for r in events]
    assert "复核 2026-0113" in reasons
    assert "'" + FORMULA in reasons, "a formula is written as text"
    assert reasons[-1] == "移送法院", "the report's own VIEWED event is its last row"
    assert events[-1][3] == "调阅 viewed" and events[-1][2] == "fazhi（法制）"
    ingested = next(r for r in events if r[3] == "入库 ingested")
    assert ingested[1] == f"{own.ingested_at.astimezone(instance.settings.zone):%Y-%m-%d %H:%M:%S}"
    tail = {r[0]: r[1] for r in rest[rest.index([]) + 1 :] if len(r) > 1}
    assert tail["事由 reason"] == "移送法院" and tail["制作人 made by"] == "fazhi（法制）"
    verdict = [r[1] for r in rest if r and r[0] == "链校验 chain verification"]
    key_id = describe(instance.settings.home).key_id
    assert verdict[0].startswith("链校验通过 chain verified: ")
    assert f"signed by key {key_id}" in verdict[0]
    assert any("every event of this report is under it" in v for v in verdict), (
        "the head was signed before the check: the report's own event is covered"
    )
    event = _events(instance)[-1]
    assert event.kind is EventKind.VIEWED and event.seq == written["event"]
    assert event.details["report"] == "audit-trail" and event.details["format"] == "csv"
    assert event.details["trail"] == {"media": own.id}


def test_the_audit_trail_pdf_of_a_case_spans_pages_with_its_header_on_each(
    instance: Instance, tmp_path: Path
) -> None:
    own, _ = _items(instance.catalog)
    for n in range(70):
        custody_usecases.media_detail(instance, str(own.id), actor="fazhi", reason=f"复核第{n}次")
    made = audit_trail.audit_report(
        instance,
        _reader(instance, "lingdao"),
        audit_trail.Trail(case=NUMBER),
        fmt="pdf",
        reason="案卷评查 2026-0113",
        to="test",
    )
    texts = _checked(made.data, tmp_path)
    assert made.pages == len(texts) >= 2
    for text in texts:
        assert "序号 seq" in text and "事由 why" in text, "the header repeats on every page"
        assert "监督日志 Audit trail" in text, "the page header"
    whole = "".join(texts)
    assert "复核第0次" in whole and "复核第69次" in whole and "lingdao" in whole
    assert "链校验通过 chain verified" in whole and "checkpoint #" in whole
    assert f"案件 case {NUMBER}" in whole
    assert "（已隐去）" in whole, "the descriptions' text stays withheld in the trail"
    assert DESCRIPTION not in whole


def test_a_broken_chain_is_printed_as_not_verified(instance: Instance, tmp_path: Path) -> None:
    from sqlalchemy import update

    from pipeline.catalog.schema import custody_events

    with instance.catalog.begin() as conn:
        conn.execute(
            update(custody_events).where(custody_events.c.seq == 3).values(actor="mallory")
        )
    own, _ = _items(instance.catalog)
    made = audit_trail.audit_report(
        instance,
        _reader(instance, "fazhi"),
        audit_trail.Trail(media=own.id),
        fmt="csv",
        reason="核查",
        to="test",
    )
    text = made.data.decode("utf-8-sig")
    assert "链校验未通过 chain NOT verified" in text and "E-CHAIN-HASH" in text


def test_an_audit_report_by_a_user_who_may_not_audit_is_refused(
    instance: Instance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = len(_events(instance))
    out = tmp_path / "trail.pdf"
    code, _, err = _cli(
        monkeypatch,
        capsys,
        "reports",
        "audit",
        "--case",
        NUMBER,
        "--reason",
        "看看",
        "-o",
        str(out),
        "--as",
        "zhang.wei",
    )
    assert code == 2 and "无权查阅监督日志" in err
    assert not out.exists()
    (refused,) = _events(instance)[before:]
    assert (refused.kind, refused.actor) == (EventKind.REFUSED, "zhang.wei")
    assert refused.details["action"] == "audit-report"
    # Nobody acts as a person the catalog does not know.
    code, _, err = _cli(
        monkeypatch,
        capsys,
        "reports",
        "audit",
        "--case",
        NUMBER,
        "--reason",
        "看看",
        "-o",
        str(out),
        "--as",
        "nobody",
    )
    assert code == 2 and "account" in err


# ---------------------------------------------------------------------------- compliance


def _sheet(book: openpyxl.Workbook, title_end: str) -> list[dict[str, Any]]:
    (name,) = [n for n in book.sheetnames if n.endswith(title_end)]
    header, *rows = book[name].iter_rows(values_only=True)
    keys = [str(h).rsplit(" ", 1)[-1] for h in header]
    return [dict(zip(keys, row, strict=True)) for row in rows]


def test_the_compliance_workbook_holds_the_numbers_of_the_json(
    instance: Instance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    printed = _cli_json(monkeypatch, capsys, "compliance", "report")
    out = tmp_path / "report.xlsx"
    written = _cli_json(
        monkeypatch,
        capsys,
        "reports",
        "compliance",
        "--format",
        "xlsx",
        "-o",
        str(out),
        "--as",
        "fazhi",
    )
    assert written["event"] is None, "statistics, not a record's metadata: no custody event"
    book = openpyxl.load_workbook(out)
    for section, key in (
        ("departments", "department"),
        ("officers", "officer"),
        ("devices", "device"),
    ):
        rows = _sheet(book, section)
        assert {
            r[key]: {k: v for k, v in r.items() if k not in (key, "name")} for r in rows
        } == printed[section], section
        assert printed[section], f"the comparison compares something: {section}"
    officers = {r["officer"]: r["name"] for r in _sheet(book, "officers")}
    assert officers["1023"] == "张伟"
    cases = _sheet(book, "cases")
    assert [
        {"number": r["number"], "state": r["state"], "problems": (r["problems"] or "").split("\n")}
        for r in cases
    ] == [{**c, "problems": c["problems"] or [""]} for c in printed["cases"]]
    summary = {r["key"].rsplit(" ", 1)[-1]: r["value"] for r in _sheet(book, "summary")}
    assert summary["today"] == printed["today"]
    assert printed["figures"]["link_rate"] is not None, "the dashboard's figures are there"
    if "figures" in printed:  # the dashboard's figures: every number of them is in the book
        numbers = sorted(_numbers(printed["figures"]))
        sheets = [n for n in book.sheetnames if "figures" in n]
        cells = sorted(
            v
            for n in sheets
            for row in book[n].iter_rows(min_row=2, values_only=True)
            for v in row
            if isinstance(v, int | float) and not isinstance(v, bool)
        )
        assert cells == numbers and len(numbers) > 10


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return []


def test_the_workbook_is_generic_over_sections_with_shares_as_percentages(
    tmp_path: Path,
) -> None:
    report = {
        "today": "2026-12-01",
        "departments": {"=cmd|' /C calc'!A0": {"cases_concluded": 3, "on_time_rate": 0.875}},
        "figures": {
            "upload": {"rate": 0.5, "late": 2, "by_officer": {"1023": {"late": 1, "rate": 0.25}}},
            "trend": [{"week": "2026-W47", "link_rate": 1.0}, {"week": "2026-W48", "link_rate": 0}],
        },
    }
    made = tables.sections(report, [("department", None)])
    assert [s.path for s in made] == [
        "summary",
        "departments",
        "figures.upload",
        "figures.upload.by_officer",
        "figures.trend",
    ]
    book = openpyxl.load_workbook(
        io.BytesIO(xlsx.workbook(made, title="t", made_at=datetime.now(UTC)))
    )
    departments = book[book.sheetnames[1]]
    name, concluded, rate = (c for c in departments[2])
    assert name.value == "=cmd|' /C calc'!A0" and name.data_type == "s", "text, not a formula"
    assert concluded.value == 3 and rate.value == 0.875 and rate.number_format == "0.0%"
    assert departments[1][2].value == "按时归档率 on_time_rate"
    upload = book[book.sheetnames[2]]
    assert [(r[0].value, r[1].value, r[1].number_format) for r in upload.iter_rows(min_row=2)] == [
        ("rate", 0.5, "0.0%"),
        ("late", 2, "General"),
    ]
    trend = book[book.sheetnames[4]]
    assert [c.value for c in trend[3]] == ["2026-W48", 0]


def test_the_compliance_pdf_renders_chinese(instance: Instance, tmp_path: Path) -> None:
    made = compliance_report.compliance_report(
        instance, _reader(instance, "lingdao"), fmt="pdf", department=None
    )
    text = "".join(_checked(made.data, tmp_path))
    assert "合规报告 Compliance report" in text and "县公安局/治安大队" in text
    assert "已办结\ncases_concluded" in text and "张伟" in text and NUMBER in text
    assert "已逾期 overdue" in text
    # A supervisor reads their own tree only.
    with pytest.raises(PermissionDenied):
        compliance_report.compliance_report(
            instance, _reader(instance, "lingdao"), fmt="pdf", department="县公安局/交警大队"
        )
    with pytest.raises(PermissionDenied):
        compliance_report.compliance_report(instance, _reader(instance, "kao"), fmt="xlsx")


# ----------------------------------------------------------------------------------- web


def _client(app: FastAPI, login: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    client.get("/signin")
    done = client.post(
        "/signin",
        data={"login": login, "password": PASSWORD, "csrf_token": client.cookies[CSRF_COOKIE]},
    )
    assert done.status_code == 303
    return client


@pytest.fixture
def app(instance: Instance) -> FastAPI:
    return create_app(instance)


@pytest.fixture
def fazhi(app: FastAPI) -> Iterator[TestClient]:
    with _client(app, "fazhi") as c:
        yield c


def test_the_case_page_prints_its_inventory(
    fazhi: TestClient, instance: Instance, tmp_path: Path
) -> None:
    page = fazhi.get(f"/cases/{NUMBER}")
    assert f'action="/reports/inventory/{NUMBER}"' in page.text and "打印卷内目录" in page.text
    token = fazhi.cookies[CSRF_COOKIE]
    assert fazhi.post(f"/reports/inventory/{NUMBER}", data={"reason": "打印"}).status_code == 403
    got = fazhi.post(f"/reports/inventory/{NUMBER}", data={"reason": "打印", "csrf_token": token})
    assert got.status_code == 200 and got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == (
        f"attachment; filename=\"inventory-{NUMBER}.pdf\"; filename*=UTF-8''inventory-{NUMBER}.pdf"
    )
    assert "卷内目录" in "".join(_checked(got.content, tmp_path))
    event = _events(instance)[-1]
    assert (event.actor, event.details["to"], event.details["reason"]) == (
        "fazhi",
        "web download",
        "打印",
    )


def test_the_audit_page_prints_the_trail_it_shows(
    fazhi: TestClient, instance: Instance, tmp_path: Path
) -> None:
    own, _ = _items(instance.catalog)
    page = fazhi.get("/audit", params={"media": str(own.id)})
    assert 'action="/reports/audit"' in page.text and "打印监督日志" in page.text
    assert "Filter by one item" in fazhi.get("/audit").text
    token = fazhi.cookies[CSRF_COOKIE]
    got = fazhi.post(
        "/reports/audit",
        data={"media": str(own.id), "format": "pdf", "reason": "复核", "csrf_token": token},
    )
    assert got.status_code == 200 and got.headers["content-type"] == "application/pdf"
    assert f"audit-trail-media-{own.id}.pdf" in got.headers["content-disposition"]
    assert "复核 2026-0113" in "".join(_checked(got.content, tmp_path))
    csv_got = fazhi.post(
        "/reports/audit",
        data={"case": NUMBER, "format": "csv", "reason": "复核", "csrf_token": token},
    )
    assert csv_got.headers["content-type"].startswith("text/csv")
    assert "链校验通过" in csv_got.content.decode("utf-8-sig")


def test_the_web_refuses_the_audit_report_to_an_archivist(app: FastAPI) -> None:
    with _client(app, "zhang.wei") as client:
        assert "监督日志" not in client.get("/reports").text
        got = client.post(
            "/reports/audit",
            data={"case": NUMBER, "reason": "看看", "csrf_token": client.cookies[CSRF_COOKIE]},
        )
        assert got.status_code == 403


def test_the_compliance_downloads(
    fazhi: TestClient,
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert "/reports/compliance.xlsx" in fazhi.get("/reports").text
    printed = _cli_json(
        monkeypatch,
        capsys,
        "compliance",
        "report",
        "--department",
        "县公安局/治安大队",
        "--from",
        "2026-05",
        "--to",
        "2026-05",
    )
    got = fazhi.get(
        "/reports/compliance.xlsx",
        params={"department": "县公安局/治安大队", "from": "2026-05", "until": "2026-05"},
    )
    assert got.status_code == 200 and got.headers["content-type"] == xlsx.MEDIA_TYPE
    assert "filename*=UTF-8''compliance-" in got.headers["content-disposition"]
    book = openpyxl.load_workbook(io.BytesIO(got.content))
    rows = _sheet(book, "departments")
    assert (
        {r["department"]: {k: v for k, v in r.items() if k != "department"} for r in rows}
        == printed["departments"]
        != {}
    )
    pdf = fazhi.get("/reports/compliance.pdf", params={"from": "2026-13"})
    assert pdf.status_code == 400
    with _client(app, "kao") as officer:
        assert officer.get("/reports/compliance.pdf").status_code == 403


def test_plain_of_a_written_report_is_what_json_prints(tmp_path: Path) -> None:
    from pipeline.supervision.reports import Report, write

    written = write(Report("x.pdf", "application/pdf", b"%PDF-1.4", 1, 7), tmp_path / "x.pdf")
    assert plain(written) == {
        "path": str(tmp_path / "x.pdf"),
        "bytes": 8,
        "pages": 1,
        "sha256": hashlib.sha256(b"%PDF-1.4").hexdigest(),
        "media_type": "application/pdf",
        "event": 7,
    }
