"""Locks follow retention: when a record's retention grows (it is linked to a case, marked,
given a class, held), its original's lock grows with it; a lock is never shortened.

On S3 the lock is the object's Object Lock retain-until, extended with
``S3Store.set_retention`` (the server refuses to shorten it, in COMPLIANCE mode even to the
root account), and a legal hold (``set_legal_hold``) while any hold covers the record, lifted
when the last one is released. The catalog keeps the same dates for either store
(``retention_locks``): the local store has no lock of its own, and removing a file
(disposal, ``pipeline.retention.disposal``) asks :func:`may_remove` first.

The date a lock asks: the record's retention; for a permanent record its start plus
``retention.permanent_lock_years`` (100); never less than the floor every original got at
ingest, ``store.s3.retention_days`` (184) from its ingest.

:func:`follow` is called after the change that grew the retention has committed: a store
that fails to extend a lock never undoes the link or the hold. The failure is an ALERT
custody event (``lock-not-extended``) and is in what :func:`follow` returns; the next follow
of the item (any later change, or :func:`follow_all`) tries again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from pipeline.catalog import Catalog
from pipeline.catalog import retention as rows
from pipeline.catalog.schema import links, media, retention_hold_items
from pipeline.custody import log as custody
from pipeline.errors import EvidenceError, LockNotExtended
from pipeline.instance import Instance
from pipeline.models import EventKind
from pipeline.retention.derive import Retention, derived
from pipeline.retention.rules import RetentionRules, add_months, rules_of
from pipeline.settings import Settings
from pipeline.storage.local import ArchiveStore


@dataclass(frozen=True)
class Followed:
    """What :func:`follow` did to one record's lock."""

    media_id: int
    lock_until: datetime  # as the catalog has it now
    held: bool  # a legal hold is on (as the catalog has it now)
    extended: bool  # the date was moved later just now
    hold_changed: bool  # the legal hold was set or lifted just now
    problem: str | None = None  # the store refused or failed: an ALERT event says so


def floor(ingested_at: datetime, rules: RetentionRules) -> datetime:
    """The lock every original got at ingest."""
    return ingested_at + timedelta(days=rules.floor_days)


def lock_target(retention: Retention, facts: rows.Facts, rules: RetentionRules) -> datetime:
    """The date a record's lock should hold to."""
    until = retention.until
    if until is None:
        until = add_months(facts.start, 12 * rules.permanent_lock_years)
    return max(until, floor(facts.ingested_at, rules))


def may_remove(conn: Connection, media_id: int, now: datetime, *, floor_days: int = 184) -> bool:
    """Whether the original of ``media_id`` may be removed at ``now`` as far as its lock
    goes: its lock date has passed and no legal hold is on (nor any unreleased hold covers
    it). Without a lock row, the floor it got at ingest (``floor_days`` from then)."""
    lock = rows.locks(conn, [media_id]).get(media_id)
    facts = rows.facts(conn, [media_id]).get(media_id)
    if facts is None:
        return False
    if any(h.holds_at(now) for h in facts.holds):
        return False
    if lock is None:
        return facts.ingested_at + timedelta(days=floor_days) <= now
    return not lock.held and lock.lock_until <= now


def follow(instance: Instance, media_ids: Sequence[int]) -> tuple[Followed, ...]:
    """Extend the lock of each record of ``media_ids`` to what its retention asks now, and
    set or lift its legal hold; records covered by a case hold they were linked into since
    get their HELD event. Never raises for a store's refusal: see the module's docstring."""
    ids = sorted(set(media_ids))
    if not ids:
        return ()
    rules, now = rules_of(instance.settings), instance.clock()
    with instance.catalog.read() as conn:
        facts = rows.facts(conn, ids)
        present = rows.locks(conn, ids)
    done: list[Followed] = []
    for media_id in ids:
        f = facts.get(media_id)
        if f is not None:
            done.append(_follow_one(instance, rules, f, present.get(media_id), now))
    _record(instance, facts, done, now)
    return tuple(done)


def _follow_one(
    instance: Instance,
    rules: RetentionRules,
    f: rows.Facts,
    lock: rows.Lock | None,
    now: datetime,
) -> Followed:
    retention = derived(f, rules, now)
    target = lock_target(retention, f, rules)
    before = lock.lock_until if lock is not None else floor(f.ingested_at, rules)
    held_before = lock.held if lock is not None else False
    until, held, problems = before, held_before, []
    # The store is opened only for a change (an S3 store starts a client and checks its lock).
    if target > before:
        try:
            _extend(instance.store, f.sha256, target)
            until = target
        except EvidenceError as exc:
            problems.append(f"retain-until {target.isoformat()}: {exc}")
    if retention.held != held_before:
        try:
            setter = getattr(instance.store, "set_legal_hold", None)
            if setter is not None:
                setter(f.sha256, retention.held)
            held = retention.held
        except EvidenceError as exc:
            problems.append(f"legal hold {'on' if retention.held else 'off'}: {exc}")
    return Followed(
        f.media_id,
        until,
        held,
        until != before,
        held != held_before,
        "; ".join(problems) or None,
    )


def _extend(store: object, sha256: str, target: datetime) -> None:
    """Extend an S3 original's retain-until to ``target`` unless it holds that long already
    (asking the server for a shorter date would be refused); a store without Object Lock
    (the local store) keeps the date in the catalog only."""
    status_of = getattr(store, "lock_status", None)
    setter = getattr(store, "set_retention", None)
    if status_of is None or setter is None:
        return
    status = status_of(sha256)
    if status.retain_until is None or status.retain_until < target:
        setter(sha256, target)


def _record(
    instance: Instance, facts: dict[int, rows.Facts], done: list[Followed], now: datetime
) -> None:
    """The lock rows, the HELD events of records a case hold newly covers, and an ALERT for
    every lock the store did not take, in one transaction."""
    actor = instance.actor or instance.settings.actor
    with instance.catalog.begin() as conn:
        for d in done:
            rows.save_lock(conn, rows.Lock(d.media_id, d.lock_until, d.held, now))
            f = facts[d.media_id]
            _case_members(conn, f, actor, now)
            if d.problem is not None:
                error = LockNotExtended(f"media {d.media_id}", d.problem)
                custody.append(
                    conn,
                    EventKind.ALERT,
                    actor,
                    media_id=d.media_id,
                    subject=f.sha256,
                    details={"code": error.code, "reason": str(error)},
                    now=now,
                )


def _case_members(conn: Connection, f: rows.Facts, actor: str, now: datetime) -> None:
    """A record linked into a held case is covered from now on, with a HELD event."""
    case_holds = [h for h in f.holds if h.scope == "case"]
    if not case_holds:
        return
    known = set(
        conn.execute(
            select(retention_hold_items.c.hold_id).where(
                retention_hold_items.c.media_id == f.media_id
            )
        ).scalars()
    )
    for h in case_holds:
        if h.id in known:
            continue
        rows.add_members(conn, h.id, [f.media_id], now)
        custody.append(
            conn,
            EventKind.HELD,
            actor,
            media_id=f.media_id,
            subject=f.sha256,
            details={"hold": h.id, "scope": "case", "case": h.case_number, "reason": h.reason},
            now=now,
        )


def follow_all(instance: Instance, *, chunk: int = rows.CHUNK) -> tuple[Followed, ...]:
    """:func:`follow` for every record, a chunk at a time: a catch-up after a crash between a
    change and its follow, or after the rules changed (the daily sweep may call it)."""
    with instance.catalog.read() as conn:
        ids = list(conn.execute(select(media.c.id).order_by(media.c.id)).scalars())
    done: list[Followed] = []
    for part in rows.chunks(ids, chunk):
        done += [d for d in follow(instance, part) if d.extended or d.hold_changed or d.problem]
    return tuple(done)


def follow_store(
    catalog: Catalog,
    store: ArchiveStore,
    settings: Settings,
    media_ids: Sequence[int],
    *,
    clock: Callable[[], datetime],
    actor: str,
) -> tuple[Followed, ...]:
    """:func:`follow` for a caller that holds the parts of an instance, not one (an ingest
    sweep: a file marked as important when it is catalogued)."""
    instance = Instance(settings, catalog, clock=clock, actor=actor, _store=store)
    return follow(instance, media_ids)


def follow_cases(instance: Instance, numbers: Iterable[str]) -> tuple[Followed, ...]:
    """:func:`follow` for every record linked to these cases now (a case created, its
    category changed, records linked to it by the rule)."""
    wanted = sorted(set(numbers))
    if not wanted:
        return ()
    with instance.catalog.read() as conn:
        ids = conn.execute(
            select(links.c.media_id).where(
                links.c.case_number.in_(wanted), links.c.removed_at.is_(None)
            )
        ).scalars()
        found = list(ids)
    return follow(instance, found)
