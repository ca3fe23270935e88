"""Shared fixtures: real temporary folders, real SQLite/PostgreSQL catalogs, real media made
by ffmpeg, and a Prefect test server for the flow tests."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Generator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Prefect reads its settings when first imported: isolate it before any test imports it.
_PREFECT_HOME = tempfile.mkdtemp(prefix="evidence-tests-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.pop("PREFECT_API_URL", None)
# The user's own settings must not leak into the tests (EVIDENCE_TEST_* steer the tests).
for _var in [
    v for v in os.environ if v.startswith("EVIDENCE_") and not v.startswith("EVIDENCE_TEST_")
]:
    del os.environ[_var]

# The terminal's size is no test's business: readline, which pytest imports at start-up, puts
# COLUMNS=80 and LINES=24 into the C environment (not os.environ), so the `evidence`
# processes a test starts, and pytest-xdist's workers, would fold tables at 80 columns where
# a run without them writes one line per row. A test that wants a width sets COLUMNS itself.
for _var in ("COLUMNS", "LINES"):
    os.environ.pop(_var, None)
    os.unsetenv(_var)

# As the CLI does (pipeline/storage/modes.py): what the tests' instances create is private, so
# verify's mode checks see what a deployment has.
os.umask(0o077)

import pytest  # noqa: E402
import sqlalchemy  # noqa: E402

from interfaces import synth  # noqa: E402
from pipeline.catalog import Catalog, open_catalog  # noqa: E402
from pipeline.catalog.jobs import new_owner  # noqa: E402
from pipeline.custody.keys import create_instance_key, describe  # noqa: E402
from pipeline.ingest.steps import IngestContext  # noqa: E402
from pipeline.models import Station  # noqa: E402
from pipeline.registry.stations import save_station  # noqa: E402
from pipeline.settings import Settings, load_settings  # noqa: E402
from pipeline.storage.local import LocalStore  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get(
    "EVIDENCE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
RECORDED = datetime(2026, 5, 5, 8, 30, 0, tzinfo=UTC)


def make_settings(home: Path, **overrides: object) -> Settings:
    """Test settings: no stability wait (files are complete when written), small blocks."""
    values: dict[str, object] = {
        "home": home,
        "watch": {"stable_s": 0.0, "sweep_interval_s": 3600, "batch_window_s": 0.1},
        "transcode": {"max_height": 144, "timeout_s": 60},
        "ingest": {"workers": 2, "block_size": 256 << 10},
        # The ingest mechanics are tested on dumps from unregistered folders; the registry's
        # quarantine of unknown devices has tests of its own (tests/test_identify*.py).
        "devices": {"unknown": "accept"},
    }
    values.update(overrides)
    # A home whose instance key exists has it pinned, as its deployment would.
    key = home / "keys" / "instance.key"
    custody = dict(values.get("custody") or {})  # type: ignore[call-overload]
    if key.exists() and "pinned_keys" not in custody:
        custody["pinned_keys"] = [describe(home).key_id]
        values["custody"] = custody
    return load_settings(**values)


@pytest.fixture
def settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Settings:
    """Test settings in a fresh EVIDENCE_HOME. With EVIDENCE_TEST_CATALOG=postgresql the catalog
    is a fresh PostgreSQL database instead of SQLite: set in the environment, so settings made
    later in the test (make_settings, flows' load_settings) use it too."""
    home = tmp_path / "home"
    monkeypatch.setenv("EVIDENCE_HOME", str(home))
    if os.environ.get("EVIDENCE_TEST_CATALOG") == "postgresql":
        monkeypatch.setenv("EVIDENCE_CATALOG__URL", request.getfixturevalue("pg_url"))
    pin_instance_key(home, monkeypatch)
    return make_settings(home)


def pin_instance_key(home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Create the instance key of ``home`` (as `evidence init` will find and keep it) and pin
    its id the way a deployment does: in the environment the instance is started with, which
    subprocesses of the test inherit. Returns the key id."""
    key_id = create_instance_key(home).key_id
    monkeypatch.setenv("EVIDENCE_CUSTODY__PINNED_KEYS", json.dumps([key_id]))
    return key_id


@pytest.fixture
def catalog(settings: Settings) -> Iterator[Catalog]:
    cat = open_catalog(settings.catalog_url)
    yield cat
    cat.dispose()


@pytest.fixture
def dock(tmp_path: Path) -> Path:
    root = tmp_path / "dock"
    root.mkdir()
    return root


@pytest.fixture
def station(catalog: Catalog, dock: Path) -> Station:
    # Set-up, not the behaviour under test: saved like an import row, so that a test whose
    # officers are registered first need not name one of them (stations.add_station checks).
    with catalog.begin() as conn:
        save_station(conn, Station("DOCK-01", dock, name="采集站 1"), "tester")
    return Station("DOCK-01", dock.resolve(), name="采集站 1")


@pytest.fixture
def ctx(catalog: Catalog, settings: Settings) -> IngestContext:
    return IngestContext(
        catalog=catalog,
        store=LocalStore(settings.archive_dir, settings.ingest.block_size),
        settings=settings,
        owner=new_owner(),
    )


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny real media, made once per session by ffmpeg; copy them, never modify them."""
    d = tmp_path_factory.mktemp("clips")
    return {
        "video": synth.make_video(
            d / "video.mp4", seconds=1.0, creation_time=RECORDED, make="ZFJLY", model="DSJ-A9"
        ),
        "video2": synth.make_video(d / "video2.mp4", seconds=1.0, width=160, height=120),
        "audio": synth.make_audio(d / "audio.m4a", seconds=1.0, creation_time=RECORDED),
        "photo": synth.make_photo(d / "photo.jpg"),
        "pdf": synth.make_pdf(d / "record.pdf", "on-site record"),
        "truncated": synth.make_truncated_mp4(d / "truncated.mp4"),
        "header_only": synth.make_header_only_mp4(d / "header.mp4"),
        "empty": synth.make_empty(d / "empty.mp4"),
    }


def put(clip: Path, dock: Path, relative: str) -> Path:
    """Drop a copy of a clip on a dock, as a docking station would."""
    target = dock / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(clip, target)
    return target


# ------------------------------------------------------------------------------ PostgreSQL


def _pg_required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("EVIDENCE_TEST_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin URL of a reachable PostgreSQL; on CI its absence is a failure, not a skip."""
    engine = sqlalchemy.create_engine(PG_ADMIN_URL)
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.OperationalError as exc:
        if _pg_required():
            pytest.fail(f"PostgreSQL is required here but unreachable at {PG_ADMIN_URL}: {exc}")
        pytest.skip(f"no PostgreSQL at {PG_ADMIN_URL}")
    finally:
        engine.dispose()
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"evidence_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield pg_server.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    return str(request.getfixturevalue("pg_url"))


# ---------------------------------------------------------------------------------- Prefect


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """One Prefect test server for the session (it takes ~15 s to start); its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        url = PREFECT_API_URL.value()
        assert url, "prefect_test_harness gave no API URL"
        yield str(url)


def free_port() -> int:
    """A TCP port on loopback nothing listens on now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------- parallel runs


@pytest.hookimpl(wrapper=True)
def pytest_report_to_serializable(report: pytest.TestReport) -> Generator[None, Any, Any]:
    """A report as pytest-xdist sends it from a worker, with text made UTF-8.

    The hostile-dock tests log and assert on file names that are not UTF-8: Python holds
    their bytes as lone surrogates (os.fsdecode), which execnet refuses to send ("strings
    must be utf-8 encodable"), ending the whole run. The bytes are shown as escapes instead
    (``\\xff``), so a failure still names the file exactly."""
    data = yield
    return _utf8_safe(data)


def _utf8_safe(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            try:
                raw = value.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:  # a surrogate that no undecodable byte made
                return value.encode("utf-8", "backslashreplace").decode()
            return raw.decode("utf-8", "backslashreplace")
        return value
    if isinstance(value, dict):
        return {key: _utf8_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_utf8_safe(item) for item in value)
    return value


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups (--dist loadgroup)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep together the tests of a module that share a fixture of that module (a demo
    archive, a SeaweedFS server, a browser): on one worker it is built once; spread, it
    would be built by each. Every other test goes to whichever worker is free."""
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs.values() if info is not None else ()
        if any(
            d[-1].scope in ("module", "class") and d[-1].baseid.startswith(module) for d in defs
        ):
            item.add_marker(pytest.mark.xdist_group(module))
