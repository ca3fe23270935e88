"""Tamper tests: each kind of damage to the archive or its custody log is found, with its own
code; a clean archive verifies clean. Real files, a real SQLite catalog, a real signed log."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, insert, select, update

from pipeline.catalog.schema import custody_checkpoints, custody_events, custody_head
from pipeline.custody import fixity as verify
from pipeline.custody import log as custody
from pipeline.custody import verify_bag as rules
from pipeline.errors import CustodyBroken
from pipeline.models import EventKind
from tests.custody_helpers import (
    Archive,
    copy_archive,
    flip_byte,
    rewrite_from,
    row,
    set_head,
    set_row,
    template,
)


@pytest.fixture
def archive(
    tmp_path_factory: pytest.TempPathFactory, clips: dict[str, Path], tmp_path: Path
) -> Iterator[Archive]:
    copy = copy_archive(template(tmp_path_factory, clips), tmp_path / "home")
    yield copy
    copy.catalog.dispose()


def _codes(archive: Archive) -> list[str]:
    originals = verify.select_originals(archive.catalog)
    report = verify.run(
        archive.catalog, archive.store, archive.settings, originals, actor="t", record_events=False
    )
    return sorted(p.code for p in report.problems)


def _last_seq(archive: Archive) -> int:
    with archive.catalog.begin() as conn:
        head = custody.locked_head_or_none(conn)
    assert head is not None
    return head.seq


def _flip_original(a: Archive) -> None:
    flip_byte(a.store.original_path(a.items["video"].sha256))


def _delete_original(a: Archive) -> None:
    a.store.original_path(a.items["photo"].sha256).unlink()


def _edit_row(a: Archive) -> None:
    set_row(a, 7, details={**row(a, 7)["details"], "sha256": "0" * 64})


def _edit_row_and_its_hash(a: Archive) -> None:
    r = row(a, 7)
    record = {**r, "at": custody.canonical_time(r["at"]), "actor": "someone else"}
    set_row(a, 7, actor="someone else", hash=rules.event_hash(record))


def _delete_row(a: Archive) -> None:
    with a.catalog.begin() as conn:
        conn.execute(delete(custody_events).where(custody_events.c.seq == 7))


def _reorder_rows(a: Archive) -> None:
    with a.catalog.begin() as conn:  # swap the rows at 7 and 8 through a free number
        for old, new in ((7, -1), (8, 7), (-1, 8)):
            conn.execute(update(custody_events).where(custody_events.c.seq == old).values(seq=new))


def _truncate_keeping_head(a: Archive) -> None:
    with a.catalog.begin() as conn:
        conn.execute(delete(custody_events).where(custody_events.c.seq > 12))


def _truncate_and_reset_head(a: Archive) -> None:
    _truncate_keeping_head(a)
    set_head(a, 12)


def _truncate_and_delete_checkpoints(a: Archive) -> None:
    _truncate_and_reset_head(a)
    with a.catalog.begin() as conn:
        conn.execute(delete(custody_checkpoints).where(custody_checkpoints.c.seq > 12))


def _rewrite_chain(a: Archive) -> None:
    rewrite_from(a, 7, {"note": "a history that holds together again"})


def _forge_checkpoint(a: Archive) -> None:
    other = row(a, 9)["hash"]
    with a.catalog.begin() as conn:
        conn.execute(
            update(custody_checkpoints).where(custody_checkpoints.c.seq == 10).values(hash=other)
        )


def _checkpoint_by_another_key(a: Archive) -> None:
    mallory = Ed25519PrivateKey.generate()
    kid = rules.key_id(mallory.public_key())
    seq = _last_seq(a)
    at = row(a, seq)["at"]
    cp = {"seq": seq, "hash": row(a, seq)["hash"], "at": custody.canonical_time(at), "key_id": kid}
    signature = mallory.sign(rules.checkpoint_message(cp)).hex()
    with a.catalog.begin() as conn:
        conn.execute(delete(custody_checkpoints).where(custody_checkpoints.c.seq == seq))
        conn.execute(
            insert(custody_checkpoints).values(
                seq=seq, hash=cp["hash"], at=at, key_id=kid, signature=signature
            )
        )


def _event_past_the_head(a: Archive) -> None:
    with a.catalog.begin() as conn:
        head = conn.execute(select(custody_head)).one()
        custody.append(conn, EventKind.VIEWED, "mallory", details={"reason": "unseen"})
        conn.execute(update(custody_head).values(seq=head.seq, hash=head.hash))


# The template's log has 20 events, checkpoints signed at 5, 10, 15 and 20.
TAMPERS: dict[str, tuple[Callable[[Archive], None], list[str]]] = {
    "clean": (lambda a: None, []),
    "flip one byte of an original": (_flip_original, ["E-FIXITY-MISMATCH"]),
    "delete an original": (_delete_original, ["E-ORIGINAL-MISSING"]),
    "edit a custody row": (_edit_row, ["E-CHAIN-HASH"]),
    "edit a row and its hash": (_edit_row_and_its_hash, ["E-CHAIN-LINK"]),
    "delete a custody row": (_delete_row, ["E-CHAIN-GAP"]),
    "reorder two custody rows": (_reorder_rows, ["E-CHAIN-ORDER"] * 2),
    # Cut after 12: the head and the checkpoints at 15 and 20 each prove it.
    "truncate the log": (_truncate_keeping_head, ["E-CHAIN-TRUNCATED"] * 3),
    "truncate the log and its head": (_truncate_and_reset_head, ["E-CHAIN-TRUNCATED"] * 2),
    "truncate log, head and checkpoints": (
        _truncate_and_delete_checkpoints,
        ["E-CHAIN-TRUNCATED"] * 2 + ["E-CHECKPOINT-MISSING"] * 2,
    ),
    # Rewritten from 7 on: the checkpoints at 10, 15 and 20 no longer match.
    "rewrite the chain after an edit": (_rewrite_chain, ["E-CHECKPOINT-MISMATCH"] * 3),
    "forge a checkpoint": (_forge_checkpoint, ["E-CHECKPOINT-MISSING", "E-CHECKPOINT-SIGNATURE"]),
    "checkpoint by another key": (
        _checkpoint_by_another_key,
        ["E-CHECKPOINT-KEY", "E-CHECKPOINT-MISSING"],
    ),
    "an event past the head": (_event_past_the_head, ["E-HEAD-MISMATCH"]),
}


@pytest.mark.parametrize("name", list(TAMPERS))
def test_each_tamper_is_detected_with_its_own_code(archive: Archive, name: str) -> None:
    tamper, expected = TAMPERS[name]
    tamper(archive)
    assert _codes(archive) == sorted(expected)


def test_the_cli_reports_every_problem_and_exits_1(archive: Archive) -> None:
    _flip_original(archive)
    _delete_row(archive)
    result = archive.cli("verify", "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert sorted(p["code"] for p in report["problems"]) == ["E-CHAIN-GAP", "E-FIXITY-MISMATCH"]
    assert report["originals"] == 3 and not report["ok"]
    # The findings are recorded: the damaged original's history says so.
    with archive.catalog.begin() as conn:
        events = list(custody.events(conn, media_id=archive.items["video"].id))
    failed = [e for e in events if e.kind is EventKind.FIXITY_FAILED]
    assert [e.details["code"] for e in failed] == ["E-FIXITY-MISMATCH"]


def test_verify_of_a_clean_archive_by_cli_exits_0_and_records_fixity(archive: Archive) -> None:
    result = archive.cli("verify", archive.items["photo"].sha256[:10])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "clean" in result.stdout
    with archive.catalog.begin() as conn:
        kinds = [e.kind for e in custody.events(conn, media_id=archive.items["photo"].id)]
    assert kinds[-1] is EventKind.FIXITY_CHECKED


def test_no_checkpoint_is_signed_on_top_of_a_broken_chain(archive: Archive) -> None:
    with archive.catalog.begin() as conn:
        for i in range(3):
            custody.append(conn, EventKind.VIEWED, "t", details={"reason": f"r{i}"})
    seq = _last_seq(archive) - 1  # unsigned yet: only the pre-signing check can see it
    set_row(archive, seq, actor="mallory")
    with pytest.raises(CustodyBroken, match=f"seq {seq}: content does not match its hash"):
        archive.checkpointer().sign_due(archive.catalog, force=True)
    with archive.catalog.begin() as conn:
        signed = conn.execute(select(custody_checkpoints.c.seq)).scalars().all()
    assert max(signed) < seq
