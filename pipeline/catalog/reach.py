"""What a user's listings may show, in SQL: the twin of ``permissions.reaches`` (a test holds
one against the other on SQLite and PostgreSQL).

A department tree is a path prefix: ``县公安局/治安大队`` holds itself and
``县公安局/治安大队/一中队``, never ``县公安局/治安大队二``. The prefix is compared as a
substring (``substr``) rather than with LIKE, which SQLite folds in case and whose ``_`` and
``%`` a unit's name may hold, or with a range, which PostgreSQL's collations order ignoring
the "/".
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select, true

from pipeline.accounts.permissions import AuditReach, Reach
from pipeline.catalog.schema import cases, custody_events, links, media, officers, users


def in_tree(col: Any, tree: str) -> ColumnElement[bool]:
    """``col`` (a department path) is the unit ``tree`` or one below it."""
    below = tree + "/"
    return or_(col == tree, func.substr(col, 1, len(below)) == below)


def media_within(scope: Reach) -> ColumnElement[bool]:
    """A WHERE clause on ``media``: the items ``scope`` holds."""
    if scope.everything:
        return true()
    found: list[ColumnElement[bool]] = []
    if scope.officer_id is not None:
        found.append(and_(media.c.officer_id.is_not(None), media.c.officer_id == scope.officer_id))
    if scope.department is not None:
        tree = scope.department
        of_officer = select(officers.c.id).where(in_tree(officers.c.department, tree))
        of_case = (
            select(links.c.media_id)
            .join(cases, cases.c.number == links.c.case_number)
            .where(links.c.removed_at.is_(None), in_tree(cases.c.department, tree))
        )
        found.append(
            or_(
                and_(media.c.officer_id.is_not(None), media.c.officer_id.in_(of_officer)),
                media.c.id.in_(of_case),
            )
        )
    return or_(false(), *found)


def events_within(scope: AuditReach) -> ColumnElement[bool]:
    """A WHERE clause on ``custody_events``: the events ``scope`` holds."""
    event_item = custody_events.c.media_id
    if scope.items.everything and scope.everyone:
        return true()
    if scope.items.everything:
        of_items: ColumnElement[bool] = event_item.is_not(None)
    else:
        reached = select(media.c.id).where(media_within(scope.items))
        of_items = and_(event_item.is_not(None), event_item.in_(reached))
    if scope.everyone:
        of_people: ColumnElement[bool] = event_item.is_(None)
    elif scope.people is not None:
        people = select(users.c.login).where(in_tree(users.c.department, scope.people))
        of_people = and_(event_item.is_(None), custody_events.c.actor.in_(people))
    else:
        of_people = false()
    return or_(of_items, of_people)
