"""Opening the catalog: engine set-up per dialect, and migrations to the newest schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from pipeline.errors import CatalogError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: The newest migration. A catalog already there is opened without loading Alembic, which
#: costs every command a third of its start-up (tests/test_catalog.py holds it to the
#: migrations folder).
HEAD_REVISION = "0015"
READ_ONLY = "evidence_read_only"  # execution option: a transaction that only reads


@dataclass(frozen=True)
class Catalog:
    """A handle on the catalog database. ``begin()`` gives a transaction."""

    engine: Engine

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction; SQLAlchemy errors come out as CatalogError."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise CatalogError(f"catalog {self.engine.url!r}: {exc}") from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction. On SQLite it does not take the write lock, so a lookup
        (search, listings) never waits behind an ingest that is writing (WAL lets it read)."""
        try:
            with self.engine.connect().execution_options(**{READ_ONLY: True}) as conn, conn.begin():
                yield conn
        except SQLAlchemyError as exc:
            raise CatalogError(f"catalog {self.engine.url!r}: {exc}") from exc

    def dispose(self) -> None:
        self.engine.dispose()


def open_catalog(url: str, *, migrate: bool = True) -> Catalog:
    """Connect, and bring the schema to the newest migration."""
    engine = _make_engine(url)
    catalog = Catalog(engine)
    if migrate:
        upgrade(catalog)
    return catalog


def _make_engine(url: str) -> Engine:
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError) as exc:
        raise CatalogError(f"catalog.url is not a database URL: {exc}") from exc
    try:
        if url.startswith("sqlite"):
            return _sqlite_engine(url)
        return _server_engine(url)
    except ImportError as exc:
        if url.startswith("postgresql"):
            # The driver is an extra: an embedded (SQLite) installation does not need it.
            raise CatalogError(
                f"cannot open catalog {shown}: the PostgreSQL driver is not installed "
                "(pip install 'evidence-pipeline[postgres]')"
            ) from exc
        raise CatalogError(f"cannot open catalog {shown}: {exc}") from exc
    except (SQLAlchemyError, OSError) as exc:
        raise CatalogError(f"cannot open catalog {shown}: {exc}") from exc


def _server_engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "postgresql":

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # No JIT compilation: it pays off for statements that run for seconds, and the
            # catalog's run for milliseconds up to a few hundred (the dashboard's at an
            # agency's year). Above jit_above_cost PostgreSQL compiled them anyway, 15-180 ms
            # a statement (benchmarks 4 and 9).
            with dbapi_conn.cursor() as cur:
                cur.execute("SET jit = off")
            dbapi_conn.commit()

    return engine


def _sqlite_engine(url: str) -> Engine:
    path = url.split("///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    # pysqlite's own transaction handling defers BEGIN and starts DEFERRED transactions, which
    # can fail with "database is locked" when a reader upgrades to a writer. Take the write
    # lock at BEGIN instead (BEGIN IMMEDIATE): writers then queue on the busy timeout, and the
    # custody chain's read-then-append cannot interleave.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        cur.execute("PRAGMA synchronous=FULL")  # evidence: a commit survives power loss
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def at_head(catalog: Catalog) -> bool:
    """True when the catalog's schema is the newest migration (read without Alembic)."""
    try:
        with catalog.engine.connect() as conn:
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        return False  # a new database: no version table yet
    return found == HEAD_REVISION


def upgrade(catalog: Catalog) -> None:
    """Apply pending migrations; a no-op when the schema is current."""
    if at_head(catalog):
        return
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    try:
        with catalog.engine.begin() as conn:
            head = ScriptDirectory.from_config(_alembic_config(conn)).get_current_head()
            if MigrationContext.configure(conn).get_current_revision() == head:
                return
            command.upgrade(_alembic_config(conn), "head")
    except (SQLAlchemyError, OSError) as exc:
        raise CatalogError(f"cannot migrate catalog {catalog.engine.url!r}: {exc}") from exc
