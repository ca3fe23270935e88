"""The compliance report (合规报告) to take away: the JSON ``evidence compliance report
--json`` prints, as a workbook (a sheet per section) or a PDF (a table per section).

Both are made from that JSON and nothing else, through :mod:`tables`, so they hold exactly
its numbers, and a section the report gains (the dashboard's ``figures``) appears in both
without a change here. The report is statistics over cases, not a record's metadata: making
it is not a custody event. Who may read it: ``permissions.can_read_dashboard`` — the legal
office any department, a supervisor their own tree (their own unit when none is named).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from pipeline.accounts.permissions import can_read_dashboard, require
from pipeline.accounts.users import UserRole, normal_department, within
from pipeline.cases import usecases as cases_usecases
from pipeline.cases.deadline import CaseState
from pipeline.errors import PermissionDenied
from pipeline.instance import Instance
from pipeline.models import plain
from pipeline.supervision.reports import Report, pdf, xlsx
from pipeline.supervision.reports.reader import Names, Reader, names
from pipeline.supervision.reports.tables import Column, Section, sections

Format = Literal["xlsx", "pdf"]

TITLE = "合规报告 Compliance report"

#: A case's state as the PDF prints it, zh-CN first (the workbook keeps the JSON's value).
STATES = {s.value: s for s in CaseState}


def report_json(
    instance: Instance,
    department: str | None,
    since: datetime | None,
    until: datetime | None,
) -> dict[str, Any]:
    """Exactly what ``evidence compliance report --json`` prints for these filters."""
    found: dict[str, Any] = plain(
        cases_usecases.compliance_report(instance, department, since, until)
    )
    return found


def scoped_department(reader: Reader, department: str | None) -> str | None:
    """The department the reader may have the report of: any (or all) for the legal office
    and the server's shell; for a supervisor one of their tree, their own if none is named
    (PermissionDenied for another)."""
    user = reader.user
    if user is None:
        return department or None
    require(user, can_read_dashboard, "compliance report")
    if user.has(UserRole.LEGAL_REVIEWER):
        return department or None
    tree = normal_department(user.department)
    asked = normal_department(department) if department else tree
    if not tree or not asked or not within(asked, tree):
        raise PermissionDenied(
            f"compliance report {department or ''}".strip(),
            f"只可查阅本部门 (a supervisor reads the report of their department tree: {tree})",
        )
    return asked


def compliance_report(
    instance: Instance,
    reader: Reader,
    *,
    fmt: Format,
    department: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Report:
    """The compliance report for acts ending in [since, until) of ``department`` (every one
    when None) as ``fmt``."""
    now = instance.clock()
    department = scoped_department(reader, department)
    zone = instance.settings.zone

    def local(moment: datetime | None) -> str:
        return f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S} {zone.key}" if moment else ""

    summary = [
        ("department", department or "全部 all"),
        ("from", local(since) or "不限 any"),
        ("until", f"{local(until)}（不含 exclusive）" if until else "不限 any"),
        ("generated_at", local(now)),
    ]
    data = report_json(instance, department, since, until)
    tables = [_with_names(s, names(instance)) for s in sections(data, summary)]
    stem = f"compliance-{department or 'all'}-{data.get('today', f'{now:%Y-%m-%d}')}"
    if fmt == "xlsx":
        book = xlsx.workbook(tables, title=TITLE, made_at=now)
        return Report(f"{stem}.xlsx", xlsx.MEDIA_TYPE, book)
    pages = pdf.pages_for(instance.settings, TITLE, now, wide=True)
    pages.title(TITLE)
    for table in tables:
        pages.heading(table.title)
        rows = [
            [_shown(table, r, c, v) for c, v in enumerate(row)] for r, row in enumerate(table.rows)
        ]
        shares = [1.6 if i == 0 else 1.0 for i in range(len(table.columns))]
        # The zh-CN header above the JSON's key: a key is not broken in two if it fits.
        header = [c.label.replace(" ", "\n", 1) for c in table.columns]
        pages.table(header, rows, shares)
    body, count = pages.render()
    return Report(f"{stem}.pdf", "application/pdf", body, count)


def _with_names(section: Section, who: Names) -> Section:
    """The officers' table with each officer's name beside the id (a column of its own: the
    id stays what the JSON has)."""
    if section.path != "officers":
        return section
    first, *rest = section.columns
    return replace(
        section,
        columns=(first, Column("name", "姓名 name"), *rest),
        rows=tuple((row[0], who.officers.get(str(row[0]), ""), *row[1:]) for row in section.rows),
    )


def _shown(section: Section, row: int, column: int, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是 yes" if value else "否 no"
    if section.percent(row, column) and isinstance(value, int | float):
        return f"{value * 100:.1f}%"
    if section.columns[column].key == "state" and value in STATES:
        return f"{STATES[value].label_zh} {value}"
    return str(value)
