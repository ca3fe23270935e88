"""Catalog query latency: the archivists' common queries at 100k and 1M media items, on SQLite
and, when one answers, on PostgreSQL.

    python -m benchmarks.queries                       # 100k and 1M items, 50 runs per query
    python -m benchmarks.queries --sizes 20000 --repeats 10 --postgres ''   # SQLite only

The five common queries: by case; officer and a week; device; Chinese text (four characters,
found in ~4% of items); SHA-256 prefix. Then the tails (issue 20): text by how many items it
matches, text of one and two characters, which no trigram holds, text in no item, text with
an officer given by id or by name (one in no registry too).

A fresh catalog (a temporary SQLite file; a PostgreSQL database created for the run and
dropped after it) is migrated to 0004 and filled in bulk (stations, officers, devices, cases,
media with Chinese descriptions, links: executemany on SQLite, COPY on PostgreSQL, the same
rows on both); then migration 0005 builds the search documents and the text index (FTS5;
pg_trgm) in one pass, as it does on an existing catalog, and 0014 the index of bigrams
(PostgreSQL; timed on its own). PostgreSQL then gets a VACUUM ANALYZE,
as autovacuum would give it before long. Ids rise with recording time, as they do where docks
offload daily. Each query then runs ``repeats`` times, each time with other values (another
case, officer, week, device, phrase, hash), through :func:`pipeline.search.search` (ids, the
default order, limit 50, and the views a person sees), in its own transaction as the CLI does.
The target is p95 < 50 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from alembic import command
from alembic.config import Config

from benchmarks.report import Figure, Result, Target
from benchmarks.workbench import POSTGRES_ADMIN, fresh_postgres_database, postgres_unreachable
from pipeline.catalog import Catalog, open_catalog
from pipeline.catalog.db import MIGRATIONS, upgrade
from pipeline.search.query import parse
from pipeline.search.run import search

TARGET_P95_MS = 50.0
SH = ZoneInfo("Asia/Shanghai")
YEAR = datetime(2026, 1, 1, tzinfo=SH)

PLACES = [
    "某仓库",
    "农贸市场",
    "建材市场",
    "汽车站",
    "夜市",
    "码头",
    "工业园",
    "商业街",
    "学校周边",
    "小区门口",
    "加油站",
    "物流园",
    "餐饮店",
    "药店",
    "网吧",
    "KTV",
]
ACTIONS = [
    "依法扣押",
    "查封",
    "现场检查",
    "责令整改",
    "强制拆除",
    "询问当事人",
    "送达文书",
    "抽样取证",
    "先行登记保存",
    "听证",
]
OBJECTS = [
    "涉案车辆",
    "假冒商品",
    "过期药品",
    "违章建筑",
    "无证经营设备",
    "计量器具",
    "烟花爆竹",
    "食品原料",
    "广告牌",
    "燃气钢瓶",
    "渣土车",
    "电动自行车",
    "冷冻肉品",
    "农药化肥",
    "ledger book",
    "Warehouse stock",
]
TITLES = ["查封{p}", "扣押{o}", "{p}{a}", "拆除{p}违章建筑", "{p}{o}案"]


@dataclass(frozen=True)
class Catalogue:
    """What was generated, for picking query values."""

    items: int
    cases: list[str]
    officers: list[str]
    devices: list[str]
    sha256: Callable[[int], str]


@dataclass(frozen=True)
class _Table:
    """Rows for one table: ``columns`` vary by row, ``constants`` are the same in every row."""

    name: str
    columns: tuple[str, ...]
    rows: Iterable[tuple[Any, ...]]
    constants: dict[str, str | int] = field(default_factory=dict)


def _sha(i: int) -> str:
    return hashlib.sha256(i.to_bytes(8, "big")).hexdigest()


def _stamp(moment: datetime) -> str:
    """A UTC time as SQLAlchemy stores DateTime in SQLite (so that comparisons line up); also
    a value PostgreSQL's ``timestamp without time zone`` takes as is, UTC as UTCDateTime has."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def generate(catalog: Catalog, n: int, seed: int = 7) -> Catalogue:
    """``n`` media items, bulk inserted into a catalog at revision 0004 (before search, whose
    migration then indexes them)."""
    rng = random.Random(seed)
    n_officers = max(20, n // 2000)
    officer_ids = [str(1000 + i) for i in range(n_officers)]
    devices = [f"BWC{i:05d}" for i in range(2 * n_officers)]
    numbers = [f"2026-{i:05d}" for i in range(max(20, n // 50))]
    now = _stamp(datetime(2027, 1, 1, tzinfo=UTC))
    # Media and links are generators, drawn from rng in this order as the tables are written.
    tables = [
        _Table(
            "stations",
            ("id", "name", "root", "location", "created_at"),
            [("DOCK-01", "", "/dock", "", now)],
        ),
        _Table(
            "officers",
            ("id", "name", "cert_no", "department", "updated_at"),
            [(o, f"警员{o}", f"6201{o}", f"执法大队{int(o) % 8}", now) for o in officer_ids],
            {"roles": "[]"},
        ),
        _Table(
            "devices",
            ("serial", "updated_at"),
            [(d, now) for d in devices],
            {
                "kind": "body-worn",
                "status": "active",
                "vendor": "",
                "model": "",
                "clock_offset_s": 0,
            },
        ),
        _Table(
            "cases",
            ("number", "title", "category", "department", "updated_at"),
            [
                (
                    num,
                    rng.choice(TITLES).format(
                        p=rng.choice(PLACES), a=rng.choice(ACTIONS), o=rng.choice(OBJECTS)
                    ),
                    rng.choice(["seizure", "demolition", "inspection", "hearing"]),
                    f"执法大队{rng.randrange(8)}",
                    now,
                )
                for num in numbers
            ],
            {"status": "open", "due_provisional": False},
        ),
        _Table(
            "media",
            _MEDIA_COLUMNS,
            _media_rows(rng, n, officer_ids, devices, now),
            {
                "status": "archived",
                "station_id": "DOCK-01",
                "extra": "{}",
                "id_sources": "{}",
                "flags": "[]",
            },
        ),
        _Table(
            "links",
            ("case_number", "media_id", "created_at"),
            ((rng.choice(numbers), i, now) for i in range(1, n + 1) if rng.random() < 0.3),
            {"method": "rule", "rule": "officer-time", "actor": "system"},
        ),
    ]
    if catalog.engine.dialect.name == "sqlite":
        _insert_sqlite(catalog, tables)
    else:
        _copy_postgres(catalog, tables)
    return Catalogue(n, numbers, officer_ids, devices, _sha)


def _insert_sqlite(catalog: Catalog, tables: list[_Table]) -> None:
    raw = catalog.engine.raw_connection()
    try:
        cur = raw.cursor()
        # A bulk load: losing it to a power cut costs a re-run, not evidence.
        cur.execute("PRAGMA synchronous=OFF")
        cur.execute("PRAGMA cache_size=-1000000")
        cur.execute("BEGIN")
        for t in tables:
            # Constants go in the statement, so that each row binds only what varies.
            names = ", ".join((*t.columns, *t.constants))
            values = ", ".join(["?"] * len(t.columns) + [_sql(v) for v in t.constants.values()])
            rows = iter(t.rows)
            while chunk := list(itertools.islice(rows, 50_000)):
                cur.executemany(f"INSERT INTO {t.name} ({names}) VALUES ({values})", chunk)
        raw.commit()
    finally:
        raw.close()


def _sql(value: str | int) -> str:
    """A constant as an SQL literal (ours: no quotes inside strings)."""
    return f"'{value}'" if isinstance(value, str) else str(int(value))


def _copy_postgres(catalog: Catalog, tables: list[_Table]) -> None:
    raw = catalog.engine.raw_connection()
    try:
        # COPY in text format: PostgreSQL reads each value as its column's type would
        # (timestamps from _stamp, JSON from '{}').
        psycopg_conn = raw.driver_connection
        assert psycopg_conn is not None
        with psycopg_conn.cursor() as cur:
            for t in tables:
                names = ", ".join((*t.columns, *t.constants))
                constants = tuple(t.constants.values())
                with cur.copy(f"COPY {t.name} ({names}) FROM STDIN") as copy:
                    for row in t.rows:
                        copy.write_row(row + constants)
        raw.commit()
    finally:
        raw.close()


_MEDIA_COLUMNS = (
    "id",
    "sha256",
    "size",
    "kind",
    "original_name",
    "source_path",
    "ingested_at",
    "duration_s",
    "thumbnail_key",
    "device_serial",
    "officer_id",
    "recorded_start",
    "recorded_end",
    "description",
)


def _media_rows(
    rng: random.Random, n: int, officer_ids: list[str], devices: list[str], now: str
) -> Iterator[tuple[Any, ...]]:
    # Ids follow ingest order, and docks offload within a day of recording: so ids rise with
    # recording time, give or take a few hundred items.
    seconds = sorted(rng.randrange(365 * 86400) for _ in range(n))
    for block in range(0, n, 500):
        window = seconds[block : block + 500]
        rng.shuffle(window)
        seconds[block : block + 500] = window
    for i, offset in enumerate(seconds, 1):
        officer = rng.randrange(len(officer_ids))
        device = devices[2 * officer + rng.randrange(2)]
        start = YEAR + timedelta(seconds=offset)
        kind = rng.choice(("video", "video", "video", "audio", "photo"))
        duration = rng.uniform(10, 1800) if kind != "photo" else None
        described = rng.random() < 0.7
        description = (
            f"在{rng.choice(PLACES)}{rng.choice(ACTIONS)}{rng.choice(OBJECTS)}，"
            f"执法人员表明身份，告知事由，编号{rng.randrange(100000)}"
            if described
            else None
        )
        name = f"{device}_{officer_ids[officer]}_{start:%Y%m%d%H%M%S}_{i % 1000:04d}.MP4"
        yield (
            i,
            _sha(i),
            rng.randrange(1 << 20, 1 << 31),
            kind,
            name,
            f"/dock/{name}",
            now,
            duration,
            f"thumbs/{i}.jpg",
            device,
            officer_ids[officer],
            _stamp(start),
            _stamp(start + timedelta(seconds=duration or 0)),
            description,
        )


# name -> how to draw one query of it
QUERIES: dict[str, Callable[[random.Random, Catalogue], str]] = {
    "by case": lambda r, c: f"case:{r.choice(c.cases)}",
    "officer + week": lambda r, c: f"officer:{r.choice(c.officers)} recorded:{_week(r)}",
    "device": lambda r, c: f"device:{r.choice(c.devices)}",
    "text CJK (4 chars)": lambda r, c: r.choice(OBJECTS[:14]),
    "sha256 prefix": lambda r, c: f"sha256:{c.sha256(r.randrange(1, c.items + 1))[:8]}",
}
# The tails (issue 20): text by how many items it matches, text of one and two characters
# (no trigram holds them), text in no item, text with an officer (by id and by name). Each is
# held to the same target as the five.
EXTRA: dict[str, Callable[[random.Random, Catalogue], str]] = {
    "text CJK, in ~0.4% of items": lambda r, c: r.choice(PLACES[:15]) + r.choice(ACTIONS),
    "text CJK, in 70% of items": lambda r, c: "执法人员",
    "text CJK + officer": lambda r, c: f"officer:{r.choice(c.officers)} {r.choice(OBJECTS[:14])}",
    "text CJK + officer name": lambda r, c: (
        f"officer:警员{r.choice(c.officers)} {r.choice(OBJECTS[:14])}"
    ),
    "text CJK (2 chars)": lambda r, c: r.choice(["扣押", "查封", "拆除", "仓库", "车辆"]),
    "text CJK (2 chars) + officer": lambda r, c: f"officer:{r.choice(c.officers)} 扣押",
    "text CJK (2 chars), in no item": lambda r, c: r.choice(["绝无", "乌有", "子虚"]),
    "text CJK (1 char)": lambda r, c: r.choice(["扣", "车", "药", "库", "店"]),
    "text CJK (1 char), in no item": lambda r, c: r.choice(["鑫", "淼", "翔"]),
    "text CJK, in no item": lambda r, c: r.choice(["子虚乌有之事", "查无此案", "并无记录"]),
    "officer name, in no registry + text": lambda r, c: r.choice(["officer:张三丰 扣押"]),
}


def _week(rng: random.Random) -> str:
    first = YEAR + timedelta(days=rng.randrange(358))
    return f"{first:%Y-%m-%d}..{first + timedelta(days=6):%Y-%m-%d}"


def measure(
    catalog: Catalogue, cat: Catalog, name: str, draw: Callable[..., str], repeats: int
) -> dict[str, Any]:
    rng = random.Random(name)
    times, rows = [], []
    for i in range(repeats + 1):
        text = draw(rng, catalog)
        started = time.perf_counter()
        with cat.begin() as conn:
            found = search(conn, parse(text, SH), limit=50)
        if i:  # the first run warms the caches
            times.append((time.perf_counter() - started) * 1000)
            rows.append(len(found.items))
    times.sort()
    return {
        "items": catalog.items,
        "query": name,
        "example": text,
        "repeats": repeats,
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[max(0, round(0.95 * len(times)) - 1)], 2),
        "mean_rows": round(statistics.mean(rows), 1),
        "target_p95_ms": TARGET_P95_MS,
        "common": name in QUERIES,
    }


Rows = list[dict[str, Any]]


def run(sizes: list[int], repeats: int, postgres_admin: str | None = None) -> Rows:
    """p50/p95 of the common queries (and of the two-character text ones) at each size, on a
    temporary SQLite catalog, or on a new database of the PostgreSQL at ``postgres_admin``."""
    results = []
    for n in sizes:
        fresh = _postgres_catalog(postgres_admin) if postgres_admin else _sqlite_catalog()
        with fresh as (cat, megabytes):
            _migrate_to(cat, "0004")  # the schema before search: rows go in unindexed
            started = time.perf_counter()
            catalogue = generate(cat, n)
            loaded = time.perf_counter()
            _migrate_to(cat, "0013")  # 0005: search documents and the text index, in bulk
            migrated = time.perf_counter()
            _migrate_to(cat, "0014")  # the bigrams of every document (PostgreSQL)
            bigrams = time.perf_counter()
            upgrade(cat)
            indexed = time.perf_counter()
            if postgres_admin:
                _vacuum_analyze(cat)
            done = time.perf_counter()
            setup = {
                "database": cat.engine.dialect.name,
                "server": _server(cat),
                "generate_s": round(done - started, 1),
                "load_s": round(loaded - started, 1),
                "index_s": round(indexed - loaded, 1),
                "bigrams_s": round(bigrams - migrated, 1),
                "analyze_s": round(done - indexed, 1),
                "catalog_mb": round(megabytes(), 1),
            }
            for name, draw in {**QUERIES, **EXTRA}.items():
                results.append({**measure(catalogue, cat, name, draw, repeats), **setup})
    return results


def run_both(sizes: list[int], repeats: int, postgres_admin: str) -> tuple[Rows, str | None]:
    """SQLite's rows, then PostgreSQL's; with why PostgreSQL was skipped (None: it was not)."""
    rows = run(sizes, repeats)
    skipped = postgres_unreachable(postgres_admin) if postgres_admin else "not asked for"
    if skipped is None:
        rows += run(sizes, repeats, postgres_admin)
    return rows, skipped


Opened = Iterator[tuple[Catalog, Callable[[], float]]]  # the catalog, and its size in MB


@contextmanager
def _sqlite_catalog() -> Opened:
    with tempfile.TemporaryDirectory(prefix="evidence-bench-queries-") as tmp:
        path = Path(tmp) / "catalog.db"
        cat = open_catalog(f"sqlite:///{path}", migrate=False)
        try:
            yield cat, lambda: path.stat().st_size / 1e6
        finally:
            cat.dispose()


@contextmanager
def _postgres_catalog(admin_url: str) -> Opened:
    with fresh_postgres_database(admin_url, "evidence_bench_queries") as url:
        cat = open_catalog(url.render_as_string(hide_password=False), migrate=False)
        try:
            yield cat, lambda: _scalar(cat, "SELECT pg_database_size(current_database())") / 1e6
        finally:
            cat.dispose()


def _vacuum_analyze(cat: Catalog) -> None:
    # Statistics for the planner, and the visibility map that index-only scans need: what
    # autovacuum gives a catalog soon after a load (here before measuring, not during it).
    # VACUUM cannot run in a transaction.
    with cat.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


def _server(cat: Catalog) -> str:
    if cat.engine.dialect.name == "sqlite":
        return f"SQLite {_scalar(cat, 'SELECT sqlite_version()')}"
    version = _scalar(cat, "SHOW server_version").split()[0]
    return f"PostgreSQL {version}, shared_buffers {_scalar(cat, 'SHOW shared_buffers')}"


def _scalar(cat: Catalog, sql: str) -> Any:
    with cat.engine.connect() as conn:
        return conn.exec_driver_sql(sql).scalar_one()


def _migrate_to(cat: Catalog, revision: str) -> None:
    with cat.engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def _notes(rows: Rows) -> list[str]:
    """How long each catalog took to make, and its size."""
    notes = []
    seen = set()
    for r in rows:
        if (r["database"], r["items"]) in seen:
            continue
        seen.add((r["database"], r["items"]))
        if r["database"] == "sqlite":
            notes.append(
                f"{r['items']:,} items generated and indexed in {r['generate_s']} s,"
                f" catalog {r['catalog_mb']} MB ({r['server']})"
            )
        else:
            notes.append(
                f"{r['items']:,} items generated and indexed in {r['generate_s']} s (COPY"
                f" {r['load_s']} s, migrations {r['index_s']} s of which 0014's bigrams"
                f" {r['bigrams_s']} s, VACUUM ANALYZE {r['analyze_s']} s), database"
                f" {r['catalog_mb']} MB ({r['server']})"
            )
    return notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument(
        "--postgres", default=POSTGRES_ADMIN, help="admin URL of a PostgreSQL ('': SQLite only)"
    )
    args = parser.parse_args()
    results, skipped = run_both(args.sizes, args.repeats, args.postgres)
    print(
        f"{'database':<10} {'items':>9}  {'query':<30} {'p50 ms':>8} {'p95 ms':>8} {'rows':>6}"
        "  example"
    )
    for r in results:
        over = "" if r["p95_ms"] < TARGET_P95_MS else "  (p95 over target)"
        print(
            f"{r['database']:<10} {r['items']:>9}  {r['query']:<30} {r['p50_ms']:>8}"
            f" {r['p95_ms']:>8} {r['mean_rows']:>6}  {r['example']}{over}"
        )
    for note in _notes(results):
        print(note)
    if skipped:
        print(f"PostgreSQL not measured: {skipped}")


NUMBER, NAME = 4, "catalog query latency"


def bench(work: Path, quick: bool) -> Result:
    """The runner's entry: p95 of the common queries and of the tails at 100k and 1M items
    (quick: 2k), on SQLite, then on PostgreSQL when one answers."""
    sizes, repeats = ([2_000], 3) if quick else ([100_000, 1_000_000], 50)
    started = time.perf_counter()
    rows, skipped = run_both(sizes, repeats, POSTGRES_ADMIN)
    figures = [f for r in rows for f in _figures(r, quick)]
    notes = _notes(rows) + ([f"PostgreSQL not measured: {skipped}"] if skipped else [])
    return Result(
        NUMBER,
        NAME,
        tuple(figures),
        tuple(notes),
        {"rows": rows},
        round(time.perf_counter() - started, 1),
    )


def _figures(row: dict[str, Any], quick: bool) -> list[Figure]:
    postgres = row["database"] == "postgresql"
    query = row["query"].replace(" ", "_")
    key = (
        f"queries.postgresql.{row['items']}.{query}"
        if postgres
        else f"queries.{row['items']}.{query}"
    )
    label = f"{row['query']} at {row['items']:,} items" + (" (PostgreSQL)" if postgres else "")
    # A quick run's PostgreSQL figures carry no target: they show that the path still runs,
    # and tests/test_bench_smoke.py holds a quick run's targets to SQLite's.
    target = None if postgres and quick else Target("<=", TARGET_P95_MS)
    return [
        Figure(f"{key}.p50", f"{label}: p50", row["p50_ms"], "ms"),
        Figure(f"{key}.p95", f"{label}: p95", row["p95_ms"], "ms", target),
    ]


if __name__ == "__main__":
    main()
