"""What every benchmark needs: statistics, test files, and evidence homes to ingest into."""

from __future__ import annotations

import math
import os
import shutil
import statistics
import struct
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy

from pipeline.catalog import open_catalog
from pipeline.custody.keys import create_instance_key
from pipeline.ingest.steps import INGESTED_DIR
from pipeline.models import Station
from pipeline.registry.stations import add_station
from pipeline.settings import Settings, load_settings

MB = 1_000_000  # rates are quoted in MB/s, as dd and the issue quote them
MiB = 1 << 20

#: Settings of every bench home: files are complete once written (no stability wait), and
#: the recorders are not in the device registry, which is not what is measured here.
BASE_CONFIG: dict[str, dict[str, object]] = {
    "watch": {"stable_s": 0.0},
    "devices": {"unknown": "accept"},
}


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: a value that was actually measured."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def write_random(path: Path, size: int) -> Path:
    """``size`` random bytes, made durable so their write-back does not disturb what follows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n
        f.flush()
        os.fsync(f.fileno())
    return path


def write_text_document(path: Path, size: int) -> Path:
    """A text record (笔录) of ``size`` bytes: a document, so no proxy is made for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(os.urandom(size // 2).hex() + "\n" * (size % 2), encoding="ascii")
    return path


def unique_copy(clip: Path, target: Path, serial: int) -> Path:
    """A copy of an MP4 with a trailing ``free`` box holding ``serial``: the same playable
    video with other bytes, so it is a new media item and not a duplicate, without an
    ffmpeg run per copy. ISO BMFF readers skip ``free`` boxes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(clip, target)
    payload = f"bench copy {serial}".encode()
    with target.open("ab") as f:
        f.write(struct.pack(">I4s", 8 + len(payload), b"free") + payload)
    return target


def make_home(path: Path, extra: dict[str, dict[str, object]] | None = None) -> Settings:
    """A fresh EVIDENCE_HOME with BASE_CONFIG (and ``extra``) in its config.toml and a signing
    key, as `evidence init` leaves it, made this process's home: the flow reads its settings
    from the environment, as a worker would."""
    sections = {name: dict(values) for name, values in BASE_CONFIG.items()}
    for name, values in (extra or {}).items():
        sections.setdefault(name, {}).update(values)
    path.mkdir(parents=True)
    (path / "config.toml").write_text(_toml(sections), encoding="utf-8")
    create_instance_key(path)  # custody checkpoints are signed, as on a real installation
    os.environ["EVIDENCE_HOME"] = str(path)
    return load_settings()


def add_dock(settings: Settings, root: Path, station_id: str = "BENCH-01") -> Station:
    root.mkdir(parents=True, exist_ok=True)
    catalog = open_catalog(settings.catalog_url)
    try:
        return add_station(catalog, station_id, root, "bench")
    finally:
        catalog.dispose()


def restore_released(station: Station) -> None:
    """Put the sources a run released (moved to .ingested/) back on the dock for the next."""
    released = station.root / INGESTED_DIR
    for path in sorted(released.rglob("*")):
        if path.is_file():
            back = station.root / path.relative_to(released)
            back.parent.mkdir(parents=True, exist_ok=True)
            path.replace(back)
    shutil.rmtree(released, ignore_errors=True)


@contextmanager
def scratch(path: Path) -> Iterator[Path]:
    """A folder removed afterwards, even when the benchmark fails: disk space is shared."""
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _toml(sections: dict[str, dict[str, object]]) -> str:
    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "".join(
        f"[{name}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in values.items()) + "\n"
        for name, values in sections.items()
    )


def wait_for_quiet(max_s: float = 30.0, idle_share: float = 0.8) -> float:
    """Wait until the CPUs were at least ``idle_share`` idle over the last second, at most
    ``max_s``: work a previous step left to a server (a Prefect server persisting events for
    10 s or so after a burst of flow runs) must not be timed against the next one. Returns
    the seconds waited."""
    started = time.monotonic()
    before = _cpu_times()
    while time.monotonic() - started < max_s:
        time.sleep(1.0)
        after = _cpu_times()
        busy, idle = after[0] - before[0], after[1] - before[1]
        if busy + idle and idle / (busy + idle) >= idle_share:
            break
        before = after
    return time.monotonic() - started


def _cpu_times() -> tuple[int, int]:
    """(busy, idle) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, idle


#: Where the benchmarks look for a PostgreSQL (the development machines have one, trust auth).
POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def postgres_unreachable(admin_url: str) -> str | None:
    """Why the PostgreSQL at ``admin_url`` cannot be used; None when it answers within 2 s."""
    url = sqlalchemy.make_url(admin_url)
    try:
        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 2})
    except ImportError as exc:
        return f"no driver for {url.drivername} ({exc})"
    try:
        with engine.connect():
            return None
    except sqlalchemy.exc.OperationalError:
        return f"none answered at {url.host}:{url.port or 5432} within 2 s"
    finally:
        engine.dispose()


@contextmanager
def fresh_postgres_database(admin_url: str, prefix: str) -> Iterator[sqlalchemy.URL]:
    """A new, empty database named ``prefix`` and this process's id (runs may overlap on one
    server), dropped at the end; its URL, with the admin URL's driver."""
    name = f"{prefix}_{os.getpid()}"
    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(drop)  # left by a crashed run of the same pid
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield sqlalchemy.make_url(admin_url).set(database=name)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(drop)
    finally:
        admin.dispose()
