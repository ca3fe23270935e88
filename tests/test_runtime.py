"""The local Prefect server the CLI starts: on SQLite by default, on PostgreSQL when told."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy

from flows.runtime import profile_settings, running_server, start_server, stop_server
from pipeline.errors import PrefectUnavailable
from tests.conftest import make_settings


def test_the_local_server_uses_the_configured_database(tmp_path: Path) -> None:
    plain = make_settings(tmp_path / "a")
    assert "PREFECT_SERVER_DATABASE_CONNECTION_URL" not in profile_settings(plain, 4200)
    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/prefect"
    told = make_settings(tmp_path / "b", prefect={"database_url": url})
    assert profile_settings(told, 4200)["PREFECT_SERVER_DATABASE_CONNECTION_URL"] == url


def test_a_local_server_on_postgresql_keeps_its_runs_there(tmp_path: Path, pg_url: str) -> None:
    asyncpg_url = sqlalchemy.make_url(pg_url).set(drivername="postgresql+asyncpg")
    settings = make_settings(
        tmp_path / "home",
        prefect={"database_url": asyncpg_url.render_as_string(hide_password=False)},
    )
    server = start_server(settings)
    try:
        assert server.started
        engine = sqlalchemy.create_engine(pg_url)
        try:
            tables = set(sqlalchemy.inspect(engine).get_table_names())
        finally:
            engine.dispose()
        # Prefect migrated its schema into our PostgreSQL database, not into a SQLite file.
        assert {"flow_run", "task_run", "deployment"} <= tables
        assert not list((settings.prefect_home).glob("*.db"))
        # The next command finds it; one configured for SQLite is told to restart it.
        found = running_server(settings)
        assert found is not None and found.url == server.url
        on_sqlite = make_settings(tmp_path / "home")
        with pytest.raises(PrefectUnavailable, match="restart it"):
            running_server(on_sqlite)
    finally:
        assert stop_server(settings)
