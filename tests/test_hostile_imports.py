"""Hostile and careless input to the importers, the registry and the query parser: every
problem is one clean error naming the file, the line and the field, never a traceback, and
nothing that would hurt later (a NUL in a serial, a year-9999 deadline, an offset of 1e300)
gets into the catalog."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline import tabular
from pipeline.cases import bulk as case_io
from pipeline.cases.categories import load_categories
from pipeline.catalog import Catalog
from pipeline.catalog import registry as rows
from pipeline.catalog.schema import media
from pipeline.errors import CaseError, QueryError, RegistryError
from pipeline.models import Device, DeviceKind, Officer
from pipeline.registry import bulk as registry_io
from pipeline.registry import records as registry
from pipeline.search.query import Span, parse
from pipeline.search.run import search
from pipeline.settings import Settings
from tests.test_search import generate

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
EVIDENCE = [sys.executable, "-m", "interfaces.cli"]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _registry_error(path: Path) -> str:
    with pytest.raises(RegistryError) as caught:
        registry_io.read_file(path, SH)
    return str(caught.value)


def _case_error(path: Path) -> str:
    with pytest.raises(CaseError) as caught:
        case_io.read_file(path, SH)
    return str(caught.value)


# ------------------------------------------------------------------------ bounded input


def test_deeply_nested_yaml_is_refused_at_its_line(tmp_path: Path) -> None:
    deep = "officers:\n  - {id: '1', name: a, cert_no: c}\n  - id: " + "[" * 5000 + "]" * 5000
    path = _write(tmp_path, "deep.yaml", deep + "\n")
    assert "deep.yaml:3: nested deeper than" in _registry_error(path)
    cases = _write(tmp_path, "deep-cases.yaml", "cases:\n  - title: " + "{a: " * 900 + "\n")
    assert "deep-cases.yaml:2: nested deeper than" in _case_error(cases)


def test_a_huge_csv_cell_names_file_line_and_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "officers.csv",
        "id,name,cert_no\n1,张伟,c1\n2," + "x" * (5 << 20) + ",c2\n3,李娜,c3\n",
    )
    assert "officers.csv:3: officers: name: a cell holds more than" in _registry_error(path)
    # Below the csv module's limit but above the import's: named the same way, YAML too.
    long = "y" * 70_000
    assert "long.csv:2: officers: name: a cell holds more than" in _registry_error(
        _write(tmp_path, "long.csv", f"id,name,cert_no\n1,{long},c1\n")
    )
    assert "long.yaml:2: officers: name: a cell holds more than" in _registry_error(
        _write(tmp_path, "long.yaml", f"officers:\n  - {{id: '1', name: {long}, cert_no: c}}\n")
    )


def test_a_huge_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as f:
        f.truncate(tabular.MAX_FILE_BYTES + 1)
    assert "huge.yaml: larger than" in _registry_error(path)


@pytest.mark.parametrize(
    "offset", [".inf", "-.inf", ".nan", "1e300", "315576001", "1" * 400, "1" * 5000, "soon"]
)
def test_clock_offsets_are_finite_and_within_ten_years(tmp_path: Path, offset: str) -> None:
    path = _write(
        tmp_path,
        "devices.yaml",
        f"devices:\n  - {{serial: B1, kind: body-worn, clock_offset_s: {offset}}}\n",
    )
    assert re.search(
        r"devices\.yaml:2: devices: (device B1: )?clock_offset_s", _registry_error(path)
    )


def test_clock_offset_bounds_hold_for_devices_added_by_hand(catalog: Catalog) -> None:
    with catalog.begin() as conn:
        for offset in (float("inf"), float("nan"), 1e300):
            with pytest.raises(RegistryError, match=r"device B1: clock_offset_s"):
                registry.save_device(
                    conn, Device("B1", DeviceKind.BODY_WORN, clock_offset_s=offset), "A001"
                )
        ten_years = registry.MAX_CLOCK_OFFSET_S
        assert registry.save_device(conn, Device("B1", DeviceKind.BODY_WORN, clock_offset_s=-ten_years), "A001").action == "added"  # fmt: skip


@pytest.mark.parametrize("roles", ["[1]", "[[archivist]]", "{a: b}", "[chief]"])
def test_roles_must_be_known_text(tmp_path: Path, roles: str) -> None:
    path = _write(
        tmp_path, "o.yaml", f"officers:\n  - {{id: '1', name: a, cert_no: c, roles: {roles}}}\n"
    )
    assert "o.yaml:2: officers: roles" in _registry_error(path)


def test_non_text_keys_and_huge_integers_are_clean_errors(tmp_path: Path) -> None:
    keys = _write(tmp_path, "k.yaml", "officers:\n  - {1: x, id: '1', name: a, cert_no: c}\n")
    assert "k.yaml:2: officers: field names must be text" in _registry_error(keys)
    digits = _write(tmp_path, "d.yaml", "officers:\n  - {id: " + "9" * 5000 + ", name: a}\n")
    assert "d.yaml:2:" in _registry_error(digits)
    loop = _write(tmp_path, "loop.yaml", "officers:\n  - {id: '1', name: a, cert_no: c, roles: &r [*r]}\n")  # fmt: skip
    assert "loop.yaml:2: not valid YAML: found unconstructable recursive node" in (
        _registry_error(loop)
    )


# --------------------------------------------------------------- duplicates and characters


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "officers:\n  - {id: '1', name: a, cert_no: c1}\n  - {id: '1', name: b, cert_no: c2}\n",
            "r.yaml:3: officers: id 1 is already given at line 2",
        ),
        (
            "devices:\n  - {serial: B1, kind: body-worn}\n  - {serial: B1, kind: fixed-camera}\n",
            "r.yaml:3: devices: serial B1 is already given at line 2",
        ),
        (
            "stations:\n  - {id: S1, root: /a}\n  - {id: S1, root: /b}\n",
            "r.yaml:3: stations: id S1 is already given at line 2",
        ),
        (
            "assignments:\n  - {device: B1, officer: '1', from: 2026-01-01T08:00}\n"
            "  - {device: B1, officer: '2', from: 2026-01-01T08:00}\n",
            "r.yaml:3: assignments: device B1 from 2026-01-01T08:00:00+08:00 is already given",
        ),
    ],
)
def test_duplicate_ids_in_one_file_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _registry_error(_write(tmp_path, "r.yaml", text))


def test_duplicate_ids_in_csv_and_case_files_are_refused(tmp_path: Path) -> None:
    csv_file = _write(tmp_path, "o.csv", "id,name,cert_no\n1,a,c1\n2,b,c2\n1,c,c3\n")
    assert "o.csv:4: officers: id 1 is already given at line 2" in _registry_error(csv_file)
    cases = _write(
        tmp_path,
        "c.yaml",
        "cases:\n  - {number: X-1, title: a, category: seizure}\n"
        "  - {number: X-1, title: b, category: seizure}\n",
    )
    assert "c.yaml:3: cases: number X-1 is already given at line 2" in _case_error(cases)


def test_duplicate_yaml_keys_and_sections_are_refused(tmp_path: Path) -> None:
    key = _write(tmp_path, "k.yaml", "officers:\n  - id: '1'\n    name: a\n    name: b\n")
    assert "k.yaml:4: not valid YAML: duplicate key 'name'" in _registry_error(key)
    section = _write(
        tmp_path,
        "s.yaml",
        "officers:\n  - {id: '1', name: a, cert_no: c}\nofficers:\n  - {id: '2', name: b, cert_no: d}\n",
    )
    assert "s.yaml:3: section officers is given twice (first at 1)" in _registry_error(section)


@pytest.mark.parametrize(
    ("cell", "field"),
    [('"B\\0X"', "serial"), ('"B\\x1b[2JX"', "serial"), ('"B\\u009bX"', "vendor")],
)
def test_control_characters_are_refused_in_any_field(tmp_path: Path, cell: str, field: str) -> None:
    other = "B1" if field != "serial" else cell
    vendor = cell if field == "vendor" else "ZFJLY"
    path = _write(
        tmp_path,
        "c.yaml",
        f"devices:\n  - {{serial: {other}, kind: body-worn, vendor: {vendor}}}\n",
    )
    assert f"c.yaml:2: devices: {field}: control character" in _registry_error(path)


def test_a_nul_in_a_csv_cell_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"serial,kind\nB1,body-worn\nB\x002,body-worn\n")
    assert "d.csv:3: devices: serial: control character" in _registry_error(path)


@pytest.mark.parametrize(
    ("serial", "problem"),
    [
        ("A/B", "'/'"),
        ("..", "'.'"),
        (".hidden", "'.'"),
        ("B\x00X", "control character"),
        ("B\u202eX", "control character"),
        ("B\nX", "control character"),
        (" B1", "space"),
        ('B"1', "'\"'"),
        ("B" * 65, "longer than 64"),
        ("", "empty"),
    ],
)
def test_identifiers_have_a_validated_character_set(
    catalog: Catalog, serial: str, problem: str
) -> None:
    with catalog.begin() as conn:
        with pytest.raises(RegistryError, match="device") as caught:
            registry.save_device(conn, Device(serial, DeviceKind.BODY_WORN), "A001")
        assert problem in str(caught.value)
        with pytest.raises(RegistryError, match="officer") as caught:
            registry.save_officer(conn, Officer(serial, "张伟", "6201"), "A001")
        assert problem in str(caught.value)
        with pytest.raises(RegistryError, match="certificate"):
            registry.save_officer(conn, Officer("1023", "张伟", serial or "\x00"), "A001")
        assert rows.all_devices(conn) == [] and rows.all_officers(conn) == []
        # What recorders and agencies use is fine: letters, digits, '-', '_', '.', CJK.
        for ok in ("BWC0017", "DSJ-A9_12.3", "执法仪-01"):
            registry.save_device(conn, Device(ok, DeviceKind.BODY_WORN), "A001")


def test_an_import_names_the_record_with_a_bad_identifier(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.yaml", "devices:\n  - {serial: ../../keys, kind: body-worn}\n")
    assert "d.yaml:2: devices: device '../../keys': an identifier cannot hold '/'" in (
        _registry_error(path)
    )


# ---------------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("9999-12-31T23:00", "9999-12-31T23:30"),
        ("2026-01-01T08:00", "2200-01-01T00:00"),
        ("1969-12-31T00:00", "2026-01-01T00:00"),
        ("0001-01-01T00:00:00+08:00", "2026-01-01T00:00"),
        ('"9999-12-31T23:59"', '"9999-12-31T23:59"'),
    ],
)
def test_case_dates_outside_1970_to_2200_are_refused(tmp_path: Path, start: str, end: str) -> None:
    path = _write(
        tmp_path,
        "c.yaml",
        f"cases:\n  - {{number: X, title: t, category: seizure, start: {start}, end: {end}}}\n",
    )
    assert "c.yaml:2: cases:" in (message := _case_error(path))
    assert "between 1970 and 2200" in message


def test_assignment_dates_are_bounded_too(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "a.csv", "device,officer,from,to\nB1,1,2026-01-01T08:00,9999-12-31T00:00\n"
    )
    assert "a.csv:2: assignments: to" in (message := _registry_error(path))
    assert "between 1970 and 2200" in message


@pytest.mark.parametrize("status", ["archived", "concluded"])
def test_an_import_cannot_set_a_status_that_needs_an_action(tmp_path: Path, status: str) -> None:
    path = _write(
        tmp_path,
        "c.yaml",
        f"cases:\n  - {{number: X, title: t, category: seizure, status: {status}}}\n",
    )
    message = _case_error(path)
    assert "c.yaml:2: cases: status" in message
    assert f"evidence cases {'archive' if status == 'archived' else 'conclude'}" in message


@pytest.mark.usefixtures("catalog")
def test_concluded_with_an_end_is_what_concluding_records(
    catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        "c.yaml",
        "cases:\n  - {number: X, title: t, category: seizure, end: 2026-11-27T10:00, status: concluded}\n",
    )
    done = case_io.apply(
        catalog, case_io.read_file(path, SH), path, "A001", settings, load_categories(settings), T0
    )
    assert done == [("cases", "X", "added")]


def test_case_file_errors_are_case_errors(tmp_path: Path) -> None:
    """tabular raised CaseError(message) without the case argument: a TypeError traceback."""
    assert "x.yaml:1: unknown section 'people'" in _case_error(
        _write(tmp_path, "x.yaml", "people:\n  - {a: b}\n")
    )
    assert "x.txt: give a .yaml, .yml or .csv file" in _case_error(_write(tmp_path, "x.txt", ""))
    assert "x.csv:1: header" in _case_error(_write(tmp_path, "x.csv", "a,b\n1,2\n"))


# ---------------------------------------------------------------------------------- queries


@pytest.mark.parametrize(
    "text",
    [
        "recorded:9999-12-31",
        "ingested:0001-01-01",
        "recorded:9999",
        "recorded:9999-12",
        "recorded:9999-Q4",
        "recorded:..9999-12-31",
        "recorded:0001-01-01..",
        "recorded:0001-01-01T00:00+14:00",
        "recorded:0001-01-01T00+14:00",
        "recorded:9999-12-31T23-12:00",
        "recorded:9999-12-31T23:59:59-12:00..",
        "recorded:..0001-01-01T00+14:00",
    ],
)
def test_dates_at_the_ends_of_the_calendar_parse(text: str) -> None:
    (term,) = parse(text, SH).terms
    assert all(isinstance(v, Span) for v in term.values)


@pytest.mark.parametrize("text", ["recorded:2026+99:00", "recorded:2026-05-05T08-25:00"])
def test_impossible_zones_are_query_errors(text: str) -> None:
    with pytest.raises(QueryError, match="not a date"):
        parse(text, SH)


def test_huge_sizes_are_query_errors() -> None:
    with pytest.raises(QueryError, match="size"):
        parse("size:" + "9" * 400, SH)


def test_searches_at_the_ends_of_the_calendar_find_what_is_there(catalog: Catalog) -> None:
    with catalog.begin() as conn:
        generate(conn, 40, seed=3)
        # Clocks of broken recorders: the first and the last moment a datetime holds.
        first = datetime(1, 1, 1, 0, 0, tzinfo=UTC)
        last = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
        conn.execute(media.update().where(media.c.id == 1).values(recorded_start=first))
        conn.execute(media.update().where(media.c.id == 2).values(recorded_start=last))

        def found(text: str) -> set[int]:
            return {i.id for i in search(conn, parse(text, SH), limit=100).items}

        assert found("recorded:9999-12-31") == {2}, "the local day 9999-12-31 holds it"
        assert found("recorded:0001-01-01") == {1}, "that local day begins in year 0 in UTC"
        assert found("recorded:0001-01-01T09..0001-01-02") == set()
        assert found("recorded:9999-12-31T23:59:59-12:00..") == set()
        assert found("ingested:0001-01-01") == set()
        assert 2 in found("recorded:2027..") and 1 in found("recorded:..1999")


def test_cli_imports_and_searches_end_in_one_clean_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_")}
    env["EVIDENCE_HOME"] = str(tmp_path / "home")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*EVIDENCE, *args], env=env, capture_output=True, text=True, timeout=120
        )

    assert run("init").returncode == 0
    deep = _write(tmp_path, "deep.yaml", "devices:\n  - serial: " + "[" * 3000 + "\n")
    cases = _write(
        tmp_path,
        "cases.yaml",
        "cases:\n  - {number: X, title: t, category: seizure, status: archived}\n",
    )
    results: list[tuple[tuple[str, ...], str]] = [
        (("devices", "import", str(deep)), f"error (registry): {deep}:2: nested deeper than"),
        (("cases", "import", str(cases)), f"error (case): 1 problem(s) in {cases}:"),
        (("devices", "add", "A/B"), "error (registry): device 'A/B': an identifier cannot hold"),
        (("devices", "add", "B1", "--clock-offset", "1e300"), "error (registry): device B1"),
    ]
    for args, start in results:
        done = run(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert done.stderr.startswith(start), (args, done.stderr)
        assert "Traceback" not in done.stderr
    for query in ("recorded:9999-12-31", "ingested:0001-01-01"):
        done = run("search", query, "--json")
        assert done.returncode == 0 and '"items": []' in done.stdout, done.stderr
