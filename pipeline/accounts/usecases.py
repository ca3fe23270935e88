"""The use cases of accounts: users (add, list, disable, enable, set a password or roles),
signing in and out, the session behind a request, and whether a user may view an item.

Each takes the :class:`~pipeline.instance.Instance` first, owns its transactions and returns
a frozen dataclass. Every change is a custody event in the same transaction: USER_CHANGED
for an account, SIGNED_IN, SIGN_IN_FAILED and SIGNED_OUT for sessions, REFUSED for evidence
a user's roles do not reach. Password hashing (tens of milliseconds by design) runs outside
any write transaction, which on SQLite would hold every ingest back meanwhile.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import Connection

from pipeline.accounts import passwords
from pipeline.accounts.permissions import (
    ItemScope,
    audit_reach,
    can_audit,
    can_describe,
    can_file_case,
    can_manage_users,
    can_view,
    can_view_case,
    require,
)
from pipeline.accounts.sessions import Lockout, SessionInfo, new_token, token_digest
from pipeline.accounts.users import (
    User,
    UserRole,
    check_password,
    normal_department,
    normal_login,
)
from pipeline.approvals import enforce
from pipeline.approvals.enforce import Permit
from pipeline.approvals.policy import Action, policy_of
from pipeline.cases import usecases as cases_usecases
from pipeline.cases.compliance import AV_KINDS
from pipeline.cases.coverage import Timeline, timeline
from pipeline.cases.seal import Sealed
from pipeline.catalog import accounts as rows
from pipeline.catalog import cases as case_rows
from pipeline.catalog import media as media_db
from pipeline.catalog import registry as registry_rows
from pipeline.custody import log as custody
from pipeline.custody import replay
from pipeline.custody import usecases as custody_usecases
from pipeline.custody.access import AuditedEvent, View
from pipeline.errors import (
    AccessRefused,
    AccountError,
    AccountLocked,
    AddressThrottled,
    NotFound,
    NotSignedIn,
    PermissionDenied,
    SignInFailed,
)
from pipeline.instance import Instance
from pipeline.models import Case, EventKind, MediaItem

#: Who a failed sign-in of a login nobody has is recorded as: what was typed may be a
#: password typed into the wrong box, and the custody log keeps it for ever. Its SHA-256
#: goes into the details instead, enough to tell repeated attempts apart.
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class SignedIn:
    """A new session. ``token`` goes into the browser's cookie; it exists nowhere else."""

    user: User
    token: str
    session: SessionInfo
    event: int  # seq of the SIGNED_IN event


@dataclass(frozen=True)
class Signed:
    """The signed-in user behind a request, and their session."""

    user: User
    session: SessionInfo


@dataclass(frozen=True)
class SignedOut:
    login: str | None  # None: the session was unknown, expired or already revoked
    event: int | None


# ---------------------------------------------------------------------------------- users


def add_user(
    instance: Instance,
    login: str,
    *,
    officer_id: str,
    roles: Sequence[UserRole],
    password: str,
    department: str | None = None,
) -> User:
    """An account for the registered officer ``officer_id``; its department defaults to the
    officer's. AccountError for a login taken or malformed, a weak password or no role;
    NotFound for an officer the registry does not know."""
    name = normal_login(login)
    check_password(name, password)
    if not roles:
        raise AccountError(name, "至少一个角色 (give at least one role)")
    hashed = passwords.hash_password(password)
    now = instance.clock()
    with instance.catalog.begin() as conn:
        officer = registry_rows.officer(conn, officer_id)
        if officer is None:
            raise NotFound("officer", officer_id)
        if rows.get(conn, name) is not None:
            raise AccountError(name, "登录名已存在 (the login exists)")
        user = User(
            login=name,
            officer_id=officer.id,
            roles=tuple(r for r in UserRole if r in set(roles)),
            department=normal_department(officer.department if department is None else department),
            enabled=True,
            created_at=now,
            updated_at=now,
        )
        written = rows.insert(conn, user, hashed)
        _changed(conn, instance, user, "added", written, now)
    return user


def list_users(instance: Instance) -> tuple[User, ...]:
    with instance.catalog.read() as conn:
        return tuple(rows.all_users(conn))


def set_enabled(instance: Instance, login: str, enabled: bool) -> User:
    """Enable or disable an account; disabling revokes its sessions at once."""
    now = instance.clock()
    with instance.catalog.begin() as conn:
        user = _existing(conn, login)
        written = rows.change(conn, user.login, now, enabled=enabled)
        revoked = 0 if enabled else rows.revoke(conn, now, _actor(instance), login=user.login)
        user = replace(user, enabled=enabled, updated_at=now)
        action = "enabled" if enabled else "disabled"
        _changed(conn, instance, user, action, written, now, sessions_revoked=revoked)
    return user


def set_password(instance: Instance, login: str, password: str) -> User:
    """A new password; every session of the account is revoked (a stolen one with it)."""
    name = normal_login(login)
    check_password(name, password)
    hashed = passwords.hash_password(password)
    now = instance.clock()
    with instance.catalog.begin() as conn:
        user = _existing(conn, name)
        written = rows.change(conn, user.login, now, password_hash=hashed)
        rows.clear_failures(conn, user.login)
        revoked = rows.revoke(conn, now, _actor(instance), login=user.login)
        user = replace(user, updated_at=now)
        _changed(conn, instance, user, "password-set", written, now, sessions_revoked=revoked)
    return user


def set_roles(
    instance: Instance,
    login: str,
    roles: Sequence[UserRole],
    *,
    department: str | None = None,
) -> User:
    """Replace an account's roles (and its department, when given)."""
    if not roles:
        raise AccountError(login, "至少一个角色 (give at least one role)")
    now = instance.clock()
    with instance.catalog.begin() as conn:
        user = _existing(conn, login)
        ordered = tuple(r for r in UserRole if r in set(roles))
        dept = user.department if department is None else normal_department(department)
        written = rows.change(conn, user.login, now, roles=ordered, department=dept)
        user = replace(user, roles=ordered, department=dept, updated_at=now)
        _changed(conn, instance, user, "roles-set", written, now)
    return user


def revoke_sessions(instance: Instance, login: str) -> int:
    """End every live session of an account at once (a lost phone, a shared computer); how
    many there were. The account stays enabled."""
    now = instance.clock()
    with instance.catalog.begin() as conn:
        user = _existing(conn, login)
        revoked = rows.revoke(conn, now, _actor(instance), login=user.login)
        _changed(conn, instance, user, "sessions-revoked", {}, now, sessions_revoked=revoked)
    return revoked


def person_acting(instance: Instance, name: str | None) -> str | None:
    """Who ``--as name`` is, on the server's shell: once any account exists, the login of the
    enabled user whose login is ``name``, or who is the officer ``name`` (the one enabled
    account of that officer); AccountError otherwise, so that nobody acts as a person the
    catalog does not know. Without accounts (a fresh install, a dock host) ``name`` is taken
    as given; None (no ``--as``) stays None: the ``actor`` setting acts."""
    if name is None:
        return None
    with instance.catalog.read() as conn:
        accounts = rows.all_users(conn)
    if not accounts:
        return name
    enabled = [u for u in accounts if u.enabled]
    typed = name.strip()
    by_login = [u for u in enabled if u.login == typed.lower()]
    by_officer = [u for u in enabled if u.officer_id == typed]
    if by_login:
        return by_login[0].login
    if len(by_officer) == 1:
        return by_officer[0].login
    if by_officer:
        hint = f"officer {typed} has {len(by_officer)} accounts: give the login"
    else:
        hint = "give a login, or the officer id of one user; `evidence users list` lists them"
    raise AccountError(
        typed or "?",
        f"--as 须为已启用用户的登录名或执法人员编号 (--as names no enabled user: {hint})",
    )


def administering(instance: Instance, user: User) -> Instance:
    """The instance with ``user`` acting on accounts, if they may (``can_manage_users``;
    PermissionDenied otherwise): the web's way into the account use cases above, which the
    CLI on the server's shell calls directly."""
    require(user, can_manage_users, "users")
    return instance.acting(user.login)


def _existing(conn: Connection, login: str) -> User:
    user = rows.get(conn, normal_login(login))
    if user is None:
        raise NotFound("user", login)
    return user


def _changed(
    conn: Connection,
    instance: Instance,
    user: User,
    action: str,
    written: dict[str, Any],
    now: datetime,
    **more: Any,
) -> None:
    custody.append(
        conn,
        EventKind.USER_CHANGED,
        _actor(instance),
        subject=f"user {user.login}",
        details={"action": action, "login": user.login, **_written(written), **more},
        now=now,
    )


def _written(written: dict[str, Any]) -> dict[str, Any]:
    """What an event records of a users row it wrote: the columns and values (``row``, as
    the catalog replay reads events), the password hash only as its SHA-256 — an account's
    roles and password are what an attacker who can write the catalog would change."""
    row = {k: v for k, v in written.items() if k != "password_hash"}
    found: dict[str, Any] = {"row": replay.recorded_row(row)}
    if "password_hash" in written:
        found["password_sha256"] = hashlib.sha256(written["password_hash"].encode()).hexdigest()
    return found


# -------------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class SignInRules:
    """The two lockouts: of one login (any address), and of one address (any logins)."""

    login: Lockout
    address: Lockout


def sign_in_rules(instance: Instance) -> SignInRules:
    web = instance.settings.web
    window = timedelta(minutes=web.lockout_minutes)
    return SignInRules(
        Lockout(web.lockout_failures, window), Lockout(web.lockout_address_failures, window)
    )


def sign_in(
    instance: Instance, login: str, password: str, *, address: str = "", via: str = "web"
) -> SignedIn:
    """A session for ``login`` if ``password`` is its own, the account is enabled, and
    neither the login nor the ``address`` it comes from is locked. Otherwise SignInFailed
    (AccountLocked once the login's failures in the lockout window reach the limit,
    AddressThrottled once the address's do), after its SIGN_IN_FAILED event is committed;
    the message never says which of the checks failed."""
    typed = login.strip().lower()[:64]
    address = address[:64]
    rules = sign_in_rules(instance)
    now = instance.clock()
    since = now - rules.login.window
    with instance.catalog.read() as conn:
        user = rows.get(conn, typed)
        stored = rows.password_hash(conn, typed) if user is not None else None
        failed_at = rows.failures(conn, typed, since)
        from_address = rows.address_failures(conn, address, since) if address else []
    # A lock stops the password from being even checked: guessing goes no further.
    if rules.address.locked(from_address, now):
        reason = "address-throttled"
    elif rules.login.locked(failed_at, now):
        reason = "locked"
    elif stored is None:
        passwords.spend_like_a_verify(password)
        reason = "unknown-login"
    elif not passwords.verify_password(stored, password):
        reason = "bad-password"
    elif user is None or not user.enabled:
        reason = "disabled"
    else:
        reason = ""
    if reason:
        _refuse_sign_in(instance, typed, user, reason, address, via, rules, now)
    assert user is not None and stored is not None
    rehashed = passwords.hash_password(password) if passwords.needs_rehash(stored) else None
    token = new_token()
    session = SessionInfo(
        user.login,
        now,
        now + timedelta(minutes=instance.settings.web.session_minutes),
        address,
    )
    with instance.catalog.begin() as conn:
        rows.clear_failures(conn, user.login)
        rehash = {}
        if rehashed is not None:  # stronger parameters than the stored hash's
            rehash = _written(rows.change(conn, user.login, now, password_hash=rehashed))
        rows.add_session(conn, token_digest(token), session)
        event = custody.append(
            conn,
            EventKind.SIGNED_IN,
            user.login,
            subject=f"user {user.login}",
            details={
                "via": via,
                "address": session.address,
                "expires": session.expires_at.isoformat(),
                **rehash,
            },
            now=now,
        )
    return SignedIn(user, token, session, event.seq)


#: The failures that are refusals of a lock already in force, not guesses: not counted.
_LOCKED = ("locked", "address-throttled")


def _refuse_sign_in(
    instance: Instance,
    typed: str,
    user: User | None,
    reason: str,
    address: str,
    via: str,
    rules: SignInRules,
    now: datetime,
) -> NoReturn:
    known = user is not None
    since = now - rules.login.window
    with instance.catalog.begin() as conn:
        if reason not in _LOCKED:
            rows.add_failure(conn, typed, now, address, forget_before=since)
        recent = rows.failures(conn, typed, since)
        from_address = rows.address_failures(conn, address, since) if address else []
        details: dict[str, Any] = {
            "reason": reason,
            "via": via,
            "address": address,
            "failures": rules.login.recent(recent, now),
        }
        if not known:
            details["login_sha256"] = hashlib.sha256(typed.encode("utf-8")).hexdigest()
        custody.append(
            conn,
            EventKind.SIGN_IN_FAILED,
            typed if known else ANONYMOUS,
            subject=f"user {typed}" if known else "sign-in",
            details=details,
            now=now,
        )
    if rules.login.locked(recent, now):
        raise AccountLocked(typed, _minutes_left(rules.login, recent, now))
    if rules.address.locked(from_address, now):
        raise AddressThrottled(address, _minutes_left(rules.address, from_address, now))
    raise SignInFailed()


def _minutes_left(rule: Lockout, failed_at: list[datetime], now: datetime) -> int:
    """Whole minutes until the oldest failure in the window leaves it (at least one)."""
    recent = [at for at in failed_at if now - rule.window < at <= now]
    left = min(recent) + rule.window - now
    return max(1, round(left.total_seconds() / 60))


def authenticate(instance: Instance, token: str | None) -> Signed:
    """The user whose live session ``token`` is; NotSignedIn when there is none, it expired
    or was revoked, or its account is disabled."""
    if not token:
        raise NotSignedIn()
    with instance.catalog.read() as conn:
        session = rows.session(conn, token_digest(token))
        user = rows.get(conn, session.login) if session is not None else None
    if session is None or user is None or not session.live(instance.clock()):
        raise NotSignedIn(
            "登录已失效，请重新登录 (the session expired or was ended: sign in again)"
        )
    if not user.enabled:
        raise NotSignedIn("账户已停用 (the account is disabled)")
    return Signed(user, session)


def sign_out(instance: Instance, token: str | None, *, via: str = "web") -> SignedOut:
    """End the session ``token``: revoked in the catalog, a SIGNED_OUT event. Nothing happens
    for a token that names no live session."""
    if not token:
        return SignedOut(None, None)
    digest = token_digest(token)
    now = instance.clock()
    with instance.catalog.begin() as conn:
        session = rows.session(conn, digest)
        if session is None or not session.live(now):
            return SignedOut(None, None)
        rows.revoke(conn, now, session.login, digest=digest)
        event = custody.append(
            conn,
            EventKind.SIGNED_OUT,
            session.login,
            subject=f"user {session.login}",
            details={"via": via},
            now=now,
        )
    return SignedOut(session.login, event.seq)


# ------------------------------------------------------------------------------- evidence


def require_view(instance: Instance, user: User, media_id: int) -> MediaItem:
    """The item ``media_id`` if ``user`` may view it (``permissions.can_view``); otherwise a
    REFUSED event naming the user and the item is committed and PermissionDenied raised."""
    return _require(instance, user, media_id, can_view, "view")


def describe_item(
    instance: Instance, user: User, media_id: int, text: str
) -> cases_usecases.Described:
    """Set the item's written description (文字说明) as ``user``, if their roles reach it
    (``permissions.can_describe``; else REFUSED and PermissionDenied): a DESCRIBED event."""
    item = _require(instance, user, media_id, can_describe, "describe")
    return cases_usecases.describe_media(instance.acting(user.login), item.id, text)


@dataclass(frozen=True)
class CaseFile:
    """A case file as a user may see it: the detail ``cases show`` gives, and whether they
    may work on it (link, unlink, conclude, seal)."""

    detail: cases_usecases.CaseDetail
    may_file: bool
    timeline: Timeline | None = None  # of the action window, once it is set


def case_file(instance: Instance, user: User, number: str) -> CaseFile:
    """The case ``number``, if ``user`` may read it (``permissions.can_view_case``);
    otherwise a REFUSED event and PermissionDenied."""
    detail = cases_usecases.case_detail(instance, number)
    if not can_view_case(user, detail.case):
        _refuse_case(instance, user, detail.case, "view-case")
    return CaseFile(detail, can_file_case(user, detail.case), _timeline(instance, detail))


def _timeline(instance: Instance, detail: cases_usecases.CaseDetail) -> Timeline | None:
    """The action window ± a tenth of it (at least a minute, at most the auto-link margin:
    what the rule still counts), its A/V recordings per officer and its coverage gaps."""
    case = detail.case
    if case.action_start is None or case.action_end is None:
        return None
    longest = timedelta(minutes=instance.settings.cases.link_margin_min)
    margin = min(max((case.action_end - case.action_start) / 10, timedelta(minutes=1)), longest)
    return timeline(
        case.action_start,
        case.action_end,
        case.officers,
        [
            (i.officer, i.media_id, i.start, i.end)
            for i in detail.items
            if i.kind in AV_KINDS and i.start is not None and i.end is not None
        ],
        detail.coverage.gaps if detail.coverage else (),
        margin,
    )


def link_to_case(
    instance: Instance, user: User, number: str, media_id: int, reason: str
) -> cases_usecases.Linked:
    """Link the item ``media_id`` to the case by hand, with a reason: the user must be able
    to file the case and to view the item (each refusal a REFUSED event)."""
    _filing(instance, user, number, "link")
    item = require_view(instance, user, media_id)
    why = _reason(f"case {number}", reason)
    return cases_usecases.link_media(instance.acting(user.login), number, item.id, why)


def unlink_from_case(
    instance: Instance, user: User, number: str, media_id: int, reason: str
) -> cases_usecases.Unlinked:
    """Take the item ``media_id`` out of the case, with a reason (the history is kept)."""
    _filing(instance, user, number, "unlink")
    why = _reason(f"case {number}", reason)
    return cases_usecases.unlink_media(instance.acting(user.login), number, media_id, why)


def conclude_case(instance: Instance, user: User, number: str) -> Case:
    """The enforcement act ended as recorded: the 15-day clock starts."""
    _filing(instance, user, number, "conclude")
    return cases_usecases.conclude_case(instance.acting(user.login), number)


def seal_case(instance: Instance, user: User, number: str, reason: str) -> Sealed:
    """Seal the concluded case file (归档), complete as the rule asks (CaseError lists what it
    still misses otherwise)."""
    _filing(instance, user, number, "seal")
    why = _reason(f"case {number}", reason)
    return cases_usecases.archive_case(instance.acting(user.login), number, why)


def verify_case_file(instance: Instance, user: User, number: str) -> cases_usecases.SealCheck:
    """Verify the sealed case file ``number`` as `evidence cases verify` does (its stored bag,
    its SEALED event, every file against the pinned keys), for a user who may read the case."""
    case_file(instance, user, number)  # refused (and recorded) for one who may not read it
    return cases_usecases.verify_sealed_case(instance, number)


def _filing(instance: Instance, user: User, number: str, action: str) -> Case:
    with instance.catalog.read() as conn:
        case = case_rows.get(conn, number)
    if case is None:
        raise NotFound("case", number)
    if not can_file_case(user, case):
        _refuse_case(instance, user, case, action)
    return case


def _reason(subject: str, reason: str | None) -> str:
    why = (reason or "").strip()
    if len(why) < MIN_REASON:
        raise AccessRefused(
            subject, f"事由至少 {MIN_REASON} 个字 (a reason of at least {MIN_REASON} characters)"
        )
    return why


def _refuse_case(instance: Instance, user: User, case: Case, action: str) -> NoReturn:
    with instance.catalog.begin() as conn:
        custody.append(
            conn,
            EventKind.REFUSED,
            user.login,
            subject=f"case {case.number}",
            details={
                "action": action,
                "roles": [r.value for r in user.roles],
                "department": user.department,
                "case_department": case.department,
            },
            now=instance.clock(),
        )
    raise PermissionDenied(
        f"case {case.number}", "无权对该案卷进行此操作 (outside your roles and department)"
    )


def audit_trail(
    instance: Instance,
    user: User,
    *,
    media_id: int | None = None,
    actor: str | None = None,
    case: str | None = None,
    kinds: Sequence[EventKind] = (),
    limit: int = 1000,
) -> tuple[AuditedEvent, ...]:
    """The custody history ``evidence audit`` lists for these filters, without the text of
    descriptions and text records, for a user who may read it (``permissions.can_audit``),
    and of that only what ``permissions.audit_reach`` gives them."""
    require(user, can_audit, "audit")
    return custody_usecases.audit(
        instance,
        media_key=None if media_id is None else _sha256_of(instance, media_id),
        actor=actor,
        case=case,
        kinds=kinds,
        limit=limit,
        scope=audit_reach(user),
    )


def _sha256_of(instance: Instance, media_id: int) -> str:
    """The SHA-256 of the item ``media_id`` (NotFound): the audit takes a key, which six
    digits or more would make a hash prefix."""
    with instance.catalog.read() as conn:
        return media_db.get(conn, media_id).sha256


def _require(
    instance: Instance,
    user: User,
    media_id: int,
    rule: Callable[[User, ItemScope], bool],
    action: str,
) -> MediaItem:
    with instance.catalog.read() as conn:
        item = media_db.get(conn, media_id)
        scope = ItemScope(item.officer_id, rows.item_departments(conn, item.officer_id, item.id))
    if user.enabled and rule(user, scope):
        return item
    _refuse_item(instance, user, item, scope, action)


def _refuse_item(
    instance: Instance, user: User, item: MediaItem, scope: ItemScope, action: str
) -> NoReturn:
    with instance.catalog.begin() as conn:
        custody.append(
            conn,
            EventKind.REFUSED,
            user.login,
            media_id=item.id,
            station_id=item.station_id,
            subject=item.sha256,
            details={
                "action": action,
                "roles": [r.value for r in user.roles],
                "department": user.department,
                "item_departments": list(scope.departments),
            },
            now=instance.clock(),
        )
    raise PermissionDenied(
        f"media {item.id}", "无权对该记录进行此操作 (outside your roles and department)"
    )


#: A reason for viewing evidence is a few words at least: "x" or "." is no reason.
MIN_REASON = 2


@dataclass(frozen=True)
class Viewing:
    """A user's viewing of one item: the VIEWED event and its reason, which holds for the
    item until ``until`` (``web.reason_minutes``): playing, seeking and reloading within it
    are the same viewing."""

    item: MediaItem
    view: View  # the proxy, or the metadata of an item without one
    reason: str
    event: int
    at: datetime
    until: datetime
    grant: int | None = None  # the grant the viewing uses, where the policy asks approval
    original_grant: int | None = None  # the grant of the original shown in place, if one


@dataclass(frozen=True)
class ItemPage:
    """What the item page may show: the item id, and the viewing if a reason holds (None:
    ask for one first, nothing of the item is shown), with the item's custody history.
    ``needs`` names the accesses the policy asks approval for that no grant covers now (the
    page offers to request them); ``shows_original``: a photo or PDF may be shown in place."""

    media_id: int
    viewing: Viewing | None
    history: tuple[custody.CustodyEvent, ...] = ()
    context: custody_usecases.ItemContext | None = None  # officer, tags, cases, text record
    needs: tuple[Action, ...] = ()
    shows_original: bool = False


@dataclass(frozen=True)
class Playback:
    """The proxy of an item under a viewing that holds: where its bytes are."""

    viewing: Viewing
    path: Path


#: What the item page leads to, each under the access policy: viewing the item in place, its
#: original shown in place (a photo, a PDF), a copy of the original.
PAGE_ACTIONS = (Action.VIEW_PROXY, Action.VIEW_ORIGINAL, Action.DOWNLOAD_ORIGINAL)


def approach_item(
    instance: Instance, user: User, media_id: int, action: Action | None = None
) -> tuple[MediaItem, dict[Action, Permit]]:
    """The item ``media_id`` and how each of the page's accesses stands for ``user`` now, if
    they may come to it for ``action`` (None: for any of them): their roles reach it, or it
    is another department's and the access policy makes it a matter of approval
    (``approvals.enforce.reachable``). Otherwise a REFUSED event and PermissionDenied."""
    policy, now = policy_of(instance.settings), instance.clock()
    with instance.catalog.read() as conn:
        item = media_db.get(conn, media_id)
        found = enforce.permits(conn, policy, user, item, PAGE_ACTIONS, now)
    wanted = [found[action]] if action is not None else list(found.values())
    if user.enabled and any(enforce.reachable(user, p) for p in wanted):
        return item, found
    _refuse_item(instance, user, item, found[Action.VIEW_PROXY].scope, "view")


def view_item(instance: Instance, user: User, media_id: int, reason: str | None) -> Viewing:
    """View the item ``media_id`` with ``reason``: refused (REFUSED event, PermissionDenied) when
    the user's roles and department do not reach it; AccessRefused for a reason shorter
    than :data:`MIN_REASON`; ApprovalRequired when the access policy asks approval and no
    grant covers the viewing; else the VIEWED event is committed (the proxy's, or the
    metadata's for an item without a proxy) before anything of the item is returned. It
    names the grant it uses, and the grant of the original if one lets the page show a photo
    or a PDF in place."""
    item, found = approach_item(instance, user, media_id, Action.VIEW_PROXY)
    why = _reason(f"media {item.id}", reason)
    view = View.PROXY if item.proxy_key else View.METADATA
    original = found[Action.VIEW_ORIGINAL].grant
    opened = custody_usecases.view_media(
        instance.acting(user.login),
        item.sha256,
        actor=user.login,
        reason=why,
        view=view,
        extra_details={"original_grant": original} if original is not None else None,
    )
    now = instance.clock()
    until = now + _reason_holds(instance)
    grant = found[Action.VIEW_PROXY].grant
    return Viewing(item, view, why, opened.event, now, until, grant, original)


def item_page(instance: Instance, user: User, media_id: int) -> ItemPage:
    """The item page of ``media_id`` for ``user``: refused as :func:`approach_item` says;
    the viewing whose reason (and grant, where one is needed) still holds, if any."""
    item, found = approach_item(instance, user, media_id)
    needs = tuple(action for action, p in found.items() if p.needed)
    viewing, history = _remembered(instance, user, item, found[Action.VIEW_PROXY])
    if viewing is None:
        return ItemPage(item.id, None, needs=needs)
    original = found[Action.VIEW_ORIGINAL]
    shows = original.free or viewing.original_grant in original.grants
    around = custody_usecases.item_context(instance, item)
    return ItemPage(item.id, viewing, history, around, needs=needs, shows_original=shows)


def playback(instance: Instance, user: User, media_id: int) -> Playback:
    """The proxy of ``media_id`` for a user whose viewing of it holds (AccessRefused otherwise:
    no byte flows before a reason is recorded, nor after the grant it used expired)."""
    item, found = approach_item(instance, user, media_id, Action.VIEW_PROXY)
    viewing, _ = _remembered(instance, user, item, found[Action.VIEW_PROXY])
    if viewing is None or viewing.view is not View.PROXY or item.proxy_key is None:
        raise AccessRefused(
            f"media {item.id}", "请先说明调阅事由 (give a reason for viewing first)"
        )
    return Playback(viewing, instance.store.derived_path(item.proxy_key))


def _reason_holds(instance: Instance) -> timedelta:
    return timedelta(minutes=instance.settings.web.reason_minutes)


def _remembered(
    instance: Instance, user: User, item: MediaItem, viewing: Permit
) -> tuple[Viewing | None, tuple[custody.CustodyEvent, ...]]:
    """The user's newest viewing of ``item`` whose reason still holds, and the item's
    custody history (it is read to find the viewing). Where the policy asks approval for
    viewing the item, the viewing holds only while the grant it names does (``viewing``:
    the grants that cover it now): an expired grant stops it at once."""
    now = instance.clock()
    since = now - _reason_holds(instance)
    with instance.catalog.read() as conn:
        history = tuple(custody.events(conn, media_id=item.id))
    for event in reversed(history):
        view = event.details.get("view")
        if (
            event.kind is EventKind.VIEWED
            and event.actor == user.login
            and view in (View.PROXY.value, View.METADATA.value)
            and since < event.at <= now
        ):
            grant, original = event.details.get("grant"), event.details.get("original_grant")
            if not viewing.free and grant not in viewing.grants:
                return None, history
            reason = str(event.details.get("reason", ""))
            until = event.at + _reason_holds(instance)
            found = Viewing(item, View(view), reason, event.seq, event.at, until, grant, original)
            return found, history
    return None, history


def _actor(instance: Instance) -> str:
    return instance.actor or instance.settings.actor


def reason_given(subject: str, reason: str | None) -> str:
    """``reason`` stripped, if it is one (at least :data:`MIN_REASON` characters); else
    AccessRefused naming ``subject``: the rule of every reason a page asks for."""
    return _reason(subject, reason)
