"""`evidence serve`, `evidence deploy`, `evidence worker`: schedules, deployments, workers."""

from __future__ import annotations

from typing import Annotated

import typer

from interfaces import output
from interfaces.common import JsonOpt, settings
from pipeline.settings import Settings


def register(root: typer.Typer) -> None:
    root.command("serve")(serve_all)
    root.command("deploy")(deploy)
    root.command("worker")(worker)


def serve_all() -> None:
    """Serve the scheduled flows until Ctrl-C: compliance-sweep (daily, cases.compliance_cron),
    fixity-check (a daily sample and a monthly full pass) and custody checkpoints. Flow runs
    appear in the Prefect UI.

    Example: evidence serve
    """
    from flows.runtime import use_prefect

    s = settings()
    from pipeline.custody.checkpoints import checkpointer

    checkpointer(s)  # no usable instance key: fail now, not at every scheduled run
    server = use_prefect(s)
    from flows.schedules import scheduled, serve_scheduled

    deployments = scheduled(s)
    output.console.print(output.text(schedules_line(s, len(deployments), server.ui_url)))
    try:
        serve_scheduled(deployments)
    except KeyboardInterrupt:
        output.console.print("stopped")


def schedules_line(s: Settings, count: int, ui_url: str) -> str:
    """What is served, each cron line with the zone it runs in (a cron line alone does not
    say whether 06:00 is Beijing time or UTC)."""
    every = s.custody.checkpoint_every_minutes
    return (
        f"serving {count} schedules: compliance-sweep '{s.cases.compliance_cron}' "
        f"({s.devices.timezone}), fixity-check '{s.custody.fixity_sample_cron}' (sample) and "
        f"'{s.custody.fixity_full_cron}' (full) ({s.custody.fixity_timezone}), custody "
        f"checkpoints every {every:g} min, retention-sweep '{s.retention.sweep_cron}' "
        f"({s.devices.timezone}); Prefect UI {ui_url}"
    )


def deploy(json_out: JsonOpt = False) -> None:
    """Create the work pool, the deployments (ingest-station, compliance-sweep, fixity-check,
    custody-checkpoint), the tag concurrency limits and the automations (a failed ingest or
    fixity run; a station silent for 2 h: notified through the notification block named
    evidence-operators, when there is one) on the Prefect server (prefect.api_url), for
    workers on any host. Safe to run again after a change of settings.

    Example: EVIDENCE_PREFECT__API_URL=http://prefect.local:4200/api evidence deploy
    """
    from flows.runtime import use_prefect

    s = settings()
    server = use_prefect(s)
    from flows.deploy import deploy_all

    names, automations = deploy_all(s)
    if json_out:
        output.print_json(
            {
                "api_url": server.url,
                "work_pool": s.prefect.work_pool,
                "deployments": names,
                "automations": automations,
            }
        )
        return
    for name in names:
        output.console.print(output.text(f"deployed {name} to work pool {s.prefect.work_pool}"))
    for name in automations:
        output.console.print(output.text(f"automation {name!r} set"))
    output.console.print(
        output.text(
            f"start workers on any host: evidence worker (or: prefect worker start --pool "
            f"{s.prefect.work_pool} --type process); UI {server.ui_url}"
        )
    )


def worker(
    limit: Annotated[int | None, typer.Option(help="At most this many flow runs at once.")] = None,
    name: Annotated[str | None, typer.Option(help="Worker name (default: generated).")] = None,
) -> None:
    """Run a Prefect process worker for this instance's work pool, with this instance's
    settings and Prefect server. Stop with Ctrl-C.

    Example: evidence worker --limit 2
    """
    import os
    import subprocess
    import sys

    from flows.runtime import use_prefect

    s = settings()
    use_prefect(s, start=False)
    command = [
        sys.executable,
        "-m",
        "prefect",
        "worker",
        "start",
        "--pool",
        s.prefect.work_pool,
        "--type",
        "process",
    ]
    if limit:
        command += ["--limit", str(limit)]
    if name:
        command += ["--name", name]
    output.console.print(
        output.text(f"worker for pool {s.prefect.work_pool} on {os.environ['PREFECT_API_URL']}")
    )
    try:
        raise typer.Exit(subprocess.call(command))
    except KeyboardInterrupt:
        output.console.print("stopped")
