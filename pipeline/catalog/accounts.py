"""Rows of accounts: users, their sessions, failed sign-ins (migration 0007)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update

from pipeline.accounts.sessions import SessionInfo
from pipeline.accounts.users import User, UserRole
from pipeline.catalog.schema import (
    cases,
    links,
    officers,
    sign_in_failures,
    user_sessions,
    users,
)


def _user(row: Any) -> User:
    return User(
        login=row.login,
        officer_id=row.officer_id,
        roles=tuple(UserRole(r) for r in row.roles),
        department=row.department,
        enabled=bool(row.enabled),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def get(conn: Connection, login: str) -> User | None:
    row = conn.execute(select(users).where(users.c.login == login)).one_or_none()
    return None if row is None else _user(row)


def password_hash(conn: Connection, login: str) -> str | None:
    return conn.execute(
        select(users.c.password_hash).where(users.c.login == login)
    ).scalar_one_or_none()


def all_users(conn: Connection) -> list[User]:
    return [_user(r) for r in conn.execute(select(users).order_by(users.c.login))]


def insert(conn: Connection, user: User, hashed: str) -> dict[str, Any]:
    """Add the user; the values written, column by column (the custody event records them)."""
    values = {
        "login": user.login,
        "officer_id": user.officer_id,
        "password_hash": hashed,
        "roles": [r.value for r in user.roles],
        "department": user.department,
        "enabled": user.enabled,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }
    conn.execute(users.insert().values(**values))
    return values


def change(conn: Connection, login: str, now: datetime, **values: Any) -> dict[str, Any]:
    """Set columns of one user (roles as values) and its ``updated_at``; the values written."""
    if "roles" in values:
        values["roles"] = [UserRole(r).value for r in values["roles"]]
    written = {**values, "updated_at": now}
    conn.execute(update(users).where(users.c.login == login).values(**written))
    return written


# ------------------------------------------------------------------------------- sessions


def _session(row: Any) -> SessionInfo:
    return SessionInfo(row.login, row.created_at, row.expires_at, row.address, row.revoked_at)


def add_session(conn: Connection, digest: str, session: SessionInfo) -> None:
    conn.execute(
        user_sessions.insert().values(
            token_sha256=digest,
            login=session.login,
            created_at=session.created_at,
            expires_at=session.expires_at,
            address=session.address,
        )
    )


def session(conn: Connection, digest: str) -> SessionInfo | None:
    row = conn.execute(
        select(user_sessions).where(user_sessions.c.token_sha256 == digest)
    ).one_or_none()
    return None if row is None else _session(row)


def revoke(
    conn: Connection,
    now: datetime,
    by: str,
    *,
    digest: str | None = None,
    login: str | None = None,
) -> int:
    """Revoke one session (by its digest) or every live one of a login; how many."""
    query = update(user_sessions).where(user_sessions.c.revoked_at.is_(None))
    if digest is not None:
        query = query.where(user_sessions.c.token_sha256 == digest)
    if login is not None:
        query = query.where(user_sessions.c.login == login)
    return conn.execute(query.values(revoked_at=now, revoked_by=by)).rowcount


# ------------------------------------------------------------------------ failed sign-ins


def _typed(login: str) -> str:
    return hashlib.sha256(login.encode("utf-8")).hexdigest()


def failures(conn: Connection, login: str, since: datetime) -> list[datetime]:
    query = select(sign_in_failures.c.at).where(
        sign_in_failures.c.login_sha256 == _typed(login), sign_in_failures.c.at > since
    )
    return list(conn.execute(query).scalars())


def address_failures(conn: Connection, address: str, since: datetime) -> list[datetime]:
    query = select(sign_in_failures.c.at).where(
        sign_in_failures.c.address == address, sign_in_failures.c.at > since
    )
    return list(conn.execute(query).scalars())


def add_failure(
    conn: Connection, login: str, at: datetime, address: str, *, forget_before: datetime
) -> None:
    """Count a failure of ``login`` from ``address``; failures from before ``forget_before``
    (out of every lockout window) are dropped, so the table holds only what the rules read."""
    conn.execute(delete(sign_in_failures).where(sign_in_failures.c.at <= forget_before))
    conn.execute(
        sign_in_failures.insert().values(login_sha256=_typed(login), at=at, address=address)
    )


def clear_failures(conn: Connection, login: str) -> None:
    conn.execute(delete(sign_in_failures).where(sign_in_failures.c.login_sha256 == _typed(login)))


# ------------------------------------------------------------------------------ item scope


def item_departments(conn: Connection, officer_id: str | None, media_id: int) -> tuple[str, ...]:
    """The departments a media item belongs to: its officer's, and those of the cases it is
    linked to now."""
    found: set[str] = set()
    if officer_id is not None:
        dept = conn.execute(
            select(officers.c.department).where(officers.c.id == officer_id)
        ).scalar_one_or_none()
        if dept:
            found.add(dept)
    linked = select(cases.c.department).join(links, links.c.case_number == cases.c.number)
    linked = linked.where(links.c.media_id == media_id, links.c.removed_at.is_(None))
    found.update(d for d in conn.execute(linked).scalars() if d)
    return tuple(sorted(found))
