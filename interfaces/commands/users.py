"""`evidence users …`: accounts of the web application (用户), each a registered officer with
a login, roles and a department."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from interfaces import common, output
from interfaces.common import ActorOpt, JsonOpt
from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import User, UserRole

app = typer.Typer(help="Accounts of the web application (用户与角色).", no_args_is_help=True)

LoginArg = Annotated[str, typer.Argument(metavar="LOGIN", help="The user's login.")]
RolesOpt = Annotated[
    list[UserRole],
    typer.Option(
        "--role",
        help="Role (repeatable): officer 执法人员, archivist 档案管理员, legal-reviewer 法制审核, "
        "supervisor 领导, admin 系统管理员.",
    ),
]
PasswordStdinOpt = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of standard input (else: asked for).",
    ),
]
DepartmentOpt = Annotated[
    str | None,
    typer.Option(
        "--department",
        help="Department as a path, top unit first: 县公安局/治安大队 (default: the officer's).",
    ),
]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="users")
    app.command("add")(users_add)
    app.command("list")(users_list)
    app.command("disable")(users_disable)
    app.command("enable")(users_enable)
    app.command("set-password")(users_set_password)
    app.command("set-roles")(users_set_roles)
    app.command("sign-out")(users_sign_out)


def users_add(
    login: LoginArg,
    officer: Annotated[str, typer.Option("--officer", help="The registered officer's id.")],
    role: RolesOpt,
    department: DepartmentOpt = None,
    password_stdin: PasswordStdinOpt = False,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add an account for a registered officer.

    Example: echo "$PW" | evidence users add zhang --officer 1023 --role archivist --password-stdin
    """
    password = _password(password_stdin)
    user = accounts.add_user(
        common.instance(actor),
        login,
        officer_id=officer,
        roles=role,
        password=password,
        department=department,
    )
    _print([user], json_out, single=True)


def users_list(json_out: JsonOpt = False) -> None:
    """List the accounts."""
    _print(list(accounts.list_users(common.instance())), json_out)


def users_disable(login: LoginArg, actor: ActorOpt = None, json_out: JsonOpt = False) -> None:
    """Disable an account: it cannot sign in, and its sessions end at once.

    Example: evidence users disable zhang.wei
    """
    _print([accounts.set_enabled(common.instance(actor), login, False)], json_out, single=True)


def users_enable(login: LoginArg, actor: ActorOpt = None, json_out: JsonOpt = False) -> None:
    """Enable a disabled account again."""
    _print([accounts.set_enabled(common.instance(actor), login, True)], json_out, single=True)


def users_set_password(
    login: LoginArg,
    password_stdin: PasswordStdinOpt = False,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Set an account's password; every session of the account ends.

    Example: echo "$PW" | evidence users set-password zhang.wei --password-stdin
    """
    user = accounts.set_password(common.instance(actor), login, _password(password_stdin))
    _print([user], json_out, single=True)


def users_set_roles(
    login: LoginArg,
    role: RolesOpt,
    department: DepartmentOpt = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Replace an account's roles (and its department, when given).

    Example: evidence users set-roles zhang.wei --role supervisor --department 县公安局
    """
    user = accounts.set_roles(common.instance(actor), login, role, department=department)
    _print([user], json_out, single=True)


def users_sign_out(login: LoginArg, actor: ActorOpt = None, json_out: JsonOpt = False) -> None:
    """End every session of an account now (it stays enabled).

    Example: evidence users sign-out zhang.wei
    """
    revoked = accounts.revoke_sessions(common.instance(actor), login)
    if json_out:
        output.print_json({"login": login, "sessions_revoked": revoked})
        return
    output.console.print(output.text(f"{login}: {revoked} session(s) ended"))


def _password(from_stdin: bool) -> str:
    if from_stdin:
        # One line: the newline echo adds is not part of the password.
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise typer.BadParameter(
            "no terminal to ask for the password on: pipe it in with --password-stdin",
            param_hint="--password-stdin",
        )
    return str(typer.prompt("密码 password", hide_input=True, confirmation_prompt=True))


def _print(users: list[User], json_out: bool, *, single: bool = False) -> None:
    if json_out:
        output.print_json(users[0] if single else users)
        return
    table = Table(title=f"{len(users)} users (用户)")
    for col in ("login", "officer", "roles", "department", "enabled"):
        table.add_column(col, overflow="fold")
    for u in users:
        table.add_row(
            output.text(u.login),
            output.text(u.officer_id),
            ", ".join(f"{r.value} {r.label_zh}" for r in u.roles),
            output.text(u.department),
            "yes 启用" if u.enabled else "no 停用",
        )
    output.console.print(table)
