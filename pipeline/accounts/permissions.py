"""What a user may do, by role and department: pure functions, checked in the domain (the
pages and the API ask these, never decide themselves).

=================  ===================================================================
role               may view a media item
=================  ===================================================================
officer 执法人员     recorded by themselves (the item's officer is the user's officer)
archivist 档案管理员  recorded by an officer of their department tree, or linked to a case
                   of it
supervisor 领导      the same as an archivist (reading; approvals come later)
legal-reviewer     every item
admin 系统管理员      none (users, devices and stations only)
=================  ===================================================================

Describing (文字说明) is for an officer's own recordings and an archivist's department tree.
A disabled user may do nothing. Roles add up: an officer who is also an archivist sees both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.accounts.users import User, UserRole, within
from pipeline.errors import PermissionDenied
from pipeline.models import Case


@dataclass(frozen=True)
class ItemScope:
    """Whose an item is: its officer, and the departments it belongs to (its officer's, and
    those of the cases it is linked to)."""

    officer_id: str | None
    departments: tuple[str, ...]


def can_search(user: User) -> bool:
    """Whether the user may search the catalog (a listing, without the withheld fields)."""
    return user.has(
        UserRole.OFFICER, UserRole.ARCHIVIST, UserRole.LEGAL_REVIEWER, UserRole.SUPERVISOR
    )


def can_view(user: User, item: ItemScope) -> bool:
    """Whether the user may view the item (its metadata, proxy or a copy), by the table above."""
    if not user.enabled:
        return False
    if user.has(UserRole.LEGAL_REVIEWER):
        return True
    if user.has(UserRole.OFFICER) and item.officer_id == user.officer_id:
        return True
    if user.has(UserRole.ARCHIVIST, UserRole.SUPERVISOR):
        return any(within(d, user.department) for d in item.departments)
    return False


def can_describe(user: User, item: ItemScope) -> bool:
    """Whether the user may write the item's description (文字说明): an officer their own
    recordings, an archivist those of their department tree; reading roles may not."""
    if user.has(UserRole.OFFICER) and item.officer_id == user.officer_id:
        return True
    if user.has(UserRole.ARCHIVIST):
        return any(within(d, user.department) for d in item.departments)
    return False


def can_view_case(user: User, case: Case) -> bool:
    """Whether the user may read a case file: an officer their own cases, an archivist or a
    supervisor those of their department tree, a legal reviewer every case."""
    if not user.enabled:
        return False
    if user.has(UserRole.LEGAL_REVIEWER):
        return True
    if user.has(UserRole.OFFICER) and user.officer_id in case.officers:
        return True
    if user.has(UserRole.ARCHIVIST, UserRole.SUPERVISOR):
        return within(case.department, user.department)
    return False


def can_file_case(user: User, case: Case) -> bool:
    """Whether the user may work on a case file (link and unlink records, conclude, seal):
    an archivist of the case's department tree."""
    return user.has(UserRole.ARCHIVIST) and within(case.department, user.department)


def can_audit(user: User) -> bool:
    """Whether the user may read the custody log (without the withheld text): the legal
    office and supervisors, who supervise access, and administrators, whose sign-in and
    account events are in it."""
    return user.has(UserRole.LEGAL_REVIEWER, UserRole.SUPERVISOR, UserRole.ADMIN)


def can_manage_users(user: User) -> bool:
    return user.has(UserRole.ADMIN)


def pages(user: User) -> dict[str, bool]:
    """Which of the pages the user may open, for the navigation to offer only those."""
    return {"search": can_search(user), "audit": can_audit(user), "users": can_manage_users(user)}


def require(user: User, rule: Callable[[User], bool], subject: str) -> None:
    """PermissionDenied (naming ``subject``) unless ``rule`` allows ``user``."""
    if not rule(user):
        roles = ", ".join(f"{r.value} {r.label_zh}" for r in user.roles) or "none"
        raise PermissionDenied(subject, f"您的角色无此权限 (not allowed to roles: {roles})")
