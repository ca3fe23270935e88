"""Users of the archive and their roles: the vocabulary of accounts.

A user is a person of the registry (an officer id) with a login, roles and a department. The
department is a path of units separated by "/", from the top: ``县公安局/治安大队/一中队``.
"Their department" is that unit and every unit below it (:func:`within`), so a supervisor
of ``县公安局`` reads what ``县公安局/治安大队`` recorded, not the reverse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from pipeline.errors import AccountError
from pipeline.models import Labelled


class UserRole(Labelled):
    """What a user may do; each is a set of permissions (``pipeline.accounts.permissions``)."""

    OFFICER = "officer", "执法人员"  # own recordings and own cases
    ARCHIVIST = "archivist", "档案管理员"  # search and view within their department
    LEGAL_REVIEWER = "legal-reviewer", "法制审核"  # read everything; compliance
    SUPERVISOR = "supervisor", "领导"  # read their department; dashboards, approvals
    ADMIN = "admin", "系统管理员"  # users, devices, stations; no evidence by default


@dataclass(frozen=True)
class User:
    """An account. The password hash stays in the catalog: no listing or JSON carries it."""

    login: str
    officer_id: str
    roles: tuple[UserRole, ...]
    department: str
    enabled: bool
    created_at: datetime
    updated_at: datetime

    def has(self, *roles: UserRole) -> bool:
        """Whether the user is enabled and holds one of ``roles``."""
        return self.enabled and any(r in self.roles for r in roles)


# Logins are typed at a sign-in page and end up in custody events and cookies' audit: keep
# them to letters, digits and a few separators, case-folded (Zhang.Wei and zhang.wei are one).
_LOGIN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # Argon2 takes any length; a megabyte "password" is a denial of service


def normal_login(login: str) -> str:
    """The login as stored: stripped and lower-case; AccountError unless it is 2 to 64 of
    a-z, 0-9, '.', '_', '-' starting with a letter or digit."""
    folded = login.strip().lower()
    if not _LOGIN.match(folded):
        raise AccountError(
            login,
            "登录名须为 2–64 个字母、数字或 . _ - (a login is 2 to 64 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit)",
        )
    return folded


def check_password(login: str, password: str) -> str:
    """``password`` if it can be one: AccountError when too short or too long."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(
            login,
            f"密码至少 {MIN_PASSWORD} 个字符 (a password has at least {MIN_PASSWORD} characters)",
        )
    if len(password) > MAX_PASSWORD:
        raise AccountError(login, f"a password has at most {MAX_PASSWORD} characters")
    return password


def normal_department(department: str) -> str:
    """The department as a path: units stripped, empty units dropped (``" 局 // 大队/"``
    is ``"局/大队"``)."""
    return "/".join(part.strip() for part in department.split("/") if part.strip())


def within(department: str, scope: str) -> bool:
    """Whether ``department`` is the unit ``scope`` or one below it. An empty scope reaches
    nothing: a user with no department has no department tree."""
    dept, top = normal_department(department), normal_department(scope)
    return bool(top) and (dept == top or dept.startswith(top + "/"))


def parse_roles(values: list[str] | tuple[str, ...]) -> tuple[UserRole, ...]:
    """Roles by value, in declaration order, each once; AccountError names an unknown one."""
    found = set()
    for value in values:
        try:
            found.add(UserRole(value.strip()))
        except ValueError:
            known = ", ".join(f"{r.value} ({r.label_zh})" for r in UserRole)
            raise AccountError("?", f"unknown role {value!r}; roles are {known}") from None
    return tuple(r for r in UserRole if r in found)
