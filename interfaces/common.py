"""What every command module shares: settings and catalog at the entry point, --json."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer

from interfaces import output
from pipeline.catalog import Catalog, open_catalog
from pipeline.instance import Instance, open_instance
from pipeline.registry import usecases as registry_usecases
from pipeline.registry.records import Change
from pipeline.settings import Settings, load_settings

#: Query terms and tag changes start with "-" (-tag:draft, -draft): arguments, not options.
LOOSE = {"ignore_unknown_options": True}

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ActorOpt = Annotated[
    str | None, typer.Option("--as", help="Who acts (default: the `actor` setting).")
]


def settings() -> Settings:
    """Settings, read once per command invocation (the CLI is the entry point)."""
    return load_settings()


def catalog(s: Settings) -> Catalog:
    return open_catalog(s.catalog_url)


def instance(actor: str | None = None) -> Instance:
    """The instance a command works on: settings read once, the catalog opened (the store on
    first use), ``actor`` acting (else the ``actor`` setting). Use cases take it."""
    return open_instance(settings()).acting(actor)


def local_time(s: Settings, text: str | None) -> datetime | None:
    """A date-time given on the command line: local time (devices.timezone) unless zoned."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date-time like 2026-11-27T09:00") from None
    return moment.replace(tzinfo=s.zone) if moment.tzinfo is None else moment


def now() -> datetime:
    return datetime.now(UTC)


def local_date(s: Settings) -> date:
    return datetime.now(s.zone).date()


def ago(moment: datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def changes_out(changes: Sequence[Change], json_out: bool) -> None:
    """Registry changes: JSON, or one line per change and a count of each action."""
    if json_out:
        output.print_json(changes)
        return
    counts: dict[str, int] = {}
    for c in changes:
        counts[c.action] = counts.get(c.action, 0) + 1
        if c.action != "unchanged":
            output.console.print(output.text(f"{c.action:<9} {c.entity} {c.key}"))
    output.console.print(
        ", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "nothing to do"
    )


def import_registry(path: Path, actor: str | None, json_out: bool) -> None:
    """`devices import` and `officers import`: one use case, the changes printed."""
    changes_out(registry_usecases.import_registry(instance(actor), path), json_out)
