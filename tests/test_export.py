"""Court export: a bag that `bagit.py --validate` accepts and that its own verifier checks in a
separate process with no catalog anywhere; and the forgeries that verifier catches."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pipeline.custody import checkpoints
from pipeline.custody import fixity as verify
from pipeline.custody import log as custody
from pipeline.custody import verify_bag as rules
from pipeline.custody.export import ExportResult, export_bag
from pipeline.custody.keys import Trust, public_pem
from pipeline.errors import AccessRefused, ChecksumMismatch, CustodyBroken, ExportError, NotFound
from pipeline.models import EventKind
from tests.custody_helpers import (
    LOG_LENGTH,
    Archive,
    copy_archive,
    flip_byte,
    make_case,
    read_jsonl,
    reseal_manifests,
    set_row,
    template,
    write_jsonl,
)

BAGIT = Path(sys.executable).parent / "bagit.py"


@pytest.fixture
def archive(
    tmp_path_factory: pytest.TempPathFactory, clips: dict[str, Path], tmp_path: Path
) -> Iterator[Archive]:
    copy = copy_archive(template(tmp_path_factory, clips), tmp_path / "home")
    yield copy
    copy.catalog.dispose()


def _export(archive: Archive, out: Path, *names: str, **options: object) -> ExportResult:
    keys = [str(archive.items[n].id) for n in names]
    values: dict[str, object] = {"actor": "1023", "reason": "移送法院 2026-0113", **options}
    return export_bag(
        archive.catalog,
        archive.store,
        archive.checkpointer(),
        media_keys=keys,
        out=out,
        **values,  # type: ignore[arg-type]
    )


def agency_key(archive: Archive) -> Ed25519PublicKey:
    """The instance's public key: what the agency publishes and a court is given."""
    return archive.checkpointer().signer.private.public_key()


def publish(archive: Archive, path: Path) -> Path:
    path.write_text(public_pem(agency_key(archive)))
    return path


@pytest.fixture
def bag(archive: Archive, tmp_path: Path) -> Path:
    """An exported bag (video with its proxy, and the PDF), after more history was written."""
    with archive.catalog.begin() as conn:  # later events of another item: withheld in the bag
        for i in range(7):
            custody.append(
                conn, EventKind.VIEWED, "1088", media_id=archive.items["photo"].id,
                details={"reason": f"私密 {i}"},
            )  # fmt: skip
    _export(archive, tmp_path / "bag", "video", "pdf", with_proxies=True)
    return tmp_path / "bag"


def _offline(bag: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the bag's own verifier as a court would: its own folder, no EVIDENCE_* anything."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "PYTHON"))}
    return subprocess.run(
        [sys.executable, "-I", str(bag / "verify_bag.py"), str(bag), "--json", *args],
        cwd=bag, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_copied_bag_verifies_with_bagit_and_its_own_verifier_offline(
    archive: Archive, bag: Path, tmp_path: Path
) -> None:
    published = publish(archive, tmp_path / "agency.pem")
    fresh = tmp_path / "court" / "copy"
    shutil.copytree(bag, fresh)
    archive.catalog.dispose()
    shutil.rmtree(archive.home)  # nothing of the agency's is left to lean on

    bagit = subprocess.run(
        [sys.executable, str(BAGIT), "--validate", str(fresh)], capture_output=True, text=True
    )
    assert bagit.returncode == 0, bagit.stderr
    assert "is valid" in bagit.stderr

    result = _offline(fresh, "--key", str(published))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["problems"] == []
    assert report["items"] == 2 and report["checkpoints"] >= 2
    assert report["signed_by"] == report["trusted"][0] and report["key_ids"] == report["trusted"]


def test_the_verifier_trusts_only_the_keys_it_is_given(
    archive: Archive, bag: Path, tmp_path: Path
) -> None:
    """No --key: it cannot run (2). Another key: nothing it signed counts (1). The agency's
    key beside a rotated-from one (--key repeated): verifies."""
    other = tmp_path / "other.pem"
    other.write_text(public_pem(Ed25519PrivateKey.generate().public_key()))
    published = publish(archive, tmp_path / "agency.pem")

    assert _offline(bag).returncode == 2
    wrong = _offline(bag, "--key", str(other))
    assert wrong.returncode == 1
    codes = {p["code"] for p in json.loads(wrong.stdout)["problems"]}
    assert codes == {"E-CHECKPOINT-KEY", "E-BAG-KEY"}
    both = _offline(bag, "--key", str(other), "--key", str(published))
    assert both.returncode == 0, both.stdout


def test_the_bag_holds_the_history_and_withholds_other_media(archive: Archive, bag: Path) -> None:
    custody_dir = bag / "data" / "custody"
    export = json.loads((custody_dir / "export.json").read_text())
    assert export["exported_by"] == "1023" and export["reason"] == "移送法院 2026-0113"
    events = read_jsonl(custody_dir / "events.jsonl")
    video, pdf, photo = (archive.items[n].id for n in ("video", "pdf", "photo"))
    assert {e["media_id"] for e in events} == {video, pdf}
    kinds = [e["kind"] for e in events if e["media_id"] == video]
    assert kinds[0] == "ingested" and "proxy_made" in kinds and kinds[-1] == "exported"
    chain = read_jsonl(custody_dir / "chain.jsonl")
    others = [r for r in chain if r["media_id"] == photo]
    assert others and all("details" not in r for r in others), "other media's content withheld"
    assert "私密" not in (custody_dir / "chain.jsonl").read_text()
    assert chain[-1]["seq"] == export["segment"]["last_seq"]
    assert (bag / "data" / "proxies").is_dir() and len(
        list((bag / "data/originals").iterdir())
    ) == 2
    # The export is itself in each item's history, with who and why.
    with archive.catalog.begin() as conn:
        (done,) = [e for e in custody.events(conn, media_id=pdf) if e.kind is EventKind.EXPORTED]
    assert done.actor == "1023" and done.details["export"] == export["export_id"]


def test_the_verifier_needs_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(Path(rules.__file__).read_text())
    modules = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
        if not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
    } - {"__future__"}
    assert modules - set(sys.stdlib_module_names) == {"cryptography"}


def _forge_event(bag: Path) -> None:
    path = bag / "data" / "custody" / "events.jsonl"
    events = read_jsonl(path)
    events[0]["actor"] = "someone else"
    write_jsonl(path, events)


def _edit_chain(bag: Path) -> None:
    path = bag / "data" / "custody" / "chain.jsonl"
    chain = read_jsonl(path)
    full = next(r for r in chain if "details" in r)
    full["details"] = {**full["details"], "sha256": "0" * 64}
    write_jsonl(path, chain)


def _withhold(bag: Path) -> None:
    """Hide an exported item's viewing: ship it as a link only, drop it from the events."""
    custody_dir = bag / "data" / "custody"
    chain = read_jsonl(custody_dir / "chain.jsonl")
    hidden = next(r for r in chain if r.get("kind") == "proxy_made")
    chain[chain.index(hidden)] = rules.withheld(hidden)
    write_jsonl(custody_dir / "chain.jsonl", chain)
    events = [e for e in read_jsonl(custody_dir / "events.jsonl") if e["seq"] != hidden["seq"]]
    write_jsonl(custody_dir / "events.jsonl", events)


def _resign(bag: Path) -> None:
    """Mallory signs the (edited) segment with a key of her own and ships that key."""
    mallory = Ed25519PrivateKey.generate()
    kid = rules.key_id(mallory.public_key())
    custody_dir = bag / "data" / "custody"
    for old in (custody_dir / "keys").glob("*.pem"):
        old.unlink()
    (custody_dir / "keys" / f"{kid}.pem").write_text(public_pem(mallory.public_key()))
    cps = read_jsonl(custody_dir / "checkpoints.jsonl")
    for cp in cps:
        cp["key_id"] = kid
        cp["signature"] = mallory.sign(rules.checkpoint_message(cp)).hex()
    write_jsonl(custody_dir / "checkpoints.jsonl", cps)


@pytest.mark.parametrize(
    ("forge", "expected"),
    [
        (_forge_event, {"E-EVENT-MISMATCH"}),
        (_edit_chain, {"E-CHAIN-HASH", "E-EVENT-MISMATCH"}),
        (_withhold, {"E-EVENT-WITHHELD"}),
        (_resign, {"E-CHECKPOINT-KEY", "E-FILE-UNACCOUNTED"}),
    ],
)
def test_a_careful_forger_is_caught_by_the_custody_checks(
    archive: Archive,
    bag: Path,
    tmp_path: Path,
    forge,
    expected: set[str],  # type: ignore[no-untyped-def]
) -> None:
    forge(bag)
    reseal_manifests(bag)  # the files agree with the manifests again: the signatures tell
    report = rules.verify_bag(bag, agency_key(archive))
    # The bag signature no longer covers the recomputed manifests; the custody checks find
    # the forgery on their own as well.
    assert {p.code for p in report.problems} == expected | {"E-BAG-CHANGED"}


def test_a_flipped_byte_in_the_bag_fails_bagit_and_the_verifier(
    archive: Archive, bag: Path, tmp_path: Path
) -> None:
    original = next((bag / "data" / "originals").glob("*.mp4"))
    flip_byte(original)
    bagit = subprocess.run(
        [sys.executable, str(BAGIT), "--validate", str(bag)], capture_output=True
    )
    assert bagit.returncode != 0
    result = _offline(bag, "--key", str(publish(archive, tmp_path / "agency.pem")))
    assert result.returncode == 1
    codes = {p["code"] for p in json.loads(result.stdout)["problems"]}
    assert codes == {"E-PAYLOAD-MISMATCH", "E-FIXITY-MISMATCH"}


def test_export_refuses_a_damaged_original_and_leaves_nothing(
    archive: Archive, tmp_path: Path
) -> None:
    flip_byte(archive.store.original_path(archive.items["photo"].sha256))
    with pytest.raises(ChecksumMismatch):
        _export(archive, tmp_path / "out" / "bag", "photo")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"reason": " "}, AccessRefused, "a reason is required"),
        ({"actor": None}, AccessRefused, "who is asking is required"),
        ({"case": "2099-0001"}, NotFound, "case not found: 2099-0001"),
    ],
)
def test_export_refuses_without_who_or_why_or_an_unknown_case(
    archive: Archive, tmp_path: Path, options: dict[str, object], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        _export(archive, tmp_path / "bag", "pdf", **options)
    assert not (tmp_path / "bag").exists()


def test_a_case_export_holds_the_records_linked_to_it(archive: Archive, tmp_path: Path) -> None:
    make_case(archive, "2026-0113", "photo", "pdf")
    result = _export(archive, tmp_path / "bag", case="2026-0113")
    assert sorted(result.media_ids) == sorted(archive.items[n].id for n in ("photo", "pdf"))
    assert rules.verify_bag(result.path, agency_key(archive)).ok
    events = read_jsonl(result.path / "data" / "custody" / "events.jsonl")
    exported = [e for e in events if e["kind"] == "exported"]
    assert len(exported) == 2 and {e["details"]["case"] for e in exported} == {"2026-0113"}
    assert {e["kind"] for e in events} >= {"ingested", "linked", "exported"}


def _segment_start(archive: Archive, name: str) -> int:
    """The first seq of the chain segment an export of the item ships: the one after the
    checkpoint before the item's first event."""
    with archive.catalog.begin() as conn:
        first = next(custody.events(conn, media_id=archive.items[name].id)).seq
        anchor = checkpoints.before(conn, first)
    return anchor.seq + 1 if anchor else 1


def test_export_refuses_a_log_damaged_in_a_signed_stretch(archive: Archive, tmp_path: Path) -> None:
    # The damaged event is taken inside the bag's segment, not at a fixed seq: the segment
    # begins at a checkpoint, and a fixed seq once fell before it when ingest's threads
    # ordered the template's events differently (the export was then right to go ahead).
    video, after = archive.items["video"].id, _segment_start(archive, "video") - 1
    with archive.catalog.begin() as conn:
        seq = next(e.seq for e in custody.events(conn, after=after) if e.media_id != video)
    assert seq < LOG_LENGTH, "signed long ago: only the export's recompute can see it"
    set_row(archive, seq, actor="mallory")  # another's event: the bag ships it withheld
    with pytest.raises(
        CustodyBroken, match=rf"seq {seq}: content does not match its hash \(E-CHAIN"
    ):
        _export(archive, tmp_path / "bag", "video")
    assert not (tmp_path / "bag").exists()


def test_damage_before_a_bags_segment_does_not_block_it_and_verify_finds_it(
    archive: Archive, tmp_path: Path
) -> None:
    """The bag proves its own stretch from a signed checkpoint on, so an older broken event
    is not its concern (re-checking the whole log on each export would not scale); the
    agency's `verify` is what reports it."""
    start = _segment_start(archive, "pdf")
    assert start > 2, "the template's pdf was ingested after the first checkpoint"
    set_row(archive, start - 2, actor="mallory")
    result = _export(archive, tmp_path / "bag", "pdf")
    assert result.segment[0] == start and rules.verify_bag(result.path, agency_key(archive)).ok
    kid = rules.key_id(agency_key(archive))
    pinned = Trust({kid: agency_key(archive)}, (kid,), ())
    log = verify.check_log(archive.catalog, archive.settings, trust=pinned)
    assert [p.code for p in log.problems] == ["E-CHAIN-HASH"]


def test_export_never_writes_into_a_folder_with_files(archive: Archive, tmp_path: Path) -> None:
    out = tmp_path / "bag"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an empty folder"):
        _export(archive, out, "pdf")


def test_the_cli_exports_and_says_how_to_verify(archive: Archive, tmp_path: Path) -> None:
    out = tmp_path / "bag"
    video, pdf = archive.items["video"], archive.items["pdf"]
    result = archive.cli(
        "export", "--media", f"{video.id},{pdf.sha256[:10]}", "--out", str(out),
        "--reason", "移送法院", "--as", "1023", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads(result.stdout)["media_ids"]) == sorted([video.id, pdf.id])
    assert rules.verify_bag(out, agency_key(archive)).ok
