"""Sessions and the lockout rule.

A session is a random token (32 bytes, URL-safe) that only the browser holds; the catalog
keeps its SHA-256, so reading the catalog does not let anyone act as its users. The lockout
is a pure rule over the times of a login's failed sign-ins since its last success, with the
clock injected.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the catalog keeps of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SessionInfo:
    """A session as the catalog keeps it (its token is not in it)."""

    login: str
    created_at: datetime
    expires_at: datetime
    address: str
    revoked_at: datetime | None = None

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True)
class Lockout:
    """Failed sign-ins of one login within ``window`` lock it once they reach ``failures``;
    the lock lasts until the oldest of those leaves the window."""

    failures: int
    window: timedelta

    def locked(self, failed_at: Iterable[datetime], now: datetime) -> bool:
        return self.recent(failed_at, now) >= self.failures

    def recent(self, failed_at: Iterable[datetime], now: datetime) -> int:
        start = now - self.window
        return sum(1 for at in failed_at if start < at <= now)
