"""Sealing a case file (案卷归档): every linked record packed into a signed BagIt bag, stored
immutably, and the case marked archived — on time or late against its 15-day deadline.

The bag is the court export of the case's records (pipeline/export.py: originals, metadata,
custody events, the signed chain segment, the standalone verifier) plus ``data/case/case.json``
(the case, its findings and its links), and a tag file ``manifest-sha256.txt.sig``: the
payload manifest signed with the instance's Ed25519 key.

Design choice — the bag *copies* the originals rather than referencing them by hash (BagIt's
fetch.txt): a sealed case file must verify on its own, be handed over whole, and survive a
migration of the archive store. The cost: the linked originals are stored twice (once under
their digest, once inside the case's bag), and sealing reads and writes them once more
(copy-and-hash at disk speed: about 1 s per GB here). Case files are a small share of all
footage, most of which is never linked to a case.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tarfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import bagit
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from pipeline.cases import compliance
from pipeline.cases import records as cases
from pipeline.cases.categories import load_categories
from pipeline.cases.deadline import CaseState
from pipeline.catalog import Catalog, open_catalog
from pipeline.catalog import cases as case_rows
from pipeline.custody import keys
from pipeline.custody import log as custody
from pipeline.custody.checkpoints import checkpointer
from pipeline.custody.export import export_bag, inside, safe_name
from pipeline.custody.verify_bag import Problem
from pipeline.errors import CaseError
from pipeline.models import CaseStatus, EventKind, plain
from pipeline.settings import Settings
from pipeline.storage.hashing import hash_file
from pipeline.storage.local import ArchiveStore, open_store, scratch_folder

SIGNATURE_FILE = "manifest-sha256.txt.sig"
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
        sign_manifest(bag, keys.load_signer(settings.home))
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


def sign_manifest(bag: Path, signer: keys.Signer) -> None:
    """Sign the payload manifest: it names every payload file's SHA-256, so the signature
    vouches for the whole payload."""
    manifest = (bag / "manifest-sha256.txt").read_bytes()
    signature = {
        "algorithm": "ed25519",
        "key_id": signer.key_id,
        "signed": "manifest-sha256.txt",
        "signature": base64.b64encode(bytes.fromhex(signer.sign(manifest))).decode(),
    }
    (bag / SIGNATURE_FILE).write_text(json.dumps(signature, indent=2) + "\n")


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


def verify_sealed_bag(
    bag: Path, trusted: dict[str, Ed25519PublicKey] | None = None
) -> list[Problem]:
    """Problems with a sealed bag (empty: sound). Two independent checks: BagIt's own
    validation of its manifests, and the seal — the manifest's signature by a trusted key
    (else the key shipped in the bag), and every payload file against that signed manifest."""
    problems: list[Problem] = []
    try:
        bagit.Bag(str(bag)).validate()
    except bagit.BagError as exc:
        problems.append(Problem("E-BAG", bag.name, str(exc)))
    manifest_path = bag / "manifest-sha256.txt"
    try:
        sig = json.loads((bag / SIGNATURE_FILE).read_text())
        key = (trusted or {}).get(sig["key_id"]) or _shipped_key(bag, sig["key_id"])
        manifest = manifest_path.read_bytes()
        key.verify(base64.b64decode(sig["signature"]), manifest)
    except (OSError, ValueError, KeyError) as exc:
        reason = f"cannot check the manifest signature: {exc}"
        return [*problems, Problem("E-SEAL-SIGNATURE", SIGNATURE_FILE, reason)]
    except InvalidSignature:
        reason = "the manifest signature does not verify"
        return [*problems, Problem("E-SEAL-SIGNATURE", SIGNATURE_FILE, reason)]
    for line in manifest.decode("utf-8").splitlines():
        expected, _, name = line.partition("  ")
        path = bag / name
        found = hash_file(path, 4 << 20).sha256 if path.is_file() else "missing"
        if found != expected:
            problems.append(Problem("E-SEAL-PAYLOAD", name, "does not match the signed manifest"))
    return problems


def _shipped_key(bag: Path, key_id: str) -> Ed25519PublicKey:
    key = load_pem_public_key((bag / "data/custody/keys" / f"{key_id}.pem").read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"key {key_id} is not an Ed25519 key")
    return key


def extract(store: ArchiveStore, sha256: str, into: Path) -> Path:
    """Unpack a sealed bag from the store (after the store re-verifies its digest)."""
    store.verify_original(sha256)
    with store.original_file(sha256) as path, tarfile.open(path) as tar:
        tar.extractall(into, filter="data")
        names = {Path(n).parts[0] for n in tar.getnames()}
    if len(names) != 1:
        shutil.rmtree(into, ignore_errors=True)
        raise CaseError(None, f"bag {sha256} does not hold one folder")
    return into / names.pop()
