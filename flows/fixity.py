"""The ``fixity-check`` and ``custody-checkpoint`` flows, and serving them on schedules.

``fixity-check`` re-hashes stored originals (a random sample, or all of them), recomputes the
custody chain and its signed checkpoints, records a fixity event per original, and signs the
checkpoints due. A run that finds a problem ends in the Failed state ``ProblemsFound``, so
operators see it in the UI, with one log line per problem (code, subject, message) and the
table artifact listing every problem: a finding is the check's outcome, not a crash, so it is
never a traceback.

``evidence serve`` serves :func:`deployments` with the instance's other schedules: the daily
sample and the monthly full pass (``custody.fixity_*_cron`` in ``custody.fixity_timezone``),
and the checkpoint signer every ``custody.checkpoint_every_minutes``.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.schedules import Cron, Interval
from prefect.states import Failed

from pipeline.catalog import Catalog, open_catalog
from pipeline.custody import checkpoints
from pipeline.custody import fixity as verify
from pipeline.custody.verify_bag import Problem
from pipeline.errors import ConfigError
from pipeline.settings import Settings, load_settings
from pipeline.storage.local import ArchiveStore, open_store


@task(name="select-originals", cache_policy=NO_CACHE)
def select_task(catalog: Catalog, sample: int | None) -> list[verify.Original]:
    return verify.select_originals(catalog, sample=sample)


@task(name="check-originals", cache_policy=NO_CACHE)
def originals_task(
    store: ArchiveStore, originals: list[verify.Original], workers: int
) -> list[verify.OriginalCheck]:
    return verify.check_originals(store, originals, workers)


@task(name="check-custody-log", cache_policy=NO_CACHE)
def log_task(catalog: Catalog, settings: Settings) -> verify.LogCheck:
    return verify.check_log(catalog, settings)


@task(name="check-records-and-seals", cache_policy=NO_CACHE)
def records_task(
    catalog: Catalog, store: ArchiveStore, settings: Settings, sample: int | None
) -> verify.RecordCheck:
    return verify.check_records(catalog, store, settings, sealed_sample=sample)


@task(name="record-fixity", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def record_task(
    catalog: Catalog,
    checks: list[verify.OriginalCheck],
    problems: list[Problem],
    actor: str,
    run: str,
) -> list[Problem]:
    return verify.record(catalog, checks, problems, actor=actor, run_id=run)


@task(name="sign-checkpoints", cache_policy=NO_CACHE)
def sign_task(catalog: Catalog, settings: Settings) -> int:
    return len(checkpoints.checkpointer(settings).sign_due(catalog))


PROBLEMS_FOUND = "ProblemsFound"


@flow(name="fixity-check")
def fixity_check(sample: int | None = None) -> Any:
    """Re-hash ``sample`` random originals (None: every one) and as many sealed case bags,
    check the custody log, its checkpoints and witnesses, and replay the catalog from it."""
    started = time.monotonic()
    settings = load_settings()
    catalog = open_catalog(settings.catalog_url)
    try:
        run = verify.new_run_id()
        originals = select_task(catalog, sample)
        store = open_store(settings)
        checks = originals_task(store, originals, settings.custody.fixity_workers)
        log = log_task(catalog, settings)
        more = records_task(catalog, store, settings, sample)
        found = [*log.problems, *more.problems]
        failed = record_task(catalog, checks, found, settings.actor, run)
        report = verify.summarize(checks, log, failed, time.monotonic() - started, run, more)
        if not log.problems:  # never sign on top of a broken chain
            sign_task(catalog, settings)
    finally:
        catalog.dispose()
    create_table_artifact(
        key="fixity-check",
        table=[p._asdict() for p in report.problems] or [{"code": "OK", "message": "clean"}],
        description=(
            f"{report.originals} originals re-hashed, {report.events} custody events "
            f"recomputed, {report.checkpoints} checkpoints checked, {report.rows} catalog rows "
            f"replayed, {report.sealed} sealed bags verified: "
            f"{len(report.problems)} problems (run {run})"
        ),
    )
    if report.ok:
        return report
    logger = get_run_logger()
    for p in report.problems:
        logger.error("%s %s: %s", p.code, p.subject, p.message)
    codes = sorted({p.code for p in report.problems})
    first = report.problems[0]
    message = (
        f"{len(report.problems)} problems ({', '.join(codes)}); first: {first.subject}: "
        f"{first.message}"
    )
    return Failed(name=PROBLEMS_FOUND, message=message, data=report)


@flow(name="custody-checkpoint")
def custody_checkpoint() -> int:
    """Sign the custody checkpoints that are due; how many were signed."""
    settings = load_settings()
    catalog = open_catalog(settings.catalog_url)
    try:
        return sign_task(catalog, settings)
    finally:
        catalog.dispose()


def deployments(settings: Settings) -> list[Any]:
    """The served deployments, with the configured schedules."""
    c = settings.custody
    try:
        return [
            fixity_check.to_deployment(
                name="daily-sample",
                schedule=Cron(c.fixity_sample_cron, timezone=c.fixity_timezone),
                parameters={"sample": c.fixity_sample},
            ),
            fixity_check.to_deployment(
                name="monthly-full",
                schedule=Cron(c.fixity_full_cron, timezone=c.fixity_timezone),
                parameters={"sample": None},
            ),
            custody_checkpoint.to_deployment(
                name="checkpoints",
                schedule=Interval(timedelta(minutes=c.checkpoint_every_minutes)),
            ),
        ]
    except ValueError as exc:
        raise ConfigError(f"invalid custody schedule: {exc}") from exc
