"""What a user may do, by role and department: pure functions, checked in the domain (the
pages and the API ask these, never decide themselves).

=================  ===================================================================
role               may view a media item
=================  ===================================================================
officer 执法人员     recorded by themselves (the item's officer is the user's officer)
archivist 档案管理员  recorded by an officer of their department tree, or linked to a case
                   of it
supervisor 领导      the same as an archivist (reading); grants or refuses access requests
legal-reviewer     every item
admin 系统管理员      none (users, devices and stations only)
=================  ===================================================================

Describing (文字说明) is for an officer's own recordings and an archivist's department tree.
A disabled user may do nothing. Roles add up: an officer who is also an archivist sees both.

Approval (调阅审批, ``pipeline.approvals``) comes on top of the table: where the access policy
asks it, a grant is required to view, copy or export what the roles reach, and a grant opens
an item of another department that the roles alone do not; approvers are :func:`can_decide`.

Listings (search, the audit trail) show only what the user may view: :func:`reach` turns the
table into a value the catalog's SQL takes (``pipeline.catalog.reach``), with
:func:`reaches` as its Python twin, held to :func:`can_view` by a test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pipeline.accounts.users import User, UserRole, normal_department, within
from pipeline.errors import PermissionDenied
from pipeline.models import Case


@dataclass(frozen=True)
class ItemScope:
    """Whose an item is: its officer, and the departments it belongs to (its officer's, and
    those of the cases it is linked to)."""

    officer_id: str | None
    departments: tuple[str, ...]


@dataclass(frozen=True)
class Reach:
    """Which items a listing shows a user: every item, or those recorded by ``officer_id``
    and those of the department tree ``department`` (either may be None: nothing by it)."""

    everything: bool = False
    officer_id: str | None = None
    department: str | None = None


EVERYTHING = Reach(everything=True)
NOTHING = Reach()


def reach(user: User) -> Reach:
    """What the user's listings show: the items :func:`can_view` lets them view."""
    if not user.enabled:
        return NOTHING
    if user.has(UserRole.LEGAL_REVIEWER):
        return EVERYTHING
    own = user.officer_id if user.has(UserRole.OFFICER) else None
    tree = normal_department(user.department)
    return Reach(
        officer_id=own or None,
        department=tree if tree and user.has(UserRole.ARCHIVIST, UserRole.SUPERVISOR) else None,
    )


def reaches(scope: Reach, item: ItemScope) -> bool:
    """Whether ``scope`` holds the item: the Python twin of ``pipeline.catalog.reach``."""
    if scope.everything:
        return True
    if scope.officer_id is not None and item.officer_id == scope.officer_id:
        return True
    tree = scope.department
    return tree is not None and any(within(d, tree) for d in item.departments)


@dataclass(frozen=True)
class AuditReach:
    """Which custody events the audit trail shows a user: an item's events when ``items``
    holds the item; an event of no item (sign-ins, accounts, cases, listings) when its actor
    is a user of the department tree ``people``, or anyone's when ``everyone``."""

    items: Reach
    everyone: bool = False
    people: str | None = None


def audit_reach(user: User) -> AuditReach:
    """The legal office reads every event; an administrator every event of no item (sign-ins
    and accounts are theirs to watch), none of evidence; a supervisor the events of the items
    of their tree and those of no item by the people of their tree."""
    items = reach(user)
    if user.has(UserRole.LEGAL_REVIEWER, UserRole.ADMIN):
        return AuditReach(items, everyone=True)
    tree = normal_department(user.department)
    people = tree if tree and user.has(UserRole.SUPERVISOR) else None
    return AuditReach(items, people=people)


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


def can_read_dashboard(user: User) -> bool:
    """Whether the user may read the compliance dashboard and reports (统计分析): supervisors
    (their department tree) and the legal office (everything)."""
    return user.enabled and user.has(UserRole.SUPERVISOR, UserRole.LEGAL_REVIEWER)


def can_approve(user: User) -> bool:
    """Whether the user may grant or refuse access requests (调阅审批): a supervisor (领导)
    or the legal office."""
    return user.enabled and user.has(UserRole.SUPERVISOR, UserRole.LEGAL_REVIEWER)


def can_decide(user: User, requested_by: str, item_departments: Iterable[Iterable[str]]) -> bool:
    """Whether the user may grant or refuse a request of ``requested_by`` for items of these
    departments (one collection per item): never their own; the legal office any other; a
    supervisor one whose every item belongs to their department tree."""
    if not can_approve(user) or user.login == requested_by:
        return False
    if user.has(UserRole.LEGAL_REVIEWER):
        return True
    return all(any(within(d, user.department) for d in item) for item in item_departments)


def pages(user: User) -> dict[str, bool]:
    """Which of the pages the user may open, for the navigation to offer only those."""
    return {
        "search": can_search(user),
        "audit": can_audit(user),
        "users": can_manage_users(user),
        "approvals": user.enabled and (can_search(user) or can_approve(user)),
        "dashboard": can_read_dashboard(user),
    }


def require(user: User, rule: Callable[[User], bool], subject: str) -> None:
    """PermissionDenied (naming ``subject``) unless ``rule`` allows ``user``."""
    if not rule(user):
        roles = ", ".join(f"{r.value} {r.label_zh}" for r in user.roles) or "none"
        raise PermissionDenied(subject, f"您的角色无此权限 (not allowed to roles: {roles})")


def can_release_quarantine(user: User) -> bool:
    """Whether the user may release quarantined files (a device registered, a transcode
    that now works): archivists, who answer for what enters the archive, and
    administrators, who register the devices."""
    return user.enabled and user.has(UserRole.ARCHIVIST, UserRole.ADMIN)


def can_read_quarantine(user: User) -> bool:
    """Whether the user may read the quarantine list (file names, stations, codes): who may
    release, and who supervises (the legal office, supervisors)."""
    return can_release_quarantine(user) or can_audit(user)
