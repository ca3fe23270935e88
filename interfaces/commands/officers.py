"""`evidence officers …`: enforcement officers (执法人员)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from interfaces import common, output
from interfaces.common import ActorOpt, JsonOpt, changes_out, import_registry
from pipeline.models import Officer, Role
from pipeline.registry import usecases as registry

app = typer.Typer(help="Enforcement officers (执法人员).", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="officers")
    app.command("add")(officers_add)
    app.command("list")(officers_list)
    app.command("show")(officers_show)
    app.command("import")(officers_import)


def officers_add(
    officer_id: Annotated[str, typer.Argument(metavar="ID", help="Officer number.")],
    name: Annotated[str, typer.Option(help="Full name.")],
    cert: Annotated[str, typer.Option(help="Enforcement certificate number (执法证号).")],
    department: Annotated[str, typer.Option(help="Department or unit.")] = "",
    role: Annotated[list[Role] | None, typer.Option(help="Role (repeatable).")] = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Register an officer (or update one).

    Example: evidence officers add 1023 --name 张伟 --cert 11010012345 --department 市场监管大队
    """
    officer = Officer(officer_id, name, cert, department, tuple(role or [Role.ENFORCEMENT]))
    changes_out([registry.add_officer(common.instance(actor), officer)], json_out)


def officers_list(json_out: JsonOpt = False) -> None:
    """List officers."""
    found = registry.list_officers(common.instance())
    if json_out:
        output.print_json(found)
        return
    table = Table(title=f"{output.plural(len(found), 'officer')} (执法人员)")
    for col in ("id", "name", "certificate 执法证号", "department", "roles"):
        table.add_column(col)
    for o in found:
        table.add_row(
            *map(output.text, (o.id, o.name, o.cert_no, o.department)),
            ", ".join(r.value for r in o.roles),
        )
    output.console.print(table)


def officers_show(
    officer_id: Annotated[str, typer.Argument(metavar="ID")], json_out: JsonOpt = False
) -> None:
    """Show an officer and the devices they held."""
    inst = common.instance()
    detail = registry.officer_detail(inst, officer_id)
    if json_out:
        output.print_json(detail)
        return
    officer, zone = detail.officer, inst.settings.zone
    output.console.print(
        output.line(
            (officer.id, "bold"),
            f" {officer.name} — 执法证号 {officer.cert_no}, {officer.department}",
        )
    )
    if detail.assignments:
        output.console.print(output.text(f"devices held (领用记录), {output.zone_note(zone)}:"))
    for a in detail.assignments:
        end = output.when(a.end, zone) if a.end else "now"
        output.console.print(
            output.text(f"  {a.device_serial}: {output.when(a.start, zone)} → {end}")
        )


def officers_import(path: Path, actor: ActorOpt = None, json_out: JsonOpt = False) -> None:
    """Import officers from a CSV (id,name,cert_no,department,roles) or a registry YAML.

    Example: evidence officers import officers.csv --as A001
    """
    import_registry(path, actor, json_out)
