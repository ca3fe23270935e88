"""`evidence serve`: every scheduled flow of the instance, served from one process."""

from __future__ import annotations

import typer

from interfaces import output
from interfaces.common import settings


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    app.command("serve")(serve_all)


def serve_all() -> None:
    """Serve the scheduled flows until Ctrl-C: compliance-sweep (daily, cases.compliance_cron),
    fixity-check (a daily sample and a monthly full pass) and custody checkpoints. Flow runs
    appear in the Prefect UI.

    Example: evidence serve
    """
    from flows.runtime import use_prefect

    s = settings()
    server = use_prefect(s)
    from prefect import serve

    from flows import compliance, fixity

    deployments = [*compliance.deployments(s), *fixity.deployments(s)]
    output.console.print(
        f"serving {len(deployments)} schedules: compliance-sweep '{s.cases.compliance_cron}', "
        f"fixity-check '{s.custody.fixity_sample_cron}' (sample) and "
        f"'{s.custody.fixity_full_cron}' (full), checkpoints; Prefect UI {server.ui_url}"
    )
    try:
        serve(*deployments, print_starting_message=False)
    except KeyboardInterrupt:
        output.console.print("stopped")
