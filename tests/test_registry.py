"""Registry changes and bulk import/export: validation with file and line, idempotent
re-imports, overlapping assignments refused, every change a custody event."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.catalog import Catalog
from pipeline.catalog import registry as rows
from pipeline.custody import log as custody
from pipeline.errors import NotFound, RegistryError
from pipeline.models import Device, DeviceKind, DeviceStatus, EventKind, Officer
from pipeline.registry import bulk as registry_io
from pipeline.registry import records as registry
from tests.conftest import REPO

SH = ZoneInfo("Asia/Shanghai")


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


@pytest.fixture
def officer_and_device(catalog: Catalog) -> None:
    with catalog.begin() as conn:
        registry.save_officer(conn, Officer("1023", "张伟", "62010023001", "市场监管"), "A001")
        registry.save_officer(conn, Officer("1088", "李娜", "62010023017"), "A001")
        registry.save_device(conn, Device("BWC0017", DeviceKind.BODY_WORN), "A001")


def test_changes_are_custody_events_and_saving_the_same_changes_nothing(catalog: Catalog) -> None:
    d = Device("BWC0017", DeviceKind.BODY_WORN, vendor="ZFJLY")
    with catalog.begin() as conn:
        assert registry.save_device(conn, d, "A001").action == "added"
        assert registry.save_device(conn, d, "A001").action == "unchanged"
        assert (
            registry.save_device(
                conn, Device("BWC0017", DeviceKind.BODY_WORN, vendor="X"), "A002"
            ).action
            == "changed"
        )
        evs = [e for e in custody.events(conn) if e.kind is EventKind.REGISTRY_CHANGED]
    assert [(e.actor, e.details["action"]) for e in evs] == [("A001", "added"), ("A002", "changed")]
    assert (
        evs[1].details["before"]["vendor"] == "ZFJLY" and evs[1].details["after"]["vendor"] == "X"
    )


@pytest.mark.usefixtures("officer_and_device")
def test_overlapping_assignments_of_one_device_are_refused(catalog: Catalog) -> None:
    with catalog.begin() as conn:
        registry.save_assignment(
            conn, "BWC0017", "1023", _t("2026-11-01T08:00"), _t("2026-11-10T08:00"), "A001"
        )
        # Back to back is fine: intervals are half-open.
        registry.save_assignment(conn, "BWC0017", "1088", _t("2026-11-10T08:00"), None, "A001")
    with (
        pytest.raises(RegistryError, match="already assigned to officer 1088"),
        catalog.begin() as conn,
    ):
        registry.save_assignment(conn, "BWC0017", "1023", _t("2026-11-20T08:00"), None, "A001")
    with (
        pytest.raises(RegistryError, match="already assigned to officer 1023"),
        catalog.begin() as conn,
    ):
        registry.save_assignment(
            conn, "BWC0017", "1088", _t("2026-11-09T08:00"), _t("2026-11-09T09:00"), "A001"
        )
    with pytest.raises(RegistryError, match="ends before it starts"), catalog.begin() as conn:
        registry.save_assignment(
            conn, "BWC0017", "1088", _t("2026-12-09T08:00"), _t("2026-12-01T08:00"), "A001"
        )
    with pytest.raises(NotFound, match="officer not found: 9999"), catalog.begin() as conn:
        registry.save_assignment(conn, "BWC0017", "9999", _t("2026-12-09T08:00"), None, "A001")
    with catalog.begin() as conn:
        ended = registry.end_assignment(conn, "BWC0017", _t("2026-11-15T18:00"), "A001")
        assert ended.officer_id == "1088"
        assert [(a.officer_id, a.end) for a in rows.device_assignments(conn, "BWC0017")] == [
            ("1023", _t("2026-11-10T08:00")),
            ("1088", _t("2026-11-15T18:00")),
        ]


def test_a_certificate_number_belongs_to_one_officer(catalog: Catalog) -> None:
    with catalog.begin() as conn:
        registry.save_officer(conn, Officer("1023", "张伟", "62010023001"), "A001")
    with pytest.raises(RegistryError, match="belongs to officer 1023"), catalog.begin() as conn:
        registry.save_officer(conn, Officer("2000", "赵六", "62010023001"), "A001")


def test_lost_status_raises_an_alert(catalog: Catalog, officer_and_device: None) -> None:
    registry.set_status(catalog, "BWC0017", DeviceStatus.LOST, "1088", "reported lost 2026-11-02")
    with catalog.begin() as conn:
        assert rows.device(conn, "BWC0017").status is DeviceStatus.LOST  # type: ignore[union-attr]
        alert = [e for e in custody.events(conn) if e.kind is EventKind.ALERT][-1]
    assert alert.details == {"code": "device-lost", "reason": "reported lost 2026-11-02"}


def test_registry_changes_are_made_by_a_registered_officer(
    catalog: Catalog, officer_and_device: None, tmp_path: Path
) -> None:
    """Anyone could claim to be anyone: `--as` named an actor nobody registered."""
    with pytest.raises(RegistryError, match="not a registered officer"):
        registry.set_status(catalog, "BWC0017", DeviceStatus.LOST, "nobody", "x")
    with pytest.raises(RegistryError, match="needs a named actor"):
        registry_io.apply(catalog, registry_io.read_file(_example(tmp_path), SH), tmp_path, "")
    from pipeline.registry.stations import add_station

    with pytest.raises(RegistryError, match="not a registered officer"):
        add_station(catalog, "D9", tmp_path, "system")
    assert add_station(catalog, "D9", tmp_path, "1023").id == "D9"


def _example(tmp_path: Path) -> Path:
    """The shipped example, with its station folder pointed at a folder that exists here."""
    dock = tmp_path / "DOCK-01"
    dock.mkdir()
    text = (REPO / "config/registry.example.yaml").read_text(encoding="utf-8")
    path = tmp_path / "registry.yaml"
    path.write_text(text.replace("/srv/docks/DOCK-01", str(dock)), encoding="utf-8")
    return path


def test_the_example_imports_and_a_re_import_changes_nothing(
    catalog: Catalog, tmp_path: Path
) -> None:
    path = _example(tmp_path)
    first = registry_io.apply(catalog, registry_io.read_file(path, SH), path, "A001")
    assert {c.action for c in first} == {"added"} and len(first) == 1 + 3 + 3 + 4
    with catalog.begin() as conn:
        seq = next(iter(reversed(list(custody.events(conn))))).seq
    again = registry_io.apply(catalog, registry_io.read_file(path, SH), path, "A001")
    assert {c.action for c in again} == {"unchanged"}
    with catalog.begin() as conn:
        assert list(custody.events(conn))[-1].seq == seq, "no custody event for no change"
        held = rows.device_assignments(conn, "BWC0022")
    assert [(a.officer_id, a.start, a.end) for a in held] == [
        ("1088", _t("2026-11-01T08:00"), _t("2026-11-27T12:00")),
        ("1023", _t("2026-11-27T12:00"), None),
    ]


def test_export_round_trips_through_yaml_and_csv(catalog: Catalog, tmp_path: Path) -> None:
    path = _example(tmp_path)
    registry_io.apply(catalog, registry_io.read_file(path, SH), path, "A001")
    tables = registry_io.export_tables(catalog)
    out = tmp_path / "out.yaml"
    out.write_text(registry_io.to_yaml(tables), encoding="utf-8")
    assert {
        c.action for c in registry_io.apply(catalog, registry_io.read_file(out, SH), out, "A001")
    } == {"unchanged"}
    for csv_file in registry_io.write_csv(tables, tmp_path / "csv"):
        changes = registry_io.apply(catalog, registry_io.read_file(csv_file, SH), csv_file, "A001")
        assert {c.action for c in changes} <= {"unchanged"}, csv_file.name
    assert (
        (tmp_path / "csv/officers.csv")
        .read_text(encoding="utf-8")
        .splitlines()[3]
        .endswith("legal-reviewer;archivist")
    )


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "bad.yaml",
            "devices:\n  - serial: X1\n    kind: toaster\n",
            ["bad.yaml:2: devices: 'toaster' is not a valid DeviceKind"],
        ),
        (
            "bad.yaml",
            "officers:\n  - id: '1'\n    name: A\n  - id: '2'\n    name: B\n    cert_no: '9'\n    colour: red\n",
            [
                "bad.yaml:2: officers: missing cert_no",
                "bad.yaml:4: officers: unknown field(s) colour",
            ],
        ),
        ("bad.yaml", "devices: [serial: X\n", ["bad.yaml:2: not valid YAML"]),
        ("bad.yaml", "gadgets:\n  - a: 1\n", ["bad.yaml:1: unknown section 'gadgets'"]),
        (
            "bad.yaml",
            "assignments:\n  - device: X\n    officer: '1'\n    from: yesterday\n",
            ["bad.yaml:2: assignments: from 'yesterday' is not a date-time"],
        ),
        (
            "bad.csv",
            "serial,kind,status\nBWC1,body-worn,active\nBWC2,body-worn,stolen\n",
            ["bad.csv:3: devices: 'stolen' is not a valid DeviceStatus"],
        ),
        ("bad.csv", "name,colour\nA,red\n", ["bad.csv:1: header name, colour matches no table"]),
        (
            "bad.csv",
            "serial,kind\nBWC1,body-worn,extra\n",
            ["bad.csv:2: more cells than header columns"],
        ),
        ("bad.txt", "x", ["give a .yaml, .yml or .csv file"]),
    ],
)
def test_bad_files_name_file_and_line(
    tmp_path: Path, name: str, text: str, expected: list[str]
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RegistryError) as caught:
        registry_io.read_file(path, SH)
    for fragment in expected:
        assert fragment in str(caught.value)


def test_a_refused_record_stops_the_whole_import_naming_its_line(
    catalog: Catalog, tmp_path: Path
) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "officers:\n  - {id: '1', name: A, cert_no: '11'}\n  - {id: '2', name: B, cert_no: '22'}\n"
        "devices:\n  - {serial: D1, kind: body-worn}\n"
        "assignments:\n  - {device: D1, officer: '1', from: 2026-11-01T08:00}\n"
        "  - {device: D1, officer: '2', from: 2026-11-02T08:00}\n",
        encoding="utf-8",
    )
    with pytest.raises(
        RegistryError, match=r"r\.yaml:8: assignments: device D1 is already assigned"
    ):
        registry_io.apply(catalog, registry_io.read_file(path, SH), path, "A001")
    with catalog.begin() as conn:
        assert rows.all_officers(conn) == [] and rows.all_devices(conn) == [], "all or nothing"


def test_an_import_reports_every_problem_as_a_structured_list(tmp_path: Path) -> None:
    """A page shows the problems of an import as a table: file, line, section, field, message
    (it was one joined message)."""
    from pipeline.errors import RecordProblem, RegistryFileError

    path = tmp_path / "devices.csv"
    path.write_text(
        "serial,kind,clock_offset_s\nB1,toaster,0\nB2,body-worn,.inf\nB1,body-worn,0\n",
        encoding="utf-8",
    )
    with pytest.raises(RegistryFileError) as raised:
        registry_io.read_file(path, SH)
    problems = raised.value.problems
    assert [(p.line, p.section, p.field) for p in problems] == [
        (2, "devices", None),
        (3, "devices", "clock_offset_s"),
    ]
    assert all(isinstance(p, RecordProblem) and p.file == str(path) for p in problems)
    assert str(raised.value).startswith(f"2 problem(s) in {path}:\n{path}:2: devices:")
