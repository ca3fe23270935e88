"""Accounts: the people who sign in (``users``: roles, departments as a tree), what each
may do (``permissions``), passwords as Argon2id hashes (``passwords``), sessions and the
lockout rule (``sessions``); the use cases in ``usecases``."""

from pipeline.accounts.permissions import ItemScope, can_search, can_view
from pipeline.accounts.users import User, UserRole

__all__ = ["ItemScope", "User", "UserRole", "can_search", "can_view"]
