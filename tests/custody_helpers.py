"""Building blocks of the custody tests: a small real archive with a signed custody log, built
once per session and copied for each test that tampers with it, and the tamperer's tools."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from docks.sweep import sweep_station
from pipeline.catalog import Catalog, open_catalog
from pipeline.catalog import media as media_db
from pipeline.catalog.jobs import new_owner
from pipeline.catalog.schema import custody_events, custody_head
from pipeline.custody import log as custody
from pipeline.custody import verify_bag as rules
from pipeline.custody.checkpoints import Checkpointer, checkpointer
from pipeline.custody.keys import create_instance_key, describe
from pipeline.ingest.steps import IngestContext
from pipeline.models import EventKind, MediaItem
from pipeline.registry.stations import add_station
from pipeline.settings import Settings
from pipeline.storage.local import LocalStore
from tests.conftest import make_settings, put

EVIDENCE = [sys.executable, "-m", "interfaces.cli"]
#: Checkpoints every 5 events: the template's log of 20 events holds four.
EVERY = 5
LOG_LENGTH = 20
_TEMPLATES: dict[str, Path] = {}


@dataclass
class Archive:
    settings: Settings
    catalog: Catalog
    store: LocalStore
    items: dict[str, MediaItem]  # "video" (has a proxy), "photo", "pdf"

    @property
    def home(self) -> Path:
        return self.settings.home

    def checkpointer(self) -> Checkpointer:
        return checkpointer(self.settings)

    def env(self) -> dict[str, str]:
        """The environment of an `evidence` subprocess working on this archive."""
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "PREFECT_API"))
        }
        env.update({"EVIDENCE_HOME": str(self.home),
                    "EVIDENCE_CUSTODY__CHECKPOINT_EVERY_EVENTS": str(EVERY),
                    "EVIDENCE_CUSTODY__PINNED_KEYS": json.dumps(pins_of(self.home))})  # fmt: skip
        return env

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*EVIDENCE, *args], env=self.env(), capture_output=True, text=True, timeout=120
        )


def archive_settings(home: Path) -> Settings:
    """The archive's settings, its instance key pinned (as a deployment pins it)."""
    return make_settings(
        home, custody={"checkpoint_every_events": EVERY, "pinned_keys": pins_of(home)}
    )


def pins_of(home: Path) -> list[str]:
    """The id of ``home``'s instance key, pinned; none before the key exists."""
    return [describe(home).key_id] if (home / "keys" / "instance.key").exists() else []


def template(tmp_path_factory: pytest.TempPathFactory, clips: dict[str, Path]) -> Path:
    """A home with three ingested items, an instance key and signed checkpoints; once per
    session (ffmpeg makes the proxy), copied by :func:`copy_archive`."""
    if "home" not in _TEMPLATES:
        home = tmp_path_factory.mktemp("custody-template") / "home"
        # One ingest worker: with two, the files' events interleave in whatever order the
        # threads reach the custody lock, so which checkpoint comes before an item's first
        # event changed from session to session, and so did each export's chain segment.
        key_id = create_instance_key(home).key_id
        settings = make_settings(
            home,
            custody={"checkpoint_every_events": EVERY, "pinned_keys": [key_id]},
            ingest={"workers": 1, "block_size": 256 << 10},
        )
        catalog = open_catalog(settings.catalog_url)
        dock = home.parent / "dock"
        dock.mkdir()
        station = add_station(catalog, "DOCK-01", dock, "tester")
        put(clips["video"], dock, "BWC-1/a.mp4")
        put(clips["photo"], dock, "BWC-1/b.jpg")
        put(clips["pdf"], dock, "SCAN/现场笔录.pdf")
        store = LocalStore(settings.archive_dir, settings.ingest.block_size)
        ctx = IngestContext(catalog=catalog, store=store, settings=settings, owner=new_owner())
        report = sweep_station(ctx, station)
        assert report.ok and len(report.files) == 3
        with catalog.begin() as conn:  # a log of exactly LOG_LENGTH events
            while custody.lock_head(conn).seq < LOG_LENGTH:
                custody.append(conn, EventKind.VIEWED, "clerk", details={"reason": "check"})
        assert [cp.seq for cp in checkpointer(settings).sign_due(catalog)] == [5, 10, 15, 20]
        catalog.dispose()  # the last connection folds SQLite's WAL into the file
        _TEMPLATES["home"] = home
    return _TEMPLATES["home"]


def copy_archive(source: Path, target: Path) -> Archive:
    shutil.copytree(source, target)
    settings = archive_settings(target)
    catalog = open_catalog(settings.catalog_url)
    with catalog.begin() as conn:
        found = {Path(i.original_name).suffix: i for i in media_db.listing(conn)}
    items = {"video": found[".mp4"], "photo": found[".jpg"], "pdf": found[".pdf"]}
    store = LocalStore(settings.archive_dir, settings.ingest.block_size)
    return Archive(settings, catalog, store, items)


def make_case(archive: Archive, number: str, *names: str) -> None:
    """A case with the named items (video, photo, pdf) linked to it by hand."""
    from pipeline.cases import records as cases
    from pipeline.cases.categories import load_categories
    from pipeline.models import Case, CaseStatus

    case = Case(number, "查封扣押 现场", "seizure", "一中队", CaseStatus.OPEN, ())
    now = datetime.now(UTC)
    with archive.catalog.begin() as conn:
        cases.save_case(
            conn, case, "A001", archive.settings, load_categories(archive.settings), now
        )
        for name in names:
            cases.link(conn, number, archive.items[name].id, "A001", "同一现场", now)


# ------------------------------------------------------------------------- the tamperer


def flip_byte(path: Path, offset: int = 100) -> None:
    """What a careful tamperer does: archived originals are read-only, so make it writable,
    flip a bit, and put the mode back (verify also reports modes)."""
    mode = path.stat().st_mode
    path.chmod(0o600)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    path.chmod(mode)


def row(archive: Archive, seq: int) -> dict[str, Any]:
    with archive.catalog.begin() as conn:
        found = conn.execute(select(custody_events).where(custody_events.c.seq == seq)).one()
    return dict(found._mapping)


def set_row(archive: Archive, seq: int, **values: Any) -> None:
    with archive.catalog.begin() as conn:
        conn.execute(update(custody_events).where(custody_events.c.seq == seq).values(**values))


def set_head(archive: Archive, seq: int) -> None:
    with archive.catalog.begin() as conn:
        (hash_,) = conn.execute(
            select(custody_events.c.hash).where(custody_events.c.seq == seq)
        ).one()
        conn.execute(update(custody_head).values(seq=seq, hash=hash_))


def rewrite_from(archive: Archive, seq: int, details: dict[str, Any]) -> None:
    """Edit one event and recompute every hash after it and the head: a chain that holds
    together again, which only the signed checkpoints can refute."""
    with archive.catalog.begin() as conn:
        rows = conn.execute(select(custody_events).order_by(custody_events.c.seq)).all()
        prev = rules.GENESIS
        for r in rows:
            record = {
                "seq": r.seq,
                "at": r.at.isoformat(timespec="microseconds"),
                "actor": r.actor,
                "kind": r.kind,
                "media_id": r.media_id,
                "station_id": r.station_id,
                "subject": r.subject,
                "details": details if r.seq == seq else r.details,
                "prev_hash": prev,
            }
            if r.seq >= seq:
                digest = rules.event_hash(record)
                conn.execute(
                    update(custody_events)
                    .where(custody_events.c.seq == r.seq)
                    .values(details=record["details"], prev_hash=prev, hash=digest)
                )
                prev = digest
            else:
                prev = r.hash
        conn.execute(update(custody_head).values(hash=prev))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")


def reseal_manifests(bag: Path) -> None:
    """What a careful forger does after editing a bag's files: recompute both manifests, so
    only the custody checks can tell."""
    lines = [
        f"{rules.file_sha256(p)}  {p.relative_to(bag).as_posix()}\n"
        for p in sorted((bag / "data").rglob("*"))
        if p.is_file()
    ]
    (bag / "manifest-sha256.txt").write_text("".join(lines), "utf-8")
    tags = ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "README.txt", "verify_bag.py")
    (bag / "tagmanifest-sha256.txt").write_text(
        "".join(f"{rules.file_sha256(bag / t)}  {t}\n" for t in tags), "utf-8"
    )
