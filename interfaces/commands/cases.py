"""`evidence cases …`: cases, their links, sealing and verification (案卷)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from interfaces import output
from interfaces.common import (
    ActorOpt,
    JsonOpt,
    instance,
    local_date,
    local_time,
    officer_label,
    officer_names,
)
from pipeline.cases import usecases
from pipeline.cases.categories import load_categories
from pipeline.cases.deadline import CaseState
from pipeline.instance import Instance

app = typer.Typer(
    help="Cases and case files (案件/案卷): links, the 15-day rule, sealing.", no_args_is_help=True
)

OfficerOpt = Annotated[list[str] | None, typer.Option("--officer", help="Officer id (repeatable).")]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="cases")
    app.command("add")(cases_add)
    app.command("import")(cases_import)
    app.command("list")(cases_list)
    app.command("show")(cases_show)
    app.command("link")(cases_link)
    app.command("unlink")(cases_unlink)
    app.command("conclude")(cases_conclude)
    app.command("autolink")(cases_autolink)
    app.command("archive")(cases_archive)
    app.command("verify")(cases_verify)


def cases_add(
    number: Annotated[str, typer.Argument(help="Case number, e.g. 2026-0113.")],
    title: Annotated[str, typer.Option(help="Short title.")],
    category: Annotated[
        str,
        typer.Option(
            help="Category: its id or zh-CN name (seizure, 查封扣押); evidence categories list."
        ),
    ],
    department: Annotated[str, typer.Option(help="Department.")] = "",
    officer: OfficerOpt = None,
    start: Annotated[
        str | None,
        typer.Option(help="Enforcement action start: 2026-11-27T09:00 (local unless zoned)."),
    ] = None,
    end: Annotated[str | None, typer.Option(help="Enforcement action end, likewise.")] = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a case (or update it), then link the records the linking rule finds.

    Example: evidence cases add 2026-0113 --title "查封某仓库" --category 查封扣押
    --officer 1023 --officer 1088 --start 2026-11-27T09:00 --end 2026-11-27T10:00
    """
    inst = instance(actor)
    saved = usecases.add_case(
        inst,
        number,
        title=title,
        category=category,
        department=department,
        officers=officer or [],
        action_start=local_time(inst.settings, start),
        action_end=local_time(inst.settings, end),
    )
    if json_out:
        output.print_json(saved)
    else:
        output.console.print(
            output.text(
                f"case {number} {saved.action}; "
                f"{output.plural(len(saved.linked), 'record')} linked by rule"
            )
        )


def category_label(inst: Instance) -> Callable[[str], str]:
    """``seizure 查封扣押``: the id a command takes, and the name people know."""
    found = load_categories(inst.settings)

    def label(category_id: str) -> str:
        known = found.by_id.get(category_id)
        return f"{category_id} {known.name_zh}" if known else category_id

    return label


def cases_import(path: Path, actor: ActorOpt = None, json_out: JsonOpt = False) -> None:
    """Import cases, descriptions (文字说明) and text-record fields from YAML (sections cases,
    descriptions, records) or one CSV table. All or nothing; re-importing changes nothing.

    Example: evidence cases import cases.yaml --as A001
    """
    done = usecases.import_cases(instance(actor), path)
    if json_out:
        output.print_json(done)
    else:
        counts: dict[str, int] = {}
        for record in done.records:
            counts[record.action] = counts.get(record.action, 0) + 1
        output.console.print(
            ", ".join(f"{n} {a}" for a, n in sorted(counts.items()))
            + f"; {done.linked} linked by rule"
        )


def cases_list(
    state: Annotated[
        CaseState | None, typer.Option(help="Only cases in this 15-day state.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """List cases with their deadline and state.

    Example: evidence cases list --state overdue
    """
    inst = instance()
    found = usecases.list_cases(inst, state)
    if json_out:
        output.print_json(found)
        return
    zone = inst.settings.zone
    names, category = officer_names(inst), category_label(inst)
    table = output.titled_table(
        f"{output.plural(len(found), 'case')} (案件), today {local_date(inst.settings)}; "
        f"{output.zone_note(zone)}"
    )
    for col in (
        "number",
        "title",
        "category",
        "department",
        "officers",
        "action end",
        "due",
        "state",
    ):
        table.add_column(col, overflow="fold")
    for c in found:
        due = f"{c.due}{' (provisional)' if c.due_provisional else ''}" if c.due else ""
        table.add_row(
            output.text(c.number),
            output.text(c.title),
            output.text(category(c.category)),
            output.text(c.department),
            output.text(", ".join(officer_label(o, names) for o in c.officers)),
            output.when(c.action_end, zone, seconds=False),
            due,
            f"{c.state.value} {c.state.label_zh}",
        )
    output.console.print(table)


def cases_show(number: str, json_out: JsonOpt = False) -> None:
    """Show a case: its linked records, deadline, coverage and problems.

    Example: evidence cases show 2026-0113
    """
    inst = instance()
    detail = usecases.case_detail(inst, number)
    if json_out:
        output.print_json(detail)
        return
    case, zone, names = detail.case, inst.settings.zone, officer_names(inst)
    category = category_label(inst)(case.category)
    officers = ", ".join(officer_label(o, names) for o in case.officers)
    output.console.print(
        output.line(
            (case.number, "bold"),
            f" {case.title} — {', '.join(x for x in (category, case.department) if x)}; "
            f"{case.status.value} {case.status.label_zh}; officers {officers}",
        )
    )
    action = (
        f"{output.when(case.action_start, zone, seconds=False) or '?'} → "
        f"{output.when(case.action_end, zone, seconds=False) or '?'}"
    )
    output.console.print(
        output.text(
            f"action {action}; due {case.due or '(not concluded)'}; "
            f"state {detail.state.value} {detail.state.label_zh}; {output.zone_note(zone)}"
        )
    )
    table = Table(title="linked records (案卷材料)")
    for col in ("media", "kind", "device", "officer", "recorded", "described", "how"):
        table.add_column(col, overflow="fold")
    methods = {link.media_id: f"{link.method.value}: {link.rule}" for link in detail.links}
    for i in detail.items:
        table.add_row(
            str(i.media_id),
            output.text(i.kind),
            output.text(i.device or ""),
            output.text(officer_label(i.officer, names)),
            f"{output.when(i.start, zone)}–{output.when(i.end, zone)[11:]}"
            if i.start and i.end
            else "",
            "yes" if i.described else "[yellow]no[/]",
            output.text(methods.get(i.media_id, "")),
        )
    output.console.print(table)
    for problem in detail.problems:
        output.console.print(output.text(f"• {problem}", style="yellow"))


def cases_link(
    number: str,
    media: Annotated[str, typer.Argument(help="Media id or SHA-256 prefix.")],
    reason: Annotated[str, typer.Option(help="Why this record belongs to the case.")],
    actor: ActorOpt = None,
) -> None:
    """Link a record to a case by hand, with a reason.

    Example: evidence cases link 2026-0113 42 --reason "the hearing record" --as A001
    """
    linked = usecases.link_media(instance(actor), number, media, reason)
    output.console.print("linked" if linked.made else "already linked")


def cases_unlink(
    number: str,
    media: Annotated[str, typer.Argument(help="Media id or SHA-256 prefix.")],
    reason: Annotated[str, typer.Option(help="Why it does not belong (kept in the history).")],
    actor: ActorOpt = None,
) -> None:
    """Remove a record from a case (the link's history is kept; the rule will not re-add it).

    Example: evidence cases unlink 2026-0113 42 --reason "another matter" --as A001
    """
    usecases.unlink_media(instance(actor), number, media, reason)
    output.console.print("unlinked")


def cases_conclude(
    number: str,
    end: Annotated[
        str | None, typer.Option(help="When the enforcement act ended (default: as recorded).")
    ] = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The enforcement act has ended: start the 15-day filing clock.

    Example: evidence cases conclude 2026-0113 --end 2026-11-27T10:00
    """
    inst = instance(actor)
    case = usecases.conclude_case(inst, number, local_time(inst.settings, end))
    if json_out:
        output.print_json(case)
    else:
        note = (
            " (provisional: the working-day calendar lacks a year)" if case.due_provisional else ""
        )
        output.console.print(
            output.text(f"case {number} concluded; file every record by {case.due}{note}")
        )


def cases_autolink(actor: ActorOpt = None, json_out: JsonOpt = False) -> None:
    """Apply the linking rule to every open and concluded case now."""
    made = usecases.autolink_cases(instance(actor))
    if json_out:
        output.print_json(made)
    else:
        output.console.print(f"{output.plural(len(made), 'link')} made")


def cases_archive(
    number: str,
    reason: Annotated[
        str, typer.Option(help="Why it is sealed now (kept in the bag and the log).")
    ] = "case file complete",
    force: Annotated[
        bool, typer.Option(help="Seal an incomplete file anyway (its problems go into the bag).")
    ] = False,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Seal a concluded case (归档): every linked record into a signed BagIt bag, stored
    immutably; the case becomes archived, on time or late.

    Example: evidence cases archive 2026-0113 --as A001
    """
    sealed = usecases.archive_case(instance(actor), number, reason, force=force)
    if json_out:
        output.print_json(sealed)
    else:
        output.console.print(
            output.text(
                f"case {number} sealed: {output.plural(sealed.items, 'record')}, "
                f"{sealed.bytes:,} bytes, "
                f"bag {sealed.key[:16]}…; {sealed.state.value} {sealed.state.label_zh}"
            )
        )


def cases_verify(number: str, json_out: JsonOpt = False) -> None:
    """Check a sealed case file (校验案卷): its bag from the store against its digest and
    its SEALED event, its BagIt manifests, and every file of it against the signatures of
    the pinned keys (custody.pinned_keys). Exit 0 when it verifies, 1 on any problem, 2 when
    it cannot run (no such case, not sealed).

    Example: evidence cases verify 2026-0113
    """
    check = usecases.verify_sealed_case(instance(), number)
    problems = check.problems
    if json_out:
        output.print_json(check)
    else:
        for p in problems:
            output.console.print(output.text(f"{p.code} {p.subject}: {p.message}", style="red"))
        output.console.print(
            "sealed case file verifies" if not problems else output.plural(len(problems), "problem")
        )
    raise typer.Exit(0 if not problems else 1)
