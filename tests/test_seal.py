"""Sealing a case file: a signed BagIt bag of every linked record, stored immutably; the case
archived on time or late. The bag validates with bagit and verifies with the pinned key alone
(not with a key it ships); one flipped byte fails both. The forgeries a careful tamperer makes
are in tests/test_bag_tamper.py."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bagit
import pytest

from docks.sweep import sweep_station
from interfaces import synth
from pipeline.cases import records as cases
from pipeline.cases.categories import load_categories
from pipeline.cases.deadline import CaseState
from pipeline.cases.seal import extract, seal_case, verify_sealed_bag
from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import media as media_db
from pipeline.custody import keys
from pipeline.custody import log as custody
from pipeline.custody.verify_bag import file_sha256
from pipeline.errors import CaseError
from pipeline.ingest.steps import IngestContext
from pipeline.models import Case, CaseStatus, Device, DeviceKind, EventKind, Officer, Station
from pipeline.registry import records as registry
from pipeline.storage.local import LocalStore
from tests.conftest import make_settings

T0 = datetime(2026, 11, 27, 1, 30, tzinfo=UTC)


@pytest.fixture
def sealed_setup(catalog, tmp_path: Path, station: Station, dock: Path):  # type: ignore[no-untyped-def]
    """A seizure case whose 2-second action window one attributed recording covers."""
    settings = make_settings(tmp_path / "home", devices={"unknown": "quarantine"})
    keys.create_instance_key(settings.home)
    ctx = IngestContext(catalog, LocalStore(settings.archive_dir), settings, jobs_db.new_owner())
    with catalog.begin() as conn:
        registry.save_officer(conn, Officer("1023", "张伟", "62010023001"), "A001")
        registry.save_device(conn, Device("BWC0017", DeviceKind.BODY_WORN), "A001")
        registry.save_assignment(conn, "BWC0017", "1023", T0 - timedelta(hours=1), None, "A001")
    clip = dock / "BWC0017" / "BWC0017_1023_20261127093000_0001.mp4"
    clip.parent.mkdir(parents=True)
    synth.make_video(clip, seconds=2.0, creation_time=T0)
    end = (T0 + timedelta(seconds=2)).timestamp()
    os.utime(clip, (end, end))
    (report,) = [sweep_station(ctx, station)]
    media_id = report.files[0].media_id
    cats = load_categories(settings)
    case = Case(
        "2026-0113",
        "查封某仓库",
        "seizure",
        "市场监管",
        CaseStatus.OPEN,
        ("1023",),
        action_start=T0,
        action_end=T0 + timedelta(seconds=2),
    )
    with catalog.begin() as conn:
        cases.save_case(conn, case, "A001", settings, cats, T0)
        cases.autolink(conn, settings, "system", T0)
        cases.conclude(conn, "2026-0113", None, "A001", settings, cats, T0)
    return settings, ctx, media_id


def test_incomplete_file_is_refused_then_sealed_and_verified(sealed_setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, ctx, media_id = sealed_setup
    with pytest.raises(CaseError, match="incomplete: 1 recording"):
        seal_case(settings, "2026-0113", "A001", "done", now=T0 + timedelta(days=3))
    with ctx.catalog.begin() as conn:
        cases.describe(conn, media_id, "查封仓库全过程", "1023", T0)

    sealed = seal_case(settings, "2026-0113", "A001", "file complete", now=T0 + timedelta(days=3))

    assert sealed.state is CaseState.ARCHIVED_ON_TIME and sealed.items == 1
    with ctx.catalog.begin() as conn:
        case = cases.get_case(conn, "2026-0113")
        sealed_events = [e for e in custody.events(conn) if e.kind is EventKind.SEALED]
        with pytest.raises(CaseError, match="sealed"):
            cases.unlink(conn, "2026-0113", media_id, "A001", "try", T0)
    assert case.status is CaseStatus.ARCHIVED and case.archive_key == sealed.key
    assert sealed_events[0].details["bag_sha256"] == sealed.key
    # What a replay of the log holds the case row against: the local date, the event's time.
    assert case.archived_on is not None and case.archived_at == sealed_events[0].at
    assert sealed_events[0].details["archived_on"] == case.archived_on.isoformat() == "2026-11-30"
    with pytest.raises(CaseError, match="already sealed"):
        seal_case(settings, "2026-0113", "A001", "again")

    bag = extract(ctx.store, sealed.key, tmp_path / "out")
    bagit.Bag(str(bag)).validate()
    pinned = keys.pinned_keys(settings)
    assert len(pinned) == 1
    assert verify_sealed_bag(bag, pinned) == []
    # The key shipped inside the bag is information, never trust: given no key, nothing the
    # bag's key signed counts.
    assert list((bag / "data/custody/keys").glob("*.pem")), "the bag ships its key"
    assert {p.code for p in verify_sealed_bag(bag, {})} == {"E-CHECKPOINT-KEY", "E-BAG-KEY"}
    assert (bag / "data/case/case.json").read_text(encoding="utf-8").count("2026-0113") >= 1
    original = next((bag / "data/originals").iterdir())
    with ctx.catalog.begin() as conn:
        assert (
            original.read_bytes()
            == ctx.store.original_path(media_db.get(conn, media_id).sha256).read_bytes()
        )

    # One flipped byte of a record: BagIt and the seal both fail.
    data = bytearray(original.read_bytes())
    data[len(data) // 2] ^= 0x01
    original.write_bytes(bytes(data))
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(bag)).validate()
    problems = verify_sealed_bag(bag, pinned)
    assert [p.code for p in problems] == ["E-BAG", "E-PAYLOAD-MISMATCH", "E-FIXITY-MISMATCH"]


def test_a_forged_manifest_fails_the_bag_signature(sealed_setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, ctx, _ = sealed_setup
    sealed = seal_case(
        settings,
        "2026-0113",
        "A001",
        "sealed with gaps noted",
        force=True,
        now=T0 + timedelta(days=20),
    )
    assert sealed.state is CaseState.ARCHIVED_LATE
    bag = extract(ctx.store, sealed.key, tmp_path / "out")
    manifest = bag / "manifest-sha256.txt"
    manifest.write_bytes(manifest.read_bytes().replace(b"data/", b"data//", 1))
    pinned = keys.pinned_keys(settings)
    codes = [p.code for p in verify_sealed_bag(bag, pinned)]
    assert codes == ["E-BAG", "E-PAYLOAD-MISMATCH"], "the tag manifest names the old manifest"
    # The tag manifest recomputed too: BagIt is content, the bag signature is not.
    tags = bag / "tagmanifest-sha256.txt"
    lines = [
        f"{file_sha256(bag / name)}  {name}" for _, _, name in
        (line.partition("  ") for line in tags.read_text().splitlines())
    ]  # fmt: skip
    tags.write_text("\n".join(lines) + "\n")
    bagit.Bag(str(bag)).validate()
    assert [p.code for p in verify_sealed_bag(bag, pinned)] == ["E-BAG-CHANGED"]


def test_a_case_must_be_concluded_and_have_records(catalog, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cats = load_categories(settings)
    with catalog.begin() as conn:
        registry.save_officer(conn, Officer("1023", "张伟", "62010023001"), "A001")
        cases.save_case(
            conn,
            Case("X", "t", "hearing", "", CaseStatus.OPEN, ("1023",)),
            "A001",
            settings,
            cats,
            T0,
        )
    with pytest.raises(CaseError, match="conclude it first"):
        seal_case(settings, "X", "A001", "r")
    with catalog.begin() as conn:
        case = cases.get_case(conn, "X")
        cases.save_case(
            conn,
            replace(case, status=CaseStatus.CONCLUDED, action_end=T0),
            "A001",
            settings,
            cats,
            T0,
        )
    with pytest.raises(CaseError, match="no records are linked"):
        seal_case(settings, "X", "A001", "r")
