"""The catalog rows replayed from the custody log: a real archive (three ingested items) lives a
normal life — a case with an officer, links, an unlink, a description, a text record, tags,
conclusion, sealing, and a second open case — and replays clean; then the database is written
the way an attacker with SQL but no signing key would (FKs off, no events), one column at a
time, and every change is named by table, row and field."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import Table, delete, insert, select, update

from docks.sweep import sweep_station
from interfaces import synth
from pipeline.cases import usecases
from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import media as media_db
from pipeline.catalog.schema import case_officers, cases, custody_events, links, media, media_tags
from pipeline.custody import replay
from pipeline.custody.usecases import tag_media
from pipeline.ingest.quarantine import release
from pipeline.ingest.steps import IngestContext
from pipeline.instance import Instance
from pipeline.models import (
    Device,
    DeviceKind,
    DeviceStatus,
    EventKind,
    MediaStatus,
    Officer,
    Outcome,
    RecordType,
    Signature,
    Station,
)
from pipeline.registry import records as registry
from pipeline.storage.local import LocalStore
from tests.conftest import make_settings
from tests.custody_helpers import Archive, copy_archive, template

ENDED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
SEALED_CASE, OPEN_CASE = "2026-0113", "2026-0114"
_LIVED: dict[str, Path] = {}

#: Columns no event can vouch for, and why. Every other column of the three tables is
#: tampered with below, so a new column without coverage fails the test of this list.
EXCLUDED = {
    # The keys: rows are matched by them, so changing one is a missing row and an unrecorded
    # one (test_a_changed_key_is_a_missing_and_an_unrecorded_row).
    "media": {"id"},
    "links": {"id"},
    "cases": {"number"},
}


def _live(archive: Archive) -> None:
    """A normal life of the three items, through the use cases."""
    instance = Instance(archive.settings, archive.catalog, actor="A001", _store=archive.store)
    video, photo, pdf = (archive.items[n] for n in ("video", "photo", "pdf"))
    with archive.catalog.begin() as conn:
        registry.save_officer(conn, Officer("1023", "张伟", "62010023001"), "A001")
    for number in (SEALED_CASE, OPEN_CASE):
        usecases.add_case(
            instance,
            number,
            title="现场检查 某仓库",
            category="on-site-inspection",
            department="一中队",
            officers=["1023"],
            action_start=ENDED - timedelta(hours=1),
            action_end=ENDED,
        )
    for item in (video, pdf, photo):
        usecases.link_media(instance, SEALED_CASE, str(item.id), "同一现场")
    usecases.unlink_media(instance, SEALED_CASE, str(photo.id), "another matter")
    usecases.link_media(instance, OPEN_CASE, str(photo.id), "the other matter")
    usecases.describe_media(instance, str(video.id), "检查现场，当事人在场")
    usecases.set_text_record(instance, str(pdf.id), RecordType.ON_SITE, Signature.SIGNED)
    tag_media(instance, str(video.id), ["review", "现场"], [])
    tag_media(instance, str(video.id), [], ["现场"])
    usecases.conclude_case(instance, SEALED_CASE)
    usecases.archive_case(instance, SEALED_CASE, "case file complete")


@pytest.fixture
def lived(
    tmp_path_factory: pytest.TempPathFactory, clips: dict[str, Path], tmp_path: Path
) -> Iterator[Archive]:
    if "home" not in _LIVED:
        home = tmp_path_factory.mktemp("lived") / "home"
        built = copy_archive(template(tmp_path_factory, clips), home)
        _live(built)
        built.catalog.dispose()
        _LIVED["home"] = home
    copy = copy_archive(_LIVED["home"], tmp_path / "home")
    yield copy
    copy.catalog.dispose()


def _tamper(archive: Archive, *statements: Any) -> None:
    """Write the catalog as an attacker does: plain SQL, foreign keys not enforced."""
    engine = sqlalchemy.create_engine(archive.settings.catalog_url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(statement)
    finally:
        engine.dispose()


def _problems(archive: Archive) -> list[tuple[str, str]]:
    return [(p.code, p.subject) for p in replay.check_records(archive.catalog).problems]


def _row(archive: Archive, table: Table, where: Any) -> dict[str, Any]:
    with archive.catalog.read() as conn:
        return dict(conn.execute(select(table).where(where)).one()._mapping)


def _other(table: Table, column: str, value: Any) -> Any:
    """A value of the column's type that differs from ``value``."""
    if column == "sha256":
        return "0" * 64
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.5
    if isinstance(value, datetime):
        return value + timedelta(seconds=1)
    if isinstance(value, date):
        return value + timedelta(days=1)
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, dict):
        return {**value, "tampered": "yes"}
    if isinstance(value, list):
        return [*value, {"code": "tampered", "message": "yes"}]
    kind = table.c[column].type
    python = getattr(kind, "impl", kind).python_type
    samples = {
        float: 1.25,
        int: 7,
        str: "tampered",
        datetime: datetime(2026, 1, 1, tzinfo=UTC),
        date: date(2026, 1, 1),
        bool: True,
    }
    return samples[python]


def _columns(table: Table) -> list[str]:
    return sorted(c.name for c in table.columns if c.name not in EXCLUDED[table.name])


def test_every_column_but_the_excluded_keys_is_tampered_with() -> None:
    for table, tested in ((media, MEDIA_COLUMNS), (links, LINK_COLUMNS), (cases, CASE_COLUMNS)):
        assert set(tested) | EXCLUDED[table.name] == {c.name for c in table.columns}


MEDIA_COLUMNS = _columns(media)
LINK_COLUMNS = _columns(links)
CASE_COLUMNS = _columns(cases)


def test_a_full_normal_life_replays_clean(lived: Archive) -> None:
    result = replay.check_records(lived.catalog)
    assert result.problems == ()
    with lived.catalog.read() as conn:
        events = conn.execute(select(sqlalchemy.func.count()).select_from(custody_events))
        assert result.events <= events.scalar_one()
    # 3 media, 1 tag, 3 + 1 links, 2 cases, 2 case officers
    assert result.rows == 3 + 1 + 4 + 2 + 2 and result.seconds >= 0


@pytest.mark.parametrize("column", MEDIA_COLUMNS)
def test_an_edited_media_column_is_named(lived: Archive, column: str) -> None:
    video = lived.items["video"].id
    before = _row(lived, media, media.c.id == video)[column]
    _tamper(
        lived,
        update(media).where(media.c.id == video).values({column: _other(media, column, before)}),
    )
    assert _problems(lived) == [(replay.MISMATCH, f"media {video} {column}")]


@pytest.mark.parametrize("column", LINK_COLUMNS)
def test_an_edited_link_column_is_named(lived: Archive, column: str) -> None:
    photo = lived.items["photo"].id
    where = (links.c.case_number == SEALED_CASE) & (links.c.media_id == photo)
    found = _row(lived, links, where)
    value = _other(links, column, found[column])
    if column == "case_number":
        value = OPEN_CASE  # a case that exists
    _tamper(lived, update(links).where(links.c.id == found["id"]).values({column: value}))
    assert _problems(lived) == [(replay.MISMATCH, f"links {found['id']} {column}")]


@pytest.mark.parametrize("number", [SEALED_CASE, OPEN_CASE])
@pytest.mark.parametrize("column", CASE_COLUMNS)
def test_an_edited_case_column_is_named(lived: Archive, column: str, number: str) -> None:
    before = _row(lived, cases, cases.c.number == number)[column]
    _tamper(
        lived,
        update(cases)
        .where(cases.c.number == number)
        .values({column: _other(cases, column, before)}),
    )
    assert _problems(lived) == [(replay.MISMATCH, f"cases {number} {column}")]


def test_case_officers_and_tags_are_compared(lived: Archive) -> None:
    video = lived.items["video"].id
    _tamper(
        lived,
        delete(case_officers).where(case_officers.c.case_number == OPEN_CASE),
        update(media_tags).where(media_tags.c.media_id == video).values(created_by="B002"),
        insert(media_tags).values(
            media_id=video, tag="planted", created_at=ENDED, created_by="A001"
        ),
    )
    assert _problems(lived) == [
        (replay.UNRECORDED, f"media_tags {video} planted"),
        (replay.MISMATCH, f"media_tags {video} review created_by"),
        (replay.MISMATCH, f"case_officers {OPEN_CASE} officer_id"),
    ]
    _tamper(lived, delete(media_tags))
    assert (replay.MISSING, f"media_tags {video} review") in _problems(lived)


def test_two_items_that_swap_their_sha256_are_both_named(lived: Archive) -> None:
    video, photo = lived.items["video"], lived.items["photo"]
    _tamper(
        lived,
        update(media).where(media.c.id == video.id).values(sha256="swap"),
        update(media).where(media.c.id == photo.id).values(sha256=video.sha256),
        update(media).where(media.c.id == video.id).values(sha256=photo.sha256),
    )
    problems = replay.check_records(lived.catalog).problems
    assert [(p.code, p.subject) for p in problems] == [
        (replay.MISMATCH, f"media {i} sha256") for i in sorted((video.id, photo.id))
    ]
    assert video.sha256 in problems[0].message + problems[1].message


def test_deleted_rows_are_missing(lived: Archive) -> None:
    photo = lived.items["photo"].id
    with lived.catalog.read() as conn:
        link_ids = [r.id for r in conn.execute(select(links.c.id).where(links.c.media_id == photo))]
    _tamper(
        lived,
        delete(links).where(links.c.id == link_ids[0]),
        delete(media).where(media.c.id == photo),
        delete(cases).where(cases.c.number == OPEN_CASE),
    )
    assert _problems(lived) == [
        (replay.MISSING, f"media {photo}"),
        (replay.MISSING, f"cases {OPEN_CASE}"),
        (replay.UNRECORDED, f"case_officers {OPEN_CASE}"),
        (replay.MISSING, f"links {link_ids[0]}"),
    ]


def test_rows_without_events_are_unrecorded(lived: Archive) -> None:
    row = _row(lived, media, media.c.id == lived.items["photo"].id)
    row.update(id=999, sha256="1" * 64)
    case = _row(lived, cases, cases.c.number == OPEN_CASE)
    _tamper(
        lived,
        insert(media).values(row),
        insert(cases).values({**case, "number": "2026-9999"}),
        insert(links).values(
            case_number=OPEN_CASE,
            media_id=999,
            method="manual",
            rule="planted",
            actor="A001",
            created_at=ENDED,
        ),
    )
    problems = _problems(lived)
    assert problems[0] == (replay.UNRECORDED, "media 999")
    assert problems[1] == (replay.UNRECORDED, "cases 2026-9999")
    assert problems[2][0] == replay.UNRECORDED and problems[2][1].startswith("links ")
    assert len(problems) == 3


def test_a_changed_key_is_a_missing_and_an_unrecorded_row(lived: Archive) -> None:
    pdf = lived.items["pdf"].id
    _tamper(lived, update(media).where(media.c.id == pdf).values(id=1000))
    assert _problems(lived) == [
        (replay.MISSING, f"media {pdf}"),
        (replay.UNRECORDED, "media 1000"),
    ]


def test_unsealing_in_the_database_then_unlinking_and_sealing_again_is_found(
    lived: Archive,
) -> None:
    instance = Instance(lived.settings, lived.catalog, actor="A001", _store=lived.store)
    _tamper(
        lived,
        update(cases)
        .where(cases.c.number == SEALED_CASE)
        .values(status="concluded", archive_key=None, archived_at=None, archived_on=None),
    )
    usecases.unlink_media(instance, SEALED_CASE, str(lived.items["pdf"].id), "not needed")
    usecases.describe_media(instance, str(lived.items["video"].id), "改写")
    usecases.archive_case(instance, SEALED_CASE, "again", force=True)
    problems = _problems(lived)
    sealed = [p for p in problems if p[0] == replay.SEALED]
    assert sealed == [(replay.SEALED, f"cases {SEALED_CASE}")] * 2, "the second seal, the unlink"
    assert set(problems) == set(sealed), "the row itself now matches the last seal"


def test_an_event_that_does_not_carry_a_field_leaves_it_uncompared(lived: Archive) -> None:
    """Events of older versions lack ``row``: what they do not carry is not compared."""
    video = lived.items["video"].id
    with lived.catalog.begin() as conn:
        seq, details = conn.execute(
            select(custody_events.c.seq, custody_events.c.details).where(
                custody_events.c.kind == EventKind.INGESTED, custody_events.c.media_id == video
            )
        ).one()
    older = {k: v for k, v in details.items() if k not in ("row", "extra_sha256")}
    # Tampering with the log is the chain's to find (tests/test_custody_tamper.py); here it
    # stands for an event written before INGESTED carried its row.
    _tamper(lived, update(custody_events).where(custody_events.c.seq == seq).values(details=older))
    _tamper(lived, update(media).where(media.c.id == video).values(container="avi", width=1))
    assert _problems(lived) == []
    _tamper(lived, update(media).where(media.c.id == video).values(officer_id="B002"))
    assert _problems(lived) == [(replay.MISMATCH, f"media {video} officer_id")]


def test_small_chunks_read_the_same(lived: Archive) -> None:
    _tamper(lived, delete(media).where(media.c.id == lived.items["pdf"].id))
    whole = replay.check_records(lived.catalog)
    for chunk in (1, 2):
        assert replay.check_records(lived.catalog, chunk=chunk).problems == whole.problems


# ------------------------------------------------------------------------ quarantine release


def test_a_quarantined_item_released_after_registration_replays_clean(
    catalog: Any, station: Station, dock: Path, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "home", devices={"unknown": "quarantine"})
    ctx = IngestContext(catalog, LocalStore(settings.archive_dir), settings, jobs_db.new_owner())
    clip = synth.make_video(tmp_path / "clip.mp4", seconds=1.0, creation_time=ENDED)
    target = dock / "BWC0099" / "BWC0099_1023_20261127093000_0001.mp4"
    target.parent.mkdir(parents=True)
    shutil.copyfile(clip, target)
    sha = hashlib.sha256(target.read_bytes()).hexdigest()
    (report,) = sweep_station(ctx, station).files
    assert report.outcome is Outcome.QUARANTINED
    assert replay.check_records(catalog).problems == ()

    with catalog.begin() as conn:
        registry.save_officer(conn, Officer("1023", "张伟", "62010023001"), "A001")
        registry.save_device(
            conn, Device("BWC0099", DeviceKind.BODY_WORN, DeviceStatus.ACTIVE), "A001"
        )
        registry.save_assignment(conn, "BWC0099", "1023", ENDED - timedelta(days=1), None, "A001")
        (entry,) = media_db.quarantine_entries(conn)
    released = release(ctx, entry.id, "A001")
    assert released.status is MediaStatus.ARCHIVED and released.officer_id == "1023"
    assert replay.check_records(catalog).problems == ()

    with catalog.begin() as conn:
        conn.execute(update(media).where(media.c.sha256 == sha).values(officer_id=None, status="x"))
    subjects = {p.subject for p in replay.check_records(catalog).problems}
    assert subjects == {f"media {released.id} status", f"media {released.id} officer_id"}
