"""The accounts page (用户管理), for administrators: the list, adding a user, disabling or
enabling one, setting roles or a password, ending someone's sessions; and ``/api/v1/users``
(the JSON of `evidence users list --json`). Every change goes through the account use cases
with the administrator acting, each a USER_CHANGED custody event."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from interfaces.web.deps import InstanceDep, SignedDep, render
from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import UserRole
from pipeline.models import plain

router = APIRouter()

LoginField = Annotated[str, Form(max_length=64)]
RolesField = Annotated[list[UserRole], Form()]
PasswordField = Annotated[str, Form(max_length=1024)]
DepartmentField = Annotated[str, Form(max_length=200)]


def _back() -> RedirectResponse:
    return RedirectResponse("/users", status_code=303)


@router.get("/users", include_in_schema=False)
def users_page(request: Request, instance: InstanceDep, signed: SignedDep) -> Response:
    found = accounts.list_users(accounts.administering(instance, signed.user))
    context = {"user": signed.user, "users": found, "roles": list(UserRole)}
    return render(request, "users.html", context)


@router.get("/api/v1/users")
def api_users(instance: InstanceDep, signed: SignedDep) -> Any:
    """The accounts: exactly what `evidence users list --json` prints."""
    return plain(accounts.list_users(accounts.administering(instance, signed.user)))


@router.post("/users", include_in_schema=False)
def add(
    instance: InstanceDep,
    signed: SignedDep,
    login: LoginField,
    officer: Annotated[str, Form(max_length=64)],
    role: RolesField,
    password: PasswordField,
    department: DepartmentField = "",
) -> Response:
    accounts.add_user(
        accounts.administering(instance, signed.user),
        login,
        officer_id=officer,
        roles=role,
        password=password,
        department=department or None,
    )
    return _back()


@router.post("/users/{login}/enabled", include_in_schema=False)
def enabled(
    login: str, instance: InstanceDep, signed: SignedDep, enabled: Annotated[bool, Form()]
) -> Response:
    accounts.set_enabled(accounts.administering(instance, signed.user), login, enabled)
    return _back()


@router.post("/users/{login}/roles", include_in_schema=False)
def roles(
    login: str,
    instance: InstanceDep,
    signed: SignedDep,
    role: RolesField,
    department: DepartmentField = "",
) -> Response:
    admin = accounts.administering(instance, signed.user)
    accounts.set_roles(admin, login, role, department=department or None)
    return _back()


@router.post("/users/{login}/password", include_in_schema=False)
def password(
    login: str, instance: InstanceDep, signed: SignedDep, password: PasswordField
) -> Response:
    accounts.set_password(accounts.administering(instance, signed.user), login, password)
    return _back()


@router.post("/users/{login}/sign-out", include_in_schema=False)
def sign_out(login: str, instance: InstanceDep, signed: SignedDep) -> Response:
    accounts.revoke_sessions(accounts.administering(instance, signed.user), login)
    return _back()
