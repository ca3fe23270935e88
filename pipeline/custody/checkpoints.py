"""Signed checkpoints: the custody chain's (seq, hash) at a moment, signed with the instance key.

A checkpoint is made at every N-th event and for the head at least every T minutes while it
moves (``custody.checkpoint_every_events`` / ``_minutes``). Whoever holds the key signs what
is due — the served ``custody-checkpoint`` flow every T minutes, the ``fixity-check`` flow,
an export closing its segment — so positions N, 2N, … are signed even though another process
(an ingest worker, perhaps on a host without the key) appended them. Before signing, the
events since the last checkpoint are recomputed: a checkpoint never blesses a broken chain.

Each checkpoint is also appended to a witness file outside the catalog
(``EVIDENCE_HOME/custody/checkpoints.jsonl``): someone who cuts the log short and deletes the
checkpoints with it in the database still leaves the witness disagreeing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, select

from pipeline.catalog import Catalog
from pipeline.catalog.schema import custody_checkpoints
from pipeline.custody import keys
from pipeline.custody import log as custody
from pipeline.custody import verify_bag as rules
from pipeline.errors import CustodyBroken
from pipeline.settings import Settings


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: datetime
    key_id: str
    signature: str

    def record(self) -> dict[str, Any]:
        """As signed, exported and witnessed: plain JSON values."""
        return {
            "seq": self.seq,
            "hash": self.hash,
            "at": custody.canonical_time(self.at),
            "key_id": self.key_id,
            "signature": self.signature,
        }


def witness_path(home: Path) -> Path:
    return home / "custody" / "checkpoints.jsonl"


def _checkpoint(row: Any) -> Checkpoint:
    return Checkpoint(row.seq, row.hash, row.at, row.key_id, row.signature)


def latest(conn: Connection) -> Checkpoint | None:
    row = conn.execute(
        select(custody_checkpoints).order_by(custody_checkpoints.c.seq.desc()).limit(1)
    ).one_or_none()
    return None if row is None else _checkpoint(row)


def listing(conn: Connection, low: int = 0, high: int | None = None) -> list[Checkpoint]:
    """Checkpoints with ``low <= seq <= high``, in order."""
    query = select(custody_checkpoints).where(custody_checkpoints.c.seq >= low)
    if high is not None:
        query = query.where(custody_checkpoints.c.seq <= high)
    return [_checkpoint(r) for r in conn.execute(query.order_by(custody_checkpoints.c.seq))]


def before(conn: Connection, seq: int) -> Checkpoint | None:
    """The newest checkpoint strictly before ``seq`` (None: the genesis is the anchor)."""
    row = conn.execute(
        select(custody_checkpoints)
        .where(custody_checkpoints.c.seq < seq)
        .order_by(custody_checkpoints.c.seq.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else _checkpoint(row)


_FIELDS = {"seq", "hash", "at", "key_id", "signature"}


def read_witness(path: Path) -> list[dict[str, Any]]:
    """The witnessed checkpoints; ValueError names a line that is not one."""
    if not path.exists():
        return []
    found: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{path} line {number} is not JSON: {exc}") from exc
        if not isinstance(record, dict) or not record.keys() >= _FIELDS:
            raise ValueError(f"{path} line {number} is not a checkpoint")
        found.append(record)
    return found


@dataclass(frozen=True)
class Checkpointer:
    """Signs what is due. Build it with :func:`checkpointer` at the entry point."""

    signer: keys.Signer
    trusted: Mapping[str, Ed25519PublicKey]
    every_events: int
    every: timedelta
    witness: Path

    def sign_due(
        self, catalog: Catalog, *, now: datetime | None = None, force: bool = False
    ) -> list[Checkpoint]:
        """Sign every due position (``force``: the head too, e.g. to close an export)."""
        now = now or datetime.now(UTC)
        with catalog.begin() as conn:
            head = custody.lock_head(conn)  # appends wait until these are signed
            last = latest(conn)
            targets = self._targets(head, last, now, force)
            if not targets:
                return []
            hashes = self._check_since(conn, last, head, targets)
            made = [self._sign(conn, seq, hashes[seq], now) for seq in targets]
        self._witness(made)
        return made

    def _targets(
        self, head: custody.Head, last: Checkpoint | None, now: datetime, force: bool
    ) -> list[int]:
        done = last.seq if last else 0
        n = self.every_events
        targets = list(range((done // n + 1) * n, head.seq + 1, n))
        stale = last is None or now - last.at >= self.every
        if head.seq > done and head.seq not in targets and (force or stale):
            targets.append(head.seq)
        return targets

    def _check_since(
        self, conn: Connection, last: Checkpoint | None, head: custody.Head, targets: list[int]
    ) -> dict[int, str]:
        start_hash = rules.GENESIS
        if last is not None:
            bad = rules.signature_problem(last.record(), self.trusted)
            if bad is not None:
                raise CustodyBroken(f"custody checkpoint {last.seq}: {bad.message}")
            start_hash = last.hash
        start = last.seq + 1 if last else 1
        result = rules.check_chain(
            (e.record() for e in custody.events(conn, after=start - 1, through=head.seq)),
            start_seq=start,
            start_hash=start_hash,
            keep=targets,
        )
        if result.problems:
            p = result.problems[0]
            raise CustodyBroken(f"custody log {p.subject}: {p.message}; nothing signed")
        if (result.last_seq, result.last_hash) != (head.seq, head.hash):
            raise CustodyBroken(
                f"custody log ends at seq {result.last_seq} but its head says {head.seq}"
            )
        return result.hashes_at

    def _sign(self, conn: Connection, seq: int, hash_: str, now: datetime) -> Checkpoint:
        record = {
            "seq": seq,
            "hash": hash_,
            "at": custody.canonical_time(now),
            "key_id": self.signer.key_id,
        }
        signature = self.signer.sign(rules.checkpoint_message(record))
        conn.execute(
            custody_checkpoints.insert().values(
                seq=seq, hash=hash_, at=now, key_id=self.signer.key_id, signature=signature
            )
        )
        return Checkpoint(seq, hash_, now, self.signer.key_id, signature)

    def _witness(self, made: Iterable[Checkpoint]) -> None:
        # After the commit: a line here always names a checkpoint that exists (a crash in
        # between only leaves one unwitnessed, which verify does not count against the log).
        lines = "".join(json.dumps(cp.record(), sort_keys=True) + "\n" for cp in made)
        self.witness.parent.mkdir(parents=True, exist_ok=True)
        with self.witness.open("a", encoding="utf-8") as f:
            f.write(lines)
            f.flush()
            os.fsync(f.fileno())


def checkpointer(settings: Settings) -> Checkpointer:
    """The signer of this instance; InstanceKeyError when it has no usable key."""
    signer = keys.load_signer(settings.home)
    trusted = {
        **keys.trusted_keys(settings.home),
        signer.key_id: signer.private.public_key(),
    }
    return Checkpointer(
        signer=signer,
        trusted=trusted,
        every_events=settings.custody.checkpoint_every_events,
        every=timedelta(minutes=settings.custody.checkpoint_every_minutes),
        witness=witness_path(settings.home),
    )
