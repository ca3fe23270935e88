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


def test_workers_start_each_run_with_the_engine_under_the_projects_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without a command a Prefect 3.9 process worker starts a workspace supervisor first,
    # a second Prefect start-up per run (benchmark 10); the command must name a Python that
    # exists on the worker host.
    import shlex
    import sys

    from flows.deploy import PROJECT_ROOT, engine_command

    in_project = PROJECT_ROOT / ".venv" / "bin" / "python"
    monkeypatch.setattr(sys, "executable", str(in_project))
    assert shlex.split(engine_command(str(PROJECT_ROOT)) or "") == [
        str(in_project), "-m", "prefect.engine",
    ]  # fmt: skip
    # Workers with the code elsewhere (prefect.code_path) find the Python at its place there.
    assert shlex.split(engine_command("/opt/evidence") or "") == [
        "/opt/evidence/.venv/bin/python", "-m", "prefect.engine",
    ]  # fmt: skip
    # A Python outside the project: the same for workers of this installation's code, unknown
    # to workers with the code elsewhere, which keep Prefect's own launcher.
    monkeypatch.setattr(sys, "executable", "/usr/local/bin/python3.11")
    assert engine_command(str(PROJECT_ROOT)) == "/usr/local/bin/python3.11 -m prefect.engine"
    assert engine_command("/opt/evidence") is None
