"""Putting the flows on a Prefect server for many hosts: a process work pool, the
deployments, and the tag concurrency limits that cap hashing and transcoding.

Workers (``prefect worker start --pool … --type process``, or ``evidence worker``) on any
host poll the pool and run flow runs as subprocesses from ``prefect.code_path`` (the project
installed at the same path on every worker host). ``evidence watch`` with
``prefect.deployments = true`` submits batches with ``run_deployment`` instead of running
them itself.
"""

from __future__ import annotations

import contextlib
import shlex
import sys
from pathlib import Path
from typing import Any

from prefect import Flow, deploy
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from flows import compliance, fixity, retention
from flows.automations import deploy_automations
from flows.ingest import HASHING_TAG, TRANSCODE_TAG, ingest_station
from flows.runs import RUN_TAG
from pipeline.settings import Settings

INGEST_DEPLOYMENT = "ingest-station/station"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def deploy_all(settings: Settings) -> tuple[list[str], list[str]]:
    """Create (or update) the work pool, the deployments, the concurrency limits and the
    automations (flows/automations.py); the deployments' and the automations' names."""
    pool = settings.prefect.work_pool
    root = settings.prefect.code_path or str(PROJECT_ROOT)
    with get_client(sync_client=True) as client:
        with contextlib.suppress(ObjectAlreadyExists):
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        for tag, limit in (
            (HASHING_TAG, settings.prefect.hashing_limit),
            (TRANSCODE_TAG, settings.prefect.transcode_limit),
        ):
            if limit:
                client.create_concurrency_limit(tag=tag, concurrency_limit=limit)
            else:
                _drop_limit(client, tag)
        automations = deploy_automations(client)
    scheduled = (
        *compliance.deployments(settings),
        *fixity.deployments(settings),
        *retention.deployments(settings),
    )
    runners = [ingest_deployment(root, pool), *(_sourced(d, root, pool) for d in scheduled)]
    deploy(*runners, work_pool_name=pool, build=False, push=False, print_next_steps_message=False)
    return [f"{r.flow_name}/{r.name}" for r in runners], automations


def ingest_deployment(root: str, pool: str, name: str = "station") -> Any:
    """The ingest-station deployment (``INGEST_DEPLOYMENT`` when ``name`` is left as it is)
    for the work pool ``pool``, its code at ``root``; benchmark 11 runs it too."""
    runner = ingest_station.to_deployment(name=name, tags=[RUN_TAG, "kind:sweep"])
    return _sourced(runner, root, pool)


def engine_command(root: str) -> str | None:
    """The command a worker starts each flow run with: Prefect's engine under this Python,
    found on the worker host at its place under ``root`` as the code is; None (Prefect's own
    launcher) when this Python lies outside the project and the workers' code elsewhere.

    Without a command, a Prefect 3.9 process worker starts each run as a workspace
    supervisor (``prefect.runner._workspace_supervisor``) that imports Prefect (~2 s of CPU),
    runs the deployment's pull steps, then execs the engine, which imports Prefect again. The
    engine started at once runs the pull steps itself: one Prefect start-up per run instead
    of two (benchmark 11, BENCHMARKS.md).
    """
    python = Path(sys.executable).absolute()  # not resolved: a venv's python is a symlink
    if python.is_relative_to(PROJECT_ROOT):
        python = Path(root) / python.relative_to(PROJECT_ROOT)
    elif Path(root).resolve() != PROJECT_ROOT:
        return None
    return shlex.join([str(python), "-m", "prefect.engine"])


def _sourced(runner: Any, root: str, pool: str) -> Any:
    """The same deployment (name, schedules, parameters) for the work pool, its code taken
    from ``root`` — a local path: each worker runs the code from that path on its host, with
    :func:`engine_command`."""
    module_file, _, func = runner.entrypoint.partition(":")
    entrypoint = f"{Path(module_file).resolve().relative_to(PROJECT_ROOT)}:{func}"
    flow: Any = Flow.from_source(source=root, entrypoint=entrypoint)  # sync here, not a coroutine
    command = engine_command(root)
    return flow.to_deployment(
        name=runner.name,
        work_pool_name=pool,
        schedules=[s.schedule for s in runner.schedules or []],
        parameters=runner.parameters,
        job_variables={"command": command} if command else None,
    )


def _drop_limit(client: Any, tag: str) -> None:
    with contextlib.suppress(ObjectNotFound):  # none set: nothing to drop
        client.delete_concurrency_limit_by_tag(tag)


def submit_ingest(
    station_id: str, paths: list[str] | None, job_ids: list[int] | None = None
) -> str:
    """Submit one sweep (or the jobs ``job_ids`` a sweep planned) to the ingest-station
    deployment without waiting; the run's name."""
    parameters: dict[str, Any] = {"station_id": station_id, "paths": paths}
    if job_ids is not None:
        parameters["job_ids"] = job_ids
    kind = "batch" if paths is not None else "sweep"
    run: Any = run_deployment(  # sync when called from sync code
        INGEST_DEPLOYMENT,
        parameters=parameters,
        timeout=0,
        tags=[RUN_TAG, f"kind:{kind}", f"station:{station_id}"],
    )
    return str(run.name)
