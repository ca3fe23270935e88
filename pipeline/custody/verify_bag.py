#!/usr/bin/env python3
"""Verify an evidence export bag offline: its files, its custody chain, its signatures.

This one file is shipped inside every export bag (as ``verify_bag.py``) and it is also the
chain rules the pipeline runs on its own catalog (``pipeline.verify`` imports it): one
implementation, so a court runs exactly the checks the agency runs. It needs Python 3.11+ and
the ``cryptography`` package, nothing else: no catalog, no network, no other file of the
pipeline.

    python3 verify_bag.py [BAG] --key AGENCY-PUBLIC-KEY.pem [--key OLDER-KEY.pem] [--json]

Exit 0 when every check passes, 1 when any problem is found, 2 when the bag cannot be read
(or no ``--key`` is given).

Trust comes from ``--key`` alone: the public key(s) the agency publishes (repeat ``--key`` for
a key it rotated from). Checkpoints and the bag signature must be made by one of them. The
keys shipped in ``data/custody/keys/`` are shown, never trusted: whoever forges a bag can ship
a key of their own beside the agency's.

How the custody chain is hashed (stable; change it only together with every reader):

- canonical JSON = ``json.dumps(value, sort_keys=True, separators=(",", ":"),
  ensure_ascii=False, allow_nan=False)`` encoded as UTF-8;
- ``body_hash`` = SHA-256 of the canonical JSON of an event's content ``{at, actor, kind,
  media_id, station_id, subject, details}`` (``at``: UTC ISO 8601 with microseconds);
- ``hash`` = SHA-256 of the canonical JSON of ``{seq, prev_hash, media_id, body_hash}``; the
  first event's ``prev_hash`` is 64 zeros.

The two levels let an export withhold the content of events about other media (only their
``body_hash`` is shipped) while every link stays verifiable; ``media_id`` sits in the link so
a verifier can prove that no event about an exported item was withheld.

A checkpoint signs (Ed25519) the canonical JSON of ``{type: "evidence-custody-checkpoint",
seq, hash, at, key_id}``; ``key_id`` is the SHA-256 of the raw 32-byte public key.

How a bag proves every file it holds (format ``evidence-export/2``), twice over:

- by the chain: the EXPORTED event of each item (signed by the closing checkpoint) records
  who exported, why and when (``actor``, ``details.reason``, ``at``), the item count, the
  SHA-256 of the item's own files and of the extra files (``details.files``), and
  ``details.contents`` = SHA-256 of the canonical JSON of ``{items, files}`` of export.json
  (``files``: every payload file written before the event, path -> SHA-256). export.json must
  agree with it, each listed file must hash as listed, and a payload file that neither
  export.json's ``files`` nor the custody files account for is refused;
- by the bag signature: ``bag-signature.json`` signs the canonical JSON of ``{type:
  "evidence-bag-signature", export_id, tagmanifest_sha256, key_id}``. The tag manifest names
  the SHA-256 of bagit.txt, bag-info.txt, README.txt, verify_bag.py and manifest-sha256.txt,
  which names every payload file's: recomputing the manifests after changing any file breaks
  this signature.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64
CHECKPOINT_TYPE = "evidence-custody-checkpoint"
EXPORT_FORMAT = "evidence-export/2"
#: A row whose hash holds for a sequence number this close to where it sits was moved there
#: (reordered or renumbered); farther moves show as edits, which they are then as well.
MOVE_WINDOW = 16
BLOCK = 1 << 20
CONTENT_FIELDS = ("at", "actor", "kind", "media_id", "station_id", "subject", "details")


class Problem(NamedTuple):
    """One finding. ``code`` is stable (scripts match on it); ``subject`` says where."""

    code: str
    subject: str
    message: str


# ------------------------------------------------------------------------------ hashing


def canonical(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def body_hash(event: Mapping[str, Any]) -> str:
    """The content hash of a full event, or the one a withheld event ships instead."""
    if "at" not in event:
        return str(event["body_hash"])
    return sha256_hex(canonical({k: event[k] for k in CONTENT_FIELDS}))


def link_hash(seq: int, prev_hash: str, media_id: int | None, body: str) -> str:
    return sha256_hex(
        canonical({"seq": seq, "prev_hash": prev_hash, "media_id": media_id, "body_hash": body})
    )


def event_hash(event: Mapping[str, Any]) -> str:
    return link_hash(event["seq"], event["prev_hash"], event["media_id"], body_hash(event))


def withheld(event: Mapping[str, Any]) -> dict[str, Any]:
    """The form an export ships for an event about other media: links, no content."""
    return {
        "seq": event["seq"],
        "prev_hash": event["prev_hash"],
        "media_id": event["media_id"],
        "body_hash": body_hash(event),
        "hash": event["hash"],
    }


# -------------------------------------------------------------------------------- chain


@dataclass
class ChainResult:
    """What a pass over a chain (or a segment of one) found."""

    first_seq: int
    last_seq: int
    last_hash: str
    count: int = 0
    hashes_at: dict[int, str] = field(default_factory=dict)  # the asked-for positions
    problems: list[Problem] = field(default_factory=list)


def check_chain(
    rows: Iterable[Mapping[str, Any]],
    *,
    start_seq: int = 1,
    start_hash: str = GENESIS,
    keep: Collection[int] = (),
) -> ChainResult:
    """Recompute a chain in sequence order, streaming. ``start_seq``/``start_hash`` anchor a
    segment (the event before it); ``keep`` names positions whose hashes to remember (for
    checkpoints). Each kind of damage gets its own code: an edited row E-CHAIN-HASH, a row
    whose predecessor changed E-CHAIN-LINK, deleted rows E-CHAIN-GAP, moved rows
    E-CHAIN-ORDER."""
    result = ChainResult(start_seq, start_seq - 1, start_hash)
    if result.last_seq in keep:
        result.hashes_at[result.last_seq] = start_hash
    expected, prev_hash, prev_moved = start_seq, start_hash, False
    for row in rows:
        seq = int(row["seq"])
        where = f"seq {seq}"
        gap = seq != expected
        if seq > expected:
            missing = str(expected) if seq == expected + 1 else f"{expected}..{seq - 1}"
            result.problems.append(Problem("E-CHAIN-GAP", where, f"events {missing} are missing"))
        elif seq < expected:  # only a file can do this; the table's key keeps seqs unique
            result.problems.append(
                Problem("E-CHAIN-ORDER", where, f"comes after seq {expected - 1}")
            )
        body = body_hash(row)
        moved = False
        if link_hash(seq, row["prev_hash"], row["media_id"], body) != row["hash"]:
            written_as = _written_as(row, body)
            if written_as is None:
                result.problems.append(
                    Problem("E-CHAIN-HASH", where, "content does not match its hash")
                )
            else:
                moved = True
                result.problems.append(
                    Problem(
                        "E-CHAIN-ORDER",
                        where,
                        f"was written as seq {written_as}: rows were reordered or renumbered",
                    )
                )
        if row["prev_hash"] != prev_hash and not (gap or moved or prev_moved):
            result.problems.append(
                Problem("E-CHAIN-LINK", where, "previous hash does not match the event before")
            )
        if seq in keep:
            result.hashes_at[seq] = str(row["hash"])
        expected, prev_hash, prev_moved = seq + 1, str(row["hash"]), moved
        result.last_seq, result.last_hash = seq, prev_hash
        result.count += 1
    return result


def _written_as(row: Mapping[str, Any], body: str) -> int | None:
    seq, prev, media_id = int(row["seq"]), row["prev_hash"], row["media_id"]
    for other in range(max(1, seq - MOVE_WINDOW), seq + MOVE_WINDOW + 1):
        if other != seq and link_hash(other, prev, media_id, body) == row["hash"]:
            return other
    return None


# --------------------------------------------------------------------------- checkpoints


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256_hex(raw)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """Raises ValueError unless ``pem`` is an Ed25519 public key."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def checkpoint_message(cp: Mapping[str, Any]) -> bytes:
    return canonical(
        {
            "type": CHECKPOINT_TYPE,
            "seq": cp["seq"],
            "hash": cp["hash"],
            "at": cp["at"],
            "key_id": cp["key_id"],
        }
    )


def signature_problem(
    cp: Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey]
) -> Problem | None:
    where = f"checkpoint {cp['seq']}"
    key = keys.get(str(cp["key_id"]))
    if key is None:
        return Problem(
            "E-CHECKPOINT-KEY", where, f"signed by key {str(cp['key_id'])[:16]}…, not a trusted key"
        )
    try:
        key.verify(bytes.fromhex(str(cp["signature"])), checkpoint_message(cp))
    except (InvalidSignature, ValueError):
        return Problem("E-CHECKPOINT-SIGNATURE", where, "the signature does not verify")
    return None


def check_checkpoints(
    checkpoints: Iterable[Mapping[str, Any]],
    keys: Mapping[str, Ed25519PublicKey],
    chain: ChainResult,
) -> list[Problem]:
    """Each checkpoint must be signed by a trusted key and must name the hash the chain has
    at its position; one beyond the chain's end proves the log was cut short. A checkpoint
    whose signature fails proves nothing about the log, so only that is reported."""
    problems: list[Problem] = []
    for cp in checkpoints:
        seq, where = int(cp["seq"]), f"checkpoint {cp['seq']}"
        bad_signature = signature_problem(cp, keys)
        if bad_signature is not None:
            problems.append(bad_signature)
        elif seq > chain.last_seq:
            problems.append(
                Problem(
                    "E-CHAIN-TRUNCATED",
                    where,
                    f"a checkpoint signed seq {seq} but the log ends at seq {chain.last_seq}",
                )
            )
        elif seq in chain.hashes_at and chain.hashes_at[seq] != cp["hash"]:
            problems.append(
                Problem(
                    "E-CHECKPOINT-MISMATCH",
                    where,
                    "the signed hash differs from the event's: the log was rewritten",
                )
            )
    return problems


# ---------------------------------------------------------------------------------- bag

#: The tag files the tag manifest must list: with the payload manifest among them, the bag
#: signature over the tag manifest covers every file of the bag.
TAG_FILES = ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "README.txt", "verify_bag.py")
TAG_MANIFEST = "tagmanifest-sha256.txt"
BAG_SIGNATURE = "bag-signature.json"
BAG_SIGNATURE_TYPE = "evidence-bag-signature"
#: Payload files written after the EXPORTED events (so no event can name their digest): the
#: bag signature alone covers them, through the manifests.
CUSTODY_FILES = (
    "data/custody/export.json",
    "data/custody/events.jsonl",
    "data/custody/chain.jsonl",
    "data/custody/checkpoints.jsonl",
)


@dataclass
class BagReport:
    bag: str
    problems: list[Problem] = field(default_factory=list)
    items: int = 0
    events: int = 0
    segment: tuple[int, int] = (0, 0)
    checkpoints: int = 0
    key_ids: list[str] = field(default_factory=list)  # shipped in the bag: shown, not trusted
    trusted: list[str] = field(default_factory=list)  # the given keys' ids
    signed_by: str | None = None  # the bag signature's key id

    @property
    def ok(self) -> bool:
        return not self.problems


class BagUnreadable(Exception):
    """The bag lacks a file the checks need, or a file is not what its format says."""


Trusted = Mapping[str, Ed25519PublicKey] | Iterable[Ed25519PublicKey] | Ed25519PublicKey


def trust_of(trusted: Trusted) -> dict[str, Ed25519PublicKey]:
    """The given keys by their id, the id recomputed from each key (a mapping's own ids are
    not taken on trust either)."""
    if isinstance(trusted, Ed25519PublicKey):
        found: Iterable[Ed25519PublicKey] = [trusted]
    elif isinstance(trusted, Mapping):
        found = trusted.values()
    else:
        found = trusted
    return {key_id(k): k for k in found}


def bag_signature_message(signature: Mapping[str, Any]) -> bytes:
    return canonical(
        {
            "type": BAG_SIGNATURE_TYPE,
            "export_id": signature["export_id"],
            "tagmanifest_sha256": signature["tagmanifest_sha256"],
            "key_id": signature["key_id"],
        }
    )


def contents_sha256(items: Any, files: Any) -> str:
    """What an EXPORTED event's ``details.contents`` holds: export.json's listing, hashed."""
    return sha256_hex(canonical({"items": items, "files": files}))


def verify_bag(root: Path, trusted: Trusted) -> BagReport:
    """Every check a court needs, from the bag's files and the agency's published key(s)
    alone: ``trusted`` are the only keys whose signatures count."""
    keys = trust_of(trusted)
    report = BagReport(str(root), trusted=sorted(keys))
    report.problems += check_manifest(root, "manifest-sha256.txt", payload=True)
    report.problems += check_manifest(root, TAG_MANIFEST, payload=False)
    report.problems += _check_tag_files(root)
    custody = root / "data" / "custody"
    export = _read_json(custody / "export.json")
    if export.get("format") != EXPORT_FORMAT:
        raise BagUnreadable(f"export.json: format is not {EXPORT_FORMAT}")
    if not isinstance(export.get("items"), list) or not isinstance(export.get("files"), dict):
        raise BagUnreadable("export.json: items or files missing")
    _bag_keys(custody / "keys", report)
    chain = _read_jsonl(custody / "chain.jsonl")
    events = _read_jsonl(custody / "events.jsonl")
    checkpoints = _read_jsonl(custody / "checkpoints.jsonl")
    report.problems += _check_bag_signature(root, export, keys, report)
    report.problems += _check_segment(export, chain, checkpoints, keys, report)
    report.problems += _check_events(export, chain, events)
    report.problems += _check_items(root, export, events)
    report.problems += _check_files(root, export)
    report.items, report.events, report.checkpoints = (
        len(export["items"]),
        len(events),
        len(checkpoints),
    )
    return report


def check_manifest(root: Path, name: str, *, payload: bool) -> list[Problem]:
    """Re-hash every file a BagIt manifest lists (``sha256sum -c`` reads the same file)."""
    manifest = root / name
    if not manifest.is_file():
        raise BagUnreadable(f"{name} is missing")
    problems: list[Problem] = []
    listed: set[Path] = set()
    for number, line in enumerate(manifest.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        digest, _, relative = line.partition(" ")
        path = (root / relative.strip()).resolve()
        if root.resolve() not in path.parents:
            raise BagUnreadable(f"{name} line {number}: {relative.strip()!r} leaves the bag")
        listed.add(path)
        if not path.is_file():
            problems.append(Problem("E-PAYLOAD-MISSING", relative.strip(), "listed, not present"))
        elif file_sha256(path) != digest.lower():
            problems.append(
                Problem("E-PAYLOAD-MISMATCH", relative.strip(), f"does not hash to {digest}")
            )
    if payload:
        for path in sorted((root / "data").rglob("*")):
            if path.is_file() and path.resolve() not in listed:
                problems.append(
                    Problem("E-PAYLOAD-EXTRA", str(path.relative_to(root)), "not in the manifest")
                )
    return problems


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _manifest_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            names.add(line.partition(" ")[2].strip())
    return names


def _check_tag_files(root: Path) -> list[Problem]:
    """The signed tag manifest must name every tag file, and nothing outside ``data/`` may
    sit in the bag unnamed by it: a planted note would be read as the agency's."""
    listed = _manifest_names(root / TAG_MANIFEST)
    problems = [
        Problem("E-TAG-UNLISTED", name, f"not in {TAG_MANIFEST}: no signature covers it")
        for name in TAG_FILES
        if name not in listed
    ]
    own = {TAG_MANIFEST, BAG_SIGNATURE, "data"}
    for top in sorted(root.iterdir()):
        if top.name in own:
            continue
        for path in [top, *sorted(top.rglob("*"))] if top.is_dir() else [top]:
            relative = path.relative_to(root).as_posix()
            if path.is_file() and relative not in listed:
                problems.append(Problem("E-TAG-EXTRA", relative, "a file no manifest lists"))
    return problems


def _bag_keys(folder: Path, report: BagReport) -> dict[str, Ed25519PublicKey]:
    """The keys shipped in the bag: information for the reader (which ids to compare with the
    published one), never trust."""
    keys: dict[str, Ed25519PublicKey] = {}
    for pem in sorted(folder.glob("*.pem")):
        try:
            key = load_public_key(pem.read_bytes())
        except ValueError as exc:
            report.problems.append(Problem("E-KEY-INVALID", pem.name, str(exc)))
            continue
        if key_id(key) != pem.stem:
            report.problems.append(
                Problem("E-KEY-INVALID", pem.name, "the file name is not the key's id")
            )
            continue
        keys[pem.stem] = key
    report.key_ids = sorted(keys)
    return keys


def _check_bag_signature(
    root: Path,
    export: Mapping[str, Any],
    keys: Mapping[str, Ed25519PublicKey],
    report: BagReport,
) -> list[Problem]:
    """The bag signature must be made by a given key over this export and this very tag
    manifest: then no file of the bag changed since the agency closed it."""
    path = root / BAG_SIGNATURE
    try:
        signature = json.loads(path.read_text("utf-8"))
        message = bag_signature_message(signature)
        signed_by = str(signature["key_id"])
        raw = bytes.fromhex(str(signature["signature"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [Problem("E-BAG-UNSIGNED", BAG_SIGNATURE, f"no readable bag signature: {exc}")]
    report.signed_by = signed_by
    key = keys.get(signed_by)
    if key is None:
        return [
            Problem("E-BAG-KEY", BAG_SIGNATURE, f"signed by key {signed_by[:16]}…, not a given key")
        ]
    try:
        key.verify(raw, message)
    except InvalidSignature:
        return [Problem("E-BAG-SIGNATURE", BAG_SIGNATURE, "the signature does not verify")]
    problems: list[Problem] = []
    if signature["export_id"] != export.get("export_id"):
        problems.append(
            Problem(
                "E-BAG-SIGNATURE",
                BAG_SIGNATURE,
                f"signed for export {signature['export_id']}, not this bag's",
            )
        )
    if signature["tagmanifest_sha256"] != file_sha256(root / TAG_MANIFEST):
        problems.append(
            Problem(
                "E-BAG-CHANGED",
                TAG_MANIFEST,
                "is not the one signed: files were changed and the manifests recomputed",
            )
        )
    return problems


def _check_segment(
    export: Mapping[str, Any],
    chain: list[dict[str, Any]],
    checkpoints: list[dict[str, Any]],
    keys: Mapping[str, Ed25519PublicKey],
    report: BagReport,
) -> list[Problem]:
    """The segment must start right after a signed checkpoint (or the genesis) and end on
    one: then nothing in it can have been changed without a key."""
    anchor = export["segment"]["anchor"]
    signed = {int(cp["seq"]): cp for cp in checkpoints}
    problems: list[Problem] = []
    anchor_seq = int(anchor["seq"])
    if anchor_seq != 0 or anchor["hash"] != GENESIS:
        cp = signed.get(anchor_seq)
        if cp is None or cp["hash"] != anchor["hash"]:
            problems.append(
                Problem("E-SEGMENT-ANCHOR", f"seq {anchor_seq}", "the segment's start is unsigned")
            )
    result = check_chain(chain, start_seq=anchor_seq + 1, start_hash=anchor["hash"], keep=signed)
    problems += result.problems
    problems += check_checkpoints(checkpoints, keys, result)
    if result.last_seq not in signed:
        problems.append(
            Problem("E-SEGMENT-ANCHOR", f"seq {result.last_seq}", "the segment's end is unsigned")
        )
    report.segment = (anchor_seq + 1, result.last_seq)
    return problems


def _check_events(
    export: Mapping[str, Any], chain: list[dict[str, Any]], events: list[dict[str, Any]]
) -> list[Problem]:
    """Every shipped event is the chain's row at its position, and no row about an exported
    item is withheld (media ids are part of each link, so this is provable)."""
    items = {int(item["media_id"]) for item in export["items"]}
    rows = {int(row["seq"]): row for row in chain}
    problems: list[Problem] = []
    shipped: set[int] = set()
    for event in events:
        seq = int(event["seq"])
        shipped.add(seq)
        row = rows.get(seq)
        if row is None or "at" not in row or canonical(row) != canonical(event):
            problems.append(
                Problem("E-EVENT-MISMATCH", f"seq {seq}", "differs from the chain's row")
            )
    for seq, row in rows.items():
        if row["media_id"] in items and ("at" not in row or seq not in shipped):
            problems.append(
                Problem(
                    "E-EVENT-WITHHELD",
                    f"seq {seq}",
                    f"an event about exported item {row['media_id']} is not shipped",
                )
            )
    return problems


def _check_items(
    root: Path, export: Mapping[str, Any], events: list[dict[str, Any]]
) -> list[Problem]:
    """Each original hashes to the SHA-256 its ingest event recorded, and this export is
    recorded in each item's history, saying what export.json says."""
    problems: list[Problem] = []
    for item in export["items"]:
        media_id, sha = int(item["media_id"]), str(item["sha256"])
        where = f"media {media_id}"
        mine = [e for e in events if e["media_id"] == media_id]
        if not any(e["kind"] == "ingested" and e["details"].get("sha256") == sha for e in mine):
            problems.append(
                Problem("E-ORIGINAL-UNRECORDED", where, "no ingest event records its SHA-256")
            )
        exported = [
            e
            for e in mine
            if e["kind"] == "exported" and e["details"].get("export") == export["export_id"]
        ]
        if not exported:
            problems.append(
                Problem("E-EXPORT-UNRECORDED", where, "this export is not in its history")
            )
        else:
            problems += _export_agrees(export, item, exported[-1])
        original = root / item["original"]
        if not original.is_file():
            problems.append(Problem("E-ORIGINAL-MISSING", where, f"{item['original']} is missing"))
        elif file_sha256(original) != sha:
            problems.append(
                Problem("E-FIXITY-MISMATCH", where, f"{item['original']} does not hash to {sha}")
            )
    return problems


def _export_agrees(
    export: Mapping[str, Any], item: Mapping[str, Any], event: Mapping[str, Any]
) -> list[Problem]:
    """export.json and the item's EXPORTED event (in the signed chain) must tell one story:
    who, why, when, how many, and which files with which digests."""
    details = event["details"]
    where = f"media {item['media_id']}"
    said = {
        "exported_by": (export.get("exported_by"), event["actor"]),
        "reason": (export.get("reason"), details.get("reason")),
        "created_at": (export.get("created_at"), event["at"]),
        "items": (len(export["items"]), details.get("items")),
        "contents": (contents_sha256(export["items"], export["files"]), details.get("contents")),
    }
    problems = [
        Problem(
            "E-EXPORT-MISMATCH",
            where,
            f"export.json's {name} is not what its EXPORTED event (seq {event['seq']}) records",
        )
        for name, (in_bag, signed) in said.items()
        if in_bag != signed
    ]
    files = details.get("files")
    own = [item["original"], item["metadata"], *([item["proxy"]] if item.get("proxy") else [])]
    if not isinstance(files, dict):
        files = {}
    for path in own:
        if path not in files:
            problems.append(
                Problem("E-EXPORT-MISMATCH", where, f"its EXPORTED event does not name {path}")
            )
    if files.get(item["original"], item["sha256"]) != item["sha256"]:
        problems.append(
            Problem("E-EXPORT-MISMATCH", where, "its EXPORTED event records another original")
        )
    for path, digest in files.items():
        if export["files"].get(path) != digest:
            problems.append(
                Problem(
                    "E-EXPORT-MISMATCH",
                    where,
                    f"export.json lists {path} with another digest than its EXPORTED event",
                )
            )
    return problems


def _check_files(root: Path, export: Mapping[str, Any]) -> list[Problem]:
    """Each file the signed export lists hashes as listed (originals are the fixity check's),
    and the payload holds nothing else but the custody files and the shipped keys."""
    problems: list[Problem] = []
    listed: dict[str, str] = export["files"]
    originals = {str(item["original"]) for item in export["items"]}
    for relative, digest in sorted(listed.items()):
        path = (root / relative).resolve()
        if root.resolve() not in path.parents:
            raise BagUnreadable(f"export.json: {relative!r} leaves the bag")
        if relative in originals:
            continue
        if not path.is_file():
            problems.append(Problem("E-FILE-MISSING", relative, "the signed export lists it"))
        elif file_sha256(path) != digest:
            problems.append(
                Problem("E-FILE-MISMATCH", relative, "does not hash to the signed export's digest")
            )
    keys = {f"data/custody/keys/{kid}.pem" for kid in export.get("key_ids", [])}
    accounted = {*listed, *CUSTODY_FILES, *keys}
    for path in sorted((root / "data").rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and relative not in accounted:
            problems.append(
                Problem("E-FILE-UNACCOUNTED", relative, "the signed export does not list it")
            )
    return problems


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise BagUnreadable(f"{path.name}: {exc}") from exc
    if not isinstance(value, dict):
        raise BagUnreadable(f"{path.name}: not a JSON object")
    return value


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in _lines(path)]
    except (OSError, ValueError) as exc:
        raise BagUnreadable(f"{path.name}: {exc}") from exc


def _lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as f:
        yield from (line for line in f if line.strip())


# ---------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Verify an evidence export bag: files, custody chain, signatures."
    )
    parser.add_argument(
        "bag", nargs="?", type=Path, default=Path(__file__).resolve().parent, help="bag folder"
    )
    parser.add_argument(
        "--key",
        type=Path,
        action="append",
        required=True,
        help="the agency's published public key (PEM); repeat it for a key it rotated from",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    args = parser.parse_args(argv)
    try:
        trusted = [load_public_key(path.read_bytes()) for path in args.key]
        report = verify_bag(args.bag, trusted)
    except (BagUnreadable, OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: cannot verify {args.bag}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        body = {
            "ok": report.ok,
            "bag": report.bag,
            "items": report.items,
            "events": report.events,
            "segment": list(report.segment),
            "checkpoints": report.checkpoints,
            "key_ids": report.key_ids,
            "trusted": report.trusted,
            "signed_by": report.signed_by,
            "problems": [p._asdict() for p in report.problems],
        }
        print(json.dumps(body, ensure_ascii=False, indent=2))
    else:
        for p in report.problems:
            print(f"{p.code}  {p.subject}: {p.message}")
        verdict = "OK" if report.ok else f"FAILED ({len(report.problems)} problems)"
        print(
            f"{verdict}: {report.items} items, {report.events} of their custody events, "
            f"chain segment seq {report.segment[0]}..{report.segment[1]}, "
            f"{report.checkpoints} signed checkpoints, every file under the bag signature"
        )
        for kid in report.trusted:
            print(f"trusted (--key): {kid}")
        for kid in report.key_ids:
            given = "a given key" if kid in report.trusted else "NOT a given key: not trusted"
            print(f"shipped in the bag: {kid} ({given})")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
