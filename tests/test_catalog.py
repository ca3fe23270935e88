"""The catalog on SQLite and PostgreSQL: migrations, durable jobs, the custody chain."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, text, update

from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import open_catalog
from pipeline.catalog.schema import custody_events, ingest_jobs, stations
from pipeline.custody import log as custody
from pipeline.models import EventKind, JobState, SourceFile

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def _station(conn, station_id: str = "S1") -> None:  # type: ignore[no-untyped-def]
    conn.execute(
        stations.insert().values(id=station_id, name="", root="/dock", location="", created_at=NOW)
    )


def test_migrations_create_the_schema_and_are_idempotent(any_catalog_url: str) -> None:
    cat = open_catalog(any_catalog_url)
    tables = set(inspect(cat.engine).get_table_names())
    assert {"media", "ingest_jobs", "custody_events", "quarantine", "sightings"} <= tables
    cat.dispose()
    again = open_catalog(any_catalog_url)  # second open: nothing to do, nothing breaks
    with again.begin() as conn:
        assert conn.execute(text("select seq, hash from custody_head")).one() == (0, "0" * 64)
    again.dispose()


def test_datetimes_round_trip_as_utc(any_catalog_url: str) -> None:
    cat = open_catalog(any_catalog_url)
    with cat.begin() as conn:
        ev = custody.append(conn, EventKind.STATION_ADDED, "t", now=NOW.astimezone())
    with cat.begin() as conn:
        (stored,) = custody.events(conn)
    assert stored.at == NOW and stored.at.tzinfo is UTC and stored.hash == ev.hash
    cat.dispose()


def test_custody_chain_links_and_detects_an_edited_row(any_catalog_url: str) -> None:
    cat = open_catalog(any_catalog_url)
    with cat.begin() as conn:
        for i in range(5):
            custody.append(conn, EventKind.VERIFIED, "t", subject=f"f{i}", details={"n": i})
    with cat.begin() as conn:
        assert custody.broken_links(conn) == []
        conn.execute(
            update(custody_events).where(custody_events.c.seq == 3).values(details={"n": 99})
        )
        problems = custody.broken_links(conn)
    assert problems == ["seq 3: content does not match its hash"]
    cat.dispose()


def test_parallel_writers_never_fork_the_chain(any_catalog_url: str) -> None:
    cat = open_catalog(any_catalog_url)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                with cat.begin() as conn:
                    custody.append(conn, EventKind.VERIFIED, f"w{n}", details={"i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with cat.begin() as conn:
        seqs = [e.seq for e in custody.events(conn)]
        assert seqs == list(range(1, 61))
        assert custody.broken_links(conn) == []
    cat.dispose()


def test_job_claims_exclude_a_live_owner_and_pass_on_from_a_dead_one(any_catalog_url: str) -> None:
    cat = open_catalog(any_catalog_url)
    src = SourceFile("S1", Path("/dock/a.mp4"), 10, 123)
    with cat.begin() as conn:
        _station(conn)
        job = jobs_db.find_or_create(conn, src, NOW)
        assert jobs_db.find_or_create(conn, src, NOW).id == job.id, "one job per file version"
        mine = jobs_db.new_owner()
        assert jobs_db.claim(conn, job.id, mine, NOW) is not None
        assert jobs_db.claim(conn, job.id, jobs_db.new_owner(), NOW) is None, "held by a live owner"
        # An owner whose process is gone (pid 2**22 + 1 is above Linux's pid_max) loses it.
        dead = mine.rsplit(":", 2)[0] + f":{2**22 + 1}:dead"
        conn.execute(update(ingest_jobs).where(ingest_jobs.c.id == job.id).values(owner=dead))
        taken = jobs_db.claim(conn, job.id, mine, NOW)
        assert taken is not None and taken.attempts == 2
        # A live owner whose lease ran out loses it too.
        assert (
            jobs_db.claim(conn, job.id, jobs_db.new_owner(), NOW + timedelta(hours=1)) is not None
        )
        jobs_db.advance(conn, job.id, JobState.DONE, NOW)
        assert jobs_db.claim(conn, job.id, mine, NOW) is None, "a finished job is never claimed"
    cat.dispose()


@pytest.mark.parametrize(
    "url", ["sqlite:////proc/no-such-dir/catalog.db", "postgresql+psycopg://nobody@127.0.0.1:1/x"]
)
def test_unreachable_catalog_is_a_catalog_error(url: str) -> None:
    from pipeline.errors import CatalogError

    with pytest.raises(CatalogError):
        open_catalog(url)


def test_migrations_build_exactly_the_schema_the_code_declares(any_catalog_url: str) -> None:
    """A column added to schema.py without a migration (or the reverse) fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from pipeline.catalog.schema import declared_elsewhere, metadata

    cat = open_catalog(any_catalog_url)
    # The full-text index (SQLite FTS5 tables, a pg_trgm index) lives in its migration only.
    opts = {"include_name": lambda name, type_, parent: not declared_elsewhere(name)}
    with cat.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), metadata)
    cat.dispose()
    assert diff == []


def test_a_read_does_not_wait_for_a_writer_on_sqlite(tmp_path: Path) -> None:
    """Searches and listings read while an ingest holds the write lock (WAL)."""
    import time

    cat = open_catalog(f"sqlite:///{tmp_path / 'c.db'}")
    with cat.begin() as writer:
        custody.append(writer, EventKind.VERIFIED, "w")  # the write lock is held from here on
        started = time.monotonic()
        with cat.read() as reader:
            assert reader.execute(text("select count(*) from custody_events")).scalar_one() == 0
        assert time.monotonic() - started < 5, "the read waited for the writer"
    cat.dispose()


def test_a_missing_postgresql_driver_names_the_extra_and_hides_the_password() -> None:
    """PostgreSQL's driver is the `[postgres]` extra; without it the error said nothing useful
    and showed the URL with its password."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from pipeline.catalog import open_catalog\n"
        "try:\n"
        "    open_catalog('postgresql+psycopg://evidence:s3cret@127.0.0.1/evidence')\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.startswith("CatalogError") and "evidence-pipeline[postgres]" in out
    assert "s3cret" not in out and "***" in out


def test_the_head_revision_the_fast_path_knows_is_the_newest_migration(tmp_path: Path) -> None:
    """A catalog at HEAD_REVISION is opened without Alembic: a new migration must move it,
    or catalogs would never be migrated to it."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from pipeline.catalog.db import HEAD_REVISION, MIGRATIONS, at_head

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION
    catalog = open_catalog(f"sqlite:///{tmp_path / 'new.db'}")
    assert at_head(catalog)
    catalog.dispose()
