"""`evidence server …`: the local Prefect server the commands share."""

from __future__ import annotations

import typer

from interfaces import common, output
from interfaces.common import JsonOpt

app = typer.Typer(help="The local Prefect server the commands share.", no_args_is_help=True)

_settings = common.settings


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="server")
    app.command("start")(server_start)
    app.command("status")(server_status)
    app.command("stop")(server_stop)


def server_start(json_out: JsonOpt = False) -> None:
    """Start the local Prefect server (or find the running one); print its UI address."""
    from flows.runtime import use_prefect

    info = use_prefect(_settings())
    if json_out:
        output.print_json({"api_url": info.url, "ui_url": info.ui_url, "pid": info.pid})
    else:
        verb = "started" if info.started else "running"
        output.console.print(
            output.text(f"Prefect server {verb}: UI {info.ui_url}, API {info.url}")
        )


def server_status(json_out: JsonOpt = False) -> None:
    """Say whether the local Prefect server runs."""
    from flows.runtime import running_server

    info = running_server(_settings())
    if json_out:
        output.print_json(
            None if info is None else {"api_url": info.url, "ui_url": info.ui_url, "pid": info.pid}
        )
    else:
        output.console.print(output.text(f"running: {info.ui_url}" if info else "not running"))
    raise typer.Exit(0 if info else 1)


def server_stop() -> None:
    """Stop the local Prefect server started by an earlier command (as `prefect server
    stop` does with PREFECT_HOME=$EVIDENCE_HOME/prefect)."""
    from flows.runtime import stop_server

    output.console.print("stopped" if stop_server(_settings()) else "not running")
