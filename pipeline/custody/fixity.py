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
E-CHECKPOINT-KEY        a checkpoint is signed by a key not in EVIDENCE_HOME/keys
E-CHECKPOINT-MISMATCH   a signed checkpoint names another hash than the log has there
E-CHECKPOINT-MISSING    a witnessed checkpoint is gone from (or altered in) the catalog
E-WITNESS-UNREADABLE    the checkpoint witness file cannot be read
E-KEY-MISSING           no trusted public key: checkpoints cannot be checked
E-RECORD-FAILED         the fixity events could not be recorded
======================  ==============================================================
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from pipeline.catalog import Catalog
from pipeline.catalog import media as media_db
from pipeline.catalog.schema import media
from pipeline.custody import checkpoints, keys
from pipeline.custody import log as custody
from pipeline.custody import verify_bag as rules
from pipeline.custody.verify_bag import Problem
from pipeline.errors import ChecksumMismatch, EvidenceError, StorageError
from pipeline.models import EventKind
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


@dataclass(frozen=True)
class VerifyReport:
    problems: tuple[Problem, ...]
    originals: int
    events: int
    checkpoints: int
    head_seq: int | None
    seconds: float
    run: str  # the id fixity events of this run carry

    @property
    def ok(self) -> bool:
        return not self.problems


def select_originals(
    catalog: Catalog, *, sample: int | None = None, media_keys: Sequence[str] = ()
) -> list[Original]:
    """The given items (id or SHA-256 prefix), a random sample, or every item."""
    with catalog.read() as conn:
        if media_keys:
            return [Original(i.id, i.sha256) for i in (media_db.get(conn, k) for k in media_keys)]
        query = select(media.c.id, media.c.sha256).order_by(media.c.id)
        if sample:
            query = select(media.c.id, media.c.sha256).order_by(func.random()).limit(sample)
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


def check_log(catalog: Catalog, home: Path) -> LogCheck:
    """Recompute the whole chain; hold it against its head, the signed checkpoints in the
    catalog, and the checkpoints witnessed outside it."""
    problems: list[Problem] = []
    # Witness first, catalog second, chain last: each later read contains everything an
    # earlier one saw, so concurrent appends and checkpoints never look like tampering.
    try:
        witnessed = checkpoints.read_witness(checkpoints.witness_path(home))
    except (OSError, ValueError) as exc:
        witnessed = []
        problems.append(Problem("E-WITNESS-UNREADABLE", "witness", str(exc)))
    with catalog.read() as conn:
        stored = [cp.record() for cp in checkpoints.listing(conn)]
    trusted = keys.trusted_keys(home)
    if not trusted and (stored or witnessed):
        problems.append(Problem("E-KEY-MISSING", "keys", f"no public key in {keys.key_dir(home)}"))
    keep = {int(cp["seq"]) for cp in [*stored, *witnessed]}
    scan = custody.Scan(catalog)
    chain = rules.check_chain((e.record() for e in scan), keep=keep)
    problems += chain.problems
    problems += _head_problems(scan.head, chain)
    problems += rules.check_checkpoints(stored, trusted, chain)
    in_catalog = {rules.canonical(cp) for cp in stored}
    lost = [cp for cp in witnessed if rules.canonical(cp) not in in_catalog]
    problems += [
        Problem(
            "E-CHECKPOINT-MISSING",
            f"checkpoint {cp['seq']}",
            "witnessed, but missing from or altered in the catalog",
        )
        for cp in lost
    ]
    problems += rules.check_checkpoints(lost, trusted, chain)
    return LogCheck(tuple(_unique(problems)), chain.count, len(stored), chain.last_seq)


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


def run(
    catalog: Catalog,
    store: ArchiveStore,
    home: Path,
    originals: Sequence[Original],
    *,
    actor: str,
    workers: int = 1,
    record_events: bool = True,
) -> VerifyReport:
    """Originals, then the log: the whole check as ``evidence verify`` runs it."""
    started = time.monotonic()
    run_id = new_run_id()
    checks = check_originals(store, originals, workers)
    log = check_log(catalog, home)
    failed: list[Problem] = []
    if record_events:
        failed = record(catalog, checks, log.problems, actor=actor, run_id=run_id)
    return summarize(checks, log, failed, time.monotonic() - started, run_id)


def summarize(
    checks: Sequence[OriginalCheck],
    log: LogCheck,
    recording: Sequence[Problem],
    seconds: float,
    run_id: str,
) -> VerifyReport:
    problems = [c.problem for c in checks if c.problem] + [*log.problems, *recording]
    return VerifyReport(
        tuple(problems), len(checks), log.events, log.checkpoints, log.head_seq, seconds, run_id
    )


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]
