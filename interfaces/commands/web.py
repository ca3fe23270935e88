"""`evidence web`: the archivists' web application (档案管理 Web 端), served by uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from interfaces import common, output
from pipeline.accounts import usecases as accounts


def register(root: typer.Typer) -> None:
    root.command("web")(web)


def web(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default: the web.host setting).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port (default: the web.port setting)."),
    ] = None,
) -> None:
    """Serve the web application: sign-in, search, playback under access supervision.

    It binds 127.0.0.1 unless told: put it behind the agency's TLS reverse proxy and set
    web.secure_cookies = true there. Accounts come from `evidence users add`.

    Example: evidence web --port 8000
    """
    import uvicorn

    from interfaces.web.app import create_app

    instance = common.instance()
    settings = instance.settings.web
    bind, listen = host or settings.host, port or settings.port
    output.console.print(
        output.text(f"evidence web: http://{bind}:{listen}/ (Ctrl-C to stop)"), highlight=False
    )
    if not accounts.list_users(instance):
        output.err_console.print(
            "no accounts yet (尚无用户): add one with "
            "`evidence users add LOGIN --officer ID --role archivist --password-stdin`",
            markup=False,
        )
    uvicorn.run(
        create_app(instance),
        host=bind,
        port=listen,
        proxy_headers=True,
        server_header=False,
        log_level="warning",
    )
