"""`evidence keys …`: the instance's signing key (Ed25519), the pinned trust, checkpoints."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from interfaces import common, output
from interfaces.common import JsonOpt, settings

app = typer.Typer(
    help="签名密钥与信任锚 The signing key, the pinned keys, checkpoints.", no_args_is_help=True
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="keys")
    app.command("export")(keys_export)
    app.command("status")(keys_status)
    app.command("rotate")(keys_rotate)
    app.command("checkpoint")(keys_checkpoint)
    app.command("accept-loss")(keys_accept_loss)


def keys_export(json_out: JsonOpt = False) -> None:
    """Print the instance's public key (PEM), to publish for courts and auditors.

    The key id (SHA-256 of the raw key) goes to stderr, so the output is a clean PEM file.
    Pin that id (custody.pinned_keys) in settings the instance cannot write: docs/deploy.md.

    Example: evidence keys export > agency-evidence-key.pem
    """
    from pipeline.custody import keys

    info = keys.describe(settings().home)
    if json_out:
        output.print_json({"key_id": info.key_id, "public_key": info.public_pem})
        return
    sys.stdout.write(info.public_pem)
    output.err_console.print(output.text(f"key id: {info.key_id}"))


def keys_status(json_out: JsonOpt = False) -> None:
    """Show what verify trusts: the pinned keys, where the pins come from, the witnesses.

    Exit 1 when the trust is broken (nothing pinned, a pinned key not found, a rotation
    without its signed statement).

    Example: evidence keys status
    """
    from pipeline.custody.usecases import trust_status

    status = trust_status(settings())
    if json_out:
        output.print_json(status)
        raise typer.Exit(1 if status.problems else 0)
    table = Table(title="固定信任的密钥 pinned keys")
    for col in ("key id", "replaces", "found", "signs now"):
        table.add_column(col, overflow="fold")
    for pin in status.pins:
        table.add_row(
            output.text(pin.key_id),
            output.text(pin.replaces or "—"),
            "yes" if pin.found else output.text("NO", style="red"),
            "yes" if pin.signing else "",
        )
    output.console.print(table)
    output.console.print(output.line(("pins ", "bold"), status.pinned_from))
    output.console.print(
        output.line(("instance key ", "bold"), status.instance_key or "none (`evidence init`)")
    )
    output.console.print(
        output.line(
            ("external witnesses ", "bold"), ", ".join(status.witnesses) or "none (local only)"
        )
    )
    for p in (*status.problems, *status.warnings):
        style = "red" if p.code.startswith("E-") else "yellow"
        output.console.print(output.text(f"{p.code}  {p.subject}: {p.message}", style=style))
    raise typer.Exit(1 if status.problems else 0)


def keys_rotate(
    yes: Annotated[bool, typer.Option("--yes", help="Do it without asking.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Replace the signing key. The old key signs a statement that the new one takes over.

    Afterwards the administrator pins the new key with `replaces` (the command prints the
    line); until then the new key's checkpoints do not verify.

    Example: evidence keys rotate --yes
    """
    from pipeline.custody.usecases import rotate_key

    if not yes:
        typer.confirm("Replace the instance's signing key?", abort=True)
    done = rotate_key(settings())
    if json_out:
        output.print_json(done)
        return
    pin = json.dumps({"id": done.new_id, "replaces": done.old_id})
    output.console.print(output.line(("new key ", "bold"), done.new_id))
    output.console.print(output.line(("statement ", "bold"), str(done.statement)))
    output.console.print(
        output.text(
            "Pin it (keep the old pin): custody.pinned_keys += "
            f'{{ id = "{done.new_id}", replaces = "{done.old_id}" }}  (JSON: {pin})'
        )
    )


def keys_checkpoint(
    force: Annotated[
        bool, typer.Option("--force", help="Sign the head too, even if not due yet.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Sign the custody checkpoints that are due and update every witness.

    `evidence serve` does this every custody.checkpoint_every_minutes; run it by hand (or
    from cron) on an instance that is not served.

    Example: evidence keys checkpoint
    """
    from pipeline.custody.usecases import sign_checkpoints

    made = sign_checkpoints(common.instance(), force=force)
    if json_out:
        output.print_json({"signed": [cp.record() for cp in made]})
        return
    if not made:
        output.console.print("nothing due: every checkpoint is signed")
    for cp in made:
        output.console.print(output.text(f"signed seq {cp.seq}  {cp.hash}"))


def keys_accept_loss(
    actor: Annotated[str | None, typer.Option("--as", help="Who accepts it (recorded).")] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why, e.g. the restore (recorded).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Accept that the catalog lost checkpoints the witnesses hold (after a restore).

    Signing refuses to go on while a witness is ahead of the catalog. This records an ALERT
    custody event per witness, with who and why, and signing resumes; `evidence verify` keeps
    reporting the lost stretch, which is the truth.

    Example: evidence keys accept-loss --as A001 --reason "restored from the 11-30 backup"
    """
    from pipeline.custody.usecases import accept_witness_loss

    inst, actor = common.instance_as(actor)
    accepted = accept_witness_loss(inst, actor=actor, reason=reason)
    if json_out:
        output.print_json({"accepted": accepted})
        return
    if not accepted:
        output.console.print("no witness is ahead of the catalog: nothing to accept")
    for name, seq in accepted.items():
        output.console.print(output.text(f"accepted: {name} holds checkpoints up to seq {seq}"))
