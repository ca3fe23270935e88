"""Sealing a case file (案卷归档): every linked record packed into a signed BagIt bag, stored
immutably, and the case marked archived — on time or late against its 15-day deadline.

The bag is the court export of the case's records (pipeline/custody/export.py: originals,
metadata, custody events, the signed chain segment, the standalone verifier, the bag signature)
plus ``data/case/case.json`` (the case, its findings and its links). So it proves every file
the way a court bag does: case.json's SHA-256 is in the EXPORTED events of the signed chain,
and the bag signature covers the manifests. It verifies with the pinned keys alone
(:func:`verify_sealed_bag`); :func:`check_sealed_bags` re-checks stored bags for fixity.

Design choice — the bag *copies* the originals rather than referencing them by hash (BagIt's
fetch.txt): a sealed case file must verify on its own, be handed over whole, and survive a
migration of the archive store. The cost: the linked originals are stored twice (once under
their digest, once inside the case's bag), and sealing reads and writes them once more
(copy-and-hash at disk speed: about 1 s per GB here). Case files are a small share of all
footage, most of which is never linked to a case.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import shutil
import tarfile
import tempfile
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bagit
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from pipeline.cases import compliance
from pipeline.cases import records as cases
from pipeline.cases.categories import load_categories
from pipeline.cases.deadline import CaseState
from pipeline.catalog import Catalog, open_catalog
from pipeline.catalog import cases as case_rows
from pipeline.catalog.schema import cases as cases_table
from pipeline.catalog.schema import custody_events
from pipeline.custody import log as custody
from pipeline.custody import verify_bag as rules
from pipeline.custody.checkpoints import checkpointer
from pipeline.custody.export import export_bag, inside, safe_name
from pipeline.custody.verify_bag import Problem
from pipeline.errors import CaseError, IntegrityError, StorageError
from pipeline.models import Case, CaseStatus, EventKind, plain
from pipeline.settings import Settings
from pipeline.storage.local import ArchiveStore, open_store, scratch_folder

CASE_FILE = "data/case/case.json"
SCRATCH_SUFFIX = ".seal"


@dataclass(frozen=True)
class Sealed:
    number: str
    key: str  # the bag's SHA-256: where the store keeps it (content-addressed, immutable)
    items: int
    bytes: int
    state: CaseState  # archived on time or late


def seal_case(
    settings: Settings,
    number: str,
    actor: str,
    reason: str,
    *,
    force: bool = False,
    now: datetime | None = None,
) -> Sealed:
    """Seal a concluded case. An incomplete file (coverage gap, missing descriptions or
    signatures) is refused unless ``force``, and then the reason and findings go into the bag."""
    now = now or datetime.now(UTC)
    catalog, store = open_catalog(settings.catalog_url), open_store(settings)
    try:
        return seal_with(catalog, store, settings, number, actor, reason, force=force, now=now)
    finally:
        catalog.dispose()


def seal_with(
    catalog: Catalog,
    store: ArchiveStore,
    settings: Settings,
    number: str,
    actor: str,
    reason: str,
    *,
    force: bool,
    now: datetime,
) -> Sealed:
    """:func:`seal_case` on a catalog and store the caller has open (an instance's)."""
    today = now.astimezone(settings.zone).date()
    with catalog.read() as conn:
        case = cases.get_case(conn, number)
        if case.status is CaseStatus.ARCHIVED:
            raise CaseError(
                number, f"already sealed on {case.archived_on} (bag {case.archive_key})"
            )
        if case.status is not CaseStatus.CONCLUDED:
            raise CaseError(
                number, "conclude it first (evidence cases conclude): the act has not ended"
            )
        finding = compliance.evaluate(conn, case, settings, load_categories(settings), today)
        linked = case_rows.links_of_case(conn, number)
    if not finding.items:
        raise CaseError(number, "no records are linked: there is nothing to seal")
    if not finding.complete and not force:
        raise CaseError(
            number,
            "the case file is incomplete: "
            + "; ".join(finding.problems())
            + " — complete it, or seal anyway with --force and a reason",
        )
    sealed_case = replace(case, status=CaseStatus.ARCHIVED, archived_at=now, archived_on=today)
    state = compliance.state_of(sealed_case, today, settings.cases.due_soon_days)
    record = {
        "case": plain(sealed_case),
        "state": state.value,
        "sealed_by": actor,
        "reason": reason,
        "forced": force and not finding.complete,
        "problems": finding.problems(),
        "links": [plain(link) for link in linked],
    }
    name = bag_name(number)
    with scratch_folder(settings.home / "work", SCRATCH_SUFFIX) as tmp:
        bag = inside(Path(tmp), name)
        result = export_bag(
            catalog,
            store,
            checkpointer(settings),
            media_keys=[str(i.media_id) for i in finding.items],
            out=bag,
            actor=actor,
            reason=f"seal case {number}: {reason}",
            block_size=settings.ingest.block_size,
            extra_files={
                "case/case.json": json.dumps(record, ensure_ascii=False, indent=2).encode()
            },
            now=now,
        )
        tar = inside(Path(tmp), f"{name}.tar")
        _tar(bag, tar, now)
        digest = store.put_original(tar)
    with catalog.begin() as conn:
        case_rows.save(conn, replace(sealed_case, archive_key=digest.sha256), now)
        custody.append(
            conn,
            EventKind.SEALED,
            actor,
            subject=number,
            details={
                "case": number,
                "bag_sha256": digest.sha256,
                "archived_on": today.isoformat(),
                "items": len(finding.items),
                "state": state.value,
                "reason": reason,
                "forced": record["forced"],
                "export": result.export_id,
            },
            now=now,
        )
    return Sealed(number, digest.sha256, len(finding.items), digest.size, state)


def bag_name(number: str) -> str:
    """The bag's folder name: ``case-<number>`` when the number is a plain file name on every
    file system, else a slug of it and a hash of the whole, so that no case number (an older
    catalog may hold ``../../x``) is ever taken as a path."""
    slug = safe_name(number)
    if slug == number:
        return f"case-{number}"
    digest = hashlib.sha256(number.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"case-{slug[:48]}-{digest}"


def _tar(folder: Path, target: Path, now: datetime) -> None:
    """A plain, reproducible tar: sorted names, one mtime, no owners."""

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime, info.uid, info.gid, info.uname, info.gname = int(now.timestamp()), 0, 0, "", ""
        return info

    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(
                path,
                arcname=str(Path(folder.name) / path.relative_to(folder)),
                recursive=False,
                filter=clean,
            )


def verify_sealed_bag(bag: Path, trusted: Mapping[str, Ed25519PublicKey]) -> list[Problem]:
    """Problems with an unpacked sealed bag (empty: sound), trusting only the ``trusted`` keys
    (the pinned ones; never a key shipped in the bag). BagIt's own validation, then every
    check of the court verifier, then that the signed export holds the case record."""
    problems: list[Problem] = []
    try:
        bagit.Bag(str(bag)).validate()
    except bagit.BagError as exc:
        problems.append(Problem("E-BAG", bag.name, str(exc)))
    try:
        report = rules.verify_bag(bag, trusted)
        export = json.loads((bag / "data/custody/export.json").read_text("utf-8"))
    except (rules.BagUnreadable, OSError, ValueError, KeyError, TypeError) as exc:
        return [*problems, Problem("E-SEAL-UNREADABLE", bag.name, f"cannot verify it: {exc}")]
    problems += report.problems
    if CASE_FILE not in export.get("files", {}):
        problems.append(
            Problem("E-SEAL-CASE", CASE_FILE, "the signed export does not hold the case record")
        )
    return problems


@dataclass(frozen=True)
class SealedCheck:
    """What :func:`check_sealed_bags` found: the cases checked, and every problem (subject
    ``case <number>``)."""

    checked: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_sealed_bags(
    catalog: Catalog,
    store: ArchiveStore,
    trusted: Mapping[str, Ed25519PublicKey],
    *,
    numbers: Collection[str] = (),
    sample: int | None = None,
    work: Path | None = None,
    rng: random.Random | None = None,
) -> SealedCheck:
    """Fixity of sealed case files: for each sealed case (all, those ``numbers``, or a random
    ``sample`` of them), the stored bag re-hashed under ``cases.archive_key``, that key held
    against the SEALED event of the signed log, and the bag unpacked (under ``work``, else
    the system's temporary folder) and verified with the ``trusted`` keys alone. A named
    case that is not sealed raises CaseError: there is nothing to check."""
    with catalog.read() as conn:
        archived = case_rows.listing(conn, cases_table.c.status == CaseStatus.ARCHIVED.value)
        sealed_events = custody.query(
            conn,
            select(custody_events)
            .where(custody_events.c.kind == EventKind.SEALED.value)
            .order_by(custody_events.c.seq),
        )
    by_number = {c.number: c for c in archived}
    if numbers:
        missing = sorted(set(numbers) - set(by_number))
        if missing:
            raise CaseError(missing[0], "is not sealed: there is no case file to check")
        chosen = [by_number[n] for n in sorted(set(numbers))]
    else:
        chosen = archived
    if sample is not None and sample < len(chosen):
        chosen = sorted((rng or random.SystemRandom()).sample(chosen, sample), key=_number)
    recorded = {e.subject: e for e in sealed_events}  # the latest SEALED event of each case
    problems: list[Problem] = []
    for case in chosen:
        found = _check_case(store, case, recorded.get(case.number), trusted, work)
        problems += (Problem(p.code, f"case {case.number}", p.message) for p in found)
    return SealedCheck(tuple(c.number for c in chosen), tuple(problems))


def _number(case: Case) -> str:
    return case.number


def _check_case(
    store: ArchiveStore,
    case: Case,
    sealed: custody.CustodyEvent | None,
    trusted: Mapping[str, Ed25519PublicKey],
    work: Path | None,
) -> list[Problem]:
    key = case.archive_key
    if key is None:
        return [Problem("E-SEAL-MISSING", "", "archived, but it names no sealed bag")]
    problems: list[Problem] = []
    if sealed is None:
        problems.append(Problem("E-SEAL-UNRECORDED", "", "no SEALED event in the custody log"))
    elif sealed.details.get("bag_sha256") != key:
        problems.append(
            Problem(
                "E-SEAL-MOVED",
                "",
                f"cases.archive_key names bag {key[:16]}…, its SEALED event (seq {sealed.seq}) "
                f"bag {str(sealed.details.get('bag_sha256'))[:16]}…",
            )
        )
    try:
        store.verify_original(key)
    except IntegrityError as exc:
        return [*problems, Problem("E-SEAL-FIXITY", "", f"the stored bag {key[:16]}…: {exc}")]
    except StorageError as exc:
        return [*problems, Problem("E-SEAL-MISSING", "", str(exc))]
    with _scratch(work) as tmp:
        try:
            bag = _unpack(store, key, tmp)
        except (CaseError, tarfile.TarError, OSError) as exc:
            return [*problems, Problem("E-SEAL-UNREADABLE", "", f"bag {key[:16]}…: {exc}")]
        found = verify_sealed_bag(bag, trusted)
        problems += (Problem(p.code, "", f"{p.subject}: {p.message}") for p in found)
        problems += _check_record(bag, case, sealed)
    return problems


def _check_record(bag: Path, case: Case, sealed: custody.CustodyEvent | None) -> list[Problem]:
    """The bag is this case's, of the export its SEALED event names."""
    try:
        record: Any = json.loads((bag / CASE_FILE).read_text("utf-8"))
        number = record["case"]["number"]
        export_id = json.loads((bag / "data/custody/export.json").read_text("utf-8"))["export_id"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [Problem("E-SEAL-UNREADABLE", CASE_FILE, str(exc))]
    problems = []
    if number != case.number:
        problems.append(Problem("E-SEAL-MISMATCH", CASE_FILE, f"is the record of case {number}"))
    if sealed is not None and sealed.details.get("export") != export_id:
        problems.append(
            Problem("E-SEAL-MISMATCH", "", f"the bag is export {export_id}, not the one sealed")
        )
    return problems


@contextlib.contextmanager
def _scratch(work: Path | None) -> Iterator[Path]:
    if work is None:
        with tempfile.TemporaryDirectory() as tmp:
            yield Path(tmp)
    else:
        with scratch_folder(work, ".sealcheck") as tmp:
            yield tmp


def extract(store: ArchiveStore, sha256: str, into: Path) -> Path:
    """Unpack a sealed bag from the store (after the store re-verifies its digest)."""
    store.verify_original(sha256)
    return _unpack(store, sha256, into)


def _unpack(store: ArchiveStore, sha256: str, into: Path) -> Path:
    with store.original_file(sha256) as path, tarfile.open(path) as tar:
        tar.extractall(into, filter="data")
        names = {Path(n).parts[0] for n in tar.getnames()}
    if len(names) != 1:
        shutil.rmtree(into, ignore_errors=True)
        raise CaseError(None, f"bag {sha256} does not hold one folder")
    return into / names.pop()
