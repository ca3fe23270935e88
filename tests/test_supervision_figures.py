"""The dashboard's figures, each in SQL and in Python, held together on a generated catalog.

As the 15-day rule's ``state_clause`` is held to ``case_state`` (tests/test_cases.py), each
figure of ``pipeline.supervision.figures`` — case files, coverage, recordings (upload
timeliness, link rate, descriptions, device use, drift), devices, trends — is computed by
the query the dashboard runs and by its twin predicates over plain rows, on SQLite and on
PostgreSQL, for several departments, officers, periods and clocks: the two must agree.
Random cases and media with a fixed seed; times kept to the millisecond.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection

from pipeline.cases.records import due_of
from pipeline.catalog import media as media_db
from pipeline.catalog import open_catalog
from pipeline.catalog import supervision as rows
from pipeline.catalog.schema import (
    assignments,
    case_officers,
    cases,
    clock_reports,
    devices,
    dock_uploads,
    ingest_jobs,
    links,
    media,
    officers,
    sightings,
    stations,
)
from pipeline.supervision import figures as f
from pipeline.supervision.figures import Bounds, Period, Scope
from tests.conftest import make_settings

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
START = datetime(2026, 9, 1, tzinfo=SH)
DEPARTMENTS = [
    "县公安局",
    "县公安局/治安大队",
    "县公安局/治安大队/一中队",
    "县公安局/治安大队二",  # begins like 治安大队, is not below it
    "县公安局/交警大队",
    "",
]
CATEGORIES = [
    "seizure",
    "forced-demolition",
    "on-site-inspection",
    "hearing",
    "evidence-collection",
]
MANDATORY = ("seizure", "forced-demolition")
SCOPES = [
    Scope(),
    Scope("县公安局"),
    Scope("县公安局/治安大队"),
    Scope("县公安局/治安大队二"),
    Scope("县公安局/交警大队"),
    Scope(officer="O03"),
    Scope("县公安局/治安大队", officer="O02"),
    Scope("县公安局/不存在"),
]


def _moment(rng: random.Random, start: datetime, days: float) -> datetime:
    """A moment within ``days`` of ``start``, to the millisecond."""
    return (start + timedelta(milliseconds=rng.randrange(int(days * 86_400_000)))).astimezone(UTC)


def generate(conn: Connection, settings: Any, seed: int = 18) -> None:
    """Officers in a department tree, devices held and not, cases of every state with
    linked recordings that cover their window or leave gaps, documents signed or not,
    recordings docked early or late (some through a pushing station's uploads), drift flags,
    clock reports and sightings."""
    rng = random.Random(seed)
    conn.execute(
        stations.insert(), [{"id": s, "root": f"/{s}", "created_at": NOW} for s in ("D1", "D2")]
    )
    people = [f"O{i:02d}" for i in range(12)]
    conn.execute(
        officers.insert(),
        [
            {
                "id": o,
                "name": f"警员{o}",
                "cert_no": f"C{o}",
                "department": DEPARTMENTS[i % len(DEPARTMENTS)],
                "roles": [],
                "updated_at": NOW,
            }
            for i, o in enumerate(people)
        ],
    )
    serials = [f"BWC{i:02d}" for i in range(16)]
    conn.execute(
        devices.insert(),
        [
            {
                "serial": s,
                "kind": "body-worn",
                "status": rng.choice(["active"] * 4 + ["lost", "repair"]),
                "updated_at": NOW,
            }
            for s in serials
        ],
    )
    held = []
    for i, s in enumerate(serials[:13]):
        ended = None if i % 5 else NOW - timedelta(days=40)  # some hand-overs ended
        held.append(
            {
                "device_serial": s,
                "officer_id": people[i % len(people)],
                "start": START,
                "end": ended,
            }
        )
    conn.execute(assignments.insert(), held)

    numbers = [f"2026-{i:04d}" for i in range(90)]
    case_values: list[dict[str, Any]] = []
    crews: list[dict[str, Any]] = []
    for i, number in enumerate(numbers):
        began: datetime | None = _moment(rng, START, 95) if i % 11 else None
        end = (
            None
            if i % 13 == 0
            else (began or _moment(rng, START, 95))
            + timedelta(minutes=rng.choice([0, 5, 30, 90]), milliseconds=rng.randrange(60_000))
        )
        due, _ = due_of(settings, end)
        archived = None
        if due is not None and rng.random() < 0.45:
            archived = due + timedelta(days=rng.choice([-10, -3, 0, 0, 1, 4]))
        case_values.append(
            {
                "number": number,
                "title": "t",
                "category": rng.choice(CATEGORIES),
                "department": rng.choice(DEPARTMENTS),
                "status": "archived" if archived else "concluded",
                "action_start": began,
                "action_end": end,
                "due": due,
                "due_provisional": False,
                "archived_on": archived,
                "updated_at": NOW,
            }
        )
        crews += [
            {"case_number": number, "officer_id": o}
            for o in rng.sample(people, rng.choice([0, 1, 2, 3]))
        ]
    conn.execute(cases.insert(), case_values)
    conn.execute(case_officers.insert(), crews)

    Rows = list[dict[str, Any]]
    media_values: Rows = []
    link_values: Rows = []
    upload_values: Rows = []
    job_values: Rows = []
    seen_values: Rows = []
    for i in range(1, 701):
        kind = rng.choice(["video"] * 4 + ["audio", "photo", "document", "other"])
        case = rng.choice(case_values)
        near = case["action_start"] if case["action_start"] and rng.random() < 0.5 else None
        begin = (
            (near - timedelta(minutes=rng.choice([0, 1, 10]))) if near else _moment(rng, START, 95)
        )
        length = rng.choice([0, 1.5, 30, 300, 3600]) + rng.randrange(1000) / 1000
        start = None if rng.random() < 0.03 else begin
        end = (
            None
            if start is None or kind == "photo" or rng.random() < 0.05
            else start + timedelta(seconds=length)
        )
        ingested = (end or start or START) + timedelta(
            hours=rng.choice([1, 12, 23.9, 24, 24.0001, 30, 200])
        )
        if ingested > NOW:
            ingested = NOW - timedelta(hours=1)
        officer = None if rng.random() < 0.15 else rng.choice(people)
        flags = rng.choice(
            [
                [],
                [],
                [],
                [{"code": "clock-drift", "message": "fast"}],
                [{"code": "unattributed", "message": "clock-drift"}],
                [
                    {"code": "device-disagreement", "message": "x"},
                    {"code": "clock-drift", "message": "slow"},
                ],
            ]
        )
        sha = hashlib.sha256(str(i).encode()).hexdigest()
        station = rng.choice(["D1", "D2"])
        media_values.append(
            {
                "id": i,
                "sha256": sha,
                "size": 10,
                "kind": kind,
                "status": rng.choice(["archived"] * 9 + ["quarantined"]),
                "original_name": f"f{i}",
                "station_id": station,
                "source_path": f"/{i}",
                "ingested_at": ingested,
                "duration_s": None
                if kind in ("photo", "document") or rng.random() < 0.05
                else length,
                "device_serial": None if kind == "document" else rng.choice([*serials[:10], None]),
                "officer_id": officer,
                "recorded_start": start,
                "recorded_end": end,
                "extra": {},
                "id_sources": {},
                "flags": flags,
                "description": rng.choice([None, "", "执法人员表明身份", "说明"]),
                "signature": rng.choice(["signed", "refusal-noted", "missing", None])
                if kind == "document"
                else None,
                "record_type": "on-site" if kind == "document" else None,
            }
        )
        for number in {case["number"] for _ in range(rng.choice([0, 0, 1, 1, 2]))} | (
            {rng.choice(numbers)} if rng.random() < 0.1 else set()
        ):
            removed = NOW if rng.random() < 0.15 else None
            link_values.append(
                {
                    "case_number": number,
                    "media_id": i,
                    "method": "rule",
                    "rule": "r",
                    "actor": "t",
                    "created_at": NOW,
                    "removed_at": removed,
                }
            )
        if rng.random() < 0.3:  # uploaded by a pushing station: its docking time reported, or not
            for k in range(rng.choice([1, 1, 2])):
                docked = (
                    None
                    if rng.random() < 0.2
                    else (end or start or START) + timedelta(hours=rng.choice([0.5, 20, 24, 48]))
                )
                upload_values.append(
                    {
                        "id": f"u{i}-{k}",
                        "station_id": rng.choice([station, station, "D1"]),
                        "sha256": sha,
                        "size": 10,
                        "received": 10,
                        "path": f"p{i}",
                        "mtime": 0.0,
                        "claim": {},
                        "docked_at": docked,
                        "state": "verified",
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                )
        for k in range(rng.choice([1, 1, 1, 2])):
            job_values.append(
                {
                    "id": len(job_values) + 1,
                    "station_id": station,
                    "source_path": f"/{i}/{k}",
                    "size": 10,
                    "mtime_ns": k,
                    "state": "done",
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            )
            at = ingested if k == 0 else NOW - timedelta(days=rng.choice([0.5, 2, 10]))
            seen_values.append(
                {
                    "media_id": i,
                    "station_id": station,
                    "source_path": f"/{i}/{k}",
                    "job_id": len(job_values),
                    "seen_at": at,
                }
            )
    # Edges: a stretch of exactly the tolerance between two recordings and after the last,
    # recordings that touch, and one that ends exactly where the window starts.
    edge = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)
    conn.execute(
        cases.insert(),
        [
            {
                **case_values[0],
                "number": n,
                "category": "seizure",
                "department": "县公安局/治安大队",
                "action_start": edge,
                "action_end": edge + timedelta(minutes=10),
                "due": due_of(settings, edge)[0],
                "archived_on": None,
            }
            for n in ("EDGE-1", "EDGE-2")
        ],
    )
    conn.execute(case_officers.insert(), [{"case_number": "EDGE-1", "officer_id": "O02"}])
    for i, (number, start, end) in enumerate(
        [
            ("EDGE-1", edge - timedelta(minutes=1), edge + timedelta(minutes=2)),
            ("EDGE-1", edge + timedelta(minutes=3), edge + timedelta(minutes=6)),
            ("EDGE-1", edge + timedelta(minutes=6), edge + timedelta(minutes=9)),
            ("EDGE-2", edge - timedelta(minutes=5), edge),
        ],
        start=701,
    ):
        media_values.append(
            {
                **media_values[0],
                "id": i,
                "sha256": f"edge{i}",
                "kind": "video",
                "status": "archived",
                "recorded_start": start,
                "recorded_end": end,
            }
        )
        link_values.append(
            {
                "case_number": number,
                "media_id": i,
                "method": "rule",
                "rule": "r",
                "actor": "t",
                "created_at": NOW,
                "removed_at": None,
            }
        )
    # The dashboard's facts as ingest keeps them: the earliest docking time the station's
    # uploads of the bytes reported, else the ingest (the Python form reads the uploads).
    reported: dict[tuple[str, str], list[datetime]] = {}
    for u in upload_values:
        if u.get("docked_at") is not None:
            reported.setdefault((u["station_id"], u["sha256"]), []).append(u["docked_at"])
    for m in media_values:
        docked = min(reported.get((m["station_id"], m["sha256"]), [m["ingested_at"]]))
        m.update(media_db.docking(docked, m["recorded_start"], m["recorded_end"]))
    conn.execute(media.insert(), media_values)
    conn.execute(links.insert(), link_values)
    conn.execute(dock_uploads.insert(), upload_values)
    conn.execute(ingest_jobs.insert(), job_values)
    conn.execute(sightings.insert(), seen_values)
    conn.execute(
        clock_reports.insert(),
        [
            {
                "station_id": "D1",
                "device_serial": rng.choice([*serials, "BWC-99"]),
                "offset_s": rng.choice([-900.0, -20.0, 0.5, 301.0, 7200.0]),
                "observed_at": _moment(rng, START, 95),
                "reported_at": NOW,
            }
            for _ in range(60)
        ],
    )


@pytest.fixture
def generated(any_catalog_url: str, tmp_path: Any) -> Any:
    settings = make_settings(tmp_path / "home", catalog={"url": any_catalog_url})
    catalog = open_catalog(any_catalog_url)
    with catalog.begin() as conn:
        generate(conn, settings)
    yield catalog, settings
    catalog.dispose()


PERIODS = [
    Period(date(2026, 9, 1), date(2026, 12, 1)),
    Period(date(2026, 10, 1), date(2026, 10, 31)),
    Period(date(2026, 11, 20), date(2026, 11, 26)),
]


def _bounds() -> list[Bounds]:
    return [f.EVER, *(p.bounds(SH) for p in PERIODS)]


def _same(sql: Any, python: Any, where: str) -> None:
    """Equal, floats to a thousandth of a second of rounding."""
    if hasattr(sql, "__dataclass_fields__"):
        for fld in fields(sql):
            _same(getattr(sql, fld.name), getattr(python, fld.name), f"{where}.{fld.name}")
    elif isinstance(sql, dict):
        assert set(sql) == set(python), where
        for key in sql:
            _same(sql[key], python[key], f"{where}[{key!r}]")
    elif isinstance(sql, tuple):
        assert len(sql) == len(python), where
        for i, (a, b) in enumerate(zip(sql, python, strict=True)):
            _same(a, b, f"{where}[{i}]")
    elif isinstance(sql, float):
        assert math.isclose(sql, python, abs_tol=0.01), where
    else:
        assert sql == python, where


def test_case_files_in_sql_and_in_python_agree(generated: Any) -> None:
    catalog, _ = generated
    with catalog.read() as conn:
        everything = rows.case_rows(conn)
        for scope in SCOPES:
            for bounds in _bounds():
                for today in (date(2026, 10, 10), date(2026, 12, 1)):
                    for pending in (False, True):
                        sql = f.case_files(conn, scope, bounds, today, 3, pending_only=pending)
                        python = f.case_files_of(
                            everything, scope, bounds, today, 3, pending_only=pending
                        )
                        _same(sql, python, f"{scope} {bounds} {today} {pending}")
        whole = f.case_files(conn, Scope(), f.EVER, date(2026, 12, 1), 3)
    total = whole.total
    assert total.concluded > 40 and total.archived_on_time and total.archived_late
    assert total.overdue and total.open and total.unsigned_records
    assert total.concluded == total.decided + total.due_soon + total.open


def test_coverage_in_sql_and_in_python_agree(generated: Any) -> None:
    catalog, _ = generated
    with catalog.read() as conn:
        everything = rows.case_rows(conn)
        for scope in SCOPES:
            for bounds in _bounds():
                for tolerance in (0.0, 60.0):
                    for pending in (False, True):
                        sql = f.coverage_figures(
                            conn, scope, bounds, MANDATORY, tolerance, pending_only=pending
                        )
                        python = f.coverage_figures_of(
                            everything, scope, bounds, MANDATORY, tolerance, pending_only=pending
                        )
                        _same(sql, python, f"{scope} {bounds} {tolerance}")
                        cases = f.coverage_cases(
                            conn, scope, bounds, MANDATORY, tolerance, pending_only=pending
                        )
                        assert sum(c.failed for c in cases) == sql.total.failed
        whole = f.coverage_figures(conn, Scope(), f.EVER, MANDATORY, 60.0).total
    assert whole.mandatory > whole.failed > 0 and whole.uncovered_s > 0, "some covered, some not"


def test_recordings_in_sql_and_in_python_agree(generated: Any) -> None:
    catalog, _ = generated
    with catalog.read() as conn:
        everything = rows.media_rows(conn)
        for scope in SCOPES:
            for bounds in _bounds():
                for hours in (1.0, 24.0):
                    sql = f.recordings(conn, scope, bounds, hours * 3600)
                    python = f.recordings_of(everything, scope, bounds, hours * 3600)
                    _same(sql, python, f"{scope} {bounds} {hours}")
        whole = f.recordings(conn, Scope(), f.EVER, 24 * 3600).total
    assert 0 < whole.on_time < whole.recordings and 0 < whole.linked < whole.recordings
    assert 0 < whole.undescribed < whole.av and whole.drifted > 0 and whole.seconds > 0


def test_devices_in_sql_and_in_python_agree(generated: Any) -> None:
    catalog, _ = generated
    with catalog.read() as conn:
        everything = rows.device_rows(conn)
        reports = rows.clock_report_rows(conn)
        for scope in SCOPES:
            for bounds in _bounds():
                for now, days in ((NOW, 3), (NOW, 1), (NOW - timedelta(days=20), 5)):
                    sql = f.device_figures(conn, scope, now, days, bounds, 300.0)
                    python = f.device_figures_of(
                        everything, reports, scope, now, days, bounds, 300.0
                    )
                    _same(sql, python, f"{scope} {bounds} {now} {days}")
        whole = f.device_figures(conn, Scope(), NOW, 1, f.EVER, 300.0)
    assert whole.active and whole.not_docked and whole.drift_reported


def test_trends_in_sql_and_in_python_agree(generated: Any) -> None:
    catalog, _ = generated
    with catalog.read() as conn:
        case_rows, media_rows = rows.case_rows(conn), rows.media_rows(conn)
        for scope in SCOPES:
            for end in (date(2026, 11, 30), date(2026, 10, 15)):
                sql = f.trends(conn, scope, end, SH, date(2026, 12, 1), 3, 24 * 3600)
                python = f.trends_of(
                    case_rows, media_rows, scope, end, SH, date(2026, 12, 1), 3, 24 * 3600
                )
                _same(sql, python, f"{scope} {end}")
        found = f.trends(conn, Scope(), date(2026, 11, 30), SH, date(2026, 12, 1), 3, 24 * 3600)
    assert len(found.weeks) == 8 and len(found.months) == 2
    assert found.weeks[-1].period == Period(date(2026, 11, 24), date(2026, 11, 30))
    assert found.months[0].period == Period(date(2026, 10, 2), date(2026, 10, 31))
    assert sum(w.recordings.recordings for w in found.weeks) > 0


def test_a_period_is_its_local_days() -> None:
    bounds = Period(date(2026, 11, 1), date(2026, 11, 30)).bounds(SH)
    assert bounds.lo == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
    assert bounds.hi == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert bounds.holds(bounds.lo) and not bounds.holds(bounds.hi)
    assert f.in_tree("县公安局/治安大队/一中队", "县公安局/治安大队")
    assert not f.in_tree("县公安局/治安大队二", "县公安局/治安大队")


def test_migration_0013_keeps_each_items_docking_time_on_its_row(any_catalog_url: str) -> None:
    """Rows made before 0013 get the docking time the dashboard found from the uploads (the
    earliest its station reported, else the ingest) and the delay to it, as ingest keeps
    them now (``media_db.docking``)."""
    from alembic import command
    from sqlalchemy import create_engine, select

    from pipeline.catalog.db import _alembic_config

    ended = datetime(2026, 11, 1, 8, 0, 0, 250000, tzinfo=UTC)
    ingested = ended + timedelta(days=3)
    pushed = [ended + timedelta(hours=30), ended + timedelta(hours=5, milliseconds=1)]
    engine = create_engine(any_catalog_url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0012")
        conn.execute(stations.insert(), [{"id": s, "root": f"/{s}", "created_at": NOW} for s in ("D1", "D2")])  # fmt: skip
        common = {"size": 1, "kind": "video", "status": "archived", "source_path": "/x", "ingested_at": ingested}  # fmt: skip
        conn.execute(
            media.insert(),
            [
                {
                    **common,
                    "id": 1,
                    "sha256": "a" * 64,
                    "original_name": "pushed",
                    "station_id": "D2",
                    "recorded_start": ended - timedelta(minutes=5),
                    "recorded_end": ended,
                },
                {
                    **common,
                    "id": 2,
                    "sha256": "b" * 64,
                    "original_name": "dumped",
                    "station_id": "D1",
                    "recorded_start": ended,
                    "recorded_end": None,
                },
                {
                    **common,
                    "id": 3,
                    "sha256": "c" * 64,
                    "original_name": "no time",
                    "station_id": "D1",
                    "recorded_start": None,
                    "recorded_end": None,
                },
            ],
        )
        upload = {"station_id": "D2", "sha256": "a" * 64, "size": 1, "received": 1, "mtime": 0, "claim": {}, "state": "verified", "created_at": NOW, "updated_at": NOW}  # fmt: skip
        conn.execute(
            dock_uploads.insert(),
            [
                {**upload, "id": f"u{i}", "path": f"p{i}", "docked_at": at}
                for i, at in enumerate(pushed)
            ],
        )
        # Another station's upload of the same bytes is not this item's docking.
        conn.execute(dock_uploads.insert(), [{**upload, "id": "u9", "path": "p9", "station_id": "D1", "sha256": "b" * 64, "docked_at": ended}])  # fmt: skip
        command.upgrade(_alembic_config(conn), "0013")
        found = {
            r.id: (r.docked_at, r.dock_delay_s)
            for r in conn.execute(select(media.c.id, media.c.docked_at, media.c.dock_delay_s))
        }
    engine.dispose()
    first = min(pushed)
    assert found[1][0].replace(tzinfo=UTC) == first
    assert found[1][1] == pytest.approx((first - ended).total_seconds(), abs=0.0015)
    assert found[2][0].replace(tzinfo=UTC) == ended  # its own station's report: D1's upload
    assert found[2][1] == 0.0
    assert found[3][0].replace(tzinfo=UTC) == ingested and found[3][1] is None
