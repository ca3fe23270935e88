"""What every command module shares: settings and catalog at the entry point, --json."""

from __future__ import annotations

from typing import Annotated

import typer

from pipeline.catalog import Catalog, open_catalog
from pipeline.settings import Settings, load_settings

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ActorOpt = Annotated[
    str | None, typer.Option("--as", help="Who acts (default: the `actor` setting).")
]


def settings() -> Settings:
    """Settings, read once per command invocation (the CLI is the entry point)."""
    return load_settings()


def catalog(s: Settings) -> Catalog:
    return open_catalog(s.catalog_url)
