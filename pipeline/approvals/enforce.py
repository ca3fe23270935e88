"""Approval enforced before bytes flow: the policy, the roles and the grants put together.

For one user doing one action to one item:

1. The policy says which rules ask approval (``policy.requiring``; none: the access is
   free, supervised by its reason alone, as before approvals existed).
2. When a rule asks, a grant of that user, that action and that item must cover it now
   (``instance.clock()``: a grant past its hours stops working at once); else
   :class:`~pipeline.errors.ApprovalRequired`, recorded as a REFUSED event.
3. Roles still decide what a user may come to at all (``permissions.can_view``), with one
   widening: an item of *another* department the roles do not reach, that the policy asks
   approval for, is a matter of approval instead of a refusal (:func:`reachable`). An item
   of one's own department the roles keep closed stays closed.

:func:`require` is what the viewing and export code calls (``custody.access.open_media``,
``custody.usecases.export_package``, the web's viewings): the acting person is a user of
the catalog, or an operator of an instance without that login (a fresh install, a dock
host), for whom nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from sqlalchemy import Connection

from pipeline.accounts.permissions import ItemScope, can_search, can_view
from pipeline.accounts.users import User, within
from pipeline.approvals.policy import Action, Facts, Policy, requiring
from pipeline.catalog import Catalog
from pipeline.catalog import accounts as account_rows
from pipeline.catalog import approvals as rows
from pipeline.custody import log as custody
from pipeline.errors import ApprovalRequired
from pipeline.models import EventKind, MediaItem


@dataclass(frozen=True)
class Permit:
    """How one access stands for one user now: the rules asking approval (empty: none is
    needed) and the grants covering it (newest first)."""

    action: Action
    rules: tuple[str, ...]
    grants: tuple[int, ...]
    own: bool  # the item is of the user's department tree, or their own recording
    scope: ItemScope

    @property
    def free(self) -> bool:
        return not self.rules

    @property
    def needed(self) -> bool:
        """Approval is asked and no grant covers the access now."""
        return bool(self.rules) and not self.grants

    @property
    def grant(self) -> int | None:
        """The grant this access uses (None: none needed, or none holds)."""
        return self.grants[0] if self.rules and self.grants else None


def permits(
    conn: Connection,
    policy: Policy,
    user: User,
    item: MediaItem,
    actions: Iterable[Action],
    now: datetime,
) -> dict[Action, Permit]:
    """How ``user`` stands toward each of ``actions`` on ``item`` at ``now`` (roles aside)."""
    record = rows.item_record(conn, item.officer_id, item.id)
    own = (item.officer_id is not None and item.officer_id == user.officer_id) or any(
        within(d, user.department) for d in record.departments
    )
    scope = ItemScope(item.officer_id, record.departments)
    found = {}
    for action in actions:
        facts = Facts(action, frozenset(user.roles), own, record.sealed, record.categories)
        asking = tuple(rule.id for rule in requiring(policy, facts))
        grants = tuple(rows.covering(conn, user.login, item.id, action, now)) if asking else ()
        found[action] = Permit(action, asking, grants, own, scope)
    return found


def reachable(user: User, found: Permit) -> bool:
    """Whether the user may come to the item at all: their roles reach it, or it is another
    department's and the policy makes it a matter of approval (for a user whose roles view
    evidence; an administrator's do not)."""
    if can_view(user, found.scope):
        return True
    return not found.own and bool(found.rules) and can_search(user)


def require(
    catalog: Catalog,
    policy: Policy,
    actor: str,
    items: Sequence[MediaItem],
    action: Action,
    now: datetime,
) -> dict[int, int]:
    """The grant ``actor`` uses to do ``action`` to each of ``items`` now, by item id (an
    item needing none is left out; so is every item when ``actor`` is no user of the
    catalog: an operator without accounts). When the policy asks approval for items no grant
    covers, a REFUSED event is recorded for each of them and ApprovalRequired names them all,
    before anything is read or copied."""
    with catalog.read() as conn:
        user = account_rows.get(conn, actor)
        if user is None:
            return {}
        found = [(item, permits(conn, policy, user, item, [action], now)[action]) for item in items]
    missing = [(item, p) for item, p in found if p.needed]
    if missing:
        refuse(catalog, user, missing, now)
    return {item.id: p.grant for item, p in found if p.grant is not None}


def refuse(
    catalog: Catalog, user: User, missing: Sequence[tuple[MediaItem, Permit]], now: datetime
) -> NoReturn:
    """Record that ``user`` was refused each access for want of approval, then raise
    ApprovalRequired: a refusal is supervised as much as a viewing."""
    with catalog.begin() as conn:
        for item, found in missing:
            custody.append(
                conn,
                EventKind.REFUSED,
                user.login,
                media_id=item.id,
                station_id=item.station_id,
                subject=item.sha256,
                details={
                    "action": found.action.value,
                    "approval": "required",
                    "rules": list(found.rules),
                    "roles": [r.value for r in user.roles],
                    "department": user.department,
                },
                now=now,
            )
    subject = "media " + ", ".join(str(item.id) for item, _ in missing)
    action = missing[0][1].action
    rules = tuple(dict.fromkeys(r for _, p in missing for r in p.rules))
    raise ApprovalRequired(subject, action.value, rules)
