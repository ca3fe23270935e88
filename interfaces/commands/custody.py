"""`evidence verify`, `evidence keys export`: proving the archive. (The fixity and checkpoint
schedules are served by `evidence serve`, from flows/fixity.py.)"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from interfaces import output
from interfaces.common import JsonOpt, catalog, settings
from pipeline.custody.verify_bag import Problem

keys_app = typer.Typer(help="The instance's signing key (Ed25519).", no_args_is_help=True)


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    app.command("verify")(verify)
    app.add_typer(keys_app, name="keys")
    keys_app.command("export")(keys_export)


def verify(
    media: Annotated[
        list[str] | None,
        typer.Argument(metavar="[MEDIA]...", help="Only these items (id or SHA-256 prefix)."),
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Every original (the default).")] = False,
    sample: Annotated[
        int | None, typer.Option("--sample", min=1, help="N originals picked at random.")
    ] = None,
    no_record: Annotated[
        bool, typer.Option("--no-record", help="Do not record fixity events (read only).")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Re-hash stored originals, recompute the custody chain, check the signed checkpoints.

    Every problem is listed with a stable code (E-FIXITY-MISMATCH, E-CHAIN-GAP, …); exit 1
    when there is any. Each original checked gets a fixity custody event unless --no-record.

    Example: evidence verify --sample 50 --json
    """
    from pipeline.custody import fixity as verify_lib
    from pipeline.storage.local import open_store

    if sum(bool(x) for x in (full, sample, media)) > 1:
        raise typer.BadParameter("give one of --full, --sample N, or media items")
    s = settings()
    cat = catalog(s)
    originals = verify_lib.select_originals(cat, sample=sample, media_keys=media or ())
    report = verify_lib.run(
        cat,
        open_store(s),
        s.home,
        originals,
        actor=s.actor,
        workers=s.custody.fixity_workers,
        record_events=not no_record,
    )
    if json_out:
        output.print_json(
            {
                "ok": report.ok,
                "originals": report.originals,
                "events": report.events,
                "checkpoints": report.checkpoints,
                "head_seq": report.head_seq,
                "seconds": round(report.seconds, 3),
                "run": report.run,
                "problems": [p._asdict() for p in report.problems],
            }
        )
    else:
        if report.problems:
            output.console.print(problems_table(report.problems))
        verdict = "[green]clean[/]" if report.ok else f"[red]{len(report.problems)} problems[/]"
        output.console.print(
            f"{report.originals} originals re-hashed, {report.events} custody events "
            f"recomputed, {report.checkpoints} signed checkpoints checked in "
            f"{report.seconds:.1f} s: {verdict}"
        )
        if report.events and not report.checkpoints:
            output.console.print(
                "[yellow]no signed checkpoint yet[/]: the log is only hash-chained; "
                "`evidence init` makes the key, `evidence serve` signs"
            )
    raise typer.Exit(0 if report.ok else 1)


def problems_table(problems: tuple[Problem, ...]) -> Table:
    table = Table(title=f"{len(problems)} problems")
    for col in ("code", "where", "problem"):
        table.add_column(col, overflow="fold")
    for p in problems:
        table.add_row(
            output.text(p.code, style="red"), output.text(p.subject), output.text(p.message)
        )
    return table


def keys_export(json_out: JsonOpt = False) -> None:
    """Print the instance's public key (PEM), to publish for courts and auditors.

    The key id (SHA-256 of the raw key) goes to stderr, so the output is a clean PEM file.

    Example: evidence keys export > agency-evidence-key.pem
    """
    from pipeline.custody import keys

    info = keys.describe(settings().home)
    if json_out:
        output.print_json({"key_id": info.key_id, "public_key": info.public_pem})
        return
    sys.stdout.write(info.public_pem)
    output.err_console.print(output.text(f"key id: {info.key_id}"))
