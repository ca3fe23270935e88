"""The compliance dashboard's queries at 1M media items and 100k cases, p95 per figure, on
SQLite and, when one answers, on PostgreSQL.

    python -m benchmarks.dashboard                          # 1M items, 100k cases, 20 runs
    python -m benchmarks.dashboard --items 100000 --cases 10000 --repeats 10 --postgres ''

A fresh catalog (as ``benchmarks.queries`` makes it: migrated to 0004, filled in bulk, then
migrated to the newest, which builds the search index) holds a year of an agency: 500
officers in 8 brigades of 3 squads each (``县公安局/大队k/中队j``), two recorders each held
by its officer, media of every kind with descriptions (70 %), text records signed or not,
clock-drift flags (2 %), a sighting per item and repeated ones (5 %), a fifth of the items
pushed by a station that reports its docking time, clock reports; and case files anchored on
recordings (their action window around one), each linked to that one and the 0–4 items
after it (what the linking rule finds: the records of the act, recorded then, which ids that
rise with time keep close), a third of them of a mandatory category, most archived, on time
or late.

Each figure of ``pipeline.supervision.figures`` is then timed as the dashboard runs it (its
SQL form, in a read transaction of its own), ``repeats`` times for a squad, for a brigade
and for the whole agency, another one and another 30-day period each time; and the whole
dashboard use case. Target: p95 < 300 ms per figure.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.queries import (
    YEAR,
    _copy_postgres,
    _insert_sqlite,
    _migrate_to,
    _postgres_catalog,
    _server,
    _sha,
    _sqlite_catalog,
    _stamp,
    _Table,
    _vacuum_analyze,
)
from benchmarks.report import Figure, Result, Target
from benchmarks.workbench import POSTGRES_ADMIN, postgres_unreachable
from pipeline.cases.categories import load_categories
from pipeline.catalog import Catalog
from pipeline.catalog.db import upgrade
from pipeline.instance import Instance
from pipeline.settings import load_settings
from pipeline.supervision import alerts, usecases
from pipeline.supervision import figures as f
from pipeline.supervision.figures import Period, Scope

NUMBER, NAME = 9, "dashboard queries"
TARGET_P95_MS = 300.0
BRIGADES, SQUADS = 8, 3
TOP = "县公安局"
MANDATORY = ("seizure", "forced-demolition")
OTHERS = ("on-site-inspection", "evidence-collection", "hearing", "service-of-documents")
NOW = datetime(2027, 1, 1, 4, 0, tzinfo=UTC)  # noon on New Year's Day: the year is over


def _unit(i: int) -> str:
    return f"{TOP}/大队{i % BRIGADES}/中队{(i // BRIGADES) % SQUADS}"


def generate(catalog: Catalog, items: int, n_cases: int, seed: int = 9) -> list[str]:
    """Fill a catalog at revision 0004 (see the module docstring); the units made."""
    rng = random.Random(seed)
    n_officers = max(20, items // 2000)
    people = [str(1000 + i) for i in range(n_officers)]
    serials = [f"BWC{i:05d}" for i in range(2 * n_officers)]
    now = _stamp(NOW)
    seconds = sorted(rng.randrange(365 * 86400) for _ in range(items))
    kinds = [rng.choice(("video",) * 6 + ("audio", "photo", "photo", "document")) for _ in seconds]
    lengths = [rng.uniform(10, 1800) if k in ("video", "audio") else 0.0 for k in kinds]
    holder = [rng.randrange(n_officers) for _ in seconds]
    pushed = {i for i in range(1, items + 1) if rng.random() < 0.2}
    av = [i for i in range(1, items + 1) if kinds[i - 1] in ("video", "audio")]
    anchors = rng.sample(av, min(n_cases, len(av)))

    def start(i: int) -> datetime:
        return YEAR + timedelta(seconds=seconds[i - 1])

    def media_rows() -> Iterator[tuple[Any, ...]]:
        for i in range(1, items + 1):
            kind, officer = kinds[i - 1], holder[i - 1]
            begun = start(i)
            ended = begun + timedelta(seconds=lengths[i - 1])
            docked = ended + timedelta(hours=rng.choice((0.5, 2, 8, 20, 23, 30, 50, 96)))
            flags = '[{"code": "clock-drift", "message": "fast"}]' if rng.random() < 0.02 else "[]"
            yield (
                i,
                _sha(i),
                rng.randrange(1 << 20, 1 << 31),
                kind,
                "archived",
                f"f{i}.mp4",
                "DOCK-02" if i in pushed else "DOCK-01",
                f"/dock/f{i}",
                _stamp(docked + timedelta(hours=rng.choice((0, 1, 6))) if i in pushed else docked),
                lengths[i - 1] or None,
                None if kind == "document" else serials[2 * officer + rng.randrange(2)],
                None if kind == "document" else people[officer],
                _stamp(begun),
                _stamp(ended),
                "执法人员表明身份，告知事由" if rng.random() < 0.7 else None,
                rng.choice(("signed", "refusal-noted", "missing")) if kind == "document" else None,
                "on-site" if kind == "document" else None,
                flags,
            )

    numbers = [f"2026-{i:06d}" for i in range(len(anchors))]
    case_values, crews, links = [], [], []
    for number, anchor in zip(numbers, anchors, strict=True):
        begun = start(anchor) - timedelta(seconds=rng.choice((0, 30, 120)))
        ended = start(anchor) + timedelta(seconds=lengths[anchor - 1] + rng.choice((0, 30, 600)))
        due = (ended.astimezone(YEAR.tzinfo).date() + timedelta(days=15)).isoformat()
        archived = None
        if rng.random() < 0.7:
            archived = (
                date.fromisoformat(due) + timedelta(days=rng.choice((-10, -3, 0, 2, 9)))
            ).isoformat()
        officer = holder[anchor - 1]
        category = rng.choice(MANDATORY) if rng.random() < 0.33 else rng.choice(OTHERS)
        case_values.append(
            (
                number,
                "查封",
                category,
                _unit(officer),
                "archived" if archived else "concluded",
                _stamp(begun),
                _stamp(ended),
                due,
                archived,
                now,
            )
        )
        crews.append((number, people[officer]))
        if rng.random() < 0.3:
            crews.append((number, people[(officer + 1) % n_officers]))
        # The act's records: the anchor and the items docked after it (recorded then).
        links += [
            (number, i, now) for i in range(anchor, min(anchor + rng.randrange(5), items) + 1)
        ]
    jobs = [(i, "DOCK-01", f"/dock/f{i}", 1, i, now) for i in range(1, items + 1)]
    seen = [
        (i, i, "DOCK-01", f"/dock/f{i}", _stamp(start(i) + timedelta(days=1)))
        for i in range(1, items + 1)
    ]
    again = [i for i in range(1, items + 1) if rng.random() < 0.05]
    jobs += [(items + k + 1, "DOCK-01", f"/dock/again{i}", 1, i, now) for k, i in enumerate(again)]
    seen += [
        (items + k + 1, i, "DOCK-01", f"/dock/again{i}", _stamp(start(i) + timedelta(days=9)))
        for k, i in enumerate(again)
    ]
    tables = [
        _Table(
            "stations",
            ("id", "root", "created_at"),
            [("DOCK-01", "/dock", now), ("DOCK-02", "/push", now)],
            {"name": "", "location": ""},
        ),
        _Table(
            "officers",
            ("id", "name", "cert_no", "department", "updated_at"),
            [(o, f"警员{o}", f"6201{o}", _unit(i), now) for i, o in enumerate(people)],
            {"roles": "[]"},
        ),
        _Table(
            "devices",
            ("serial", "updated_at"),
            [(s, now) for s in serials],
            {
                "kind": "body-worn",
                "status": "active",
                "vendor": "",
                "model": "",
                "clock_offset_s": 0,
            },
        ),
        _Table(
            "assignments",
            ("device_serial", "officer_id", "start"),
            [(s, people[k // 2], _stamp(YEAR)) for k, s in enumerate(serials)],
        ),
        _Table(
            "cases",
            (
                "number",
                "title",
                "category",
                "department",
                "status",
                "action_start",
                "action_end",
                "due",
                "archived_on",
                "updated_at",
            ),
            case_values,
            {"due_provisional": False},
        ),
        _Table("case_officers", ("case_number", "officer_id"), sorted(set(crews))),
        _Table(
            "media",
            (
                "id",
                "sha256",
                "size",
                "kind",
                "status",
                "original_name",
                "station_id",
                "source_path",
                "ingested_at",
                "duration_s",
                "device_serial",
                "officer_id",
                "recorded_start",
                "recorded_end",
                "description",
                "signature",
                "record_type",
                "flags",
            ),
            media_rows(),
            {"extra": "{}", "id_sources": "{}"},
        ),
        _Table(
            "links",
            ("case_number", "media_id", "created_at"),
            links,
            {"method": "rule", "rule": "officer-time", "actor": "system"},
        ),
        _Table(
            "ingest_jobs",
            ("id", "station_id", "source_path", "size", "mtime_ns", "created_at"),
            jobs,
            {"state": "done", "attempts": 0, "updated_at": now},
        ),
        _Table("sightings", ("job_id", "media_id", "station_id", "source_path", "seen_at"), seen),
    ]
    _fill(catalog, tables)
    # 0005 on: the search index over the rows, and the station API's tables; the uploads go
    # in before 0013, which keeps each item's docking time on its row from them.
    _migrate_to(catalog, "0012")
    uploads = [
        (
            f"u{i}",
            "DOCK-02",
            _sha(i),
            f"/push/f{i}",
            _stamp(
                start(i) + timedelta(seconds=lengths[i - 1], hours=rng.choice((0.2, 3, 20, 30)))
            ),
            now,
            now,
        )
        for i in sorted(pushed)
    ]
    reports = [
        (
            rng.choice(serials),
            rng.choice((-900.0, -5.0, 2.0, 400.0)),
            _stamp(YEAR + timedelta(days=rng.randrange(365))),
            now,
        )
        for _ in range(max(50, items // 200))
    ]
    _fill(
        catalog,
        [
            _Table(
                "dock_uploads",
                ("id", "station_id", "sha256", "path", "docked_at", "created_at", "updated_at"),
                uploads,
                {"size": 1, "received": 1, "mtime": 0, "claim": "{}", "state": "verified"},
            ),
            _Table(
                "clock_reports",
                ("device_serial", "offset_s", "observed_at", "reported_at"),
                reports,
                {"station_id": "DOCK-02"},
            ),
        ],
    )
    upgrade(catalog)
    return sorted({_unit(i) for i in range(n_officers)})


def _fill(catalog: Catalog, tables: list[_Table]) -> None:
    if catalog.engine.dialect.name == "sqlite":
        _insert_sqlite(catalog, tables)
    else:
        _copy_postgres(catalog, tables)


Timed = Callable[[Any, Scope, Period], Any]


def _figures(instance: Instance) -> dict[str, Timed]:
    """Each figure as the dashboard runs it, on a connection, for a scope and a period."""
    s = instance.settings
    cs, ds, zone = s.cases, s.devices, s.zone
    today, limit = NOW.astimezone(zone).date(), cs.upload_limit_hours * 3600
    categories = load_categories(s)
    mandatory = [c.id for c in categories.listing() if c.mandatory_av]
    return {
        "case files": lambda c, sc, p: f.case_files(c, sc, p.bounds(zone), today, cs.due_soon_days),
        "coverage": lambda c, sc, p: f.coverage_figures(
            c, sc, p.bounds(zone), mandatory, cs.coverage_gap_s
        ),
        "recordings (uploads, links, descriptions, use)": lambda c, sc, p: f.recordings(
            c, sc, p.bounds(zone), limit
        ),
        "devices (not docked, clocks)": lambda c, sc, p: f.device_figures(
            c, sc, NOW, ds.not_docked_days, p.bounds(zone), ds.drift_tolerance_s
        ),
        "trends (8 weeks, 2 months)": lambda c, sc, p: f.trends(
            c, sc, p.end, zone, today, cs.due_soon_days, limit
        ),
        # As the dashboard shows it: kept by the daily sweep (whose cost is a row of its own).
        "summary per department (alerts)": lambda c, sc, p: alerts.published(c, sc),
        "cases needing action": lambda c, sc, p: f.cases_needing_action(
            c, sc, today, cs.due_soon_days, usecases.CASES_SHOWN
        ),
    }


#: The departments a figure is timed for: one squad, one brigade (its three squads), all.
SCOPES = ("squad", "brigade", "agency")


def _draw(rng: random.Random, units: list[str], kind: str) -> tuple[Scope, Period]:
    """Another department of the kind asked for, and another 30 days."""
    if kind == "squad":
        department: str | None = rng.choice(units)
    elif kind == "brigade":
        department = f"{TOP}/大队{rng.randrange(BRIGADES)}"
    else:
        department = None
    end = date(2026, 1, 30) + timedelta(days=rng.randrange(330))
    return Scope(department), Period(end - timedelta(days=29), end)


def _p95(times: list[float]) -> float:
    ordered = sorted(times)
    return round(ordered[max(0, round(0.95 * len(ordered)) - 1)], 1)


def measure(instance: Instance, units: list[str], repeats: int) -> list[dict[str, Any]]:
    """Each figure ``repeats`` times per kind of department (after one run that warms the
    caches), then the whole dashboard a quarter as often. Besides the wall time, this
    process's CPU time: on SQLite the query's own cost, whatever else the machine runs (on
    PostgreSQL the server's share is not in it)."""
    rows = []
    for kind in SCOPES:
        for name, run in _figures(instance).items():
            rng, times, cpu = random.Random(f"{name} {kind}"), [], []
            for i in range(repeats + 1):
                scope, period = _draw(rng, units, kind)
                started, used = time.perf_counter(), time.process_time()
                with instance.catalog.read() as conn:
                    run(conn, scope, period)
                if i:
                    times.append((time.perf_counter() - started) * 1000)
                    cpu.append((time.process_time() - used) * 1000)
            rows.append(_row(name, kind, times, cpu, True))
        rng, times, cpu = random.Random(f"dashboard {kind}"), [], []
        for i in range(max(3, repeats // 4) + 1):
            scope, period = _draw(rng, units, kind)
            started, used = time.perf_counter(), time.process_time()
            usecases.dashboard(instance, scope.department, period.start, period.end)
            if i:
                times.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - used) * 1000)
        rows.append(_row("the whole dashboard (use case)", kind, times, cpu, False))
    return rows


def _row(
    name: str, kind: str, times: list[float], cpu: list[float], figure: bool
) -> dict[str, Any]:
    return {
        "query": name,
        "scope": kind,
        "repeats": len(times),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": _p95(times),
        "cpu_p50_ms": round(statistics.median(cpu), 1),
        "figure": figure,
    }


def run(
    items: int, n_cases: int, repeats: int, postgres_admin: str | None = None
) -> list[dict[str, Any]]:
    """The rows of one catalog: SQLite, or a new database of the PostgreSQL at
    ``postgres_admin``."""
    fresh = _postgres_catalog(postgres_admin) if postgres_admin else _sqlite_catalog()
    with (
        fresh as (cat, megabytes),
        tempfile.TemporaryDirectory(prefix="evidence-bench-dash-") as tmp,
    ):
        _migrate_to(cat, "0004")
        started = time.perf_counter()
        units = generate(cat, items, n_cases)
        if postgres_admin:
            _vacuum_analyze(cat)
        made = round(time.perf_counter() - started, 1)
        settings = load_settings(
            home=Path(tmp) / "home",
            catalog={"url": str(cat.engine.url.render_as_string(hide_password=False))},
        )
        instance = Instance(settings, cat, clock=lambda: NOW)
        started = time.perf_counter()
        usecases.publish_department_summaries(instance)  # the daily sweep's summary, kept
        summary_s = round(time.perf_counter() - started, 2)
        setup = {
            "database": cat.engine.dialect.name,
            "server": _server(cat),
            "items": items,
            "cases": n_cases,
            "generate_s": made,
            "catalog_mb": round(megabytes(), 1),
            "summary_sweep_s": summary_s,
        }
        return [{**r, **setup} for r in measure(instance, units, repeats)]


def run_both(
    items: int, n_cases: int, repeats: int, postgres_admin: str
) -> tuple[list[dict[str, Any]], str | None]:
    rows = run(items, n_cases, repeats)
    skipped = postgres_unreachable(postgres_admin) if postgres_admin else "not asked for"
    if skipped is None:
        rows += run(items, n_cases, repeats, postgres_admin)
    return rows, skipped


def bench(work: Path, quick: bool) -> Result:
    """The runner's entry: 1M items and 100k cases (quick: 3,000 and 300), SQLite, then
    PostgreSQL when one answers."""
    items, n_cases, repeats = (3_000, 300, 3) if quick else (1_000_000, 100_000, 20)
    started = time.perf_counter()
    rows, skipped = run_both(items, n_cases, repeats, POSTGRES_ADMIN)
    figures = []
    for r in rows:
        postgres = r["database"] == "postgresql"
        query = r["query"].split(" (")[0].replace(" ", "_")
        key = f"dashboard.{'postgresql.' if postgres else ''}{r['items']}.{query}.{r['scope']}"
        label = f"{r['query']}, {r['scope']}, at {r['items']:,} items, {r['cases']:,} cases" + (
            " (PostgreSQL)" if postgres else ""
        )
        # A quick run's PostgreSQL figures carry no target, as benchmark 4's (test_bench_smoke).
        target = Target("<=", TARGET_P95_MS) if r["figure"] and not (postgres and quick) else None
        figures += [
            Figure(f"{key}.p50", f"{label}: p50", r["p50_ms"], "ms"),
            Figure(f"{key}.p95", f"{label}: p95", r["p95_ms"], "ms", target),
            Figure(f"{key}.cpu_p50", f"{label}: CPU of this process, p50", r["cpu_p50_ms"], "ms"),
        ]
    notes = [
        f"{r['database']}: {r['items']:,} items and {r['cases']:,} cases generated in "
        f"{r['generate_s']} s, catalog {r['catalog_mb']} MB ({r['server']}); the daily "
        f"sweep's summary per department computed and kept in {r['summary_sweep_s']} s"
        for r in rows
        if r["query"] == "case files" and r["scope"] == "squad"
    ]
    if skipped:
        notes.append(f"PostgreSQL not measured: {skipped}")
    notes.append(
        "each figure timed for a squad, a brigade (3 squads) and the whole agency (24 squads), "
        "each run with another of them and another 30 days; the whole dashboard is every "
        "figure, the summary, the cases needing action and the names"
    )
    return Result(
        NUMBER,
        NAME,
        tuple(figures),
        tuple(notes),
        {"rows": rows},
        round(time.perf_counter() - started, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--postgres", default=POSTGRES_ADMIN, help="admin URL of a PostgreSQL ('': SQLite only)"
    )
    args = parser.parse_args()
    rows, skipped = run_both(args.items, args.cases, args.repeats, args.postgres)
    print(
        f"{'database':<10} {'items':>9} {'cases':>7}  {'scope':<8} {'query':<48}"
        f" {'p50 ms':>8} {'p95 ms':>8} {'CPU p50':>8}"
    )
    for r in rows:
        over = "  (p95 over target)" if r["figure"] and r["p95_ms"] >= TARGET_P95_MS else ""
        print(
            f"{r['database']:<10} {r['items']:>9} {r['cases']:>7}  {r['scope']:<8} {r['query']:<48}"
            f" {r['p50_ms']:>8} {r['p95_ms']:>8} {r['cpu_p50_ms']:>8}{over}"
        )
    for r in rows:
        if r["query"] == "case files" and r["scope"] == "squad":
            print(
                f"{r['database']}: generated in {r['generate_s']} s, {r['catalog_mb']} MB,"
                f" {r['server']}; summary kept in {r['summary_sweep_s']} s"
            )
    if skipped:
        print(f"PostgreSQL not measured: {skipped}")


if __name__ == "__main__":
    main()
