"""`evidence keys …`: the instance's signing key (Ed25519)."""

from __future__ import annotations

import sys

import typer

from interfaces import output
from interfaces.common import JsonOpt, settings

app = typer.Typer(help="The instance's signing key (Ed25519).", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="keys")
    app.command("export")(keys_export)


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
