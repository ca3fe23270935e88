"""`evidence verify`, `evidence audit`, `evidence export`: the chain of custody, who viewed
what, and court packages."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from interfaces import common, output
from interfaces.commands.media import RevealOpt, reveal_asked, withheld_note
from interfaces.common import JsonOpt
from pipeline.custody import usecases
from pipeline.custody.access import DESCRIBED_DETAILS, WITHHELD, AuditedEvent, Field
from pipeline.custody.log import CustodyEvent
from pipeline.custody.verify_bag import Problem
from pipeline.models import EventKind

AsOpt = Annotated[
    str | None, typer.Option("--as", help="Who views or exports (required; recorded).")
]

ReasonOpt = Annotated[
    str | None, typer.Option("--reason", help="Why (required; recorded), e.g. a case number.")
]

#: Characters of an event's details a table row shows.
DETAILS_WIDTH = 100


def register(root: typer.Typer) -> None:
    root.command("audit")(audit)
    root.command("export")(export)
    root.command("verify")(verify)


def audit(
    media: Annotated[
        str | None, typer.Option("--media", help="One media item's history (id or SHA-256).")
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="What one person did.")] = None,
    case: Annotated[str | None, typer.Option("--case", help="One case's history.")] = None,
    kind: Annotated[
        list[EventKind] | None, typer.Option("--kind", help="Only these kinds (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, the newest.")] = 1000,
    reveal: RevealOpt = False,
    viewer: AsOpt = None,
    reason: ReasonOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List custody history: who did what to which evidence, when, and why. The text of
    descriptions and text-record fields is withheld (the change itself is listed) unless
    --reveal, which needs --as and --reason and is recorded (调阅监督).

    Example: evidence audit --media 3f2a9c --kind viewed --kind exported
    """
    reveal_asked(reveal, viewer, reason)
    inst, viewer = common.instance_as(viewer)
    found = usecases.audit(
        inst,
        media_key=media,
        actor=actor,
        case=case,
        kinds=kind or (),
        limit=limit,
        reveal=reveal,
        viewer=viewer,
        reason=reason,
    )
    withheld = [f for f in Field if any(f in e.withheld for e in found)]
    if json_out:
        output.print_json(found)
    else:
        zone, names = inst.settings.zone, common.officer_names(inst)
        output.console.print(events_table(found, zone, names))
    withheld_note(withheld, json_out=json_out)


def events_table(
    events: Sequence[CustodyEvent], zone: tzinfo = UTC, names: Mapping[str, str] | None = None
) -> Table:
    """Custody events, times in ``zone``, actors by id and name (``names``: id -> name)."""
    names = names or {}
    table = output.titled_table(
        f"{output.plural(len(events), 'custody event')}, {output.zone_note(zone)}"
    )
    for col in ("seq", "time", "kind", "actor", "media", "reason / details"):
        table.add_column(col, overflow="fold")
    for e in events:
        details = dict(e.details)
        if isinstance(e, AuditedEvent) and e.withheld:
            details = {k: WITHHELD if k in DESCRIBED_DETAILS else v for k, v in details.items()}
        reason = details.pop("reason", None)
        summary = json.dumps(details, ensure_ascii=False, sort_keys=True) if details else ""
        if len(summary) > DETAILS_WIDTH:  # the whole of it is in --json
            summary = summary[: DETAILS_WIDTH - 1] + "…"
        shown = output.text(summary)
        if reason:
            shown = Text.assemble(output.text(reason, style="bold"), " ", shown)
        table.add_row(
            str(e.seq),
            output.when(e.at, zone),
            e.kind.value,
            output.text(common.officer_label(e.actor, names)),
            str(e.media_id or ""),
            shown,
        )
    return table


def export(
    out: Annotated[Path, typer.Option("--out", help="The bag's folder (new or empty).")],
    media: Annotated[
        list[str] | None,
        typer.Option("--media", help="Media items (id or SHA-256; repeat or comma-separate)."),
    ] = None,
    case: Annotated[str | None, typer.Option("--case", help="Every item of a case.")] = None,
    reason: ReasonOpt = None,
    actor: AsOpt = None,
    with_proxies: Annotated[
        bool, typer.Option("--with-proxies", help="Include the browser proxies.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Write a court package: a BagIt bag of originals, metadata and custody history, signed,
    with a standalone verifier inside. The export is itself recorded with who and why. As a
    user (--as a login) it needs a grant for each item under the access policy (调阅审批:
    `evidence access request --action export`).

    Example: evidence export --media 3,5 --out /mnt/usb/2026-0113 --reason "移送法院" --as 1023
    """
    if (case is None) == (not media):
        raise typer.BadParameter("give --case or --media, not both, not neither")
    keys = [k.strip() for item in media or () for k in item.split(",") if k.strip()]
    inst, actor = common.instance_as(actor)
    result = usecases.export_package(
        inst,
        out,
        media_keys=keys,
        case=case,
        actor=actor,
        reason=reason,
        with_proxies=with_proxies,
    )
    if json_out:
        output.print_json(result)
        return
    output.console.print(
        output.text(
            f"exported {output.plural(len(result.media_ids), 'item')} to {result.path} (export "
            f"{result.export_id}): {output.plural(result.files, 'file')}, {result.bytes:,} "
            "bytes; custody chain "
            f"seq {result.segment[0]}..{result.segment[1]} signed by key "
            f"{', '.join(result.key_ids)}"
        )
    )
    output.console.print(
        output.text(f"verify it: python3 {result.path / 'verify_bag.py'} {result.path}")
    )


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
    """Re-hash stored originals, recompute the custody chain, check checkpoints and records.

    The signed checkpoints are checked against the pinned keys and the witnesses, the catalog
    is replayed from the custody log, sealed case bags are re-hashed and verified, and file
    modes are checked. Every problem is listed with a stable code (E-FIXITY-MISMATCH,
    E-CHAIN-GAP, E-RECORD-MISMATCH, …; docs/problems.md); exit 1 when there is any. Each
    original checked gets a fixity custody event unless --no-record.

    Example: evidence verify --sample 50 --json
    """
    if sum(bool(x) for x in (full, sample, media)) > 1:
        raise typer.BadParameter("give one of --full, --sample N, or media items")
    report = usecases.verify(
        common.instance(), media_keys=media or (), sample=sample, record=not no_record
    )
    if json_out:
        output.print_json(report)
    else:
        if report.problems:
            output.console.print(problems_table(report.problems))
        problems = output.plural(len(report.problems), "problem")
        verdict = "[green]clean[/]" if report.ok else f"[red]{problems}[/]"
        output.console.print(
            f"{output.plural(report.originals, 'original')} re-hashed, "
            f"{output.plural(report.events, 'custody event')} recomputed, "
            f"{output.plural(report.checkpoints, 'signed checkpoint')} checked, "
            f"{output.plural(report.rows, 'catalog row')} replayed from the log, "
            f"{output.plural(report.sealed, 'sealed case bag')} verified "
            f"in {report.seconds:.1f} s: {verdict}"
        )
        if report.events and not report.checkpoints and report.ok:
            output.console.print(
                "[yellow]no signed checkpoint yet[/]: the log is only hash-chained; "
                "`evidence init` makes the key, `evidence serve` signs"
            )
        for w in report.warnings:
            output.console.print(
                output.text(f"注意 warning {w.code}  {w.subject}: {w.message}", style="yellow")
            )
        if report.witnesses:
            output.console.print(output.text("witnesses read: " + ", ".join(report.witnesses)))
    raise typer.Exit(0 if report.ok else 1)


def problems_table(problems: Sequence[Problem]) -> Table:
    table = Table(title=output.plural(len(problems), "problem"))
    for col in ("code", "where", "problem"):
        table.add_column(col, overflow="fold")
    for p in problems:
        table.add_row(
            output.text(p.code, style="red"),
            output.text(p.subject),
            output.text(p.message),
        )
    return table
