"""Access requests and grants: the vocabulary of the approval workflow.

A request names the items (media ids, or a case's records as linked when asked), one
:class:`~pipeline.approvals.policy.Action`, the reason and the hours wanted. An approver
grants it (for those hours or fewer) or refuses it, with a comment; it is decided once. A
grant is the request once granted: it covers exactly its requester doing its action to its
items, from the decision until ``expires_at``, and nothing else (:meth:`AccessRequest.covers`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pipeline.approvals.policy import Action
from pipeline.models import Labelled


class State(Labelled):
    """What the catalog stores of a request."""

    WAITING = "waiting", "待审批"
    GRANTED = "granted", "已批准"
    REFUSED = "refused", "已驳回"


class Status(Labelled):
    """Where a request stands at a moment: a grant past its hours has expired."""

    WAITING = "waiting", "待审批"
    GRANTED = "granted", "已批准（有效）"
    EXPIRED = "expired", "已过期"
    REFUSED = "refused", "已驳回"


def status_at(state: State, expires_at: datetime | None, now: datetime) -> Status:
    if state is State.GRANTED:
        return Status.GRANTED if expires_at is not None and now < expires_at else Status.EXPIRED
    return Status(state.value)


class Listing(Labelled):
    """Which requests a list shows a user."""

    MINE = "mine", "我的申请"
    WAITING = "waiting", "待我审批"
    ALL = "all", "审批记录"  # every request the user may see: theirs, and those in their reach


@dataclass(frozen=True)
class AccessRequest:
    """One request and its decision; ``status`` is as of when it was read."""

    id: int
    requested_by: str
    requested_at: datetime
    action: Action
    media: tuple[int, ...]
    case: str | None  # the case it was asked by (its records when asked are ``media``)
    reason: str
    hours: int  # asked for
    status: Status
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None
    granted_hours: int | None = None
    expires_at: datetime | None = None

    def covers(self, login: str, media_id: int, action: Action, now: datetime) -> bool:
        """Whether this grant lets ``login`` do ``action`` to ``media_id`` at ``now``."""
        return (
            self.decided_at is not None
            and self.expires_at is not None
            and self.status is not Status.REFUSED
            and self.status is not Status.WAITING
            and self.requested_by == login
            and self.action is action
            and media_id in self.media
            and self.decided_at <= now < self.expires_at
        )
