"""Reading is supervised everywhere (调阅监督): listings, search results and the audit trail
withhold descriptions, GPS and text-record fields unless revealed with who and why, and a
reveal is one VIEWED event committed before the page is shown; the instance's files are its
user's alone. Through the real CLI, then the catalog and the file system looked at again."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from pipeline.catalog.schema import media as media_table
from pipeline.custody import access
from pipeline.custody import log as custody
from pipeline.custody.access import Field
from pipeline.errors import AccessRefused
from pipeline.instance import Instance
from pipeline.models import EventKind
from pipeline.search import usecases as search_usecases
from pipeline.storage.modes import catalog_files, check_modes, witness_file
from tests.custody_helpers import EVIDENCE, Archive, copy_archive, template

#: Planted where a listing must not show it: the parties' names and ID number, a place.
DESCRIPTION = "当事人张三 身份证110101199001011234 在场"
LATITUDE, LONGITUDE = 39.904211, 116.407395
COMMENT = "GPS N39.904211 E116.407395"
SECRETS = ("张三", "110101199001011234", "39.904211", "116.407395", "N39.9042")
REVEAL = ("--reveal", "--as", "A001", "--reason", "复核 案件 2026-0113")


_DESCRIBED: dict[str, Path] = {}


def _described(tmp_path_factory: pytest.TempPathFactory, clips: dict[str, Path]) -> Path:
    """The custody template's three items; the video described (through the CLI) and given
    a GPS fix and a recorder comment holding one. Once per session, copied for each test
    (an `evidence` process per test was a fifth of this module's time)."""
    if "home" not in _DESCRIBED:
        home = tmp_path_factory.mktemp("private-template") / "home"
        made = copy_archive(template(tmp_path_factory, clips), home)
        video = made.items["video"]
        described = made.cli("media", "describe", str(video.id), DESCRIPTION, "--as", "1023")
        assert described.returncode == 0, described.stderr
        extra = {**video.probe.extra, "comment": COMMENT}
        with made.catalog.begin() as conn:
            conn.execute(
                update(media_table)
                .where(media_table.c.id == video.id)
                .values(latitude=LATITUDE, longitude=LONGITUDE, extra=extra)
            )
        made.catalog.dispose()  # the last connection folds SQLite's WAL into the file
        _DESCRIBED["home"] = home
    return _DESCRIBED["home"]


@pytest.fixture
def archive(
    tmp_path_factory: pytest.TempPathFactory, clips: dict[str, Path], tmp_path: Path
) -> Iterator[Archive]:
    """A copy of :func:`_described`'s home."""
    copy = copy_archive(_described(tmp_path_factory, clips), tmp_path / "home")
    yield copy
    copy.catalog.dispose()


def _events(archive: Archive) -> list[custody.CustodyEvent]:
    with archive.catalog.read() as conn:
        return list(custody.events(conn))


def _listings(archive: Archive, after: int) -> list[custody.CustodyEvent]:
    return [
        e
        for e in _events(archive)
        if e.seq > after and e.kind is EventKind.VIEWED and e.details.get("view") == "listing"
    ]


def _head(archive: Archive) -> int:
    return _events(archive)[-1].seq


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# ------------------------------------------------------------------------ withheld by default

WITHHOLDING = {
    "media-list-json": ["media", "list", "--json"],
    "media-list": ["media", "list"],
    "media-unlinked-json": ["media", "unlinked", "--json"],
    "search-json": ["search", "--json"],
    "search": ["search"],
    "search-by-its-words": ["search", "在场", "--json"],
    "audit-json": ["audit", "--json"],
    "audit": ["audit"],
    "audit-media-json": ["audit", "--media", "1", "--json"],
}


@pytest.mark.parametrize("args", WITHHOLDING.values(), ids=WITHHOLDING.keys())
def test_listings_withhold_descriptions_and_gps(archive: Archive, args: list[str]) -> None:
    before = _head(archive)
    result = archive.cli(*args)
    assert result.returncode == 0, result.stderr
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr, f"{secret!r} shown by {args}"
    if args[0] != "media" or args[1] != "unlinked":  # it lists no such field at all
        assert "--reveal --as WHO --reason WHY" in result.stdout + result.stderr, "says how"
    if "--json" in args:
        json.loads(result.stdout)  # the note goes to stderr: stdout stays JSON
    assert _head(archive) == before, "a listing that shows nothing sensitive records nothing"


def test_a_listed_item_names_what_it_withholds(archive: Archive) -> None:
    video = archive.items["video"]
    listed = json.loads(archive.cli("media", "list", "--json").stdout)
    shown = next(m for m in listed if m["id"] == video.id)
    assert shown["withheld"] == ["description", "location"]
    assert shown["description"] is None
    assert (shown["probe"]["latitude"], shown["probe"]["longitude"]) == (None, None)
    assert "comment" not in shown["probe"]["extra"]
    assert shown["probe"]["extra"], "what describes the encoding stays"
    photo = next(m for m in listed if m["id"] == archive.items["photo"].id)
    assert photo["withheld"] == []

    found = json.loads(archive.cli("search", "--json").stdout)
    assert found["withheld"] == ["description"]
    hit = next(h for h in found["items"] if h["id"] == video.id)
    assert (hit["description"], hit["withheld"]) == (None, ["description"])


def test_the_audit_says_a_description_changed_not_its_text(archive: Archive) -> None:
    video = archive.items["video"]
    trail = json.loads(archive.cli("audit", "--media", str(video.id), "--json").stdout)
    (described,) = [e for e in trail if e["kind"] == "described"]
    assert described["details"] == {"description": None}
    assert described["withheld"] == ["description"]
    table = archive.cli("audit", "--media", str(video.id), "--kind", "described")
    assert "（已隐去）" in table.stdout and "在场" not in table.stdout, table.stdout


# ------------------------------------------------------------------------------- revealed


def test_a_revealed_listing_is_one_event_naming_its_items_and_fields(archive: Archive) -> None:
    before = _head(archive)
    result = archive.cli("media", "list", *REVEAL, "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    video = next(m for m in listed if m["id"] == archive.items["video"].id)
    assert video["description"] == DESCRIPTION and video["withheld"] == []
    assert (video["probe"]["latitude"], video["probe"]["extra"]["comment"]) == (LATITUDE, COMMENT)

    (event,) = _listings(archive, before)
    assert (event.actor, event.subject, event.media_id) == ("A001", "media list", None)
    assert event.details["reason"] == "复核 案件 2026-0113"
    assert event.details["media"] == sorted(m["id"] for m in listed)
    assert event.details["fields"] == ["description", "location"]


def test_the_event_is_committed_before_the_page_is_written(archive: Archive) -> None:
    """stdout a pipe nobody reads: writing the page fails, its viewing is recorded anyway."""
    before = _head(archive)
    read, write = os.pipe()
    os.close(read)
    try:
        failed = subprocess.run(
            [*EVIDENCE, "search", *REVEAL, "--json"],
            env=archive.env(), stdout=write, stderr=subprocess.PIPE, text=True, timeout=120,
        )  # fmt: skip
    finally:
        os.close(write)
    assert failed.returncode != 0, "the page could not be written"
    (event,) = _listings(archive, before)
    assert event.subject == "search" and event.details["fields"] == ["description"]
    assert set(event.details["media"]) == {i.id for i in archive.items.values()}


def test_a_revealed_search_shows_descriptions_and_records_the_query(archive: Archive) -> None:
    before = _head(archive)
    table = archive.cli("search", "张三", *REVEAL)
    assert table.returncode == 0, table.stderr
    assert "张三" in table.stdout and "已隐去" not in table.stdout
    (event,) = _listings(archive, before)
    assert event.details["query"] == "张三"
    assert event.details["media"] == [archive.items["video"].id]


def test_the_use_case_reveals_for_every_interface(archive: Archive) -> None:
    instance = Instance(archive.settings, archive.catalog)
    hidden = search_usecases.media_list(instance)
    assert all(i.description is None for i in hidden)
    before = _head(archive)
    shown = search_usecases.media_list(instance, reveal=True, actor="A001", reason="复核")
    assert DESCRIPTION in {i.description for i in shown}
    (event,) = _listings(archive, before)
    found = search_usecases.search(instance, "", reveal=True, actor="A001", reason="复核")
    assert found.viewed == event.seq + 1 and found.withheld == ()


def test_a_revealed_audit_is_recorded_and_shows_the_text(archive: Archive) -> None:
    video = archive.items["video"]
    before = _head(archive)
    result = archive.cli("audit", "--media", str(video.id), *REVEAL, "--json")
    assert result.returncode == 0, result.stderr
    (described,) = [e for e in json.loads(result.stdout) if e["kind"] == "described"]
    assert described["details"] == {"description": DESCRIPTION}
    (event,) = _listings(archive, before)
    assert (event.subject, event.details["media"]) == ("audit", [video.id])
    assert event.details["fields"] == ["description"]
    # The item's history now holds the listing that showed it.
    trail = access.audit(archive.catalog, media_key=str(video.id))
    assert trail[-1].seq == event.seq


def test_the_access_layer_reveals_an_audit_only_with_who_and_why(archive: Archive) -> None:
    video = archive.items["video"]
    with pytest.raises(AccessRefused, match=r"audit: a reason is required \(--reason\)"):
        access.audit(archive.catalog, media_key=str(video.id), reveal=True, viewer="A001")
    before = _head(archive)
    trail = access.audit(
        archive.catalog, media_key=str(video.id), reveal=True, viewer="A001", reason="复核"
    )
    assert {e.details.get("description") for e in trail} >= {DESCRIPTION}
    (event,) = _listings(archive, before)
    assert event.details["media"] == [video.id] and event.actor == "A001"


REFUSED = {
    "media-list-no-reason": (["media", "list", "--reveal", "--as", "A001", "--json"], "--reason"),
    "search-no-actor": (["search", "--reveal", "--reason", "复核"], "--as"),
    "audit-no-reason": (["audit", "--reveal", "--as", "A001", "--json"], "--reason"),
}


@pytest.mark.parametrize(("args", "missing"), REFUSED.values(), ids=REFUSED.keys())
def test_a_reveal_without_who_or_why_is_refused_and_prints_nothing(
    archive: Archive, args: list[str], missing: str
) -> None:
    before = _head(archive)
    result = archive.cli(*args)
    assert result.returncode == 2
    assert f"required ({missing})" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
    assert _head(archive) == before


def test_who_and_why_without_reveal_is_a_usage_error(archive: Archive) -> None:
    result = archive.cli("media", "list", "--as", "A001", "--reason", "复核")
    assert result.returncode == 2 and "--as and --reason go with --reveal" in result.stderr
    assert result.stdout == ""


# ----------------------------------------------------------------------------------- modes


def test_init_makes_an_older_home_private(archive: Archive) -> None:
    home, settings = archive.home, archive.settings
    video = archive.items["video"]
    original = archive.store.original_path(video.sha256)
    catalog_db = catalog_files(settings)[0]
    home.chmod(0o755)
    catalog_db.chmod(0o644)
    original.chmod(0o444)
    witness = witness_file(home)
    witness.parent.mkdir(exist_ok=True)
    witness.touch()
    witness.chmod(0o644)

    result = archive.cli("init", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["made_private"] >= 4

    assert _mode(home) == 0o700
    for path in catalog_files(settings):
        if path.exists():
            assert _mode(path) == 0o600, path
    assert _mode(original) == 0o400
    assert video.proxy_key is not None
    assert _mode(archive.store.derived_path(video.proxy_key)) == 0o600
    assert _mode(witness) == 0o600
    for folder in (settings.log_dir, home / "keys", settings.archive_dir / "originals"):
        assert _mode(folder) == 0o700, folder
    assert check_modes(settings) == []


def test_a_fresh_init_and_what_the_cli_writes_are_private(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "PREFECT_API"))}
    result = subprocess.run(
        [*EVIDENCE, "--home", str(home), "init"], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _mode(home) == 0o700 and _mode(home / "catalog.db") == 0o600
    open_files = [p for p in home.rglob("*") if not p.is_symlink() and _mode(p) & 0o077]
    assert open_files == [], "the umask of the CLI keeps everything it makes private"


def test_check_modes_reports_an_open_catalog_and_an_open_original(archive: Archive) -> None:
    assert archive.cli("init").returncode == 0
    settings = archive.settings
    catalog_db = catalog_files(settings)[0]
    video, photo = archive.items["video"], archive.items["photo"]
    catalog_db.chmod(0o644)
    archive.store.original_path(video.sha256).chmod(0o444)
    archive.store.original_path(photo.sha256).chmod(0o600)

    found = {(p.code, p.subject): p.message for p in check_modes(settings)}
    video_path = f"archive/originals/{video.sha256[:2]}/{video.sha256[2:4]}/{video.sha256}"
    photo_path = f"archive/originals/{photo.sha256[:2]}/{photo.sha256[2:4]}/{photo.sha256}"
    assert set(found) == {
        ("E-MODE-OPEN", "catalog.db"),
        ("E-MODE-OPEN", video_path),
        ("E-MODE-WRITABLE", photo_path),
    }
    assert "mode 0644" in found["E-MODE-OPEN", "catalog.db"]
    assert "should be 0600" in found["E-MODE-OPEN", "catalog.db"]
    assert "mode 0444" in found["E-MODE-OPEN", video_path]
    assert "should be 0400" in found["E-MODE-OPEN", video_path]


def test_check_modes_looks_at_a_bounded_sample_of_originals(archive: Archive) -> None:
    assert archive.cli("init").returncode == 0
    for item in archive.items.values():
        archive.store.original_path(item.sha256).chmod(0o444)
    assert len(check_modes(archive.settings)) == 3
    assert len(check_modes(archive.settings, sample=1)) == 1


def test_an_item_has_no_sensitive_fields_it_does_not_hold(archive: Archive) -> None:
    photo = archive.items["photo"]
    assert access.sensitive_fields(photo) == ()
    assert access.listed(photo, revealed=False).withheld == ()
    assert Field.DESCRIPTION.value == "description"
