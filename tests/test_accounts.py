"""Accounts on a real catalog: Argon2id passwords, sign-in with lockout (an injected clock),
sessions that expire and are revoked, the permission rules by role and department, every
account change and sign-in a custody event, and the `evidence users` commands."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher

from interfaces.cli import main
from pipeline.accounts import passwords
from pipeline.accounts import usecases as accounts
from pipeline.accounts.permissions import (
    ItemScope,
    can_manage_users,
    can_search,
    can_view,
    reach,
    reaches,
)
from pipeline.accounts.sessions import Lockout, token_digest
from pipeline.accounts.users import User, UserRole, normal_department, normal_login, within
from pipeline.catalog import Catalog
from pipeline.catalog import accounts as account_rows
from pipeline.catalog import registry as registry_rows
from pipeline.custody import log as custody
from pipeline.errors import (
    AccountError,
    AccountLocked,
    AddressThrottled,
    NotFound,
    NotSignedIn,
    SignInFailed,
)
from pipeline.instance import Instance
from pipeline.models import EventKind, Officer
from pipeline.settings import Settings
from tests.conftest import make_settings

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse 电池"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at its smallest: the real profile costs 0.15 s a hash on two shared cores,
    and these tests hash and verify hundreds of times (the profile has its own test)."""
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def instance(settings: Settings, catalog: Catalog, clock: Clock) -> Iterator[Instance]:
    with catalog.begin() as conn:
        for officer in OFFICERS:
            registry_rows.save_officer(conn, officer, T0)
    yield Instance(settings, catalog, clock=clock, actor="admin1")


OFFICERS = [
    Officer("1023", "张伟", "11010012345", "县公安局/治安大队"),
    Officer("2001", "李娜", "11010054321", "县公安局/交警大队"),
    Officer("9000", "王局", "11010099999", "县公安局"),
]


def _events(catalog: Catalog, *kinds: EventKind) -> list[custody.CustodyEvent]:
    with catalog.read() as conn:
        return [e for e in custody.events(conn) if e.kind in kinds]


def _user(
    roles: tuple[UserRole, ...],
    department: str = "县公安局/治安大队",
    officer: str = "1023",
    enabled: bool = True,
) -> User:
    return User("u", officer, roles, department, enabled, T0, T0)


# ------------------------------------------------------------------------------ passwords


def test_a_password_hash_is_argon2id_and_verifies_only_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.undo()  # the real profile: RFC 9106's low-memory one
    stored = passwords.hash_password(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PASSWORD not in stored
    assert passwords.verify_password(stored, PASSWORD)
    assert not passwords.verify_password(stored, PASSWORD + " ")
    assert not passwords.verify_password("not a hash", PASSWORD)
    assert not passwords.needs_rehash(stored)


# ------------------------------------------------------------------------- vocabulary


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("Zhang.Wei", "zhang.wei"), ("  a001 ", "a001"), ("li_na-2", "li_na-2")],
)
def test_logins_are_case_folded(typed: str, stored: str) -> None:
    assert normal_login(typed) == stored


@pytest.mark.parametrize("typed", ["", "a", "-abc", "张伟", "a b", "x" * 65, "a/b"])
def test_malformed_logins_are_refused(typed: str) -> None:
    with pytest.raises(AccountError, match="登录名"):
        normal_login(typed)


@pytest.mark.parametrize(
    ("department", "scope", "inside"),
    [
        ("县公安局/治安大队", "县公安局", True),
        ("县公安局/治安大队/一中队", "县公安局/治安大队", True),
        ("县公安局", "县公安局", True),
        ("县公安局", "县公安局/治安大队", False),  # a unit does not reach the one above it
        ("县公安局/治安大队二", "县公安局/治安大队", False),  # a prefix of the name is not a unit
        ("县公安局/交警大队", "县公安局/治安大队", False),
        (" 县公安局 // 治安大队/", "县公安局", True),
        ("县公安局", "", False),  # no department: no tree
        ("", "", False),
    ],
)
def test_a_department_reaches_the_units_below_it(department: str, scope: str, inside: bool) -> None:
    assert within(department, scope) is inside


def test_departments_are_normalised_as_paths() -> None:
    assert normal_department(" 县公安局 // 治安大队/") == "县公安局/治安大队"


MINE = ItemScope("1023", ("县公安局/治安大队",))
SAME_UNIT = ItemScope("1024", ("县公安局/治安大队",))
BELOW = ItemScope("1025", ("县公安局/治安大队/一中队",))
OTHER_UNIT = ItemScope("2001", ("县公安局/交警大队",))
LINKED_HERE = ItemScope("2001", ("县公安局/交警大队", "县公安局/治安大队"))  # a case of ours


@pytest.mark.parametrize(
    ("roles", "item", "allowed"),
    [
        ((UserRole.OFFICER,), MINE, True),
        ((UserRole.OFFICER,), SAME_UNIT, False),
        ((UserRole.ARCHIVIST,), SAME_UNIT, True),
        ((UserRole.ARCHIVIST,), BELOW, True),
        ((UserRole.ARCHIVIST,), OTHER_UNIT, False),
        ((UserRole.ARCHIVIST,), LINKED_HERE, True),
        ((UserRole.SUPERVISOR,), BELOW, True),
        ((UserRole.SUPERVISOR,), OTHER_UNIT, False),
        ((UserRole.LEGAL_REVIEWER,), OTHER_UNIT, True),
        ((UserRole.ADMIN,), MINE, False),  # no evidence viewing by default
        ((UserRole.ADMIN,), SAME_UNIT, False),
        ((UserRole.OFFICER, UserRole.ARCHIVIST), SAME_UNIT, True),  # roles add up
        ((), MINE, False),
    ],
)
def test_who_may_view_an_item(roles: tuple[UserRole, ...], item: ItemScope, allowed: bool) -> None:
    assert can_view(_user(roles), item) is allowed


def test_a_listing_reaches_exactly_the_items_the_user_may_view() -> None:
    """``reach`` (what the search's SQL takes) against ``can_view``, for every set of roles."""
    items = [MINE, SAME_UNIT, BELOW, OTHER_UNIT, LINKED_HERE, ItemScope(None, ()),
             ItemScope("3001", ("县公安局/治安大队二",)), ItemScope("9000", ("县公安局",))]  # fmt: skip
    for mask in range(1 << len(UserRole)):
        roles = tuple(r for i, r in enumerate(UserRole) if mask >> i & 1)
        for department in ("县公安局/治安大队", "县公安局", " 县公安局 // 治安大队/", ""):
            for enabled in (True, False):
                user = _user(roles, department, enabled=enabled)
                for item in items:
                    assert reaches(reach(user), item) is can_view(user, item), (user, item)


def test_a_disabled_user_may_do_nothing() -> None:
    user = _user((UserRole.LEGAL_REVIEWER, UserRole.ADMIN), enabled=False)
    assert not can_view(user, MINE)
    assert not can_search(user)
    assert not can_manage_users(user)


def test_an_admin_manages_users_and_does_not_search() -> None:
    assert can_manage_users(_user((UserRole.ADMIN,)))
    assert not can_search(_user((UserRole.ADMIN,)))
    assert can_search(_user((UserRole.OFFICER,)))
    assert not can_manage_users(_user((UserRole.ARCHIVIST,)))


def test_the_lockout_rule_counts_failures_inside_the_window_only() -> None:
    rule = Lockout(3, timedelta(minutes=15))
    now = T0
    failures = [now - timedelta(minutes=m) for m in (1, 5, 16)]
    assert not rule.locked(failures, now)  # the third is outside the window
    assert rule.locked([*failures, now - timedelta(minutes=14)], now)
    assert not rule.locked([now + timedelta(minutes=1)] * 3, now)  # none from the future


# ------------------------------------------------------------------------------ accounts


def _add(
    instance: Instance,
    login: str = "zhang.wei",
    roles: tuple[UserRole, ...] = (UserRole.ARCHIVIST,),
    officer: str = "1023",
    **kw: str,
) -> User:
    return accounts.add_user(
        instance, login, officer_id=officer, roles=roles, password=PASSWORD, **kw
    )


def test_a_user_is_an_officer_with_the_officers_department_by_default(instance: Instance) -> None:
    user = _add(instance, "Zhang.Wei")
    assert user.login == "zhang.wei"
    assert user.department == "县公安局/治安大队"
    assert accounts.list_users(instance) == (user,)
    with instance.catalog.read() as conn:
        stored = account_rows.password_hash(conn, "zhang.wei")
    assert stored is not None and passwords.verify_password(stored, PASSWORD)
    (event,) = _events(instance.catalog, EventKind.USER_CHANGED)
    assert event.actor == "admin1"
    assert event.details == {
        "action": "added",
        "login": "zhang.wei",
        "row": {
            "login": "zhang.wei",
            "officer_id": "1023",
            "roles": ["archivist"],
            "department": "县公安局/治安大队",
            "enabled": True,
            "created_at": "2026-11-30T09:00:00.000000+00:00",
            "updated_at": "2026-11-30T09:00:00.000000+00:00",
        },
        "password_sha256": hashlib.sha256(stored.encode()).hexdigest(),
    }
    assert "argon2" not in json.dumps(event.details), "no hash in the log"


def test_adding_a_user_refuses_an_unknown_officer_a_taken_login_and_a_short_password(
    instance: Instance,
) -> None:
    with pytest.raises(NotFound, match="officer not found: 7777"):
        _add(instance, officer="7777")
    _add(instance)
    with pytest.raises(AccountError, match="登录名已存在"):
        _add(instance, "ZHANG.WEI")
    with pytest.raises(AccountError, match="至少 10 个字符"):
        accounts.add_user(
            instance, "li.na", officer_id="2001", roles=[UserRole.OFFICER], password="short"
        )
    with pytest.raises(AccountError, match="至少一个角色"):
        accounts.add_user(instance, "li.na", officer_id="2001", roles=[], password=PASSWORD)
    assert [u.login for u in accounts.list_users(instance)] == ["zhang.wei"]


def test_roles_and_department_can_be_set(instance: Instance) -> None:
    _add(instance)
    user = accounts.set_roles(
        instance, "zhang.wei", [UserRole.SUPERVISOR, UserRole.OFFICER], department="县公安局/"
    )
    assert user.roles == (UserRole.OFFICER, UserRole.SUPERVISOR)
    assert user.department == "县公安局"
    assert accounts.list_users(instance) == (user,)
    with pytest.raises(NotFound, match="user not found: nobody"):
        accounts.set_roles(instance, "nobody", [UserRole.OFFICER])


# ------------------------------------------------------------------------------- sign-in


def test_sign_in_gives_a_session_whose_token_the_catalog_does_not_keep(instance: Instance) -> None:
    _add(instance)
    signed = accounts.sign_in(instance, "Zhang.Wei", PASSWORD, address="10.0.0.7")
    assert signed.user.login == "zhang.wei"
    assert signed.session.expires_at == T0 + timedelta(
        minutes=instance.settings.web.session_minutes
    )
    with instance.catalog.read() as conn:
        dumped = json.dumps(
            [list(r) for r in conn.exec_driver_sql("select * from user_sessions")], default=str
        )
    assert signed.token not in dumped and token_digest(signed.token) in dumped
    assert accounts.authenticate(instance, signed.token).user == signed.user
    (event,) = _events(instance.catalog, EventKind.SIGNED_IN)
    assert (event.seq, event.actor, event.subject) == (signed.event, "zhang.wei", "user zhang.wei")
    assert event.details["address"] == "10.0.0.7"


def test_a_hash_of_weaker_parameters_is_made_again_at_sign_in(
    instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add(instance)  # hashed with the weakest parameters (cheap_hashing)
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    )
    signed = accounts.sign_in(instance, "zhang.wei", PASSWORD)
    with instance.catalog.read() as conn:
        stored = account_rows.password_hash(conn, "zhang.wei")
    assert (
        stored is not None
        and "m=16,t=2,p=1" in stored
        and passwords.verify_password(stored, PASSWORD)
    )
    (event,) = _events(instance.catalog, EventKind.SIGNED_IN)
    assert event.seq == signed.event
    assert event.details["password_sha256"] == hashlib.sha256(stored.encode()).hexdigest()
    accounts.sign_in(instance, "zhang.wei", PASSWORD)
    assert "password_sha256" not in _events(instance.catalog, EventKind.SIGNED_IN)[-1].details


def test_a_wrong_password_and_an_unknown_login_fail_alike_and_are_recorded(
    instance: Instance,
) -> None:
    _add(instance)
    with pytest.raises(SignInFailed) as wrong:
        accounts.sign_in(instance, "zhang.wei", "wrong password!")
    with pytest.raises(SignInFailed) as unknown:
        accounts.sign_in(instance, "my secret password", "wrong password!")
    assert str(wrong.value) == str(unknown.value) == "登录名或密码错误 (wrong login or password)"
    bad, nobody = _events(instance.catalog, EventKind.SIGN_IN_FAILED)
    assert (bad.actor, bad.details["reason"], bad.details["failures"]) == (
        "zhang.wei",
        "bad-password",
        1,
    )
    # What was typed as a login may be a password: the log keeps only its hash.
    assert (nobody.actor, nobody.subject, nobody.details["reason"]) == (
        "anonymous",
        "sign-in",
        "unknown-login",
    )
    assert "my secret password" not in json.dumps(nobody.record(), ensure_ascii=False)
    with instance.catalog.read() as conn:
        kept = [list(r) for r in conn.exec_driver_sql("select * from sign_in_failures")]
    assert (
        len(kept) == 2 and "my secret password" not in repr(kept) and "zhang.wei" not in repr(kept)
    )
    assert _events(instance.catalog, EventKind.SIGNED_IN) == []


def test_a_disabled_account_cannot_sign_in_and_its_sessions_end(instance: Instance) -> None:
    _add(instance)
    signed = accounts.sign_in(instance, "zhang.wei", PASSWORD)
    accounts.set_enabled(instance, "zhang.wei", False)
    with pytest.raises(NotSignedIn):
        accounts.authenticate(instance, signed.token)
    with pytest.raises(SignInFailed):
        accounts.sign_in(instance, "zhang.wei", PASSWORD)
    (failed,) = _events(instance.catalog, EventKind.SIGN_IN_FAILED)
    assert failed.details["reason"] == "disabled"
    actions = [e.details["action"] for e in _events(instance.catalog, EventKind.USER_CHANGED)]
    assert actions == ["added", "disabled"]
    accounts.set_enabled(instance, "zhang.wei", True)
    assert accounts.authenticate(instance, accounts.sign_in(instance, "zhang.wei", PASSWORD).token)


def test_five_failures_in_fifteen_minutes_lock_the_login_until_they_age_out(
    instance: Instance, clock: Clock
) -> None:
    _add(instance)
    for _ in range(4):
        with pytest.raises(SignInFailed) as failed:
            accounts.sign_in(instance, "zhang.wei", "wrong password!")
        assert not isinstance(failed.value, AccountLocked)
        clock.advance(minutes=1)
    with pytest.raises(AccountLocked, match="11 分钟"):  # the fifth: locked from now on
        accounts.sign_in(instance, "zhang.wei", "wrong password!")
    clock.advance(minutes=5)
    with pytest.raises(AccountLocked):  # the right password does not get through a lock
        accounts.sign_in(instance, "zhang.wei", PASSWORD)
    reasons = [e.details["reason"] for e in _events(instance.catalog, EventKind.SIGN_IN_FAILED)]
    assert reasons == ["bad-password"] * 5 + ["locked"]
    clock.advance(minutes=6)  # the first failure is now 15 min old: four remain in the window
    accounts.sign_in(instance, "zhang.wei", PASSWORD)
    clock.advance(minutes=1)
    with pytest.raises(SignInFailed) as again:  # a success starts the count anew
        accounts.sign_in(instance, "zhang.wei", "wrong password!")
    assert not isinstance(again.value, AccountLocked)


def test_failures_out_of_every_window_are_forgotten(instance: Instance, clock: Clock) -> None:
    for login in ("ghost", "zhang.wei", "ghost"):
        with pytest.raises(SignInFailed):
            accounts.sign_in(instance, login, "whatever it is")
    clock.advance(minutes=instance.settings.web.lockout_minutes + 1)
    with pytest.raises(SignInFailed):
        accounts.sign_in(instance, "someone", "whatever it is")
    with instance.catalog.read() as conn:
        assert conn.exec_driver_sql("select count(*) from sign_in_failures").scalar() == 1


def test_unknown_logins_are_locked_too(instance: Instance) -> None:
    """A lockout that only known logins get would tell which logins exist."""
    for _ in range(instance.settings.web.lockout_failures - 1):
        with pytest.raises(SignInFailed):
            accounts.sign_in(instance, "ghost", "whatever it is")
    with pytest.raises(AccountLocked):
        accounts.sign_in(instance, "ghost", "whatever it is")


def test_one_address_trying_many_logins_is_refused_for_the_window(
    settings: Settings, instance: Instance, clock: Clock
) -> None:
    strict = Instance(
        make_settings(settings.home, web={"lockout_address_failures": 3}),
        instance.catalog,
        clock=clock,
    )
    _add(strict)
    for login in ("ghost", "li.na"):
        with pytest.raises(SignInFailed) as failed:
            accounts.sign_in(strict, login, "Password1!", address="10.0.0.9")
        assert type(failed.value) is SignInFailed
    with pytest.raises(AddressThrottled, match=r"该地址登录失败次数过多.*15 分钟"):
        accounts.sign_in(strict, "wang", "Password1!", address="10.0.0.9")
    with pytest.raises(AddressThrottled):  # the right password does not get through either
        accounts.sign_in(strict, "zhang.wei", PASSWORD, address="10.0.0.9")
    assert accounts.sign_in(strict, "zhang.wei", PASSWORD, address="10.0.0.10"), (
        "other addresses go on"
    )
    reasons = [e.details["reason"] for e in _events(strict.catalog, EventKind.SIGN_IN_FAILED)]
    assert reasons == ["unknown-login", "unknown-login", "unknown-login", "address-throttled"]
    clock.advance(minutes=15)
    assert accounts.sign_in(strict, "zhang.wei", PASSWORD, address="10.0.0.9"), "the window passed"


def test_a_session_expires(instance: Instance, clock: Clock) -> None:
    _add(instance)
    signed = accounts.sign_in(instance, "zhang.wei", PASSWORD)
    clock.advance(minutes=instance.settings.web.session_minutes - 1)
    assert accounts.authenticate(instance, signed.token)
    clock.advance(minutes=1)
    with pytest.raises(NotSignedIn, match="登录已失效"):
        accounts.authenticate(instance, signed.token)


def test_sign_out_revokes_the_session_and_is_recorded(instance: Instance) -> None:
    _add(instance)
    signed = accounts.sign_in(instance, "zhang.wei", PASSWORD)
    other = accounts.sign_in(instance, "zhang.wei", PASSWORD)
    out = accounts.sign_out(instance, signed.token)
    assert out.login == "zhang.wei"
    with pytest.raises(NotSignedIn):
        accounts.authenticate(instance, signed.token)
    assert accounts.authenticate(instance, other.token), "the other session goes on"
    assert accounts.sign_out(instance, signed.token) == accounts.SignedOut(None, None)
    (event,) = _events(instance.catalog, EventKind.SIGNED_OUT)
    assert (event.seq, event.actor) == (out.event, "zhang.wei")
    for token in (None, "", "not-a-token"):
        with pytest.raises(NotSignedIn):
            accounts.authenticate(instance, token)


def test_a_new_password_revokes_every_session(instance: Instance) -> None:
    _add(instance)
    signed = accounts.sign_in(instance, "zhang.wei", PASSWORD)
    accounts.set_password(instance, "zhang.wei", "a brand new password")
    with pytest.raises(NotSignedIn):
        accounts.authenticate(instance, signed.token)
    with pytest.raises(SignInFailed):
        accounts.sign_in(instance, "zhang.wei", PASSWORD)
    assert accounts.sign_in(instance, "zhang.wei", "a brand new password")
    (changed,) = [
        e
        for e in _events(instance.catalog, EventKind.USER_CHANGED)
        if e.details["action"] == "password-set"
    ]
    assert changed.details["sessions_revoked"] == 1
    with instance.catalog.read() as conn:
        stored = account_rows.password_hash(conn, "zhang.wei")
    assert (
        stored is not None
        and changed.details["password_sha256"] == hashlib.sha256(stored.encode()).hexdigest()
    )
    assert set(changed.details["row"]) == {"updated_at"}


# ------------------------------------------------------------------------------------ CLI


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    """`evidence …` run in this process (a subprocess costs a second of start-up each) through
    its real entry point, which turns domain errors into one line and exit code 2."""
    umask = os.umask(0o077)
    os.umask(umask)

    def run(*args: str, input: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["evidence", *args])
        monkeypatch.setattr(sys, "stdin", io.StringIO(input))
        with pytest.raises(SystemExit) as done:
            main()
        captured = capsys.readouterr()
        return int(done.value.code or 0), captured.out, captured.err

    yield run
    os.umask(umask)


def test_users_add_list_disable_through_the_cli(instance: Instance, cli: Cli) -> None:
    code, out, err = cli(
        "users",
        "add",
        "Li.Na",
        "--officer",
        "2001",
        "--role",
        "officer",
        "--role",
        "archivist",
        "--password-stdin",
        "--json",
        input=PASSWORD + "\n",
    )
    assert code == 0, err
    added = json.loads(out)
    assert (added["login"], added["roles"], added["department"]) == (
        "li.na",
        ["officer", "archivist"],
        "县公安局/交警大队",
    )
    assert "password" not in out
    code, out, _ = cli("users", "list", "--json")
    assert [u["login"] for u in json.loads(out)] == ["li.na"]
    code, out, _ = cli("users", "list")
    assert "li.na" in out and "执法人员" in out
    code, out, err = cli("users", "disable", "li.na", "--json")
    assert code == 0, err
    assert json.loads(out)["enabled"] is False
    # Reopen the catalog and look: the account is disabled, as a custody event says.
    (user,) = accounts.list_users(instance)
    assert not user.enabled
    actions = [e.details["action"] for e in _events(instance.catalog, EventKind.USER_CHANGED)]
    assert actions == ["added", "disabled"]


def test_users_cli_errors_are_one_clean_line(instance: Instance, cli: Cli) -> None:
    code, _, err = cli(
        "users",
        "add",
        "x1",
        "--officer",
        "7777",
        "--role",
        "officer",
        "--password-stdin",
        input=PASSWORD,
    )
    assert code == 2 and "officer not found: 7777" in err and "Traceback" not in err
    code, _, err = cli(
        "users",
        "add",
        "x1",
        "--officer",
        "1023",
        "--role",
        "boss",
        "--password-stdin",
        input=PASSWORD,
    )
    assert code == 2 and "boss" in err and "Traceback" not in err
    code, _, err = cli(
        "users",
        "add",
        "x1",
        "--officer",
        "1023",
        "--role",
        "officer",
        "--password-stdin",
        input="short\n",
    )
    assert code == 2 and "至少 10 个字符" in err
    code, _, err = cli("users", "disable", "nobody")
    assert code == 2 and "user not found: nobody" in err
    assert accounts.list_users(instance) == ()


def test_users_set_password_and_roles_through_the_cli(instance: Instance, cli: Cli) -> None:
    _add(instance)
    code, _, err = cli(
        "users", "set-password", "zhang.wei", "--password-stdin", input="another good password\n"
    )
    assert code == 0, err
    signed = accounts.sign_in(instance, "zhang.wei", "another good password")
    code, out, err = cli("users", "sign-out", "zhang.wei", "--json")
    assert (code, json.loads(out)) == (0, {"login": "zhang.wei", "sessions_revoked": 1}), err
    with pytest.raises(NotSignedIn):
        accounts.authenticate(instance, signed.token)
    code, out, err = cli(
        "users",
        "set-roles",
        "zhang.wei",
        "--role",
        "supervisor",
        "--department",
        "县公安局",
        "--json",
    )
    assert code == 0, err
    assert (json.loads(out)["roles"], json.loads(out)["department"]) == (["supervisor"], "县公安局")


# ----------------------------------------------------------------- --as names a real person


def _officers_add(cli: Cli, officer_id: str, actor: str) -> tuple[int, str, str]:
    return cli("officers", "add", officer_id, "--name", "赵六", "--cert", f"C{officer_id}",
               "--as", actor)  # fmt: skip


def _registered_by(instance: Instance, officer_id: str) -> list[str]:
    return [e.actor for e in _events(instance.catalog, EventKind.REGISTRY_CHANGED)
            if officer_id in e.subject]  # fmt: skip


def test_as_is_taken_as_given_while_no_account_exists(instance: Instance, cli: Cli) -> None:
    code, _, err = _officers_add(cli, "3001", "1023")  # a registrar: a registered officer
    assert code == 0, err
    code, _, err = cli("search", "--reveal", "--as", "whoever", "--reason", "复核案件")
    assert code == 0, err
    assert _registered_by(instance, "3001") == ["1023"]


def test_as_must_name_an_enabled_user_once_an_account_exists(instance: Instance, cli: Cli) -> None:
    _add(instance)  # zhang.wei, officer 1023
    code, _, err = _officers_add(cli, "3001", "nobody")
    assert code == 2 and "--as 须为已启用用户" in err and "Traceback" not in err
    with instance.catalog.read() as conn:
        assert registry_rows.officer(conn, "3001") is None, "refused before anything is written"
    code, _, err = cli("search", "--reveal", "--as", "nobody", "--reason", "复核案件")
    assert code == 2 and "--as 须为已启用用户" in err and "Traceback" not in err
    code, _, err = _officers_add(cli, "3001", "Zhang.Wei")  # a login, as typed
    assert code == 0, err
    code, _, err = _officers_add(cli, "3002", "1023")  # the officer id of one user
    assert code == 0, err
    assert _registered_by(instance, "3001") + _registered_by(instance, "3002") == [
        "zhang.wei",
        "zhang.wei",
    ]
    _add(instance, "zhang.wei2")  # a second account of officer 1023: the id is ambiguous
    code, _, err = _officers_add(cli, "3003", "1023")
    assert code == 2 and "officer 1023 has 2 accounts" in err
    accounts.set_enabled(instance, "zhang.wei", False)
    code, _, err = _officers_add(cli, "3003", "zhang.wei")
    assert code == 2 and "--as 须为已启用用户" in err
