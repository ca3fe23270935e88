"""`evidence compliance …`: the 15-day rule and coverage, per department."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import typer
from rich.table import Table

from interfaces import output
from interfaces.common import (
    JsonOpt,
    instance,
    local_time,
    local_until,
    officer_label,
    officer_names,
)
from pipeline.cases import usecases

app = typer.Typer(
    help="The full-process recording rule: the compliance (合规) report. (The daily sweep "
    "runs under `evidence serve`, at cases.compliance_cron.)",
    no_args_is_help=True,
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="compliance")
    app.command("report")(compliance_report)


def compliance_report(
    department: Annotated[str | None, typer.Option(help="Only this department.")] = None,
    since: Annotated[
        str | None,
        typer.Option("--from", help="Acts ending from this time: 2026-11, 2026-Q4, 2026-11-01…"),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--to", help="Acts ending up to this time, inclusive: --to 2026-11 is all of November."
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Per department, officer and device: cases concluded, archived on time, late, overdue
    now, coverage failures, recordings without description, unlinked media.

    Example: evidence compliance report --department 市场监管执法大队 --from 2026-11
    """
    inst = instance()
    rep = usecases.compliance_report(
        inst, department, local_time(inst.settings, since), local_until(inst.settings, until)
    )
    if json_out:
        output.print_json(rep)
        return
    print_report(rep, officer_names(inst))


def print_report(rep: usecases.ComplianceReport, names: Mapping[str, str] | None = None) -> None:
    """The report's tables; officers by id and name (``names``: id -> name)."""
    names = names or {}
    columns = (
        "concluded",
        "on time",
        "late",
        "overdue now",
        "coverage failures",
        "no description",
        "unlinked media",
    )
    for title, tallies in (
        ("department 部门", rep.departments),
        ("officer 执法人员", rep.officers),
        ("device 设备", rep.devices),
    ):
        table = Table(title=f"compliance by {title}, {rep.today}")
        table.add_column(title.split()[0])
        for col in columns:
            table.add_column(col, justify="right")
        for key, t in sorted(tallies.items()):
            table.add_row(
                output.text(officer_label(key, names) if tallies is rep.officers else key),
                *(
                    str(v)
                    for v in (
                        t.cases_concluded,
                        t.archived_on_time,
                        t.archived_late,
                        t.overdue_now,
                        t.coverage_failures,
                        t.without_description,
                        t.unlinked_media,
                    )
                ),
            )
        output.console.print(table)
    for case in rep.cases:
        for problem in case.problems:
            output.console.print(output.line((case.number, "yellow"), f": {problem}"))
