"""`evidence reports …`: reports to take away (报表): the audit trail of an item, a person or
a case (CSV, PDF), the printable case-file inventory (卷内目录, PDF), the compliance report
(XLSX, PDF)."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, cast

import typer

from interfaces import common, output
from interfaces.common import JsonOpt
from pipeline.supervision import reports
from pipeline.supervision.reports import reader

app = typer.Typer(
    help="Reports to take away (报表): audit trails, case-file inventories, the compliance "
    "report, as PDF (Chinese font embedded), CSV or XLSX.",
    no_args_is_help=True,
)


class TrailFormat(enum.StrEnum):
    PDF = "pdf"
    CSV = "csv"


class SheetFormat(enum.StrEnum):
    XLSX = "xlsx"
    PDF = "pdf"


OutOpt = Annotated[
    Path, typer.Option("--out", "-o", help="The file to write (new: never overwritten).")
]
AsOpt = Annotated[
    str | None, typer.Option("--as", help="Who asks for the report (required; recorded).")
]
ReasonOpt = Annotated[
    str | None, typer.Option("--reason", help="Why (required; recorded), e.g. a case number.")
]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="reports")
    app.command("audit")(audit)
    app.command("inventory")(inventory_pdf)
    app.command("compliance")(compliance)


def _format(given: enum.StrEnum | None, out: Path, kind: type[enum.StrEnum]) -> str:
    """The format asked for, else the one the file's suffix names, else the first."""
    if given is not None:
        return given.value
    suffix = out.suffix.lower().lstrip(".")
    return suffix if suffix in {f.value for f in kind} else next(iter(kind)).value


def _done(written: reports.Written, json_out: bool) -> None:
    if json_out:
        output.print_json(written)
        return
    pages = f"{output.plural(written.pages, 'page')}, " if written.pages else ""
    recorded = (
        f"; recorded as custody event seq {written.event}" if written.event is not None else ""
    )
    output.console.print(
        output.text(
            f"wrote {written.path}: {pages}{written.bytes:,} bytes, sha256 {written.sha256}"
            f"{recorded}"
        )
    )


def audit(
    out: OutOpt,
    media: Annotated[
        str | None, typer.Option("--media", help="One item's history (id or SHA-256 prefix).")
    ] = None,
    case: Annotated[str | None, typer.Option("--case", help="One case's history.")] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="What one person did (their login).")
    ] = None,
    fmt: Annotated[
        TrailFormat | None, typer.Option("--format", help="pdf or csv (default: by -o's suffix).")
    ] = None,
    reason: ReasonOpt = None,
    as_: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The audit trail (监督日志) of an item, a case or a person, as PDF or CSV.

    Court-ready: who, what, when (local time, the zone named), why, and the custody chain's
    verification. Who asks must be allowed to read the audit; making the report is recorded
    (a VIEWED event with the reason) before it is written.

    Example: evidence reports audit --case 2026-0113 --reason "移送法院" -o trail.pdf --as fazhi
    """
    if sum(x is not None for x in (media, case, user)) != 1:
        raise typer.BadParameter("give one of --media, --case or --user")
    inst = common.instance()
    from pipeline.supervision.reports import audit_trail  # reportlab: only when asked

    who = reader.named(inst, as_)
    reports.writable(out)
    made = audit_trail.audit_report(
        inst,
        who,
        audit_trail.Trail(media=media, case=case, user=user),
        fmt=cast(audit_trail.Format, _format(fmt, out, TrailFormat)),
        reason=reason,
        to=str(out.resolve()),
    )
    _done(reports.write(made, out), json_out)


def inventory_pdf(
    number: Annotated[str, typer.Argument(metavar="NUMBER", help="The case number.")],
    out: OutOpt,
    reason: ReasonOpt = None,
    as_: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The printable case-file inventory (卷内目录) of a case, as PDF.

    The case's header and every record linked to it by time, with type, time, officer,
    written description and SHA-256. Printing it is recorded (a VIEWED event naming the
    case, its records and the reason) before it is written.

    Example: evidence reports inventory 2026-0113 -o 2026-0113.pdf --reason "案卷评查" --as fazhi
    """
    inst = common.instance()
    from pipeline.supervision.reports import inventory  # reportlab: only when asked

    who = reader.named(inst, as_)
    reports.writable(out)
    made = inventory.inventory_report(inst, who, number, reason=reason, to=str(out.resolve()))
    _done(reports.write(made, out), json_out)


def compliance(
    out: OutOpt,
    fmt: Annotated[
        SheetFormat | None,
        typer.Option("--format", help="xlsx or pdf (default: by -o's suffix)."),
    ] = None,
    department: Annotated[str | None, typer.Option(help="Only this department.")] = None,
    since: Annotated[
        str | None,
        typer.Option("--from", help="Acts ending from this time: 2026-11, 2026-Q4, 2026-11-01…"),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            "--to",
            help="Acts ending up to this time, inclusive: --until 2026-11 is all of November.",
        ),
    ] = None,
    as_: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="Who asks: the report is then what their roles reach (a supervisor's "
            "department tree).",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """The compliance report (合规报告), as XLSX or PDF.

    A workbook has a sheet per section (departments, officers, devices, cases…); both hold
    exactly the numbers of `evidence compliance report --json` for the same filters.

    Example: evidence reports compliance --from 2026-11 --until 2026-11 -o 2026-11.xlsx
    """
    inst = common.instance()
    # reportlab and openpyxl: only when asked
    from pipeline.supervision.reports import compliance_report

    who = reader.named(inst, as_) if as_ is not None else reader.Reader(inst.settings.actor)
    reports.writable(out)
    made = compliance_report.compliance_report(
        inst,
        who,
        fmt=cast(compliance_report.Format, _format(fmt, out, SheetFormat)),
        department=department,
        since=common.local_time(inst.settings, since),
        until=common.local_until(inst.settings, until),
    )
    _done(reports.write(made, out), json_out)
