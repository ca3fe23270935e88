"""Reports to take away (报表): the forms, and the files they make.

The audit trail (CSV, PDF) and the case-file inventory (PDF) show evidence metadata: each is
asked for with a reason, by a POST (CSRF), and its custody event is committed before the file
is sent. The compliance report (XLSX, PDF) is statistics: a GET with the filters of
``evidence compliance report``. Files come as attachments, their names ASCII-safe with the
UTF-8 name as RFC 5987 says.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from interfaces.web.deps import InstanceDep, SignedDep, render
from interfaces.web.errors import BadRequest
from interfaces.web.media import content_disposition
from pipeline.accounts import permissions
from pipeline.instance import Instance
from pipeline.search.query import period
from pipeline.supervision.reports import Report, audit_trail, compliance_report, inventory
from pipeline.supervision.reports.reader import signed as signed_reader

router = APIRouter()

#: Where a report made in the browser went, as its custody event says.
TO_BROWSER = "web download"

ReasonField = Annotated[str, Form(max_length=500)]
TextField = Annotated[str, Form(max_length=200)]
PeriodParam = Annotated[str, Query(max_length=40)]


def _file(report: Report) -> Response:
    return Response(
        report.data,
        media_type=report.media_type,
        headers={"Content-Disposition": content_disposition("attachment", report.filename)},
    )


@router.get("/reports", include_in_schema=False)
def reports_page(
    request: Request,
    signed: SignedDep,
    media: Annotated[str, Query(max_length=20)] = "",
    actor: Annotated[str, Query(max_length=200)] = "",
    case: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """The forms: an audit trail (for one item, person or case), the compliance report."""
    user = signed.user
    context = {
        "user": user,
        "may_audit": permissions.can_audit(user),
        "may_compliance": permissions.can_read_dashboard(user),
        "trail": {"media": media, "actor": actor, "case": case},
    }
    return render(request, "reports.html", context)


@router.post("/reports/audit", include_in_schema=False)
def audit_file(
    instance: InstanceDep,
    signed: SignedDep,
    reason: ReasonField = "",
    format: Annotated[Literal["pdf", "csv"], Form()] = "pdf",
    media: TextField = "",
    actor: TextField = "",
    case: TextField = "",
) -> Response:
    """The audit trail of one item, person or case as PDF or CSV, its VIEWED event first."""
    media_id: int | None = None
    if media.strip():
        if not media.strip().isdigit():
            raise BadRequest(f"media: {media!r} is not an item id")
        media_id = int(media)
    trail = audit_trail.Trail(media=media_id, case=case.strip() or None, user=actor.strip() or None)
    made = audit_trail.audit_report(
        instance, signed_reader(signed.user), trail, fmt=format, reason=reason, to=TO_BROWSER
    )
    return _file(made)


@router.get("/reports/inventory/{number}", include_in_schema=False)
def inventory_form(request: Request, number: str, signed: SignedDep) -> Response:
    context = {"user": signed.user, "number": number}
    return render(request, "reports.html", context)


@router.post("/reports/inventory/{number}", include_in_schema=False)
def inventory_file(
    number: str, instance: InstanceDep, signed: SignedDep, reason: ReasonField = ""
) -> Response:
    """The case-file inventory (卷内目录) as a PDF, its VIEWED event first."""
    made = inventory.inventory_report(
        instance, signed_reader(signed.user), number, reason=reason, to=TO_BROWSER
    )
    return _file(made)


def _moment(instance: Instance, name: str, text: str, end: bool) -> datetime | None:
    """A time typed as the CLI takes it (2026-11, 2026-Q4, 2026-11-27…): when its period
    starts (``from``) or the moment after it ends (``until``, inclusive)."""
    if not text.strip():
        return None
    try:
        start, after = period(text.strip(), instance.settings.zone)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from None
    return after if end else start


def _compliance(
    instance: Instance,
    signed: SignedDep,
    fmt: compliance_report.Format,
    department: str,
    since: str,
    until: str,
) -> Response:
    made = compliance_report.compliance_report(
        instance,
        signed_reader(signed.user),
        fmt=fmt,
        department=department.strip() or None,
        since=_moment(instance, "from", since, end=False),
        until=_moment(instance, "until", until, end=True),
    )
    return _file(made)


@router.get("/reports/compliance.xlsx", include_in_schema=False)
def compliance_xlsx(
    instance: InstanceDep,
    signed: SignedDep,
    department: Annotated[str, Query(max_length=200)] = "",
    since: Annotated[str, Query(alias="from", max_length=40)] = "",
    until: PeriodParam = "",
) -> Response:
    """The compliance report as a workbook: the numbers of `evidence compliance report`."""
    return _compliance(instance, signed, "xlsx", department, since, until)


@router.get("/reports/compliance.pdf", include_in_schema=False)
def compliance_pdf(
    instance: InstanceDep,
    signed: SignedDep,
    department: Annotated[str, Query(max_length=200)] = "",
    since: Annotated[str, Query(alias="from", max_length=40)] = "",
    until: PeriodParam = "",
) -> Response:
    """The compliance report as a PDF."""
    return _compliance(instance, signed, "pdf", department, since, until)
