"""Who asks for a report, and the names reports print beside logins and officer ids."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import User
from pipeline.catalog import accounts as account_rows
from pipeline.catalog import registry as registry_rows
from pipeline.errors import AccessRefused
from pipeline.instance import Instance


@dataclass(frozen=True)
class Reader:
    """Who a report is made for: a login (the custody event's actor) and its account; no
    account on an instance without accounts (the server's shell, as ``evidence audit``),
    where nothing is scoped."""

    login: str
    user: User | None = None


def signed(user: User) -> Reader:
    """The signed-in user of a web request."""
    return Reader(user.login, user)


def named(instance: Instance, name: str | None) -> Reader:
    """Who ``--as name`` is (``accounts.person_acting``: once accounts exist, an enabled
    user, else AccountError); AccessRefused without one: a report is an access, it names
    a person."""
    who = accounts.person_acting(instance, name)
    if not who or not who.strip():
        raise AccessRefused("report", "who is asking is required (--as)")
    with instance.catalog.read() as conn:
        user = account_rows.get(conn, who) if account_rows.all_users(conn) else None
    return Reader(who, user)


@dataclass(frozen=True)
class Names:
    """Officer id → name, and login → the name of its officer."""

    officers: dict[str, str]
    logins: dict[str, str]

    def officer(self, officer_id: str | None) -> str:
        """``1023 张伟``; the id alone when the registry does not know it."""
        if not officer_id:
            return ""
        name = self.officers.get(officer_id)
        return f"{officer_id} {name}" if name else officer_id

    def actor(self, actor: str) -> str:
        """``zhang.wei（张伟）``: the login the log holds, and who it is."""
        name = self.logins.get(actor) or self.officers.get(actor)
        return f"{actor}（{name}）" if name else actor


def names(instance: Instance) -> Names:
    with instance.catalog.read() as conn:
        officers = {o.id: o.name for o in registry_rows.all_officers(conn)}
        users = account_rows.all_users(conn)
    logins = {u.login: officers[u.officer_id] for u in users if u.officer_id in officers}
    return Names(officers, logins)
