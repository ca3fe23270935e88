"""`evidence init` and `evidence demo`: setting up an instance, and a tour of it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from interfaces import common, output
from interfaces.common import JsonOpt

_settings = common.settings

_catalog = common.catalog


def register(root: typer.Typer) -> None:
    root.command("init")(init)
    root.command("demo")(demo)


def init(json_out: JsonOpt = False) -> None:
    """Create the data directory, the catalog, and the instance's signing key.

    Example: evidence --home /srv/evidence init
    """
    from sqlalchemy.engine import make_url

    from pipeline.custody.keys import create_instance_key
    from pipeline.storage.local import open_store

    settings = _settings()
    for folder in (settings.home, settings.log_dir, settings.prefect_home):
        folder.mkdir(parents=True, exist_ok=True)
    _catalog(settings).dispose()
    open_store(settings)  # creates the archive (an S3 bucket with Object Lock: self-tested)
    signing = create_instance_key(settings.home)  # signs custody checkpoints; kept if it exists
    s3 = settings.store.s3
    archive = (
        str(settings.archive_dir)
        if settings.store.kind == "local"
        else f"s3://{s3.bucket} at {s3.endpoint_url or 'AWS ' + s3.region}"
    )
    info = {
        "home": settings.home,
        "catalog": make_url(settings.catalog_url).render_as_string(hide_password=True),
        "archive": archive,
        "key_id": signing.key_id,
        "key": signing.path,
    }
    if json_out:
        output.print_json(info)
    else:
        for key, value in info.items():
            output.console.print(output.line((key, "bold"), ": ", value))


def demo(
    home: Annotated[
        Path | None,
        typer.Option(help="Where to put the demo's data (default: a temporary folder)."),
    ] = None,
) -> None:
    """Synthesize recorder dumps from several devices and ingest them through the flow.

    Example: evidence demo
    """
    from interfaces.demo import run_demo

    raise typer.Exit(run_demo(home))
