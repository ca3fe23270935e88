"""What routes take from the request: the instance, the signed-in user, the templates."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from interfaces.web.security import SESSION_COOKIE, cookie, csrf_token
from pipeline.accounts import permissions
from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import User
from pipeline.approvals import usecases as approvals
from pipeline.errors import EvidenceError
from pipeline.instance import Instance

TEMPLATES = Path(__file__).resolve().parent / "templates"


def instance_of(request: Request) -> Instance:
    instance: Instance = request.app.state.instance
    return instance


def signed_in(request: Request) -> accounts.Signed:
    """The user of the request's session; NotSignedIn (redirect to sign-in, or 401)."""
    return accounts.authenticate(instance_of(request), cookie(request, SESSION_COOKIE))


def acting(request: Request, signed: accounts.Signed) -> Instance:
    """The instance with the signed-in user acting: their login is the custody events' actor."""
    return instance_of(request).acting(signed.user.login)


InstanceDep = Annotated[Instance, Depends(instance_of)]
SignedDep = Annotated[accounts.Signed, Depends(signed_in)]


def templates(zone: ZoneInfo) -> Jinja2Templates:
    """The page templates, with the one local-time filter every time shown goes through."""
    found = Jinja2Templates(directory=str(TEMPLATES))

    def local(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if moment else ""

    found.env.filters["local"] = local
    found.env.globals["zone_name"] = zone.key
    found.env.globals["zone_offset"] = datetime.now(zone).strftime("UTC%z")
    return found


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """A template as a response, with the CSRF token and the signed-in user (if any)."""
    found: Jinja2Templates = request.app.state.templates
    user = context.get("user")
    offered = permissions.pages(user) if user is not None else {}
    if user is not None:
        offered["quarantine"] = permissions.can_read_quarantine(user)
        offered["disposals"] = permissions.can_approve(user)  # the disposal queue (issue 19)
    shared: dict[str, Any] = {"csrf": csrf_token(request), "user": None, "offered": offered}
    if user is not None and permissions.can_approve(user):
        shared["waiting_approvals"] = _waiting(request, user)
    return found.TemplateResponse(request, name, {**shared, **context}, status_code=status_code)


def _waiting(request: Request, user: User) -> int | None:
    """The requests waiting for this approver (the header's badge). The badge is a
    convenience: an error page must still render when the catalog it counts in fails."""
    try:
        return approvals.waiting_count(instance_of(request), user)
    except EvidenceError:
        return None
