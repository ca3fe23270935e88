"""Signed checkpoints: the custody chain's (seq, hash) at a moment, signed with the instance key.

A checkpoint is made at every N-th event and for the head at least every T minutes while it
moves (``custody.checkpoint_every_events`` / ``_minutes``). Whoever holds the key signs what
is due — the served ``custody-checkpoint`` flow every T minutes, the ``fixity-check`` flow,
an export closing its segment — so positions N, 2N, … are signed even though another process
(an ingest worker, perhaps on a host without the key) appended them. Before signing, the
events since the last checkpoint are recomputed: a checkpoint never blesses a broken chain.

Each checkpoint is also written to witnesses (``pipeline.custody.witness``): the home file,
and off the instance's disk a configured folder and the S3 bucket under Object Lock. Signing
refuses to go on when an external witness holds a checkpoint the catalog lost: re-signing a
log whose checkpoints were deleted would bless whatever the log now says.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, select

from pipeline.catalog import Catalog
from pipeline.catalog.schema import custody_checkpoints, custody_events
from pipeline.custody import keys, witness
from pipeline.custody import log as custody
from pipeline.custody import verify_bag as rules
from pipeline.errors import CustodyBroken
from pipeline.models import EventKind
from pipeline.settings import Settings

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Checkpointer:
    """Signs what is due. Build it with :func:`checkpointer` at the entry point."""

    signer: keys.Signer
    trusted: Mapping[str, Ed25519PublicKey]
    every_events: int
    every: timedelta
    witnesses: Sequence[witness.Witness]

    def sign_due(
        self, catalog: Catalog, *, now: datetime | None = None, force: bool = False
    ) -> list[Checkpoint]:
        """Sign every due position (``force``: the head too, e.g. to close an export)."""
        now = now or datetime.now(UTC)
        with catalog.read() as conn:
            known = latest(conn)
        newest = self._newest_witnessed(known)
        with catalog.begin() as conn:
            head = custody.lock_head(conn)  # appends wait until these are signed
            last = latest(conn)
            self._refuse_lost(conn, last, newest)
            targets = self._targets(head, last, now, force)
            made = []
            if targets:
                hashes = self._check_since(conn, last, head, targets)
                made = [self._sign(conn, seq, hashes[seq], now) for seq in targets]
        self._witness(catalog, newest)
        return made

    def _newest_witnessed(self, known: Checkpoint | None) -> dict[Any, int | None]:
        """Each witness's newest seq (None: unreadable now), read before the head is locked:
        a slow share must not hold up every writer. ``known``: the catalog's newest."""
        found: dict[Any, int | None] = {}
        hint = known.record() if known else None
        for w in self.witnesses:
            try:
                record = w.newest(hint)
            except witness.WITNESS_ERRORS as exc:
                log.error("checkpoint witness %s cannot be read: %s", w.name, exc)
                found[w] = None
                continue
            # Only a checkpoint this instance really signed counts (junk in a share must not
            # stop signing): one that verifies with a trusted key.
            if record is not None and rules.signature_problem(record, self.trusted) is not None:
                log.error("checkpoint witness %s: its newest entry is not signed", w.name)
                record = None
            found[w] = int(record["seq"]) if record is not None else 0
        return found

    def _refuse_lost(
        self, conn: Connection, last: Checkpoint | None, newest: Mapping[Any, int | None]
    ) -> None:
        have = last.seq if last else 0
        for w, seq in self.ahead(last, newest).items():
            if seq > accepted_loss(conn, w.name):
                raise CustodyBroken(
                    f"checkpoint {seq} is witnessed in {w.name} but the catalog's newest is "
                    f"{have or 'none'}: signed checkpoints were deleted from the catalog, or it "
                    "was restored from a backup; nothing signed. Run `evidence verify`; after "
                    "a restore, `evidence keys accept-loss --as … --reason …`"
                )

    def ahead(
        self, last: Checkpoint | None, newest: Mapping[Any, int | None] | None = None
    ) -> dict[Any, int]:
        """The external witnesses holding a checkpoint newer than the catalog's newest."""
        newest = self._newest_witnessed(last) if newest is None else newest
        have = last.seq if last else 0
        return {
            w: seq for w, seq in newest.items() if w.external and seq is not None and seq > have
        }

    def _witness(self, catalog: Catalog, newest: Mapping[Any, int | None]) -> None:
        """After the commit: a witness entry always names a checkpoint that exists. Each
        witness gets every checkpoint it lacks, so one that was down catches up now."""
        behind = [seq for seq in newest.values() if seq is not None]
        if not behind:
            return
        with catalog.read() as conn:
            records = [cp.record() for cp in listing(conn, min(behind) + 1)]
        for w, seq in newest.items():
            if seq is None:
                continue
            try:
                w.write([r for r in records if int(r["seq"]) > seq])
            except witness.WITNESS_ERRORS as exc:
                log.error("checkpoint witness %s not written: %s", w.name, exc)

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


LOSS_ACCEPTED = "witness-ahead-accepted"


def accepted_loss(conn: Connection, witness_name: str) -> int:
    """The highest witnessed seq a person has accepted as lost for this witness (an ALERT
    event saying who and why, appended by :func:`accept_loss`); 0 when none."""
    rows = conn.execute(
        select(custody_events.c.details).where(
            custody_events.c.kind == EventKind.ALERT.value,
            custody_events.c.subject == f"{LOSS_ACCEPTED} {witness_name}",
        )
    )
    return max((int(r.details.get("witnessed_seq", 0)) for r in rows), default=0)


def accept_loss(
    catalog: Catalog, signer: Checkpointer, actor: str, reason: str, now: datetime
) -> dict[str, int]:
    """Record that the catalog lost what the witnesses hold (a restore from a backup): one
    ALERT event per witness ahead, naming who, why and how far. Signing goes on afterwards;
    verify still reports the witnessed checkpoints the catalog no longer has."""
    with catalog.read() as conn:
        last = latest(conn)
    ahead = signer.ahead(last)
    with catalog.begin() as conn:
        for w, seq in ahead.items():
            custody.append(
                conn,
                EventKind.ALERT,
                actor,
                subject=f"{LOSS_ACCEPTED} {w.name}",
                details={
                    "code": LOSS_ACCEPTED,
                    "witness": w.name,
                    "witnessed_seq": seq,
                    "catalog_seq": last.seq if last else 0,
                    "reason": reason,
                },
                now=now,
            )
    return {w.name: seq for w, seq in ahead.items()}


def checkpointer(settings: Settings) -> Checkpointer:
    """The signer of this instance; InstanceKeyError when it has no usable key. It trusts the
    pinned keys and its own (it holds the private half: no one else can sign with it)."""
    signer = keys.load_signer(settings.home)
    trusted = {**keys.pinned_keys(settings), signer.key_id: signer.private.public_key()}
    return Checkpointer(
        signer=signer,
        trusted=trusted,
        every_events=settings.custody.checkpoint_every_events,
        every=timedelta(minutes=settings.custody.checkpoint_every_minutes),
        witnesses=witness.configured(settings),
    )
