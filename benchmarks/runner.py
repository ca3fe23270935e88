"""Run the benchmarks of issue 7 and write benchmarks/results/bench.json and bench.md.

    python -m benchmarks             # full sizes (make bench), about 14 minutes
    python -m benchmarks --quick     # tiny sizes, seconds: the smoke run of the test suite
    python -m benchmarks --only ingest_large --only memory

Benchmarks that need Prefect share one local server, started in the work folder and stopped
at the end (``--prefect-api`` uses a running one instead). Its database is a fresh PostgreSQL
database when PostgreSQL answers at ``--prefect-db`` (the setup docs/deploy.md recommends for
``evidence watch``), else SQLite (``--prefect-db sqlite`` forces it). Exit status 1 when a
benchmark crashed; a missed target is a finding, not a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import (
    dashboard,
    dock_upload,
    flow_runs,
    ingest_large,
    memory,
    proxy,
    queries,
    s3_peers,
    small_files,
    watch_latency,
)
from benchmarks import replay as record_replay
from benchmarks.report import Result, to_markdown, write
from benchmarks.workbench import POSTGRES_ADMIN, fresh_postgres_database, postgres_unreachable
from flows.runtime import stop_server, use_prefect
from pipeline.settings import load_settings

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Benchmark:
    key: str  # for --only
    number: int
    name: str
    run: Callable[[Path, bool], Result] | None  # None: cannot be measured yet
    needs_prefect: bool = False
    pending: str | None = None


BENCHMARKS = (
    Benchmark("ingest_large", ingest_large.NUMBER, ingest_large.NAME, ingest_large.run),
    Benchmark(
        "small_files", small_files.NUMBER, small_files.NAME, small_files.run, needs_prefect=True
    ),
    Benchmark("proxy", proxy.NUMBER, proxy.NAME, proxy.run),
    Benchmark("catalog_queries", queries.NUMBER, queries.NAME, queries.bench),
    Benchmark(
        "watch_latency",
        watch_latency.NUMBER,
        watch_latency.NAME,
        watch_latency.run,
        needs_prefect=True,
    ),
    Benchmark("memory", memory.NUMBER, memory.NAME, memory.run),
    Benchmark("replay", record_replay.NUMBER, record_replay.NAME, record_replay.run),
    Benchmark("dock_upload", dock_upload.NUMBER, dock_upload.NAME, dock_upload.run),
    Benchmark("dashboard", dashboard.NUMBER, dashboard.NAME, dashboard.bench),
    Benchmark("s3_peers", s3_peers.NUMBER, s3_peers.NAME, s3_peers.run),
    Benchmark("flow_runs", flow_runs.NUMBER, flow_runs.NAME, flow_runs.run, needs_prefect=True),
)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    _isolate_environment()
    chosen = [b for b in BENCHMARKS if not args.only or b.key in args.only]
    started, load_before = datetime.now(UTC), _load()
    work = Path(tempfile.mkdtemp(prefix="evidence-bench-", dir=args.workdir))
    results: list[Result] = []
    try:
        needs_prefect = any(b.needs_prefect for b in chosen)
        with _prefect(work, args.prefect_api, args.prefect_db, needs_prefect) as prefect_db:
            for bench in chosen:
                print(f"[{bench.number}] {bench.name} …", file=sys.stderr, flush=True)
                results.append(_run_one(bench, work, args.quick))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    meta = {
        "mode": "quick" if args.quick else "full",
        "started": started.isoformat(timespec="seconds"),
        "seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
        "commit": _commit(),
        "prefect_database": prefect_db,
        "load_before": load_before,
        "load_after": _load(),
        "host": {
            "cpus": os.cpu_count(),
            "memory_gib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30),
            "kernel": platform.release(),
            "python": platform.python_version(),
        },
    }
    json_path, md_path = write(results, meta, args.out)
    print(to_markdown(results))
    print(f"written: {json_path} {md_path}", file=sys.stderr)
    return 1 if any(r.error for r in results) else 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--only", action="append", choices=[b.key for b in BENCHMARKS], help="run only these"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where test files go (default: system temp)"
    )
    parser.add_argument("--prefect-api", default="", help="use this Prefect server's API URL")
    parser.add_argument(
        "--prefect-db",
        default=POSTGRES_ADMIN,
        help="admin URL of a PostgreSQL for the Prefect server's database, or 'sqlite'",
    )
    args = parser.parse_args(argv)
    if args.prefect_db != "sqlite" and (why := postgres_unreachable(args.prefect_db)):
        print(f"Prefect on SQLite: {why}", file=sys.stderr)
        args.prefect_db = "sqlite"
    return args


def _run_one(bench: Benchmark, work: Path, quick: bool) -> Result:
    if bench.run is None:
        return Result(bench.number, bench.name, pending=bench.pending)
    started = time.perf_counter()
    try:
        result = bench.run(work, quick)
    except Exception as exc:
        traceback.print_exc()
        result = Result(bench.number, bench.name, error=f"{type(exc).__name__}: {exc}")
    return replace(result, seconds=round(time.perf_counter() - started, 1))


def _isolate_environment() -> None:
    """The user's own settings must not change what is measured; Prefect stays quiet."""
    for name in [v for v in os.environ if v.startswith("EVIDENCE_")]:
        del os.environ[name]
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    logging.basicConfig(level=logging.ERROR)  # quarantine warnings of the memory sweeps


@contextmanager
def _prefect(work: Path, api_url: str, database: str, needed: bool) -> Iterator[str]:
    """Point Prefect at a server for the whole run: one started here, stopped at the end
    (~15 s to start, so never one per benchmark), or the one given. Yields what its database
    is, for the report."""
    if not needed:
        yield ""
        return
    with contextlib.ExitStack() as stack:
        overrides: dict[str, Any] = {"home": work / "prefect-server"}
        described = "sqlite"
        if api_url:
            overrides["prefect"] = {"api_url": api_url}
            described = f"a running server ({api_url})"
        elif database != "sqlite":
            url = stack.enter_context(fresh_postgres_database(database, "evidence_bench_prefect"))
            asyncpg = url.set(drivername="postgresql+asyncpg")
            overrides["prefect"] = {"database_url": asyncpg.render_as_string(hide_password=False)}
            described = "postgresql"
        settings = load_settings(**overrides)
        server = use_prefect(settings)
        try:
            yield described
        finally:
            if server.started:
                stop_server(settings)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+changes" if dirty else head
