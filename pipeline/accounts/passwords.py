"""Passwords, kept as Argon2id hashes (argon2-cffi, RFC 9106's low-memory profile: 3 passes
over 64 MiB, 4 lanes). The hash string carries its parameters, so a profile raised later
re-hashes each password at its owner's next sign-in (:func:`needs_rehash`)."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()  # Argon2id with the RFC 9106 low-memory parameters


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (False for a damaged hash)."""
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)


@cache
def _decoy() -> str:
    return _HASHER.hash("not a password of anyone")


def spend_like_a_verify(password: str) -> None:
    """Take the time a verification takes, for a login that does not exist: how long a
    sign-in takes must not tell which logins do."""
    verify_password(_decoy(), password)
