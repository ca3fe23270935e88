"""Tamper evidence anchored outside what it protects: a court bag and a sealed case file prove
every file they hold with the agency's pinned key alone.

The tamperer here can write anything in the bag and under EVIDENCE_HOME, recompute every
BagIt manifest (and the Payload-Oxum, so `bagit.py --validate` passes), and ship a key of
their own beside the agency's; what they cannot do is sign with the agency's key. Each
forgery must fail with its code, through the checks that do not rest on the bag's own files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bagit
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pipeline.cases import records as cases
from pipeline.cases import seal
from pipeline.cases.categories import load_categories
from pipeline.catalog import cases as case_rows
from pipeline.custody import verify_bag as rules
from pipeline.custody.export import export_bag, sign_bag
from pipeline.custody.keys import Signer, pinned_keys, public_pem
from pipeline.errors import CaseError
from tests.custody_helpers import (
    EVIDENCE,
    Archive,
    copy_archive,
    flip_byte,
    make_case,
    read_jsonl,
    reseal_manifests,
    template,
    write_jsonl,
)

NUMBER = "2026-0113"


@pytest.fixture
def archive(
    tmp_path_factory: pytest.TempPathFactory, clips: dict[str, Path], tmp_path: Path
) -> Iterator[Archive]:
    copy = copy_archive(template(tmp_path_factory, clips), tmp_path / "home")
    yield copy
    copy.catalog.dispose()


def agency(archive: Archive) -> Ed25519PublicKey:
    return archive.checkpointer().signer.private.public_key()


def pinned(archive: Archive) -> dict[str, Ed25519PublicKey]:
    trusted = dict(pinned_keys(archive.settings))
    assert list(trusted) == [rules.key_id(agency(archive))], "the archive's key is pinned"
    return trusted


@pytest.fixture
def bag(archive: Archive, tmp_path: Path) -> Path:
    """A court bag of the video (with its proxy) and the PDF."""
    out = tmp_path / "bag"
    export_bag(
        archive.catalog,
        archive.store,
        archive.checkpointer(),
        media_keys=[str(archive.items["video"].id), str(archive.items["pdf"].id)],
        out=out,
        actor="1023",
        reason="移送法院 2026-0113",
        with_proxies=True,
    )
    assert rules.verify_bag(out, agency(archive)).ok
    return out


# ------------------------------------------------------------------------- the tamperer

MALLORY = Ed25519PrivateKey.generate()
MALLORY_ID = rules.key_id(MALLORY.public_key())


def _export_json(bag: Path) -> dict[str, Any]:
    return json.loads((bag / "data/custody/export.json").read_text("utf-8"))


def _write_export_json(bag: Path, export: dict[str, Any]) -> None:
    text = json.dumps(export, ensure_ascii=False, indent=2, sort_keys=True)
    (bag / "data/custody/export.json").write_text(text, "utf-8")


def _ship_mallory(bag: Path) -> None:
    """Mallory's key beside the agency's, named in export.json as a signer."""
    (bag / "data/custody/keys" / f"{MALLORY_ID}.pem").write_text(public_pem(MALLORY.public_key()))
    export = _export_json(bag)
    export["key_ids"] = sorted({*export["key_ids"], MALLORY_ID})
    _write_export_json(bag, export)


def _reseal(bag: Path) -> None:
    """Recompute the Payload-Oxum and both manifests: BagIt finds nothing wrong after this."""
    files = [p for p in (bag / "data").rglob("*") if p.is_file()]
    oxum = f"Payload-Oxum: {sum(p.stat().st_size for p in files)}.{len(files)}"
    info = bag / "bag-info.txt"
    info.write_text(re.sub(r"Payload-Oxum: .*", oxum, info.read_text("utf-8")), "utf-8")
    reseal_manifests(bag)
    bagit.Bag(str(bag)).validate()


def finish(bag: Path, how: str) -> str:
    """The tamperer's last step; returns the code the bag signature check then reports.
    ``resealed``: manifests recomputed, the agency's bag signature left as it was.
    ``resigned``: Mallory's key shipped beside the agency's and the bag signed with it."""
    if how == "resigned":
        _ship_mallory(bag)
    _reseal(bag)
    if how == "resigned":
        sign_bag(bag, _export_json(bag)["export_id"], Signer(MALLORY_ID, MALLORY))
        return "E-BAG-KEY"
    return "E-BAG-CHANGED"


def _edit_metadata(bag: Path) -> dict[str, Any]:
    """Officer, description and recorded time of the video, as a forger would want them."""
    path = next((bag / "data/metadata").glob("*.json"))
    record = json.loads(path.read_text("utf-8"))
    record.update(
        officer_id="1088", description="当事人已签字", recorded_start="2026-05-01T08:00:00+00:00"
    )
    path.write_text(json.dumps(record, ensure_ascii=False, indent=2), "utf-8")
    return {"path": f"data/metadata/{path.name}", "sha256": rules.file_sha256(path)}


def metadata_edited(bag: Path) -> None:
    _edit_metadata(bag)


def metadata_edited_and_listed(bag: Path) -> None:
    """The edit, and export.json's listing updated to the new digest."""
    edited = _edit_metadata(bag)
    export = _export_json(bag)
    export["files"][edited["path"]] = edited["sha256"]
    _write_export_json(bag, export)


def who_and_why_edited(bag: Path) -> None:
    export = _export_json(bag)
    export.update(exported_by="9999", reason="当事人申请复核")
    _write_export_json(bag, export)


def original_planted(bag: Path) -> None:
    (bag / "data/originals/99_补充录像.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 planted")


def original_planted_and_listed(bag: Path) -> None:
    """The planted original as an item of export.json, with its files listed."""
    original_planted(bag)
    path = bag / "data/originals/99_补充录像.mp4"
    sha = rules.file_sha256(path)
    export = _export_json(bag)
    export["items"].append(
        {"media_id": 99, "sha256": sha, "size": path.stat().st_size, "proxy": None,
         "original_name": "补充录像.mp4", "original": "data/originals/99_补充录像.mp4",
         "metadata": "data/metadata/1.json"}
    )  # fmt: skip
    export["files"]["data/originals/99_补充录像.mp4"] = sha
    _write_export_json(bag, export)


def readme_edited(bag: Path) -> None:
    readme = bag / "README.txt"
    readme.write_text(readme.read_text("utf-8").replace("Reason:", "Reason: 已结案;"), "utf-8")


def bag_info_edited(bag: Path) -> None:
    info = bag / "bag-info.txt"
    info.write_text(info.read_text("utf-8").replace("by 1023", "by 9999"), "utf-8")


def item_removed(bag: Path, media_id: int | None = None) -> None:
    """Drop an item whole: its files, its entries in export.json, its events (its chain rows
    shipped as links only, as another media's would be: their hashes still hold)."""
    export = _export_json(bag)
    gone = export["items"][-1] if media_id is None else next(
        i for i in export["items"] if i["media_id"] == media_id
    )  # fmt: skip
    export["items"].remove(gone)
    for key in ("original", "proxy", "metadata"):
        if gone[key]:
            (bag / gone[key]).unlink()
            export["files"].pop(gone[key])
    _write_export_json(bag, export)
    custody = bag / "data/custody"
    chain = read_jsonl(custody / "chain.jsonl")
    chain = [rules.withheld(r) if r["media_id"] == gone["media_id"] else r for r in chain]
    write_jsonl(custody / "chain.jsonl", chain)
    events = [e for e in read_jsonl(custody / "events.jsonl") if e["media_id"] != gone["media_id"]]
    write_jsonl(custody / "events.jsonl", events)


ATTACKS: list[tuple[Callable[[Path], None], set[str]]] = [
    (metadata_edited, {"E-FILE-MISMATCH"}),
    (metadata_edited_and_listed, {"E-EXPORT-MISMATCH"}),
    (who_and_why_edited, {"E-EXPORT-MISMATCH"}),
    (original_planted, {"E-FILE-UNACCOUNTED"}),
    (
        original_planted_and_listed,
        {"E-EXPORT-MISMATCH", "E-EXPORT-UNRECORDED", "E-ORIGINAL-UNRECORDED"},
    ),
    (readme_edited, set()),
    (bag_info_edited, set()),
    (item_removed, {"E-EXPORT-MISMATCH"}),
]


@pytest.mark.parametrize("how", ["resealed", "resigned"])
@pytest.mark.parametrize(("attack", "expected"), ATTACKS, ids=[a.__name__ for a, _ in ATTACKS])
def test_every_file_of_a_court_bag_is_proven(
    archive: Archive, bag: Path, attack: Callable[[Path], None], expected: set[str], how: str
) -> None:
    """The signed chain vouches for what was known before the export's events (the content
    code); the bag signature for every file (its code). Either finds the forgery alone."""
    attack(bag)
    bag_code = finish(bag, how)
    report = rules.verify_bag(bag, agency(archive))
    assert {p.code for p in report.problems} == expected | {bag_code}
    if how == "resigned":
        assert report.signed_by == MALLORY_ID and MALLORY_ID in report.key_ids


def test_a_bag_without_its_signature_fails(archive: Archive, bag: Path) -> None:
    (bag / rules.BAG_SIGNATURE).unlink()
    bagit.Bag(str(bag)).validate()  # BagIt does not miss it
    assert [p.code for p in rules.verify_bag(bag, agency(archive)).problems] == ["E-BAG-UNSIGNED"]


def test_a_note_planted_beside_the_tag_files_is_refused(archive: Archive, bag: Path) -> None:
    (bag / "NOTICE.txt").write_text("本材料已经法院确认", "utf-8")
    assert [p.code for p in rules.verify_bag(bag, agency(archive)).problems] == ["E-TAG-EXTRA"]


def _rechain(bag: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit the first shipped event, recompute every hash after it, and sign the checkpoints
    again with Mallory's key: a chain that holds together under her signatures."""
    custody = bag / "data/custody"
    export = _export_json(bag)
    chain = read_jsonl(custody / "chain.jsonl")
    first = next(r for r in chain if "at" in r)
    edit(first)
    prev = export["segment"]["anchor"]["hash"]
    for r in chain:
        r["prev_hash"] = prev
        body = rules.body_hash(r)
        r["hash"] = prev = rules.link_hash(r["seq"], prev, r["media_id"], body)
    write_jsonl(custody / "chain.jsonl", chain)
    at = {r["seq"]: r["hash"] for r in chain}
    write_jsonl(custody / "events.jsonl", [r for r in chain if "at" in r])
    checkpoints = read_jsonl(custody / "checkpoints.jsonl")
    for cp in checkpoints:
        cp.update(hash=at.get(cp["seq"], cp["hash"]), key_id=MALLORY_ID)
        cp["signature"] = MALLORY.sign(rules.checkpoint_message(cp)).hex()
    write_jsonl(custody / "checkpoints.jsonl", checkpoints)


def _offline(bag: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The bag's own verifier as a court runs it: its own process, nothing of the agency's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "PYTHON"))}
    return subprocess.run(
        [sys.executable, "-I", str(bag / "verify_bag.py"), str(bag), "--json", *args],
        cwd=bag, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_chain_forged_and_signed_with_a_key_shipped_beside_the_agencys_fails(
    archive: Archive, bag: Path, tmp_path: Path
) -> None:
    """The reproduced attack: `verify_bag.py BAG --key AGENCY.pem` said OK because the given
    key was one of the bag's keys. Now the signatures themselves must be the given key's."""
    published = tmp_path / "agency.pem"
    published.write_text(public_pem(agency(archive)))
    _rechain(bag, lambda event: event.update(actor="someone else"))
    assert bag.joinpath("data/custody/keys", f"{rules.key_id(agency(archive))}.pem").is_file()
    finish(bag, "resigned")
    chain_only = rules.check_chain(
        read_jsonl(bag / "data/custody/chain.jsonl"),
        start_seq=_export_json(bag)["segment"]["anchor"]["seq"] + 1,
        start_hash=_export_json(bag)["segment"]["anchor"]["hash"],
    )
    assert chain_only.problems == [], "the forged chain holds together by itself"

    result = _offline(bag, "--key", str(published))

    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert {p["code"] for p in report["problems"]} == {"E-CHECKPOINT-KEY", "E-BAG-KEY"}
    assert MALLORY_ID in report["key_ids"] and report["trusted"] == [rules.key_id(agency(archive))]


# --------------------------------------------------------------------------- sealed bags


def _seal(archive: Archive, number: str, *names: str) -> seal.Sealed:
    """A case of the named items, concluded and sealed with --force (a seizure without
    its video coverage is incomplete: the bag's case.json says "forced")."""
    make_case(archive, number, *names)
    now = datetime.now(UTC)
    with archive.catalog.begin() as conn:
        cases.conclude(
            conn, number, now - timedelta(hours=1), "A001", archive.settings,
            load_categories(archive.settings), now,
        )  # fmt: skip
    return seal.seal_with(
        archive.catalog, archive.store, archive.settings, number, "A001", "卷宗完整",
        force=True, now=now,
    )  # fmt: skip


def _cases_verify(archive: Archive, number: str) -> subprocess.CompletedProcess[str]:
    env = {**archive.env(), "EVIDENCE_CUSTODY__PINNED_KEYS": json.dumps(list(pinned(archive)))}
    return subprocess.run(
        [*EVIDENCE, "cases", "verify", number, "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _codes(check: seal.SealedCheck) -> set[str]:
    return {p.code for p in check.problems}


def test_a_sealed_case_verifies_and_its_bag_verifies_offline_after_the_home_is_gone(
    archive: Archive, tmp_path: Path
) -> None:
    sealed = _seal(archive, NUMBER, "photo", "pdf")
    check = seal.check_sealed_bags(archive.catalog, archive.store, pinned(archive))
    assert check.checked == (NUMBER,) and check.problems == ()
    result = _cases_verify(archive, NUMBER)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["problems"] == []

    bag = seal.extract(archive.store, sealed.key, tmp_path / "court")
    published = tmp_path / "agency.pem"
    published.write_text(public_pem(agency(archive)))
    record = json.loads((bag / seal.CASE_FILE).read_text("utf-8"))
    assert record["forced"] is True
    archive.catalog.dispose()
    shutil.rmtree(archive.home)
    offline = _offline(bag, "--key", str(published))
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert json.loads(offline.stdout)["items"] == 2


def test_a_sealed_bag_rebuilt_with_a_recording_removed_is_caught(
    archive: Archive, tmp_path: Path
) -> None:
    """The reproduced attack: a recording taken out, the "forced" flag cleared, the bag signed
    with a key shipped inside, stored, and cases.archive_key pointed at it."""
    sealed = _seal(archive, NUMBER, "photo", "pdf")
    bag = seal.extract(archive.store, sealed.key, tmp_path / "x")
    item_removed(bag, archive.items["pdf"].id)
    case_json = bag / seal.CASE_FILE
    record = json.loads(case_json.read_text("utf-8"))
    record.update(forced=False, problems=[])
    case_json.write_text(json.dumps(record, ensure_ascii=False, indent=2), "utf-8")
    export = _export_json(bag)
    export["files"][seal.CASE_FILE] = rules.file_sha256(case_json)
    _write_export_json(bag, export)
    finish(bag, "resigned")
    tar = tmp_path / "forged.tar"
    seal._tar(bag, tar, datetime.now(UTC))
    forged = archive.store.put_original(tar).sha256
    with archive.catalog.begin() as conn:
        case = cases.get_case(conn, NUMBER)
        case_rows.save(conn, replace(case, archive_key=forged), datetime.now(UTC))

    check = seal.check_sealed_bags(archive.catalog, archive.store, pinned(archive))

    # The key is not the SEALED event's, the bag signature is not the agency's, and the
    # remaining item's EXPORTED event names two items and the original case.json.
    assert _codes(check) == {"E-SEAL-MOVED", "E-BAG-KEY", "E-EXPORT-MISMATCH"}
    assert {p.subject for p in check.problems} == {f"case {NUMBER}"}
    result = _cases_verify(archive, NUMBER)
    assert result.returncode == 1, result.stdout + result.stderr
    assert {p["code"] for p in json.loads(result.stdout)["problems"]} == _codes(check)


def test_a_sealed_bag_cannot_lean_on_the_key_it_ships(archive: Archive, tmp_path: Path) -> None:
    """Left in place under its own key (no archive_key moved): re-signing inside is enough
    to fail, and the content checks see what changed."""
    sealed = _seal(archive, NUMBER, "photo", "pdf")
    bag = seal.extract(archive.store, sealed.key, tmp_path / "x")
    case_json = bag / seal.CASE_FILE
    case_json.write_text(case_json.read_text("utf-8").replace('"forced": true', '"forced": false'))
    finish(bag, "resigned")
    assert {p.code for p in seal.verify_sealed_bag(bag, pinned(archive))} == {
        "E-FILE-MISMATCH",
        "E-BAG-KEY",
    }


def test_a_damaged_stored_sealed_bag_is_reported_by_fixity_and_cases_verify(
    archive: Archive,
) -> None:
    sealed = _seal(archive, NUMBER, "photo")
    _seal(archive, "2026-0114", "pdf")
    flip_byte(archive.store.original_path(sealed.key), offset=2000)

    check = seal.check_sealed_bags(archive.catalog, archive.store, pinned(archive))

    assert check.checked == (NUMBER, "2026-0114")
    assert [(p.code, p.subject) for p in check.problems] == [("E-SEAL-FIXITY", f"case {NUMBER}")]
    result = _cases_verify(archive, NUMBER)
    assert result.returncode == 1, result.stdout + result.stderr
    assert [p["code"] for p in json.loads(result.stdout)["problems"]] == ["E-SEAL-FIXITY"]
    # `evidence verify` (and so the daily sample and the monthly full pass) checks them too.
    verified = archive.cli("verify", "--no-record", "--json")
    assert verified.returncode == 1, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["sealed"] == 2
    assert [(p["code"], p["subject"]) for p in report["problems"]] == [
        ("E-SEAL-FIXITY", f"case {NUMBER}")
    ]
    only = seal.check_sealed_bags(
        archive.catalog, archive.store, pinned(archive), numbers=["2026-0114"]
    )
    assert only.checked == ("2026-0114",) and only.ok
    sample = seal.check_sealed_bags(archive.catalog, archive.store, pinned(archive), sample=1)
    assert len(sample.checked) == 1


def test_fixity_of_sealed_bags_refuses_a_case_that_is_not_sealed(archive: Archive) -> None:
    make_case(archive, "2026-0200", "pdf")
    with pytest.raises(CaseError, match="is not sealed"):
        seal.check_sealed_bags(
            archive.catalog, archive.store, pinned(archive), numbers=["2026-0200"]
        )
