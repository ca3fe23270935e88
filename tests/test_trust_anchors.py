"""Trust anchored outside what it protects: only pinned keys are trusted, checkpoints that were
due must exist, and witnesses off the instance's disk (a folder, an S3 bucket under Object
Lock) refute a log rewritten together with its checkpoints.

The attacker of these tests can write everything in EVIDENCE_HOME (catalog, key folder, home
witness) but holds neither the private key nor the pinned settings, nor the external witness.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, insert, select

from pipeline.catalog import Catalog, open_catalog
from pipeline.catalog.schema import custody_checkpoints
from pipeline.custody import checkpoints, keys, witness
from pipeline.custody import fixity as verify
from pipeline.custody import log as custody
from pipeline.custody import verify_bag as rules
from pipeline.errors import AccessRefused, CustodyBroken
from pipeline.models import EventKind
from pipeline.settings import Settings
from tests.conftest import make_settings
from tests.custody_helpers import rewrite_from
from tests.seaweed import Seaweed, running_seaweed

EVERY = 5
T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


def _settings(home: Path, **custody: Any) -> Settings:
    return make_settings(home, custody={"checkpoint_every_events": EVERY, **custody})


def _log(catalog: Catalog, count: int, start: datetime = T0) -> None:
    """``count`` events a minute apart, from ``start``."""
    with catalog.begin() as conn:
        first = custody.lock_head(conn).seq
        for n in range(count):
            custody.append(
                conn,
                EventKind.VIEWED,
                "clerk",
                subject=f"item {first + n}",
                details={"reason": "复核"},
                now=start + timedelta(minutes=n),
            )


@pytest.fixture
def archive(settings: Settings, tmp_path: Path) -> Iterator[tuple[Settings, Catalog]]:
    """A log of 12 events, signed at 5, 10 and 12, witnessed in a folder off the home."""
    s = _settings(settings.home, witness_dir=str(tmp_path / "elsewhere"))
    catalog = open_catalog(s.catalog_url)
    _log(catalog, 12)
    made = checkpoints.checkpointer(s).sign_due(catalog, now=T0 + timedelta(minutes=20))
    assert [cp.seq for cp in made] == [5, 10, 12]
    yield s, catalog
    catalog.dispose()


def _codes(s: Settings, catalog: Catalog, now: datetime = T0 + timedelta(minutes=30)) -> list[str]:
    return sorted(p.code for p in verify.check_log(catalog, s, now=now).problems)


def _delete_checkpoints(catalog: Catalog) -> None:
    with catalog.begin() as conn:
        conn.execute(delete(custody_checkpoints))


def _empty_home_witness(s: Settings) -> None:
    witness.home_file(s.home).write_text("")


def test_a_clean_log_verifies_and_names_its_external_witness(
    archive: tuple[Settings, Catalog],
) -> None:
    s, catalog = archive
    log = verify.check_log(catalog, s, now=T0 + timedelta(days=30))
    assert log.problems == ()
    assert log.witnesses == (str(Path(s.custody.witness_dir) / "checkpoints.jsonl"),)
    assert [w.code for w in log.warnings] == []


def test_rewrite_with_checkpoints_deleted_and_home_witness_emptied_is_refuted_by_the_witness(
    archive: tuple[Settings, Catalog],
) -> None:
    """The attack of the issue: edit an old event, recompute the chain, delete every
    checkpoint, empty the home witness."""
    s, catalog = archive
    rewrite_from(SimpleNamespace(catalog=catalog), 3, {"reason": "改写的历史"})  # type: ignore[arg-type]
    _delete_checkpoints(catalog)
    _empty_home_witness(s)
    codes = _codes(s, catalog)
    # The three witnessed checkpoints are gone from the catalog, and each names a hash the
    # rewritten log no longer has at its position.
    assert codes.count("E-CHECKPOINT-MISSING") >= 3
    assert codes.count("E-CHECKPOINT-MISMATCH") == 3


def test_without_an_external_witness_a_deleted_table_is_still_missed_checkpoints(
    settings: Settings,
) -> None:
    s = _settings(settings.home)
    catalog = open_catalog(s.catalog_url)
    _log(catalog, 12)
    checkpoints.checkpointer(s).sign_due(catalog, now=T0 + timedelta(minutes=20))
    _delete_checkpoints(catalog)
    _empty_home_witness(s)
    log = verify.check_log(catalog, s, now=T0 + timedelta(hours=3))
    missing = [p for p in log.problems if p.code == "E-CHECKPOINT-MISSING"]
    # Due at 5 and 10 (every 5 events), and nothing covers seq 1..12 although the first was
    # written three hours ago (more than T + grace = 75 minutes).
    assert [p.subject for p in missing] == ["checkpoint 5", "checkpoint 10", "seq 1..12"]
    assert "W-WITNESS-LOCAL" in [w.code for w in log.warnings]
    catalog.dispose()


def test_events_not_yet_due_for_signing_are_not_reported(settings: Settings) -> None:
    s = _settings(settings.home)
    catalog = open_catalog(s.catalog_url)
    _log(catalog, 4)  # fewer than N, and recent
    assert _codes(s, catalog, now=T0 + timedelta(minutes=30)) == []
    assert _codes(s, catalog, now=T0 + timedelta(minutes=80)) == ["E-CHECKPOINT-MISSING"]
    catalog.dispose()


def test_checkpoints_resigned_by_an_attackers_key_dropped_into_keys_are_not_trusted(
    archive: tuple[Settings, Catalog],
) -> None:
    s, catalog = archive
    mallory = Ed25519PrivateKey.generate()
    kid = rules.key_id(mallory.public_key())
    (keys.key_dir(s.home) / "mallory.pub").write_text(keys.public_pem(mallory.public_key()))
    with catalog.begin() as conn:
        stored = checkpoints.listing(conn)
        conn.execute(delete(custody_checkpoints))
        for cp in stored:
            record = {**cp.record(), "key_id": kid}
            conn.execute(
                insert(custody_checkpoints).values(
                    seq=cp.seq,
                    hash=cp.hash,
                    at=cp.at,
                    key_id=kid,
                    signature=mallory.sign(rules.checkpoint_message(record)).hex(),
                )
            )
    _empty_home_witness(s)
    codes = _codes(s, catalog)
    assert codes.count("E-CHECKPOINT-KEY") == 3
    assert codes.count("E-CHECKPOINT-MISSING") == 3  # the witness still holds the real ones


def test_nothing_pinned_means_nothing_trusted(
    archive: tuple[Settings, Catalog], monkeypatch: pytest.MonkeyPatch
) -> None:
    s, catalog = archive
    unpinned = s.model_copy(update={"custody": s.custody.model_copy(update={"pinned_keys": []})})
    codes = _codes(unpinned, catalog)
    assert "E-KEY-UNPINNED" in codes and codes.count("E-CHECKPOINT-KEY") >= 3


def test_a_pinned_key_whose_public_half_is_gone_is_reported(
    archive: tuple[Settings, Catalog],
) -> None:
    s, catalog = archive
    for pub in keys.key_dir(s.home).glob("*.pub"):
        pub.unlink()
    assert "E-KEY-MISSING" in _codes(s, catalog)


def test_a_rotated_key_verifies_only_with_the_old_keys_signed_statement(
    archive: tuple[Settings, Catalog],
) -> None:
    s, catalog = archive
    old = keys.describe(s.home).key_id
    rotated = keys.rotate(s.home)
    assert rotated.old_id == old and rotated.new_id == keys.describe(s.home).key_id
    pins = [{"id": old}, {"id": rotated.new_id, "replaces": old}]
    after = _settings(s.home, witness_dir=s.custody.witness_dir, pinned_keys=pins)
    _log(catalog, 5, start=T0 + timedelta(minutes=21))
    made = checkpoints.checkpointer(after).sign_due(catalog, now=T0 + timedelta(minutes=30))
    assert {cp.key_id for cp in made} == {rotated.new_id}
    assert _codes(after, catalog, now=T0 + timedelta(minutes=31)) == []

    # Pinned with `replaces`, but no statement by the old key: the hand-over is unproven.
    rotated.statement.unlink()
    assert _codes(after, catalog, now=T0 + timedelta(minutes=31)) == ["E-KEY-ROTATION"]

    # A statement "by the old key" that an attacker signed with his own key.
    mallory = Ed25519PrivateKey.generate()
    forged = {"type": keys.ROTATION_TYPE, "old": old, "new": rotated.new_id, "at": "2026"}
    forged["signature"] = mallory.sign(keys.rotation_message(forged)).hex()
    rotated.statement.write_text(json.dumps(forged))
    assert _codes(after, catalog, now=T0 + timedelta(minutes=31)) == ["E-KEY-ROTATION"]

    # The new key alone, not pinned: its checkpoints are not trusted.
    unpinned = _settings(s.home, witness_dir=s.custody.witness_dir, pinned_keys=[old])
    assert "E-CHECKPOINT-KEY" in _codes(unpinned, catalog, now=T0 + timedelta(minutes=31))


def test_signing_refuses_to_bless_a_log_whose_witnessed_checkpoints_were_deleted(
    archive: tuple[Settings, Catalog],
) -> None:
    s, catalog = archive
    rewrite_from(SimpleNamespace(catalog=catalog), 3, {"reason": "改写"})  # type: ignore[arg-type]
    _delete_checkpoints(catalog)
    _empty_home_witness(s)
    with pytest.raises(CustodyBroken, match=r"witnessed in .* but the catalog's newest is none"):
        checkpoints.checkpointer(s).sign_due(catalog, now=T0 + timedelta(minutes=40))
    with catalog.begin() as conn:
        assert checkpoints.listing(conn) == [], "nothing was signed over the rewritten log"


def test_after_a_restore_a_person_accepts_the_loss_and_signing_resumes(
    archive: tuple[Settings, Catalog],
) -> None:
    s, catalog = archive
    with catalog.begin() as conn:  # the catalog of a backup taken before seq 10 was signed
        conn.execute(delete(custody_checkpoints).where(custody_checkpoints.c.seq > 5))
    signer = checkpoints.checkpointer(s)
    with pytest.raises(CustodyBroken):
        signer.sign_due(catalog, now=T0 + timedelta(minutes=40))
    from pipeline.custody.usecases import accept_witness_loss
    from pipeline.instance import Instance

    instance = Instance(s, catalog, clock=lambda: T0 + timedelta(minutes=41))
    with pytest.raises(AccessRefused):
        accept_witness_loss(instance, actor="A001", reason=" ")
    assert accept_witness_loss(instance, actor="A001", reason="自 11-30 备份恢复") == {
        str(Path(s.custody.witness_dir) / "checkpoints.jsonl"): 12
    }
    made = signer.sign_due(catalog, now=T0 + timedelta(minutes=42), force=True)
    assert [cp.seq for cp in made] == [10, 13], "signing resumed, the acceptance signed too"
    with catalog.begin() as conn:
        alert = [e for e in custody.events(conn) if e.kind is EventKind.ALERT][-1]
    assert (alert.actor, alert.details["reason"]) == ("A001", "自 11-30 备份恢复")
    # The witnessed checkpoint at 12 stays missing from the catalog: verify says so.
    assert "E-CHECKPOINT-MISSING" in _codes(s, catalog, now=T0 + timedelta(minutes=43))


def test_a_witness_that_was_down_catches_up_and_is_reported_behind_meanwhile(
    settings: Settings, tmp_path: Path
) -> None:
    down = tmp_path / "share"
    down.write_text("not mounted")  # a file where the folder should be: writes fail
    s = _settings(settings.home, witness_dir=str(down))
    catalog = open_catalog(s.catalog_url)
    _log(catalog, 10)
    signer = checkpoints.checkpointer(s)
    assert [cp.seq for cp in signer.sign_due(catalog, now=T0 + timedelta(minutes=12))] == [5, 10]

    down.unlink()
    down.mkdir()  # mounted again; empty
    log = verify.check_log(catalog, s, now=T0 + timedelta(minutes=13))
    assert log.problems == ()
    assert [w.code for w in log.warnings] == ["W-WITNESS-BEHIND"]

    _log(catalog, 5, start=T0 + timedelta(minutes=14))
    assert [cp.seq for cp in signer.sign_due(catalog, now=T0 + timedelta(minutes=20))] == [15]
    witnessed = [r["seq"] for r in witness.FileWitness(down / "checkpoints.jsonl", True).read()]
    assert witnessed == [5, 10, 15], "the two it missed, then the new one"
    assert verify.check_log(catalog, s, now=T0 + timedelta(minutes=21)).warnings == ()
    catalog.dispose()


def test_pins_in_a_file_inside_the_home_are_flagged(settings: Settings) -> None:
    config = settings.home / "config.toml"
    kid = keys.describe(settings.home).key_id
    config.write_text(f'[custody]\npinned_keys = ["{kid}"]\n')
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("EVIDENCE_CUSTODY__PINNED_KEYS", raising=False)
        s = make_settings(settings.home)
        assert [w.code for w in keys.pin_warnings(s)] == ["W-PINS-WRITABLE"]


# ----------------------------------------------------------------------- the S3 witness


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    with running_seaweed(tmp_path_factory.mktemp("seaweed")) as server:
        yield server


def test_the_s3_witness_holds_each_checkpoint_under_compliance_lock(
    settings: Settings, seaweed: Seaweed
) -> None:
    from pipeline.storage.local import open_store

    bucket = "witness-" + settings.home.parent.name.lower().replace("_", "-")[-40:]
    s = make_settings(
        settings.home,
        custody={"checkpoint_every_events": EVERY},
        store={
            "kind": "s3",
            "s3": {
                "endpoint_url": seaweed.endpoint_url,
                "access_key": seaweed.access_key,
                "secret_key": seaweed.secret_key,
                "bucket": bucket,
            },
        },
    )
    open_store(s)  # creates the bucket with Object Lock, as `evidence init` does
    catalog = open_catalog(s.catalog_url)
    _log(catalog, 10)
    made = checkpoints.checkpointer(s).sign_due(catalog, now=T0 + timedelta(minutes=12))
    assert [cp.seq for cp in made] == [5, 10]

    client = seaweed.client
    listed = client.list_objects_v2(Bucket=bucket, Prefix=witness.S3_PREFIX)["Contents"]
    assert len(listed) == 2
    key = listed[0]["Key"]
    head = client.head_object(Bucket=bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=3000)
    with pytest.raises(ClientError):  # not even the instance's own credentials remove it
        client.delete_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])

    log = verify.check_log(catalog, s, now=T0 + timedelta(minutes=13))
    assert log.problems == () and log.witnesses == (f"s3://{bucket}/{witness.S3_PREFIX}",)
    # Signing again finds the witness's newest from the catalog's (a listing from there on).
    _log(catalog, 5, start=T0 + timedelta(minutes=13))
    again = checkpoints.checkpointer(s).sign_due(catalog, now=T0 + timedelta(minutes=19))
    assert [cp.seq for cp in again] == [15]
    assert witness.S3Witness(client, bucket).newest()["seq"] == 15  # type: ignore[index]

    rewrite_from(SimpleNamespace(catalog=catalog), 3, {"reason": "改写"})  # type: ignore[arg-type]
    _delete_checkpoints(catalog)
    _empty_home_witness(s)
    codes = _codes(s, catalog, now=T0 + timedelta(minutes=20))
    assert codes.count("E-CHECKPOINT-MISSING") == 3 and codes.count("E-CHECKPOINT-MISMATCH") == 3
    with catalog.begin() as conn:
        assert conn.execute(select(custody_checkpoints)).all() == []
    catalog.dispose()


# ------------------------------------------------------------------------------ the CLI


def _cli(env: dict[str, str], *args: str) -> Any:
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "interfaces.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_keys_status_says_what_is_trusted_and_checkpoint_signs_what_is_due(
    settings: Settings, tmp_path: Path
) -> None:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_")}
    base["EVIDENCE_HOME"] = str(settings.home)
    if "EVIDENCE_CATALOG__URL" in os.environ:  # the PostgreSQL pass: the test's database
        base["EVIDENCE_CATALOG__URL"] = os.environ["EVIDENCE_CATALOG__URL"]
    assert _cli(base, "init").returncode == 0
    unpinned = _cli(base, "keys", "status", "--json")
    assert unpinned.returncode == 1
    assert [p["code"] for p in json.loads(unpinned.stdout)["problems"]] == ["E-KEY-UNPINNED"]

    kid = keys.describe(settings.home).key_id
    pinned = {
        **base,
        "EVIDENCE_CUSTODY__PINNED_KEYS": json.dumps([kid]),
        "EVIDENCE_CUSTODY__WITNESS_DIR": str(tmp_path / "share"),
    }
    status = _cli(pinned, "keys", "status", "--json")
    assert status.returncode == 0, status.stderr
    body = json.loads(status.stdout)
    assert body["pins"] == [{"key_id": kid, "replaces": "", "found": True, "signing": True}]
    assert body["pinned_from"] == "from EVIDENCE_CUSTODY__PINNED_KEYS"
    assert body["witnesses"] == [str(tmp_path / "share" / "checkpoints.jsonl")]

    catalog = open_catalog(settings.catalog_url)
    _log(catalog, 3, start=datetime.now(UTC))
    catalog.dispose()
    signed = _cli(pinned, "keys", "checkpoint", "--force", "--json")
    assert signed.returncode == 0, signed.stderr
    assert [cp["seq"] for cp in json.loads(signed.stdout)["signed"]] == [3]
    assert [
        r["seq"] for r in witness.FileWitness(tmp_path / "share" / "checkpoints.jsonl", True).read()
    ] == [3]
