"""The use cases of retention (issue 19) that interfaces call: an item's retention, its
important-file mark, a class a person assigns, and legal holds (:mod:`pipeline.retention.holds`).

Each takes the :class:`~pipeline.instance.Instance` first, owns its transaction and returns a
frozen dataclass; a change that grows a record's retention then lets its lock follow
(:func:`pipeline.retention.locks.follow`), after the change has committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.accounts.permissions import ItemScope, can_describe
from pipeline.accounts.users import User
from pipeline.catalog import accounts as account_rows
from pipeline.catalog import cases as case_rows
from pipeline.catalog import media as media_db
from pipeline.catalog import retention as rows
from pipeline.custody.usecases import MediaDetail, media_detail
from pipeline.errors import NotFound, PermissionDenied
from pipeline.instance import Instance
from pipeline.retention import locks, marks
from pipeline.retention.derive import Retention, retention_of, retentions_of
from pipeline.retention.holds import Hold, list_holds, listed, place_hold, release_hold
from pipeline.retention.rules import rules_of


def retention(instance: Instance, media_id: int) -> Retention:
    """How long the item ``media_id`` is kept, and why (NotFound)."""
    rules = rules_of(instance.settings)
    with instance.catalog.read() as conn:
        return retention_of(conn, rules, media_id, now=instance.clock())


@dataclass(frozen=True)
class MediaShown(MediaDetail):
    """An item as ``evidence media show`` presents it: its detail, and its retention."""

    retention: Retention = field(kw_only=True)


def media_shown(
    instance: Instance, key: str, *, actor: str | None, reason: str | None
) -> MediaShown:
    """:func:`~pipeline.custody.usecases.media_detail` (the viewing recorded first), with how
    long the item is kept and why."""
    detail = media_detail(instance, key, actor=actor, reason=reason)
    return MediaShown(**vars(detail), retention=retention(instance, detail.item.id))


@dataclass(frozen=True)
class Marked:
    """A mark set or cleared, or a class assigned; ``changed`` False: it was so already."""

    media_id: int
    changed: bool
    retention: Retention
    locks: tuple[locks.Followed, ...]


def mark_media(instance: Instance, key: str | int, reason: str, *, clear: bool = False) -> Marked:
    """Set (or clear) the important-file mark (重点文件) of the item ``key``, with a reason."""
    actor = instance.actor or instance.settings.actor
    with instance.catalog.begin() as conn:
        media_id = media_db.get(conn, key).id
        changed = marks.set_mark(conn, media_id, reason, actor, instance.clock(), clear=clear)
    return _done(instance, media_id, changed)


def assign_class(instance: Instance, key: str | int, class_id: str | None, reason: str) -> Marked:
    """Assign a retention class (e.g. ``invalid``, 无效数据) to the item ``key`` with a reason;
    None takes the assigned class away."""
    actor, rules = instance.actor or instance.settings.actor, rules_of(instance.settings)
    with instance.catalog.begin() as conn:
        media_id = media_db.get(conn, key).id
        changed = marks.assign_class(
            conn, rules, media_id, class_id, reason, actor, instance.clock()
        )
    return _done(instance, media_id, changed)


def _done(instance: Instance, media_id: int, changed: bool) -> Marked:
    followed = locks.follow(instance, [media_id]) if changed else ()
    return Marked(media_id, changed, retention(instance, media_id), followed)


def mark_item(
    instance: Instance, user: User, media_id: int, reason: str, *, clear: bool = False
) -> Marked:
    """The item page's mark: for who may describe the item (its officer, an archivist of
    its department tree), acting as themselves."""
    with instance.catalog.read() as conn:
        item = media_db.get(conn, media_id)
        scope = ItemScope(
            item.officer_id, account_rows.item_departments(conn, item.officer_id, item.id)
        )
    if not (user.enabled and can_describe(user, scope)):
        raise PermissionDenied(
            f"media {media_id}", "无权标记该记录 (outside your roles and department)"
        )
    return mark_media(instance.acting(user.login), media_id, reason, clear=clear)


@dataclass(frozen=True)
class CaseRetention:
    """How long a case's records are kept: its category's class, the holds on the case,
    and each linked record's retention."""

    case: str
    kept: str  # the category's class, as people read it
    holds: tuple[Hold, ...]
    items: dict[int, Retention]


def case_retention(instance: Instance, number: str) -> CaseRetention:
    """The retention of the case ``number`` and of its linked records (NotFound)."""
    rules, now = rules_of(instance.settings), instance.clock()
    with instance.catalog.read() as conn:
        case = case_rows.get(conn, number)
        if case is None:
            raise NotFound("case", number)
        linked = [link.media_id for link in case_rows.links_of_case(conn, number)]
        items = retentions_of(conn, rules, linked, now=now)
        on_case = rows.case_holds(conn, [number]).get(number, [])
        counts = rows.member_counts(conn, [h.id for h in on_case])
    held = tuple(listed(h, counts.get(h.id, 0), now) for h in on_case)
    return CaseRetention(number, rules.category_class(case.category).said(), held, items)


__all__ = [
    "CaseRetention",
    "Marked",
    "MediaShown",
    "assign_class",
    "case_retention",
    "list_holds",
    "mark_item",
    "mark_media",
    "media_shown",
    "place_hold",
    "release_hold",
    "retention",
]
