"""`evidence cases …`: cases, their links, sealing and verification (案卷)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from interfaces import output
from interfaces.common import ActorOpt, JsonOpt, catalog, local_date, local_time, now, settings
from pipeline.cases import bulk as case_io
from pipeline.cases import compliance
from pipeline.cases import records as cases
from pipeline.cases.categories import load_categories
from pipeline.cases.deadline import CaseState
from pipeline.catalog import cases as case_rows
from pipeline.models import Case, CaseStatus

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
        str, typer.Option(help="Category id from config/categories.toml, e.g. seizure.")
    ],
    department: Annotated[str, typer.Option(help="Department.")] = "",
    officer: OfficerOpt = None,
    start: Annotated[
        str | None, typer.Option(help="Enforcement action start (local time unless zoned).")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Enforcement action end.")] = None,
    actor: ActorOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a case (or update it), then link the records the linking rule finds.

    Example: evidence cases add 2026-0113 --title "查封某仓库" --category seizure
    --officer 1023 --officer 1088 --start 2026-11-27T09:00 --end 2026-11-27T10:00
    """
    s = settings()
    cat = catalog(s)
    case = Case(
        number,
        title,
        category,
        department,
        CaseStatus.OPEN,
        tuple(sorted(officer or [])),
        action_start=local_time(s, start),
        action_end=local_time(s, end),
    )
    with cat.begin() as conn:
        existing = case_rows.get(conn, number)
        if existing is not None:
            case = Case(
                number,
                title,
                category,
                department,
                existing.status,
                case.officers,
                action_start=case.action_start or existing.action_start,
                action_end=case.action_end or existing.action_end,
            )
        action = cases.save_case(conn, case, actor or s.actor, s, load_categories(s), now())
        made = cases.autolink(conn, s, actor or s.actor, now(), [number])
    if json_out:
        output.print_json({"case": number, "action": action, "linked": [m for _, m, _ in made]})
    else:
        output.console.print(
            output.text(f"case {number} {action}; {len(made)} record(s) linked by rule")
        )


def cases_import(path: Path, actor: ActorOpt = None, json_out: JsonOpt = False) -> None:
    """Import cases, descriptions (文字说明) and text-record fields from YAML (sections cases,
    descriptions, records) or one CSV table. All or nothing; re-importing changes nothing.

    Example: evidence cases import cases.yaml --as A001
    """
    s = settings()
    cat = catalog(s)
    done = case_io.apply(
        cat,
        case_io.read_file(path, ZoneInfo(s.devices.timezone)),
        path,
        actor or s.actor,
        s,
        load_categories(s),
        now(),
    )
    with cat.begin() as conn:
        made = cases.autolink(conn, s, actor or s.actor, now())
    if json_out:
        output.print_json(
            {
                "records": [{"section": a, "key": b, "action": c} for a, b, c in done],
                "linked": len(made),
            }
        )
    else:
        counts: dict[str, int] = {}
        for _, _, action in done:
            counts[action] = counts.get(action, 0) + 1
        output.console.print(
            ", ".join(f"{n} {a}" for a, n in sorted(counts.items()))
            + f"; {len(made)} linked by rule"
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
    s = settings()
    today = local_date(s)
    where = None if state is None else compliance.state_clause(state, today, s.cases.due_soon_days)
    with catalog(s).read() as conn:
        found = case_rows.listing(conn, where)
    rows = [(c, compliance.state_of(c, today, s.cases.due_soon_days)) for c in found]
    if json_out:
        output.print_json([{**output.to_jsonable(c), "state": st.value} for c, st in rows])
        return
    table = Table(title=f"{len(rows)} cases (案件), today {today}")
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
    for c, st in rows:
        due = f"{c.due}{' (provisional)' if c.due_provisional else ''}" if c.due else ""
        table.add_row(
            output.text(c.number),
            output.text(c.title),
            output.text(c.category),
            output.text(c.department),
            output.text(", ".join(c.officers)),
            f"{c.action_end:%Y-%m-%d %H:%M}" if c.action_end else "",
            due,
            f"{st.value} {st.label_zh}",
        )
    output.console.print(table)


def cases_show(number: str, json_out: JsonOpt = False) -> None:
    """Show a case: its linked records, deadline, coverage and problems.

    Example: evidence cases show 2026-0113
    """
    s = settings()
    with catalog(s).begin() as conn:
        case = cases.get_case(conn, number)
        finding = compliance.evaluate(conn, case, s, load_categories(s), local_date(s))
        linked = case_rows.links_of_case(conn, number)
    if json_out:
        output.print_json(
            {
                "case": case,
                "state": finding.state.value,
                "links": linked,
                "coverage": finding.coverage,
                "problems": finding.problems(),
            }
        )
        return
    output.console.print(
        output.line(
            (case.number, "bold"),
            f" {case.title} — {case.category}, {case.department}; "
            f"{case.status.value} {case.status.label_zh}; officers {', '.join(case.officers)}",
        )
    )
    output.console.print(
        f"action {case.action_start} → {case.action_end}; due {case.due}; "
        f"state {finding.state.value} {finding.state.label_zh}"
    )
    table = Table(title="linked records (案卷材料)")
    for col in ("media", "kind", "device", "officer", "recorded", "described", "how"):
        table.add_column(col, overflow="fold")
    methods = {link.media_id: f"{link.method.value}: {link.rule}" for link in linked}
    for i in finding.items:
        table.add_row(
            str(i.media_id),
            output.text(i.kind),
            output.text(i.device or ""),
            output.text(i.officer or ""),
            f"{i.start:%H:%M:%S}–{i.end:%H:%M:%S}" if i.start and i.end else "",
            "yes" if i.described else "[yellow]no[/]",
            output.text(methods.get(i.media_id, "")),
        )
    output.console.print(table)
    for problem in finding.problems():
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
    s = settings()
    with catalog(s).begin() as conn:
        from pipeline.catalog import media as media_db

        made = cases.link(
            conn, number, media_db.get(conn, media).id, actor or s.actor, reason, now()
        )
    output.console.print("linked" if made else "already linked")


def cases_unlink(
    number: str,
    media: Annotated[str, typer.Argument(help="Media id or SHA-256 prefix.")],
    reason: Annotated[str, typer.Option(help="Why it does not belong (kept in the history).")],
    actor: ActorOpt = None,
) -> None:
    """Remove a record from a case (the link's history is kept; the rule will not re-add it).

    Example: evidence cases unlink 2026-0113 42 --reason "another matter" --as A001
    """
    s = settings()
    with catalog(s).begin() as conn:
        from pipeline.catalog import media as media_db

        cases.unlink(conn, number, media_db.get(conn, media).id, actor or s.actor, reason, now())
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
    s = settings()
    with catalog(s).begin() as conn:
        case = cases.conclude(
            conn, number, local_time(s, end), actor or s.actor, s, load_categories(s), now()
        )
        cases.autolink(conn, s, actor or s.actor, now(), [number])
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
    s = settings()
    with catalog(s).begin() as conn:
        made = cases.autolink(conn, s, actor or s.actor, now())
    if json_out:
        output.print_json([{"case": c, "media": m, "rule": r} for c, m, r in made])
    else:
        output.console.print(f"{len(made)} link(s) made")


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
    from pipeline.cases.seal import seal_case

    s = settings()
    sealed = seal_case(s, number, actor or s.actor, reason, force=force)
    if json_out:
        output.print_json(sealed)
    else:
        output.console.print(
            output.text(
                f"case {number} sealed: {sealed.items} records, {sealed.bytes:,} bytes, "
                f"bag {sealed.key[:16]}…; {sealed.state.value} {sealed.state.label_zh}"
            )
        )


def cases_verify(number: str, json_out: JsonOpt = False) -> None:
    """Check a sealed case file: its bag from the store against its digest, its BagIt
    manifests, and the signature of its manifest. Exit 1 on any problem.

    Example: evidence cases verify 2026-0113
    """
    import tempfile

    from pipeline.cases.seal import extract, verify_sealed_bag
    from pipeline.custody.keys import trusted_keys
    from pipeline.storage.local import open_store

    s = settings()
    with catalog(s).begin() as conn:
        case = cases.get_case(conn, number)
    if case.archive_key is None:
        raise typer.BadParameter(f"case {number} is not sealed")
    with tempfile.TemporaryDirectory(dir=s.home) as tmp:
        bag = extract(open_store(s), case.archive_key, Path(tmp))
        problems = verify_sealed_bag(bag, trusted_keys(s.home))
    if json_out:
        output.print_json({"case": number, "bag": case.archive_key, "problems": problems})
    else:
        for p in problems:
            output.console.print(output.text(f"{p.code} {p.subject}: {p.message}", style="red"))
        output.console.print(
            "sealed case file verifies" if not problems else f"{len(problems)} problem(s)"
        )
    raise typer.Exit(0 if not problems else 1)
