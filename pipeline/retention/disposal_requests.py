"""Disposal requests (销毁申请): the vocabulary of disposal as a workflow.

A request names items (media ids, or the candidates a retention sweep listed) and a reason;
an approver (a supervisor of the items' department tree, or the legal office; never the
requester) approves it or refuses it, with a comment, once. Each item then goes its own way:

===============  ==========================================================================
waiting          asked, not decided
approved         approved: waits out the grace period (``grace_until``), may be undone
refused          the request was refused
dropped          no longer disposable when checked again (linked, held, marked since): kept
undone           taken back within the grace period, with a reason: kept
disposed         original and derivatives removed; the catalog keeps its tombstone
store-refused    the store refused the removal (an Object Lock not expired, a local lock
                 date not reached): kept, the store's answer noted, an alert raised
===============  ==========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pipeline.models import Labelled


class RequestState(Labelled):
    WAITING = "waiting", "待审批"
    APPROVED = "approved", "已批准"
    REFUSED = "refused", "已驳回"


class ItemState(Labelled):
    WAITING = "waiting", "待审批"
    APPROVED = "approved", "已批准，宽限期中"
    REFUSED = "refused", "已驳回"
    DROPPED = "dropped", "已移出：不再可销毁"
    UNDONE = "undone", "已撤回"
    DISPOSED = "disposed", "已销毁"
    STORE_REFUSED = "store-refused", "存储拒绝删除"

    @property
    def live(self) -> bool:
        """Still on its way to disposal."""
        return self in (ItemState.WAITING, ItemState.APPROVED)


class DisposalListing(Labelled):
    """Which requests a list shows a user."""

    MINE = "mine", "我的申请"
    WAITING = "waiting", "待我审批"
    ALL = "all", "销毁记录"


@dataclass(frozen=True)
class DisposalItem:
    media_id: int
    state: ItemState
    size: int
    changed_at: datetime
    changed_by: str
    note: str | None = None


@dataclass(frozen=True)
class DisposalRequest:
    """One request, its decision and its items, as read."""

    id: int
    requested_by: str
    requested_at: datetime
    reason: str
    state: RequestState
    items: tuple[DisposalItem, ...]
    sweep_id: int | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None
    grace_until: datetime | None = None

    @property
    def media(self) -> tuple[int, ...]:
        return tuple(i.media_id for i in self.items)

    @property
    def live(self) -> tuple[DisposalItem, ...]:
        return tuple(i for i in self.items if i.state.live)

    @property
    def bytes(self) -> int:
        """Bytes the request would free (its items still on their way)."""
        return sum(i.size for i in self.live)

    def in_grace(self, now: datetime) -> bool:
        return self.grace_until is not None and now < self.grace_until


@dataclass(frozen=True)
class Candidate:
    """An item a retention sweep found past its retention and not held."""

    media_id: int
    until: datetime
    size: int
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Sweep:
    """What one retention sweep listed (a listing: nothing is disposed by it)."""

    id: int
    at: datetime
    actor: str
    candidates: tuple[Candidate, ...]

    @property
    def bytes(self) -> int:
        return sum(c.size for c in self.candidates)


@dataclass(frozen=True)
class Tombstone:
    """What the catalog keeps of a disposed item: what it was, who decided, why, when."""

    media_id: int
    request_id: int
    sha256: str
    size: int
    ingested_at: datetime
    recorded_start: datetime | None
    recorded_end: datetime | None
    retention_until: datetime | None
    retention_reasons: tuple[str, ...]
    requested_by: str
    requested_at: datetime
    approved_by: str
    approved_at: datetime
    reason: str
    disposed_at: datetime
    disposed_by: str
    derived_left: tuple[str, ...] = ()


@dataclass(frozen=True)
class Removal:
    """How one item of a disposal run ended."""

    request_id: int
    media_id: int
    state: ItemState  # disposed, dropped, store-refused; approved: a store error, next run
    size: int
    note: str | None = None


@dataclass(frozen=True)
class DisposalRun:
    """What ``dispose --due`` (or the daily sweep) did: each due item, and derived objects
    that could not be removed yet (tried again by the next run)."""

    removals: tuple[Removal, ...]
    derived_left: tuple[str, ...] = ()

    def count(self, state: ItemState) -> int:
        return sum(1 for r in self.removals if r.state is state)

    @property
    def freed(self) -> int:
        return sum(r.size for r in self.removals if r.state is ItemState.DISPOSED)
