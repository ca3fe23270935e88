"""Verify the archive: re-hash stored originals, recompute the custody chain, check the signed
checkpoints. Every problem is gathered with a stable code, then reported together.

Codes (stable; scripts match on them):

======================  ==============================================================
E-ORIGINAL-MISSING      the catalog lists an original the store does not have
E-FIXITY-MISMATCH       a stored original no longer hashes to its catalogued SHA-256
E-ORIGINAL-UNREADABLE   the store cannot read an original
E-CHAIN-HASH            an event's content does not match its hash (edited)
E-CHAIN-LINK            an event does not link to the one before (its predecessor edited)
E-CHAIN-GAP             sequence numbers are missing (events deleted)
E-CHAIN-ORDER           an event sits where it was not written (reordered, renumbered)
E-CHAIN-TRUNCATED       the log ends before its head or a signed checkpoint (cut short)
E-HEAD-MISMATCH         the head row does not name the log's last event
E-CHECKPOINT-SIGNATURE  a checkpoint's signature does not verify (forged or altered)
E-CHECKPOINT-KEY        a checkpoint is signed by a key that is not pinned
E-CHECKPOINT-MISMATCH   a signed checkpoint names another hash than the log has there
E-CHECKPOINT-MISSING    a witnessed checkpoint is gone from (or altered in) the catalog, or
                        one that was due (every N events, T minutes) does not exist
E-WITNESS-UNREADABLE    a checkpoint witness cannot be read
E-KEY-UNPINNED          no key is pinned: nothing can be trusted
E-KEY-MISSING           a pinned key's public half is not in EVIDENCE_HOME/keys
E-KEY-ROTATION          a pinned key says it replaced another, without a valid statement
E-RECORD-FAILED         the fixity events could not be recorded
======================  ==============================================================
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from pipeline.cases import seal
from pipeline.catalog import Catalog
from pipeline.catalog import media as media_db
from pipeline.catalog.schema import media
from pipeline.custody import checkpoints, keys, replay, tombstones, witness
from pipeline.custody import log as custody
from pipeline.custody import verify_bag as rules
from pipeline.custody.verify_bag import Problem
from pipeline.errors import ChecksumMismatch, EvidenceError, StorageError
from pipeline.models import EventKind
from pipeline.settings import Settings
from pipeline.storage import modes
from pipeline.storage.local import ArchiveStore

#: Fixity events recorded per transaction: short transactions keep ingest writers moving.
RECORD_BATCH = 500


@dataclass(frozen=True)
class Original:
    media_id: int
    sha256: str


@dataclass(frozen=True)
class OriginalCheck:
    original: Original
    problem: Problem | None


@dataclass(frozen=True)
class LogCheck:
    problems: tuple[Problem, ...]
    events: int
    checkpoints: int
    head_seq: int | None
    warnings: tuple[Problem, ...] = ()  # W- codes: weaknesses of the set-up, not damage
    witnesses: tuple[str, ...] = ()  # the external witnesses read


@dataclass(frozen=True)
class VerifyReport:
    problems: tuple[Problem, ...]
    originals: int
    events: int
    checkpoints: int
    head_seq: int | None
    seconds: float
    run: str  # the id fixity events of this run carry
    warnings: tuple[Problem, ...] = ()
    witnesses: tuple[str, ...] = ()
    rows: int = 0  # catalog rows replayed from the log
    sealed: int = 0  # sealed case bags verified

    @property
    def ok(self) -> bool:
        return not self.problems


def select_originals(
    catalog: Catalog, *, sample: int | None = None, media_keys: Sequence[str] = ()
) -> list[Original]:
    """The given items (id or SHA-256 prefix), a random sample, or every item; never one
    disposed of by an approved request (status, tombstone and DISPOSED event: its original
    is gone on purpose, :mod:`pipeline.custody.tombstones`)."""
    kept = ~tombstones.properly_disposed()
    with catalog.read() as conn:
        if media_keys:
            items = [media_db.get(conn, k) for k in media_keys]
            gone = set(
                conn.execute(
                    select(media.c.id).where(media.c.id.in_([i.id for i in items]), ~kept)
                ).scalars()
            )
            return [Original(i.id, i.sha256) for i in items if i.id not in gone]
        query = select(media.c.id, media.c.sha256).where(kept).order_by(media.c.id)
        if sample:
            query = select(media.c.id, media.c.sha256).where(kept).order_by(func.random())
            query = query.limit(sample)
        return [Original(r.id, r.sha256) for r in conn.execute(query)]


def check_originals(
    store: ArchiveStore, originals: Sequence[Original], workers: int = 1
) -> list[OriginalCheck]:
    """Re-hash each stored original from the disk (hashing releases the GIL: threads)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda o: _check_original(store, o), originals))


def _check_original(store: ArchiveStore, original: Original) -> OriginalCheck:
    where = f"media {original.media_id}"
    try:
        if not store.has_original(original.sha256):
            problem = Problem(
                "E-ORIGINAL-MISSING", where, f"original {original.sha256} is not in the store"
            )
            return OriginalCheck(original, problem)
        store.verify_original(original.sha256)
    except ChecksumMismatch as exc:
        problem = Problem(
            "E-FIXITY-MISMATCH",
            where,
            f"stored original hashes to {exc.found}, catalogued {original.sha256}",
        )
        return OriginalCheck(original, problem)
    except (StorageError, OSError) as exc:
        return OriginalCheck(original, Problem("E-ORIGINAL-UNREADABLE", where, str(exc)))
    return OriginalCheck(original, None)


def check_log(
    catalog: Catalog,
    settings: Settings,
    *,
    now: datetime | None = None,
    trust: keys.Trust | None = None,
    witnesses: Sequence[witness.Witness] | None = None,
) -> LogCheck:
    """Recompute the whole chain; hold it against its head, the signed checkpoints in the
    catalog and at every witness, with only pinned keys trusted; and report checkpoints that
    were due (every N events, and T minutes after an event) but do not exist."""
    now = now or datetime.now(UTC)
    trust = trust or keys.pinned_trust(settings)
    witnesses = witness.configured(settings) if witnesses is None else witnesses
    problems: list[Problem] = list(trust.problems)
    warnings: list[Problem] = keys.pin_warnings(settings)
    # Witnesses first, catalog second, chain last: each later read contains everything an
    # earlier one saw, so concurrent appends and checkpoints never look like tampering.
    witnessed: list[tuple[witness.Witness, list[dict[str, Any]]]] = []
    for w in witnesses:
        try:
            witnessed.append((w, w.read()))
        except witness.WITNESS_ERRORS as exc:
            problems.append(Problem("E-WITNESS-UNREADABLE", f"witness {w.name}", str(exc)))
    warnings += witness.local_only(witnesses)
    with catalog.read() as conn:
        stored = [cp.record() for cp in checkpoints.listing(conn)]
    every_witnessed = [cp for _, found in witnessed for cp in found]
    signed = {
        int(cp["seq"])
        for cp in [*stored, *every_witnessed]
        if rules.signature_problem(cp, trust.keys) is None
    }
    due = _Due(settings, signed)
    keep = {int(cp["seq"]) for cp in [*stored, *every_witnessed]}
    scan = custody.Scan(catalog)
    chain = rules.check_chain(due.watch(e.record() for e in scan), keep=keep)
    problems += chain.problems
    problems += _head_problems(scan.head, chain)
    problems += rules.check_checkpoints(stored, trust.keys, chain)
    in_catalog = {rules.canonical(cp) for cp in stored}
    for w, found in witnessed:
        lost = [cp for cp in found if rules.canonical(cp) not in in_catalog]
        problems += [
            Problem(
                "E-CHECKPOINT-MISSING",
                f"checkpoint {cp['seq']}",
                f"witnessed in {w.name}, but missing from or altered in the catalog",
            )
            for cp in lost
        ]
        problems += rules.check_checkpoints(lost, trust.keys, chain)
        if w.external:
            have = {rules.canonical(cp) for cp in found}
            behind = [cp for cp in stored if rules.canonical(cp) not in have]
            if behind:
                warnings.append(
                    Problem(
                        "W-WITNESS-BEHIND",
                        f"witness {w.name}",
                        f"{len(behind)} checkpoints (from seq {behind[0]['seq']}) are not "
                        "there yet; the next signing writes them",
                    )
                )
    if trust.keys:  # with nothing trusted, E-KEY-UNPINNED already says all there is
        problems += due.missing(chain.last_seq, now)
    return LogCheck(
        tuple(_unique(problems)),
        chain.count,
        len(stored),
        chain.last_seq,
        tuple(warnings),
        tuple(w.name for w in witnesses if w.external),
    )


#: Missing checkpoints reported one by one; beyond this, one line says how many more.
MISSING_SHOWN = 10


class _Due:
    """When checkpoints were due: at every N-th event, and for every event within T minutes
    (the signer's period) plus the grace. Watches the chain as it streams past, keeping the
    time of the few events that matter."""

    def __init__(self, settings: Settings, signed: set[int]) -> None:
        c = settings.custody
        self.every = c.checkpoint_every_events
        self.late = timedelta(minutes=c.checkpoint_every_minutes + c.checkpoint_grace_minutes)
        self.signed = signed
        self.first_unsigned = max(signed, default=0) + 1
        self.times: dict[int, datetime] = {}

    def watch(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            seq = int(row["seq"])
            if (seq % self.every == 0 or seq == self.first_unsigned) and "at" in row:
                self.times[seq] = datetime.fromisoformat(row["at"])
            yield row

    def missing(self, last_seq: int, now: datetime) -> list[Problem]:
        newest = max(self.signed, default=0)
        found = [
            Problem(
                "E-CHECKPOINT-MISSING",
                f"checkpoint {seq}",
                f"due at every {self.every}th event, but not in the catalog nor a witness",
            )
            for seq in range(self.every, last_seq + 1, self.every)
            if seq not in self.signed
            and (seq < newest or (seq in self.times and self.times[seq] + self.late <= now))
        ]
        if len(found) > MISSING_SHOWN:
            more = len(found) - MISSING_SHOWN
            found = [
                *found[:MISSING_SHOWN],
                Problem(
                    "E-CHECKPOINT-MISSING",
                    f"checkpoints after {found[MISSING_SHOWN - 1].subject}",
                    f"{more} more due checkpoints are missing",
                ),
            ]
        first = self.first_unsigned
        if first <= last_seq and first in self.times and self.times[first] + self.late <= now:
            minutes = int(self.late.total_seconds() // 60)
            found.append(
                Problem(
                    "E-CHECKPOINT-MISSING",
                    f"seq {first}..{last_seq}",
                    f"no signed checkpoint covers these events although the first was written "
                    f"{custody.canonical_time(self.times[first])}, more than {minutes} minutes "
                    "ago: checkpoints were deleted, or nothing signs (`evidence serve`, or "
                    "`evidence keys checkpoint`)",
                )
            )
        return found


def _head_problems(head: custody.Head | None, chain: rules.ChainResult) -> list[Problem]:
    if head is None:
        return [Problem("E-HEAD-MISMATCH", "head", "the head row is missing")]
    if head.seq > chain.last_seq:
        return [
            Problem(
                "E-CHAIN-TRUNCATED",
                "head",
                f"the head names seq {head.seq} but the log ends at seq {chain.last_seq}",
            )
        ]
    if (head.seq, head.hash) != (chain.last_seq, chain.last_hash):
        return [
            Problem(
                "E-HEAD-MISMATCH",
                "head",
                f"the head names seq {head.seq}, not the last event (seq {chain.last_seq})",
            )
        ]
    return []


def _unique(problems: list[Problem]) -> list[Problem]:
    """A checkpoint both stored and witnessed must not be reported twice."""
    return list(dict.fromkeys(problems))


def record(
    catalog: Catalog,
    checks: Sequence[OriginalCheck],
    log_problems: Sequence[Problem],
    *,
    actor: str,
    run_id: str,
) -> list[Problem]:
    """Record one fixity event per original checked, and one for a log found broken.
    Returns a problem when recording itself failed (the findings still stand)."""
    try:
        for start in range(0, len(checks), RECORD_BATCH):
            with catalog.begin() as conn:
                for check in checks[start : start + RECORD_BATCH]:
                    p = check.problem
                    found = {"code": p.code, "problem": p.message} if p else {}
                    custody.append(
                        conn,
                        EventKind.FIXITY_FAILED if p else EventKind.FIXITY_CHECKED,
                        actor,
                        media_id=check.original.media_id,
                        subject=check.original.sha256,
                        details={"run": run_id, **found},
                    )
        if log_problems:
            with catalog.begin() as conn:
                custody.append(
                    conn,
                    EventKind.FIXITY_FAILED,
                    actor,
                    subject="custody log",
                    details={
                        "run": run_id,
                        "count": len(log_problems),
                        "problems": [[p.code, p.subject] for p in log_problems[:100]],
                    },
                )
    except EvidenceError as exc:
        return [Problem("E-RECORD-FAILED", "custody log", str(exc))]
    return []


@dataclass(frozen=True)
class RecordCheck:
    """What verify checks beyond the originals and the chain: the catalog replayed from the
    log, the sealed case bags, and the modes of the instance's files."""

    problems: tuple[Problem, ...]
    rows: int  # catalog rows compared with the events that set them
    sealed: int  # sealed case bags re-hashed and verified
    seconds: float  # of the replay


def check_records(
    catalog: Catalog,
    store: ArchiveStore,
    settings: Settings,
    *,
    sealed_sample: int | None = None,
    sealed: bool = True,
) -> RecordCheck:
    """Replay the catalog from its log, verify sealed bags (all, or ``sealed_sample`` of
    them; none when not ``sealed``) with pinned keys only, and check file modes."""
    replayed = replay.check_records(catalog)
    with catalog.read() as conn:
        buried, stones = tombstones.check_tombstones(conn)
    bags = (
        seal.check_sealed_bags(
            catalog,
            store,
            keys.pinned_keys(settings),
            sample=sealed_sample,
            work=settings.home / "work",
        )
        if sealed
        else None
    )
    problems = [
        *replayed.problems,
        *buried,
        *(bags.problems if bags else ()),
        *modes.check_modes(settings),
    ]
    return RecordCheck(
        tuple(problems), replayed.rows + stones, len(bags.checked) if bags else 0, replayed.seconds
    )


def run(
    catalog: Catalog,
    store: ArchiveStore,
    settings: Settings,
    originals: Sequence[Original],
    *,
    actor: str,
    workers: int = 1,
    record_events: bool = True,
    now: datetime | None = None,
    sealed_sample: int | None = None,
    sealed: bool = True,
) -> VerifyReport:
    """Originals, the log, the catalog against the log, sealed bags, file modes: the whole
    check as ``evidence verify`` runs it."""
    started = time.monotonic()
    run_id = new_run_id()
    checks = check_originals(store, originals, workers)
    log = check_log(catalog, settings, now=now)
    more = check_records(catalog, store, settings, sealed_sample=sealed_sample, sealed=sealed)
    failed: list[Problem] = []
    if record_events:
        found = [*log.problems, *more.problems]
        failed = record(catalog, checks, found, actor=actor, run_id=run_id)
    return summarize(checks, log, failed, time.monotonic() - started, run_id, more)


def summarize(
    checks: Sequence[OriginalCheck],
    log: LogCheck,
    recording: Sequence[Problem],
    seconds: float,
    run_id: str,
    more: RecordCheck | None = None,
) -> VerifyReport:
    extra = more.problems if more else ()
    problems = [c.problem for c in checks if c.problem] + [*log.problems, *extra, *recording]
    return VerifyReport(
        tuple(problems),
        len(checks),
        log.events,
        log.checkpoints,
        log.head_seq,
        seconds,
        run_id,
        log.warnings,
        log.witnesses,
        more.rows if more else 0,
        more.sealed if more else 0,
    )


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]
