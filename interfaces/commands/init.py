"""`evidence init` and `evidence demo`: setting up an instance, and a tour of it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from interfaces import common, output
from interfaces.common import JsonOpt
from pipeline.models import plain

_settings = common.settings


def register(root: typer.Typer) -> None:
    root.command("init")(init)
    root.command("demo")(demo)


def init(json_out: JsonOpt = False) -> None:
    """Create the data directory, the catalog, and the instance's signing key.

    Example: evidence --home /srv/evidence init
    """
    from pipeline.custody.usecases import initialize, trust_status

    info = initialize(_settings())
    if json_out:
        output.print_json(info)
        return
    for key, value in plain(info).items():
        output.console.print(output.line((key, "bold"), ": ", value))
    if info.key_id not in {p.key_id for p in trust_status(_settings()).pins}:
        output.console.print(
            output.text(
                "下一步 next: pin this key where the instance cannot change it, e.g. in "
                f"/etc/evidence/config.toml (root-owned, EVIDENCE_CONFIG): [custody] "
                f'pinned_keys = ["{info.key_id}"]. Until then `evidence verify` trusts no '
                "checkpoint (docs/deploy.md).",
                style="yellow",
            )
        )


def demo(
    home: Annotated[
        Path | None,
        typer.Option(
            help="Where to put the demo's data, new or empty (default: $EVIDENCE_HOME, else a "
            "temporary folder); it is left there for you to look around."
        ),
    ] = None,
) -> None:
    """Synthesize recorder dumps from several devices and ingest them through the flow;
    says at the end where it left its data.

    Example: EVIDENCE_HOME=/tmp/evidence-demo evidence demo
    """
    from interfaces.demo import run_demo

    raise typer.Exit(run_demo(home))
