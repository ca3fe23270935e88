"""What every command module shares: settings and catalog at the entry point, --json."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Annotated

import typer

from interfaces import output
from pipeline.accounts import usecases as accounts
from pipeline.catalog import Catalog, open_catalog
from pipeline.custody.keys import PRIVATE_NAME, key_dir
from pipeline.errors import ConfigError
from pipeline.instance import Instance, open_instance
from pipeline.registry import usecases as registry_usecases
from pipeline.registry.records import Change
from pipeline.search.query import period
from pipeline.settings import Settings, load_settings

#: Query terms and tag changes start with "-" (-tag:draft, -draft): arguments, not options.
LOOSE = {"ignore_unknown_options": True}

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

# Which requests a list of requests (access, disposal) shows: see :func:`listing`.
MineOpt = Annotated[bool, typer.Option("--mine", help="My requests (the default).")]
WaitingOpt = Annotated[bool, typer.Option("--waiting", help="Requests waiting for me to decide.")]
EveryOpt = Annotated[bool, typer.Option("--all", help="Every request I may see, decided or not.")]


def listing(mine: bool, waiting: bool, every: bool) -> str:
    """``mine``, ``waiting`` or ``all`` from --mine, --waiting, --all (at most one)."""
    if mine + waiting + every > 1:
        raise typer.BadParameter("give one of --mine, --waiting, --all")
    return "waiting" if waiting else "all" if every else "mine"


ActorOpt = Annotated[
    str | None,
    typer.Option(
        "--as", help="Who acts: once accounts exist, a login or officer id (default: `actor`)."
    ),
]


def settings() -> Settings:
    """Settings, read once per command invocation (the CLI is the entry point)."""
    return load_settings()


class NotInitialised(ConfigError):
    """A command named a home that `evidence init` never made."""

    code = "not-initialised"


def initialised(s: Settings) -> Settings:
    """``s``, unless its home is one `evidence init` never made (no catalog, no instance
    key): a mistyped --home would otherwise get an empty catalog of its own and show 0 items.
    A configured catalog (PostgreSQL, a station host without the key) is the instance."""
    if not s.catalog.url and not any(
        p.exists() for p in (s.home / "catalog.db", key_dir(s.home) / PRIVATE_NAME)
    ):
        raise NotInitialised(
            f"{s.home} is not an evidence home: it was never initialised; create it with "
            f"`evidence --home {s.home} init`, or name the right one (--home, EVIDENCE_HOME)"
        )
    return s


def catalog(s: Settings) -> Catalog:
    return open_catalog(initialised(s).catalog_url)


def instance(actor: str | None = None) -> Instance:
    """The instance a command works on: settings read once, the catalog opened (the store on
    first use), ``actor`` acting (else the ``actor`` setting). Use cases take it."""
    return instance_as(actor)[0]


def instance_as(actor: str | None) -> tuple[Instance, str | None]:
    """The instance, with who ``--as`` names acting, and that person: once accounts exist, the
    login of an enabled user (``accounts.person_acting``: AccountError otherwise); None
    without ``--as``, for the use cases that require one to say so."""
    opened = open_instance(initialised(settings()))
    who = accounts.person_acting(opened, actor)
    return opened.acting(who), who


def _period(s: Settings, text: str) -> tuple[datetime | None, datetime | None]:
    try:
        return period(text, s.zone)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def local_time(s: Settings, text: str | None) -> datetime | None:
    """A time given on the command line, in the forms ``search`` takes (2026-11, 2026-Q4,
    2026-11-27, 2026-11-27T09:00, with or without a zone; local time, devices.timezone,
    without one): the moment its period starts."""
    if text is None:
        return None
    return _period(s, text)[0]


def local_until(s: Settings, text: str | None) -> datetime | None:
    """The end of a range given on the command line (``--to 2026-11``): the moment after the
    period ``text`` names, so the whole month, day or minute is in the range."""
    if text is None:
        return None
    return _period(s, text)[1]


def now() -> datetime:
    return datetime.now(UTC)


def local_date(s: Settings) -> date:
    return datetime.now(s.zone).date()


def ago(moment: datetime | None, zone: tzinfo = UTC) -> str:
    """When something last happened, in ``zone`` (a screen says which, :func:`output.zone_note`)."""
    return "never" if moment is None else output.when(moment, zone, seconds=False)


def officer_names(inst: Instance) -> dict[str, str]:
    """Officer id -> name, for lists that hold ids (``1023 张伟``)."""
    return {o.id: o.name for o in registry_usecases.list_officers(inst)}


def officer_label(officer_id: str | None, names: Mapping[str, str]) -> str:
    """``1023 张伟``: the id people type, and the name they know; the id alone if unknown."""
    if not officer_id:
        return ""
    name = names.get(officer_id)
    return f"{officer_id} {name}" if name else officer_id


def changes_out(changes: Sequence[Change], json_out: bool) -> None:
    """Registry changes: JSON, or one line per change and a count of each action."""
    if json_out:
        output.print_json(changes)
        return
    if len(changes) == 1:  # one line says it all: "added device BWC0017"
        (c,) = changes
        output.console.print(output.text(f"{c.action} {c.entity} {c.key}"))
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
